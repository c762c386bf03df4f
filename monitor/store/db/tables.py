"""Tables of the event store (revision 0001_events).

``events`` holds one row per (model_id, event_id): the prediction's fields and, once
it arrives, the label. A label that arrives first creates the row with the prediction
fields empty (a *pending* label); the prediction fills them in later. Having both in
one row means a label and its prediction written concurrently by two replicas contend
for the same row lock, so the join can never be missed.

``aggregates`` holds the mergeable :class:`~monitor.metrics.aggregates.EventAggregate`
of one series in one time bucket at three resolutions (minute, hour, day), so a window
merges a bounded number of rows whatever its event count.

``series`` lists every (model, version, segment) seen, with the times of its last
prediction and label (for absence rules and for listing series).

Times are epoch milliseconds (UTC) in BIGINT columns: the same on SQLite and
PostgreSQL, and what Kafka timestamps already are.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Float, Index, Integer, LargeBinary, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from monitor.store.db.base import Base

ID_LENGTH = 256
CLASS_LENGTH = 128
#: The columns that name one bucket of ``aggregates`` (and of ``aggregate_deltas``).
BUCKET_KEY = ["model_id", "model_version", "segment", "resolution_s", "bucket_start_ms"]


class Event(Base):
    __tablename__ = "events"

    model_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    model_version: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    event_time_ms: Mapped[int | None] = mapped_column(BigInteger)
    raw_score: Mapped[float | None] = mapped_column(Float)
    probability: Mapped[float | None] = mapped_column(Float)
    #: JSON object of segment attributes, keys sorted (canonical text).
    segment_json: Mapped[str | None] = mapped_column(Text)
    label: Mapped[int | None] = mapped_column(SmallInteger)
    label_time_ms: Mapped[int | None] = mapped_column(BigInteger)
    #: A multi-class prediction's class probabilities (canonical JSON object, keys
    #: sorted; revision 0009_multiclass); ``probability`` and ``raw_score`` stay NULL.
    probabilities_json: Mapped[str | None] = mapped_column(Text)
    #: A multi-class label's class (``label`` stays NULL).
    label_class: Mapped[str | None] = mapped_column(String(CLASS_LENGTH))
    #: When the row was first written (for the retention of labels that never join).
    created_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)

    __table_args__ = (
        Index("ix_events_event_time_ms", "event_time_ms"),
        Index("ix_events_created_ms", "created_ms"),
    )


class Aggregate(Base):
    __tablename__ = "aggregates"

    model_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    model_version: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    #: ``__all__`` or ``key=value``.
    segment: Mapped[str] = mapped_column(String(2 * ID_LENGTH + 1), primary_key=True)
    #: Bucket length in seconds: 60, 3600 or 86400.
    resolution_s: Mapped[int] = mapped_column(Integer, primary_key=True)
    bucket_start_ms: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    predictions: Mapped[int] = mapped_column(BigInteger, nullable=False)
    blob: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    #: The bucket's ``MulticlassAggregate``; NULL for a binary series (0009_multiclass).
    multiclass_blob: Mapped[bytes | None] = mapped_column(LargeBinary)
    updated_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)

    __table_args__ = (Index("ix_aggregates_resolution_bucket", "resolution_s", "bucket_start_ms"),)


class AggregateDelta(Base):
    """What one ingest batch added to one bucket (revision 0005_aggregate_deltas).

    Ingest appends deltas instead of rewriting ``aggregates``: a delta holds only its
    batch's events, while a busy series' day bucket holds hundreds of kilobytes of
    sums. Readers merge a bucket's row with its deltas; compaction
    (``monitor/store/maintenance/compaction.py``) folds deltas into their bucket's row and deletes
    them, so windows read a bounded number of rows.
    """

    __tablename__ = "aggregate_deltas"

    #: Ascending in insertion order; compaction deletes exactly the ids it merged.
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    model_id: Mapped[str] = mapped_column(String(ID_LENGTH), nullable=False)
    model_version: Mapped[str] = mapped_column(String(ID_LENGTH), nullable=False)
    segment: Mapped[str] = mapped_column(String(2 * ID_LENGTH + 1), nullable=False)
    resolution_s: Mapped[int] = mapped_column(Integer, nullable=False)
    bucket_start_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)
    predictions: Mapped[int] = mapped_column(BigInteger, nullable=False)
    blob: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    multiclass_blob: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)

    __table_args__ = (
        Index(
            "ix_aggregate_deltas_bucket",
            "model_id",
            "model_version",
            "segment",
            "resolution_s",
            "bucket_start_ms",
        ),
    )


class AggregateChange(Base):
    """What one compaction transaction added to one bucket (revision
    0008_aggregate_changes): the change log the window caches catch up from."""

    __tablename__ = "aggregate_changes"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    #: The compaction transaction's number (``aggregate_change_seq.seq`` when it committed).
    seq: Mapped[int] = mapped_column(BigInteger, nullable=False)
    model_id: Mapped[str] = mapped_column(String(ID_LENGTH), nullable=False)
    model_version: Mapped[str] = mapped_column(String(ID_LENGTH), nullable=False)
    segment: Mapped[str] = mapped_column(String(2 * ID_LENGTH + 1), nullable=False)
    resolution_s: Mapped[int] = mapped_column(Integer, nullable=False)
    bucket_start_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)
    predictions: Mapped[int] = mapped_column(BigInteger, nullable=False)
    blob: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    created_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)

    __table_args__ = (
        Index("ix_aggregate_changes_seq", "seq"),
        Index("ix_aggregate_changes_created_ms", "created_ms"),
    )


class AggregateChangeSeq(Base):
    """One row: the last compaction transaction's number, and up to which number the
    change log has been pruned."""

    __tablename__ = "aggregate_change_seq"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger, nullable=False)
    pruned_seq: Mapped[int] = mapped_column(BigInteger, nullable=False)


class Series(Base):
    __tablename__ = "series"

    model_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    model_version: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    segment: Mapped[str] = mapped_column(String(2 * ID_LENGTH + 1), primary_key=True)
    first_seen_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)
    last_prediction_ms: Mapped[int | None] = mapped_column(BigInteger)
    last_label_ms: Mapped[int | None] = mapped_column(BigInteger)


class ModelClass(Base):
    """Every class of each multi-class model (revision 0009_multiclass): where the
    ingest budget's per-model class count starts after a restart."""

    __tablename__ = "model_classes"

    model_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    class_name: Mapped[str] = mapped_column(String(CLASS_LENGTH), primary_key=True)
    first_seen_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)


