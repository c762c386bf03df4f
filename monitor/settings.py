"""calmon's configuration: one YAML file, validated into a frozen tree.

- Unknown keys and wrong types are errors that name the key's path
  (``kafka.topics.labelz: Extra inputs are not permitted``).
- Every key can be overridden from the environment: ``CALMON__<SECTION>__<KEY>``, e.g.
  ``CALMON__KAFKA__GROUP_ID=calmon-eu`` or ``CALMON__STORE__SEGMENT_KEYS='[region]'``
  (values are parsed as YAML scalars or lists).
- Secrets (the database URL, Kafka SASL/SSL passwords, Alertmanager's password or bearer
  token) are read from the environment only; putting one in the file is an error.

Durations are numbers of seconds or strings such as ``90s``, ``5m``, ``24h``, ``30d``.
"""

from __future__ import annotations

import difflib
import os
import re
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    WithJsonSchema,
    model_validator,
)

from monitor.core.errors import UserError, yaml_problem
from monitor.core.series import ALL
from monitor.core.times import epoch_ms

ENV_PREFIX = "CALMON__"
#: Secret keys: (section, key) -> environment variable. Never read from the file.
SECRETS = {
    ("store", "url"): "CALMON_STORE_URL",
    ("kafka", "sasl_password"): "CALMON_KAFKA_SASL_PASSWORD",
    ("kafka", "ssl_password"): "CALMON_KAFKA_SSL_PASSWORD",
    ("alertmanager", "password"): "CALMON_ALERTMANAGER_PASSWORD",
    ("alertmanager", "bearer_token"): "CALMON_ALERTMANAGER_BEARER_TOKEN",
}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}


