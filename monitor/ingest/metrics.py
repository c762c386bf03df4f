"""Prometheus metrics of the ingest path (names as in docs/operations.md, "Prometheus metrics")."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from monitor.ingest import budget
from monitor.ingest.validation import REASONS

STREAMS = ("prediction", "label")
LABEL_DROP_REASONS = (
    "duplicate",
    "conflicting",
    "label_too_old",
    "label_delay_over_horizon",
    "no_prediction",
    "label_kind_mismatch",
    "unknown_class",
)
LABEL_DELAY_BUCKETS_S = (60, 300, 900, 3600, 4 * 3600, 86400, 3 * 86400, 7 * 86400, 30 * 86400)


class IngestMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.messages = Counter(
            "calmon_ingest_messages",
            "Valid messages ingested, by stream (prediction, label).",
            ["stream"],
            registry=registry,
        )
        self.rejected = Counter(
            "calmon_ingest_rejected",
            "Invalid messages, by reason (see docs/messages.md, 'Dead letters').",
            ["reason"],
            registry=registry,
        )
        for reason in (*REASONS, *budget.REASONS):
            self.rejected.labels(reason)  # export zeros, so rate() works from the start
        self.dead_lettered = Counter(
            "calmon_ingest_dead_lettered",
            "Invalid messages forwarded to the dead-letter topic.",
            registry=registry,
        )
        self.labels_dropped = Counter(
            "calmon_labels_dropped",
            "Labels not used, by reason: duplicate, conflicting, label_too_old, "
            "label_delay_over_horizon, no_prediction (waited a label horizon for a "
            "prediction that never came; counted by the retention job), "
            "label_kind_mismatch (a class label of a binary prediction, or 0/1 of a "
            "multi-class one), unknown_class (a class the prediction does not name).",
            ["reason"],
            registry=registry,
        )
        # Zeros from the first scrape: a dashboard panel shows 0, not "no data".
        for stream in STREAMS:
            self.messages.labels(stream)
        for reason in LABEL_DROP_REASONS:
            self.labels_dropped.labels(reason)
        self.label_delay = Histogram(
            "calmon_ingest_label_delay_seconds",
            "Time from prediction to label, for labels joined to their prediction.",
            buckets=LABEL_DELAY_BUCKETS_S,
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "calmon_ingest_batch_seconds",
            "Time to validate, write, dead-letter and commit one batch.",
            registry=registry,
        )
        self.write_retries = Counter(
            "calmon_ingest_write_retries",
            "Batch writes retried because the store or the dead-letter topic failed.",
            registry=registry,
        )
        self.models = Gauge(
            "calmon_ingest_models",
            "Distinct models ingest accepts predictions of (ingest.max_models caps it).",
            registry=registry,
        )
        self.model_versions = Gauge(
            "calmon_ingest_model_versions",
            "Distinct model versions ingest accepts predictions of "
            "(ingest.max_versions_per_model caps each model's).",
            registry=registry,
        )
        self.lag = Gauge(
            "calmon_consumer_lag_messages",
            "Messages between the consumer position and the partition's high watermark.",
            ["topic", "partition"],
            registry=registry,
        )


def observe_many(histogram: Histogram, values: Sequence[float]) -> None:
    """``histogram.observe(v)`` for every value, in one pass: a batch joins thousands
    of labels, and one ``observe`` call each cost more than the batch's label UPDATE.

    Reads prometheus_client's per-bucket counters (``_upper_bounds``, ``_buckets``,
    ``_sum``; stable since 0.4): tests/unit/ingest/test_metrics.py checks the exposition
    equals that of one ``observe`` per value.
    """
    if not len(values):
        return
    bounds = histogram._upper_bounds
    # A value goes to the first bucket whose bound it does not exceed, as in observe.
    counts = np.bincount(np.searchsorted(bounds, values, side="left"), minlength=len(bounds))
    for bucket, count in zip(histogram._buckets, counts.tolist(), strict=True):
        if count:
            bucket.inc(count)
    histogram._sum.inc(float(np.sum(values)))