# -- revision 0002_windows ---------------------------------------------------------------


class MetricPoint(Base):
    """History: every value a window job computed (one row per metric)."""

    __tablename__ = "metric_points"

    model_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    model_version: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    segment: Mapped[str] = mapped_column(String(2 * ID_LENGTH + 1), primary_key=True)
    window: Mapped[str] = mapped_column(String(32), primary_key=True)
    metric: Mapped[str] = mapped_column(String(64), primary_key=True)
    evaluated_ms: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    value: Mapped[float] = mapped_column(Float, nullable=False)

    __table_args__ = (
        Index("ix_metric_points_evaluated_ms", "evaluated_ms"),  # retention
        Index("ix_metric_points_model_metric_time", "model_id", "metric", "evaluated_ms"),
    )


class WindowResultRow(Base):
    """The latest evaluation of each series and window, with its reliability bins.

    Every replica's exporter reads this table, so whichever replica Prometheus scrapes
    exports the same values.
    """

    __tablename__ = "window_results"

    model_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    model_version: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    segment: Mapped[str] = mapped_column(String(2 * ID_LENGTH + 1), primary_key=True)
    window: Mapped[str] = mapped_column(String(32), primary_key=True)
    evaluated_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)
    window_start_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)
    window_end_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)
    predictions: Mapped[int] = mapped_column(BigInteger, nullable=False)
    labelled: Mapped[int] = mapped_column(BigInteger, nullable=False)
    values_json: Mapped[str] = mapped_column(Text, nullable=False)
    bins_json: Mapped[str] = mapped_column(Text, nullable=False)
    #: The drift reference (``ReferenceUsed``); NULL for none, and in older rows.
    reference_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: A multi-class series' per-class values and reliability bins (0009_multiclass).
    classes_json: Mapped[str | None] = mapped_column(Text, nullable=True)


class Reference(Base):
    """A fitted drift reference of one series, versioned with the model version."""

    __tablename__ = "references"

    model_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    model_version: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    segment: Mapped[str] = mapped_column(String(2 * ID_LENGTH + 1), primary_key=True)
    distribution: Mapped[str] = mapped_column(String(16), primary_key=True)
    #: ``snapshot`` (calmon baseline) or ``fixed`` (the configured period).
    source: Mapped[str] = mapped_column(String(16), nullable=False)
    start_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)
    end_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)
    created_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)
    #: ``reference.psi_bins`` when it was fitted: a fixed reference is refitted when it
    #: changes. NULL in rows stored before it was kept.
    psi_bins: Mapped[int | None] = mapped_column(Integer, nullable=True)
    profile_json: Mapped[str] = mapped_column(Text, nullable=False)


class JobRun(Base):
    """One row per (job, scheduled slot): the replica that inserts it runs the job."""

    __tablename__ = "job_runs"

    job: Mapped[str] = mapped_column(String(64), primary_key=True)
    slot_ms: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    owner: Mapped[str] = mapped_column(String(128), nullable=False)
    started_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)
    finished_ms: Mapped[int | None] = mapped_column(BigInteger)