def parse_duration(value: Any) -> float:
    """Seconds from ``90``, ``"90s"``, ``"5m"``, ``"24h"``, ``"30d"``, ``"1w"``."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like '5m'")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"{value!r} is not a duration (examples: 90s, 5m, 24h, 30d)")
        seconds = float(match.group(1)) * _UNIT_S[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"a duration must be positive, got {value!r}")
    return seconds


#: What JSON Schema can say of a duration (the chart's values.schema.json is generated
#: from these models: scripts/build_values_schema.py); positivity is checked at load.
DURATION_JSON_SCHEMA = {
    "anyOf": [
        {"type": "number", "exclusiveMinimum": 0},
        {"type": "string", "pattern": _DURATION.pattern},
    ],
    "description": "A duration: seconds, or a string such as 500ms, 90s, 5m, 24h, 30d, 1w.",
}
Duration = Annotated[
    float, BeforeValidator(parse_duration), WithJsonSchema(DURATION_JSON_SCHEMA, mode="validation")
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TopicSettings(_Section):
    """One topic per logical stream; several may be the same topic."""

    raw_scores: str = "calmon.raw_scores"
    probabilities: str = "calmon.probabilities"
    labels: str = "calmon.labels"

    def unique(self) -> list[str]:
        return sorted({self.raw_scores, self.probabilities, self.labels})


class KafkaSettings(_Section):
    bootstrap_servers: list[str] = Field(default_factory=lambda: ["127.0.0.1:9092"])
    group_id: str = "calmon"
    client_id: str = "calmon"
    topics: TopicSettings = TopicSettings()
    #: Where invalid messages go, with their reason; ``null`` to only count and log them.
    dead_letter_topic: str | None = "calmon.dead_letter"
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    session_timeout_ms: int = Field(10_000, gt=0)
    heartbeat_interval_ms: int = Field(3_000, gt=0)
    max_poll_interval_ms: int = Field(300_000, gt=0)
    #: Reconnection backoff of the Kafka client: from ``reconnect_backoff_ms``, doubling
    #: per failed attempt up to ``reconnect_backoff_max_ms`` (kafka-python's own cap is
    #: 30 s, so ingest could resume up to 30 s after a broker came back).
    reconnect_backoff_ms: int = Field(100, gt=0)
    reconnect_backoff_max_ms: int = Field(2_000, gt=0)
    #: One attempt to reach the cluster at start-up; attempts repeat, with the ingest
    #: backoff (``ingest.retry_initial`` .. ``retry_max``) between them, until one works.
    bootstrap_timeout_ms: int = Field(10_000, gt=0)
    #: Longest wait for an offset commit; a batch whose commit fails is read again
    #: (and written again idempotently), so waiting longer only delays ingest.
    commit_timeout_ms: int = Field(5_000, gt=0)
    #: /readyz fails when the group coordinator has answered no heartbeat for this long.
    readiness_timeout: Duration = 15.0
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_password: SecretStr | None = None

    @model_validator(mode="after")
    def _readiness_outlasts_heartbeats(self) -> KafkaSettings:
        if self.readiness_timeout * 1000 <= 2 * self.heartbeat_interval_ms:
            raise ValueError(
                "readiness_timeout must be longer than two heartbeat intervals"
                f" ({2 * self.heartbeat_interval_ms} ms), or /readyz would flap"
            )
        if self.reconnect_backoff_max_ms < self.reconnect_backoff_ms:
            raise ValueError("reconnect_backoff_max_ms must be at least reconnect_backoff_ms")
        return self

    def client_options(self) -> dict[str, Any]:
        """Connection and security options shared by consumers and producers."""
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "client_id": self.client_id,
            "security_protocol": self.security_protocol,
            "reconnect_backoff_ms": self.reconnect_backoff_ms,
            "reconnect_backoff_max_ms": self.reconnect_backoff_max_ms,
            "bootstrap_timeout_ms": self.bootstrap_timeout_ms,
        }
        if self.sasl_mechanism:
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.sasl_username
            if self.sasl_password is not None:
                options["sasl_plain_password"] = self.sasl_password.get_secret_value()
        for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            if getattr(self, name):
                options[name] = getattr(self, name)
        if self.ssl_password is not None:
            options["ssl_password"] = self.ssl_password.get_secret_value()
        return options


MAX_CLASS_NAME_LENGTH = 128


class MulticlassSettings(_Section):
    """Multi-class predictions (docs/messages.md, "Multi-class predictions")."""

    #: Most classes one model may have: a prediction naming more, or bringing its model
    #: past this many distinct classes, is dead-lettered as ``too_many_classes``. A
    #: bucket's aggregate grows with the classes (docs/benchmarks.md), and every class
    #: is a ``class`` label value of the per-class metrics.
    max_classes: int = Field(100, ge=2, le=1000)
    #: How far the probabilities of one prediction may sum from 1 (``probabilities_sum``
    #: past it); within it they are divided by their sum.
    sum_tolerance: float = Field(0.01, gt=0, le=0.5)
    #: Per model id: its classes, in the order an array of probabilities lists them.
    #: Needed for arrays; for objects, the keys must then be exactly these classes and
    #: labels one of them. Models not listed send objects, their keys being the classes.
    classes: dict[str, list[str]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _classes_fit(self) -> MulticlassSettings:
        for model_id, names in self.classes.items():
            problem = _class_list_problem(names, self.max_classes)
            if problem:
                raise ValueError(f"classes.{model_id}: {problem}")
        return self


def _class_list_problem(names: list[str], max_classes: int) -> str | None:
    if len(names) < 2:
        return "a multi-class model has 2 or more classes"
    if len(names) > max_classes:
        return f"{len(names)} classes > max_classes ({max_classes})"
    if len(set(names)) < len(names):
        return "a class is listed twice"
    for name in names:
        if not 0 < len(name) <= MAX_CLASS_NAME_LENGTH or "\x00" in name:
            return f"class {name[:80]!r} must be 1-{MAX_CLASS_NAME_LENGTH} characters, no NUL"
    return None


class IngestSettings(_Section):
    #: A batch is written when it holds this many records (a batch is one transaction
    #: and one delta per aggregate bucket it touches: larger ones cost less per record)...
    max_batch_records: int = Field(10_000, gt=0)
    #: ...or when its first record is this old.
    max_batch_age: Duration = 1.0
    #: Larger messages are dead-lettered as ``oversized``.
    max_message_bytes: int = Field(64 * 1024, gt=0)
    #: Labels older than this, or arriving this long after their prediction, are dropped.
    label_horizon: Duration = 30 * 86400
    #: Backoff while the store or the dead-letter topic is unavailable.
    retry_initial: Duration = 0.5
    retry_max: Duration = 30.0
    #: Cardinality budgets (docs/messages.md): model ids accepted (globs, ``fraud-*``;
    #: null: any), and how many distinct models and versions per model. Messages past
    #: them are dead-lettered as ``model_not_allowed`` or ``over_budget``.
    models: list[str] | None = Field(None, min_length=1)
    max_models: int = Field(200, ge=1)
    max_versions_per_model: int = Field(50, ge=1)
    multiclass: MulticlassSettings = MulticlassSettings()


class StoreSettings(_Section):
    #: Secret: from CALMON_STORE_URL only. Default: an SQLite file in the working directory.
    url: SecretStr = SecretStr("sqlite:///calmon.db")
    #: Segment attributes that become series (``region`` -> ``region=eu``...).
    segment_keys: list[str] = Field(default_factory=list)
    event_retention: Duration = 35 * 86400
    #: Every value a window job computed (the JSON API's history, reports).
    metric_history_retention: Duration = 400 * 86400
    retention_interval: Duration = 3600
    #: How often ingest's aggregate deltas are folded into their buckets' rows: each
    #: window merges the deltas of its buckets not compacted yet.
    compaction_interval: Duration = 15.0
    #: Replicas share each window's series (docs/operations.md#scaling-and-replicas):
    #: a replica that stops renewing its share (it died) hands it over after this.
    replica_lease: Duration = 15.0


class WindowSettings(_Section):
    """A sliding window ``length`` long, evaluated every ``every``."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,32}$")
    length: Duration
    every: Duration = 60.0


def _default_windows() -> list[WindowSettings]:
    return [
        WindowSettings(name="1h", length=3600, every=60),
        WindowSettings(name="24h", length=86400, every=300),
        WindowSettings(name="7d", length=7 * 86400, every=900),
    ]


class SequentialSettings(_Section):
    """The sequential calibration-drift detector (docs/windows-and-metrics.md#sequential-detector).

    A two-sided CUSUM of the per-bucket standardised residual sum(y - p)/sqrt(sum p(1-p)),
    recomputed at each evaluation over the window's minute buckets (windows up to 3h) or
    hour buckets (longer windows; the last ``max_lookback_buckets`` of them).
    """

    enabled: bool = True
    #: Reference value in standard deviations per bucket: half the shift detected fastest.
    k: float = Field(0.5, gt=0, le=5)
    #: Average run length between false alarms on a calibrated model, in evaluations:
    #: sets the decision limit (``calibration_cusum_limit``).
    arl: float = Field(2000, ge=10, le=100_000)
    max_lookback_buckets: int = Field(180, ge=2, le=1440)


class EvaluationSettings(_Section):
    #: Equal-width bins of ECE, MCE and the reliability diagram (5, 10, 20, 40...).
    n_bins: Literal[5, 10, 20, 40, 80] = 10
    #: Below these counts a metric is insufficient: not exported, no alert on noise.
    min_labelled: int = Field(100, ge=1)
    min_predictions: int = Field(100, ge=1)
    #: Resamples of the ECE bootstrap interval (0 turns it off).
    bootstrap_resamples: int = Field(500, ge=0)
    #: Per segment key, the top-K values by volume get their own series; the rest
    #: are merged into ``key=__other__``.
    max_segment_values: int = Field(10, ge=1)
    #: Also export each model over all its versions (model_version="__all__").
    all_versions: bool = True
    sequential: SequentialSettings = SequentialSettings()
    #: A recommended calibrator not measured in production this long after its alert
    #: fired (no new calibrator version, or too few labels on it) is decided ``expired``.
    recalibration_expiry: Duration = 7 * 86400
    #: A series with no prediction and no label for this long is retired: no longer
    #: evaluated or exported, its alerts resolved, until its next event. Without it, a
    #: fleet that retrains daily would evaluate every version it ever had on every tick.
    retire_series_after: Duration = 35 * 86400