# -- revision 0003_alerts ----------------------------------------------------------------


class AlertRow(Base):
    """The state of one alert (a rule on one series): pending, firing or resolved.

    Persisted so a restart neither re-fires nor forgets firing alerts. Labels and
    annotations are stored rendered, as they are sent to Alertmanager.
    """

    __tablename__ = "alerts"

    fingerprint: Mapped[str] = mapped_column(String(64), primary_key=True)
    rule: Mapped[str] = mapped_column(String(128), nullable=False)
    model_id: Mapped[str] = mapped_column(String(ID_LENGTH), nullable=False)
    model_version: Mapped[str] = mapped_column(String(ID_LENGTH), nullable=False)
    segment: Mapped[str] = mapped_column(String(2 * ID_LENGTH + 1), nullable=False)
    window: Mapped[str] = mapped_column(String(32), nullable=False)
    state: Mapped[str] = mapped_column(String(16), nullable=False)
    active_since_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)
    fired_ms: Mapped[int | None] = mapped_column(BigInteger)
    resolved_ms: Mapped[int | None] = mapped_column(BigInteger)
    values_json: Mapped[str] = mapped_column(Text, nullable=False)
    labels_json: Mapped[str] = mapped_column(Text, nullable=False)
    annotations_json: Mapped[str] = mapped_column(Text, nullable=False)
    #: When the alert was last sent to Alertmanager (re-sent while firing).
    last_sent_ms: Mapped[int | None] = mapped_column(BigInteger)


class WebhookDelivery(Base):
    """The webhook outbox: one row per (alert episode, webhook), delivered at most once
    successfully; retried with backoff, dead-lettered after the last attempt."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    idempotency_key: Mapped[str] = mapped_column(String(128), nullable=False, unique=True)
    webhook: Mapped[str] = mapped_column(String(64), nullable=False)
    url: Mapped[str] = mapped_column(Text, nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    #: ``pending``, ``delivered`` or ``dead``.
    state: Mapped[str] = mapped_column(String(16), nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False)
    next_attempt_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)
    created_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)
    finished_ms: Mapped[int | None] = mapped_column(BigInteger)
    last_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_webhook_deliveries_due", "state", "next_attempt_ms"),)


class RecalibrationRow(Base):
    """A calibrator recommended in a firing alert's webhook, until its deployment is
    verified: ``awaiting`` (no series of a new calibrator version has enough labels
    yet), then ``verified`` or ``failed``, or ``expired`` when none had them within
    ``evaluation.recalibration_expiry`` (revision 0007_recalibrations)."""

    __tablename__ = "recalibrations"
    __table_args__ = (Index("ix_recalibrations_window_state", "window", "state"),)

    alert_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    model_id: Mapped[str] = mapped_column(String(ID_LENGTH), nullable=False)
    model_version: Mapped[str] = mapped_column(String(ID_LENGTH), nullable=False)
    segment: Mapped[str] = mapped_column(String(2 * ID_LENGTH + 1), nullable=False)
    window: Mapped[str] = mapped_column(String(32), nullable=False)
    fired_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)
    #: The webhooks of the rule that fired: they get the verdict too.
    webhooks_json: Mapped[str] = mapped_column(Text, nullable=False)
    #: The triggering window's ECE (with its interval), log loss and labelled count.
    before_json: Mapped[str] = mapped_column(Text, nullable=False)
    #: The webhook's ``recalibration`` object: the artifact and the candidates' scores.
    recommendation_json: Mapped[str] = mapped_column(Text, nullable=False)
    state: Mapped[str] = mapped_column(String(16), nullable=False)
    outcome_json: Mapped[str | None] = mapped_column(Text)
    decided_ms: Mapped[int | None] = mapped_column(BigInteger)


# -- revision 0010_window_shards ---------------------------------------------------------


class WindowShardRow(Base):
    """One shard of one window's series (``monitor/store/shards.py``): the replica that
    leases it evaluates its models; the newest slot (tick) it stored results for."""

    __tablename__ = "window_shards"

    window: Mapped[str] = mapped_column(String(32), primary_key=True)
    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    owner: Mapped[str | None] = mapped_column(String(128))
    #: The lease runs out then unless its owner renews it; 0 when released.
    lease_until_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)
    done_slot_ms: Mapped[int | None] = mapped_column(BigInteger)
    done_ms: Mapped[int | None] = mapped_column(BigInteger)


class ReplicaRow(Base):
    """A running replica, while it keeps ``seen_ms`` fresh: the replicas alive share the
    window shards."""

    __tablename__ = "replicas"

    owner: Mapped[str] = mapped_column(String(128), primary_key=True)
    started_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)
    seen_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)