class ReferenceSettings(_Section):
    """The drift reference when no ``calmon baseline`` snapshot exists for a version.

    ``trailing``: the window of the same length just before the current one.
    ``fixed``: the period [start, end) of each model version (RFC 3339 with a UTC offset;
    YAML may leave it unquoted).
    """

    mode: Literal["trailing", "fixed"] = "trailing"
    start: AwareDatetime | None = None
    end: AwareDatetime | None = None
    #: PSI bins fitted on the reference's quantiles.
    psi_bins: int = Field(10, ge=2, le=100)

    @model_validator(mode="after")
    def _fixed_needs_a_period(self) -> ReferenceSettings:
        # Without this, mode fixed with a missing bound silently fell back to trailing.
        if self.mode == "fixed" and (self.start is None or self.end is None):
            raise ValueError("mode fixed needs both start and end")
        if self.start is not None and self.end is not None and self.start >= self.end:
            raise ValueError(f"start {self.start.isoformat()} is not before end")
        return self

    def period_ms(self) -> tuple[int, int]:
        """The fixed period [start, end) in epoch milliseconds."""
        if self.start is None or self.end is None:
            raise ValueError("no fixed reference period")
        return epoch_ms(self.start), epoch_ms(self.end)


#: What a segment value's series export by default: what the shipped dashboards read per
#: segment (the segment table; the variables' values) and what the shipped Prometheus
#: rules about calibration and drift test. 10 samples a series (``psi``: two).
HEADLINE_METRICS = (
    "ece",
    "ace",
    "brier_score",
    "roc_auc_score",
    "calibration_slope",
    "psi",
    "window_predictions",
    "window_labelled",
    "label_coverage_ratio",
)


class ExportSeriesSettings(_Section):
    """What one kind of series exports on /metrics: the first entry of ``export.series``
    whose ``windows``, ``segments`` and ``models`` all match a series decides."""

    #: Window names; null: every window.
    windows: list[str] | None = Field(None, min_length=1)
    #: ``__all__`` (the whole-model series) and segment keys (``region``: every
    #: ``region=...`` series, ``region=__other__`` included); null: every series.
    segments: list[str] | None = Field(None, min_length=1)
    #: Model ids, globs allowed (``fraud-*``); null: every model.
    models: list[str] | None = Field(None, min_length=1)
    #: ``all``, or metric names as on /metrics without ``calmon_`` (``ece``, ``psi``:
    #: both distributions, ``window_label_delay_seconds``: its quantiles).
    metrics: Literal["all"] | list[str] = "all"
    #: ``reliability`` (calmon_reliability_bin_*) and ``drift`` (calmon_drift_bin_fraction).
    bins: list[Literal["reliability", "drift"]] = Field(default_factory=list)


def _default_export_series() -> list[ExportSeriesSettings]:
    return [
        ExportSeriesSettings(segments=[ALL], metrics="all", bins=["reliability", "drift"]),
        ExportSeriesSettings(metrics=list(HEADLINE_METRICS)),
    ]


class ExportSettings(_Section):
    """Which series carry which metrics on /metrics, so that a fleet's scrape stays
    affordable (docs/operations.md#sizing-metrics). The JSON API, rules and webhooks
    see every metric and bin of every series whatever is chosen here."""

    #: First match wins; a series no entry matches is not on /metrics.
    series: list[ExportSeriesSettings] = Field(default_factory=_default_export_series)


class HttpSettings(_Section):
    host: str = "0.0.0.0"
    port: int = Field(8080, ge=0, le=65535)
    #: How users reach this daemon (links in alerts and webhooks); default http://host:port.
    external_url: str | None = None
    #: A client must send its whole request head, and take the response, within this;
    #: slower (or idle keep-alive) connections are dropped.
    request_timeout: Duration = Field(10.0, gt=0)
    #: Open connections at most; at the cap a new one evicts the oldest idle one.
    max_connections: int = Field(512, ge=1)
    #: Threads serving /metrics and /api (the probes have two of their own).
    workers: int = Field(4, ge=1)
    #: TLS and basic auth, in the Prometheus exporter web config format (docs/api.md).
    web_config_file: str | None = None
    #: Environment variable holding a bearer token that /metrics and /api accept.
    bearer_token_env: str | None = None

    def base_url(self) -> str:
        if self.external_url:
            return self.external_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}"


class AlertmanagerSettings(_Section):
    """Where firing and resolved alerts are POSTed (``/api/v2/alerts``).

    List every instance of an HA pair: alerts go to each, as Prometheus does, and
    Alertmanager de-duplicates.
    """

    urls: list[str] = Field(default_factory=list)
    #: Firing alerts are re-sent this often; their ``endsAt`` is 4 intervals ahead, so
    #: Alertmanager resolves them by itself if calmon stops sending.
    resend_interval: Duration = 60.0
    #: Resolved alerts are re-sent for this long (in case a send was lost).
    resolved_resend_for: Duration = 900.0
    timeout: Duration = 5.0
    #: Basic auth: the user; its password is a secret, from CALMON_ALERTMANAGER_PASSWORD.
    username: str | None = None
    password: SecretStr | None = None
    #: Or a bearer token, a secret, from CALMON_ALERTMANAGER_BEARER_TOKEN.
    bearer_token: SecretStr | None = None
    #: TLS: the CA bundle that signed Alertmanager's certificate (default: the system's).
    ca_file: str | None = None
    #: TLS client certificate (PEM; with its key in it, or in ``key_file``).
    cert_file: str | None = None
    key_file: str | None = None
    #: Accept any certificate: for a test set-up only, never in production.
    insecure_skip_verify: bool = False

    @model_validator(mode="after")
    def _one_way_to_authenticate(self) -> AlertmanagerSettings:
        if self.password is not None and self.bearer_token is not None:
            raise ValueError(
                "basic auth (CALMON_ALERTMANAGER_PASSWORD) and a bearer token "
                "(CALMON_ALERTMANAGER_BEARER_TOKEN) are both set: choose one"
            )
        if self.password is not None and not self.username:
            raise ValueError("CALMON_ALERTMANAGER_PASSWORD is set but alertmanager.username is not")
        if self.username and self.password is None:
            raise ValueError(
                f"alertmanager.username {self.username!r} needs its password in "
                "CALMON_ALERTMANAGER_PASSWORD"
            )
        if self.key_file and not self.cert_file:
            raise ValueError("alertmanager.key_file is set but alertmanager.cert_file is not")
        return self


class WebhookSettings(_Section):
    """A recalibration webhook that rules name in their ``actions``."""

    url: str = Field(pattern=r"^https?://")
    #: Environment variable holding the HMAC-SHA256 signing key (never the key itself).
    secret_env: str = "CALMON_WEBHOOK_SECRET"
    max_attempts: int = Field(8, ge=1)
    backoff_initial: Duration = 1.0
    backoff_max: Duration = 300.0
    #: The whole attempt's deadline (connect, send, the receiver's answer), not per phase.
    timeout: Duration = 10.0


WebhookName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]


class Settings(_Section):
    kafka: KafkaSettings = KafkaSettings()
    ingest: IngestSettings = IngestSettings()
    store: StoreSettings = StoreSettings()
    windows: list[WindowSettings] = Field(default_factory=_default_windows, min_length=1)
    evaluation: EvaluationSettings = EvaluationSettings()
    reference: ReferenceSettings = ReferenceSettings()
    export: ExportSettings = ExportSettings()
    http: HttpSettings = HttpSettings()
    #: Rule files (YAML, see alerts/calmon-rules.yaml), relative to the working directory.
    rules: list[str] = Field(default_factory=list)
    alertmanager: AlertmanagerSettings = AlertmanagerSettings()
    #: Names are printable ASCII: a name is part of each delivery's signed ``webhook-id``.
    webhooks: dict[WebhookName, WebhookSettings] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _series_retire_after_their_windows(self) -> Settings:
        longest = max(window.length for window in self.windows)
        if self.evaluation.retire_series_after <= longest:
            raise ValueError(
                "evaluation.retire_series_after must be longer than the longest window "
                f"({longest:g} s): a series would retire while its events are still in it"
            )
        return self


class ConfigError(UserError, ValueError):
    """The configuration is invalid; the message lists every bad key with its path."""


@dataclass
class RawConfig:
    """The config file with the environment applied, before validation.

    ``problems`` are those found while reading (a YAML error, a secret in the file, a bad
    override); ``origins`` maps each key path an environment variable set to its name,
    so that a validation error below it names the variable.
    """

    data: dict[str, Any] = field(default_factory=dict)
    origins: dict[tuple[str, ...], str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def read_config(path: str | Path | None, environ: Mapping[str, str]) -> RawConfig:
    """Read the YAML file (optional), then apply environment overrides and secrets.

    Never stops at the first problem: a secret in the file is reported and dropped, so
    the rest of the file is still validated.
    """
    raw = RawConfig()
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text()) or {}
        except OSError as exc:
            raw.problems.append(f"cannot read config {path}: {exc.strerror or exc}")
            loaded = {}
        except yaml.YAMLError as exc:
            raw.problems.append(f"config {yaml_problem(path, exc)}")
            loaded = {}
        if isinstance(loaded, dict):
            raw.data = loaded
        else:
            raw.problems.append(f"config {path}: the top level must be a mapping")
    for (section, key), variable in SECRETS.items():
        if isinstance(raw.data.get(section), dict) and key in raw.data[section]:
            del raw.data[section][key]
            raw.problems.append(
                f"{section}.{key} is a secret: set it in the environment variable {variable}, "
                "not in the config file"
            )
    for name, text in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX):
            continue
        parts = name[len(ENV_PREFIX) :].lower().split("__")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raw.problems.append(f"environment variable {name}: {yaml_problem('value', exc)}")
            continue
        if not _set_path(raw.data, parts, value):
            raw.problems.append(
                f"environment variable {name}: {'.'.join(parts[:-1])} is not a section"
            )
            continue
        raw.origins[tuple(parts)] = name
    for (section, key), variable in SECRETS.items():
        if variable in environ:
            section_data = raw.data.setdefault(section, {})
            if isinstance(section_data, dict):
                section_data[key] = environ[variable]
            raw.origins[(section, key)] = variable
    return raw


def load_settings(
    path: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read the YAML file (optional), apply environment overrides and secrets, validate."""
    raw = read_config(path, os.environ if environ is None else environ)
    problems = list(raw.problems)
    try:
        settings = Settings.model_validate(raw.data)
    except ValidationError as exc:
        problems += validation_problems(exc, raw.origins)
    if problems:
        raise ConfigError(describe_problems(problems))
    return settings


def _set_path(data: dict[str, Any], path: list[str], value: Any) -> bool:
    for part in path[:-1]:
        data = data.setdefault(part, {})
        if not isinstance(data, dict):
            return False
    data[path[-1]] = value
    return True


def validation_problems(
    exc: ValidationError, origins: Mapping[tuple[str, ...], str] | None = None
) -> list[str]:
    """One line per error: the key's path, the message, a "did you mean" for an unknown
    key, and the environment variable that set it if one did."""
    problems = []
    for error in exc.errors():
        loc = tuple(str(part) for part in error["loc"])
        line = f"{'.'.join(loc) or '(top level)'}: {error['msg']}"
        if error["type"] == "extra_forbidden":
            close = difflib.get_close_matches(loc[-1], _keys_at(loc[:-1]), n=1)
            if close:
                line += f" (did you mean {close[0]!r}?)"
        variable = next(
            (name for path, name in (origins or {}).items() if loc[: len(path)] == path), None
        )
        if variable:
            line += f" (set by environment variable {variable})"
        problems.append(line)
    return problems


def _keys_at(loc: tuple[str, ...]) -> list[str]:
    """The keys the section at ``loc`` allows (empty if it is not a section)."""
    annotation: Any = Settings
    for part in loc:
        annotation = _section_type(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            info = annotation.model_fields.get(part)
            if info is None:
                return []
            annotation = info.annotation
        elif get_origin(annotation) in (list, dict):
            annotation = get_args(annotation)[-1]
        else:
            return []
    annotation = _section_type(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [info.alias or name for name, info in annotation.model_fields.items()]
    return []


def _section_type(annotation: Any) -> Any:
    """``X | None`` -> ``X``."""
    args = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) in (Union, types.UnionType) and len(args) == 1:
        return args[0]
    return annotation


def describe_problems(problems: list[str]) -> str:
    return "\n".join(
        [f"invalid configuration ({len(problems)} problem(s)):"]
        + [f"  {problem}" for problem in problems]
    )
