"""Writes calmon's Grafana dashboards (helm/calmon/dashboards/*.json) from one description.

Run after changing a panel: ``make generated`` (scripts/generated.py runs every
generator). tests/unit/test_docs.py fails when the committed JSON differs from what this
script writes, and tests/integration/deploy/test_dashboards.py checks
every PromQL expression against promtool and the metric names a running daemon exports.

Why generate: two dashboards share variables, selectors and panel styling; written by
hand, their ~1,500 lines of JSON drift apart. Targets Grafana 11.3 or newer (the XY chart
is the panel's second version).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent.parent / "helm" / "calmon" / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
SERIES = 'model=~"$model", model_version=~"$version", segment=~"$segment", window=~"$window"'
LEGEND = "{{model}} {{model_version}} {{segment}} ({{window}})"
Panel = dict[str, Any]
#: Labels Prometheus adds per scrape target. Every replica exports the same window series
#: (read from the shared store), so with several replicas scraped a query keeps one.
TARGET_LABELS = "instance, pod, job, namespace, service, endpoint, container"


def one(selector: str) -> str:
    """One time series per calmon series, however many replicas Prometheus scrapes."""
    return f"max without ({TARGET_LABELS}) ({selector})"


def variables(*, multi: bool, source: str = "calmon_window_predictions") -> list[dict[str, Any]]:
    """datasource, model, version, segment, window: each narrowed by the ones before;
    the models are those with a ``source`` series."""

    def query(name: str, label: str, expr: str, default: str | None) -> dict[str, Any]:
        current = {"text": default, "value": default} if default else {}
        return {
            "name": name,
            "label": label,
            "type": "query",
            "datasource": DATASOURCE,
            "query": {"query": expr, "refId": f"{name}-values", "qryType": 1},
            "definition": expr,
            "refresh": 2,  # on time range change: new models appear without a reload
            "sort": 1,
            "multi": multi,
            "includeAll": multi,
            "current": current,
        }

    return [
        {
            "name": "datasource",
            "label": "Data source",
            "type": "datasource",
            "query": "prometheus",
            "current": {},
        },
        query("model", "Model", f"label_values({source}, model)", None),
        query(
            "version",
            "Version",
            f'label_values({source}{{model=~"$model"}}, model_version)',
            "__all__",
        ),
        query(
            "segment",
            "Segment",
            f'label_values({source}{{model=~"$model"}}, segment)',
            "__all__",
        ),
        query("window", "Window", f"label_values({source}, window)", "24h"),
    ]


def target(expr: str, legend: str = LEGEND, ref: str = "A", **extra: Any) -> dict[str, Any]:
    return {"datasource": DATASOURCE, "expr": expr, "legendFormat": legend, "refId": ref, **extra}


def table_target(expr: str, ref: str) -> dict[str, Any]:
    """An instant query returned as a table (one row per series), for tables and charts."""
    return target(expr, "__auto", ref, instant=True, range=False, format="table")


def thresholds(*steps: tuple[float, str]) -> dict[str, Any]:
    return {
        "mode": "absolute",
        "steps": [{"color": "green", "value": None}]
        + [{"color": color, "value": value} for value, color in steps],
    }


def timeseries(
    title: str,
    targets: list[dict[str, Any]],
    *,
    description: str,
    unit: str = "none",
    lines: tuple[tuple[float, str], ...] = (),
    decimals: int | None = None,
) -> Panel:
    defaults: dict[str, Any] = {
        "unit": unit,
        "custom": {
            "drawStyle": "line",
            "lineWidth": 1,
            "showPoints": "never",
            "spanNulls": False,
            # Threshold steps drawn as dashed lines: the alert level is visible.
            "thresholdsStyle": {"mode": "dashed" if lines else "off"},
        },
        "thresholds": thresholds(*lines),
    }
    if decimals is not None:
        defaults["decimals"] = decimals
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "legend": {"displayMode": "table", "placement": "bottom", "calcs": ["lastNotNull"]},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    }


def row(title: str) -> Panel:
    return {"type": "row", "title": title, "collapsed": False, "panels": []}


def layout(panels: list[tuple[Panel, int, int]]) -> list[Panel]:
    """Place panels left to right in a 24-column grid; a row starts a new line."""
    placed, x, y, line_height = [], 0, 0, 0
    for number, (panel, width, height) in enumerate(panels, start=1):
        if panel["type"] == "row" or x + width > 24:
            x, y, line_height = 0, y + line_height, 0
        panel = {"id": number, **panel, "gridPos": {"x": x, "y": y, "w": width, "h": height}}
        placed.append(panel)
        if panel["type"] == "row":
            y += height
        else:
            x += width
            line_height = max(line_height, height)
    return placed


def dashboard(uid: str, title: str, description: str, panels: list[Panel], **extra: Any) -> dict:  # type: ignore[type-arg]
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["calmon", "calibration", "drift"],
        "editable": True,
        "graphTooltip": 1,  # shared crosshair: compare ECE and PSI at the same moment
        "refresh": "1m",
        "schemaVersion": 39,
        "time": {"from": "now-7d", "to": "now"},
        "timezone": "browser",
        "version": 1,
        "links": [
            {
                "title": "calmon dashboards",
                "type": "dashboards",
                "tags": ["calmon"],
                "asDropdown": True,
                "includeVars": True,
                "keepTime": True,
            }
        ],
        "panels": panels,
        **extra,
    }


def alert_annotations() -> dict[str, Any]:
    return {
        "list": [
            {
                "name": "calmon alerts",
                "enable": True,
                "iconColor": "red",
                "datasource": DATASOURCE,
                "expr": one(
                    'calmon_alerts{state="firing", model=~"$model", '
                    'model_version=~"$version", segment=~"$segment"}'
                )
                + " > 0",
                "step": "1m",
                "titleFormat": "{{alertname}}",
                "textFormat": "{{model}} {{model_version}} {{segment}} ({{window}}), {{severity}}",
                "useValueForTime": False,
            },
            {
                # From Prometheus's own evaluation of alerts/prometheus-rules.yaml.
                "name": "Prometheus alerts (calmon rules)",
                "enable": True,
                "iconColor": "orange",
                "datasource": DATASOURCE,
                "expr": 'ALERTS{alertstate="firing", alertname=~"Calmon.*", model=~"$model"}',
                "step": "1m",
                "titleFormat": "{{alertname}}",
                "textFormat": "{{model}} {{model_version}} {{segment}}",
                "useValueForTime": False,
            },
        ]
    }


def drilldown_annotations() -> dict[str, Any]:
    """The alerts, and the moment a recommended calibrator went live with its verdict."""
    switch = {
        # calmon's first prediction of the series version running the new calibrator,
        # as the value (seconds): Grafana places the annotation at it, not at a scrape.
        "name": "Recalibration: calibrator switch",
        "enable": True,
        "iconColor": "purple",
        "datasource": DATASOURCE,
        "expr": one(
            'calmon_recalibration_switch_timestamp_seconds{model=~"$model", '
            'segment=~"$segment", window=~"$window"}'
        )
        + " * 1000",
        "step": "1m",
        "titleFormat": "calibrator switch: recalibration {{state}}",
        "textFormat": "{{model}} {{segment}} ({{window}}): {{model_version}} now served "
        "as {{deployed_model_version}}, {{state}}",
        "useValueForTime": True,
    }
    annotations = alert_annotations()
    return {"list": [*annotations["list"], switch]}


def compaction_backlog() -> Panel:
    """Deltas waiting (left axis, with the alert's threshold) and merged per second (right)."""
    panel = timeseries(
        "Aggregate-delta backlog",
        [
            target(one("calmon_aggregate_deltas"), "waiting"),
            target(
                "sum(rate(calmon_aggregate_deltas_compacted_total[$__rate_interval]))",
                "merged/s",
                ref="B",
            ),
        ],
        description="Aggregate deltas ingest appended and compaction has not merged yet, "
        "counted after each run; right axis: deltas merged per second. A backlog that keeps "
        "growing means compaction is not keeping up, and window jobs slow down. Dashed: the "
        "shipped alert threshold 10,000 (CalmonCompactionBehind).",
        lines=((10_000, "red"),),
    )
    # A rate is not a count: the merge rate gets its own axis and no threshold line.
    panel["fieldConfig"]["overrides"] = [
        {
            "matcher": {"id": "byFrameRefID", "options": "B"},
            "properties": [
                {"id": "unit", "value": "ops"},
                {"id": "custom.axisPlacement", "value": "right"},
                {"id": "custom.thresholdsStyle", "value": {"mode": "off"}},
            ],
        }
    ]
    return panel


def overview() -> dict:  # type: ignore[type-arg]
    s = SERIES
    panels: list[tuple[Panel, int, int]] = [
        (row("Calibration (needs labels)"), 24, 1),
        (
            timeseries(
                "ECE",
                [target(one(f"calmon_ece{{{s}}}"))],
                description="Expected calibration error (equal-width bins). Dashed: the "
                "shipped alert threshold 0.05.",
                lines=((0.05, "red"),),
                decimals=3,
            ),
            12,
            8,
        ),
        (
            timeseries(
                "ACE",
                [target(one(f"calmon_ace{{{s}}}"))],
                description="Adaptive calibration error (equal-mass bins): less sensitive "
                "to sparse high-probability bins than ECE.",
                lines=((0.05, "red"),),
                decimals=3,
            ),
            12,
            8,
        ),
        (
            timeseries(
                "Brier score",
                [target(one(f"calmon_brier_score{{{s}}}"))],
                description="Mean squared error of the probability (lower is better).",
                decimals=4,
            ),
            8,
            8,
        ),
        (
            timeseries(
                "Log loss",
                [target(one(f"calmon_log_loss{{{s}}}"))],
                description="Mean log loss in nats.",
                decimals=4,
            ),
            8,
            8,
        ),
        (
            timeseries(
                "Calibration slope",
                [target(one(f"calmon_calibration_slope{{{s}}}"))],
                description="Slope of the logistic recalibration fit: 1 is calibrated, below "
                "1 over-confident, above 1 under-confident. Dashed: 0.8.",
                lines=((0.8, "orange"),),
                decimals=2,
            ),
            8,
            8,
        ),
        (row("Discrimination (needs labels)"), 24, 1),
        (
            timeseries(
                "ROC AUC",
                [target(one(f"calmon_roc_auc_score{{{s}}}"))],
                description="Ranking quality, next to calibration: if AUC holds while ECE "
                "rises, recalibrate; if AUC falls, retrain. Events in one aggregate grid cell "
                "count as tied (calmon_roc_auc_error_bound bounds the difference).",
                decimals=3,
            ),
            12,
            8,
        ),
        (
            timeseries(
                "Average precision",
                [target(one(f"calmon_average_precision_score{{{s}}}"))],
                description="Area under the precision-recall steps of the labelled events.",
                decimals=3,
            ),
            12,
            8,
        ),
        (row("Before labels (estimates that assume calibration)"), 24, 1),
        (
            timeseries(
                "Brier score: estimated and realised",
                [
                    target(
                        one(f"calmon_estimated_brier_score{{{s}}}"),
                        f"estimated {LEGEND}",
                    ),
                    target(one(f"calmon_brier_score{{{s}}}"), f"realised {LEGEND}", "B"),
                ],
                description="Estimated from all the window's probabilities, labels not "
                "needed; valid while the model is calibrated (see the gap).",
                decimals=4,
            ),
            12,
            8,
        ),
        (
            timeseries(
                "Estimate gap (realised - estimated, labelled events)",
                [
                    target(one(f"calmon_estimated_brier_score_gap{{{s}}}"), f"Brier {LEGEND}"),
                    target(one(f"calmon_estimated_roc_auc_score_gap{{{s}}}"), f"AUC {LEGEND}", "B"),
                ],
                description="Near 0 while the model is calibrated; far from 0, the "
                "estimates of the windows still waiting for labels are off by as much.",
                decimals=4,
            ),
            12,
            8,
        ),
        (row("Labels"), 24, 1),
        (
            timeseries(
                "Label coverage",
                [target(one(f"calmon_label_coverage_ratio{{{s}}}"))],
                description="Share of the window's predictions whose label has arrived.",
                unit="percentunit",
            ),
            8,
            8,
        ),
        (
            timeseries(
                "Label delay",
                [
                    target(
                        one(f"calmon_window_label_delay_seconds{{{s}}}"),
                        LEGEND + " p{{quantile}}",
                    )
                ],
                description="Median and 90th percentile of prediction-to-label delay of the "
                "window's labelled events.",
                unit="s",
            ),
            8,
            8,
        ),
        (
            timeseries(
                "Time since last label",
                [target(one(f"calmon_seconds_since_last_label{{{s}}}"))],
                description="Seconds since the newest label of the series: a stalled label "
                "feed shows here first.",
                unit="s",
            ),
            8,
            8,
        ),
        (row("Score drift (before labels arrive)"), 24, 1),
        (
            timeseries(
                "PSI",
                [target(one(f"calmon_psi{{{s}}}"), LEGEND + " {{distribution}}")],
                description="Population stability index of raw scores (the calibrator's "
                "input) and probabilities (its output) against the reference. Dashed: "
                "0.1 (moderate) and 0.25 (large shift).",
                lines=((0.1, "orange"), (0.25, "red")),
                decimals=3,
            ),
            12,
            8,
        ),
        (
            timeseries(
                "KS statistic",
                [target(one(f"calmon_ks_statistic{{{s}}}"), LEGEND + " {{distribution}}")],
                description="Largest gap between the reference and current CDFs.",
                decimals=3,
            ),
            12,
            8,
        ),
        (row("Pipeline"), 24, 1),
        (
            timeseries(
                "Events ingested",
                [
                    target(
                        "sum by (stream) (rate(calmon_ingest_messages_total[$__rate_interval]))",
                        "{{stream}}",
                    )
                ],
                description="Valid messages per second, by stream.",
                unit="ops",
            ),
            8,
            8,
        ),
        (
            timeseries(
                "Events rejected",
                [
                    target(
                        "sum by (reason) (rate(calmon_ingest_rejected_total[$__rate_interval]))",
                        "{{reason}}",
                    )
                ],
                description="Invalid messages per second, by reason (they go to the "
                "dead-letter topic).",
                unit="ops",
            ),
            8,
            8,
        ),
        (
            timeseries(
                "Consumer lag",
                [target("sum by (topic) (calmon_consumer_lag_messages)", "{{topic}}")],
                description="Messages between the consumer group's position and the end of "
                "each topic, summed over partitions.",
            ),
            8,
            8,
        ),
        (
            timeseries(
                "Window job duration (p90)",
                [
                    target(
                        "histogram_quantile(0.9, sum by (le, window) "
                        "(rate(calmon_window_job_duration_seconds_bucket[$__rate_interval])))",
                        "{{window}}",
                    )
                ],
                description="Time to evaluate every series of a window (90th percentile).",
                unit="s",
            ),
            8,
            8,
        ),
        (
            timeseries(
                "Alerts firing",
                [
                    target(
                        "sum by (alertname) "
                        f'({one("""calmon_alerts{state="firing", model=~"$model"}""")})',
                        "{{alertname}}",
                    )
                ],
                description="calmon's own alerts currently firing, by rule.",
            ),
            8,
            8,
        ),
        (
            timeseries(
                "Recalibration webhooks",
                [
                    target(
                        "sum by (webhook, outcome) "
                        "(increase(calmon_webhook_deliveries_total[$__rate_interval]))",
                        "{{webhook}} {{outcome}}",
                    )
                ],
                description="Delivery attempts by outcome (delivered, retry, dead).",
            ),
            8,
            8,
        ),
        (compaction_backlog(), 8, 8),
    ]
    return dashboard(
        "calmon-overview",
        "calmon / Overview",
        "Calibration, label flow, score drift and pipeline health of every model.",
        layout(panels),
        templating={"list": variables(multi=True)},
        annotations=alert_annotations(),
    )


def model_drilldown() -> dict:  # type: ignore[type-arg]
    s = SERIES
    reliability = {
        "type": "xychart",
        "title": "Reliability diagram (latest window)",
        "description": "Observed frequency of positives against mean predicted probability "
        "per bin. On the diagonal: calibrated; below: over-confident.",
        "datasource": DATASOURCE,
        "targets": [
            table_target(one(f"calmon_reliability_bin_mean_predicted{{{s}}}"), "A"),
            table_target(one(f"calmon_reliability_bin_observed_ratio{{{s}}}"), "B"),
        ],
        "transformations": [
            {"id": "merge", "options": {}},
            {
                "id": "organize",
                "options": {
                    "renameByName": {"Value #A": "mean predicted", "Value #B": "observed"},
                },
            },
            # The diagonal: each bin's mean predicted against itself.
            {
                "id": "calculateField",
                "options": {
                    "mode": "binary",
                    "binary": {"left": "mean predicted", "operator": "*", "right": "1"},
                    "alias": "perfectly calibrated",
                },
            },
            {"id": "sortBy", "options": {"sort": [{"field": "mean predicted"}]}},
        ],
        "fieldConfig": {
            "defaults": {"min": 0, "max": 1, "unit": "percentunit"},
            "overrides": [],
        },
        "options": {
            "mapping": "manual",
            "series": [
                {
                    "frame": {"matcher": {"id": "byIndex", "options": 0}},
                    "x": {"matcher": {"id": "byName", "options": "mean predicted"}},
                    "y": {"matcher": {"id": "byName", "options": "observed"}},
                },
                {
                    "frame": {"matcher": {"id": "byIndex", "options": 0}},
                    "x": {"matcher": {"id": "byName", "options": "mean predicted"}},
                    "y": {"matcher": {"id": "byName", "options": "perfectly calibrated"}},
                },
            ],
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "single"},
        },
    }
    bin_counts = {
        "type": "barchart",
        "title": "Labelled events per bin",
        "description": "How many labelled events each reliability bin holds: sparse bins "
        "make wide Wilson intervals.",
        "datasource": DATASOURCE,
        "targets": [table_target(one(f"calmon_reliability_bin_events{{{s}}}"), "A")],
        "transformations": [
            {"id": "organize", "options": {"renameByName": {"Value": "events"}}},
            {"id": "sortBy", "options": {"sort": [{"field": "bin"}]}},
        ],
        "options": {"xField": "bin", "legend": {"showLegend": False}},
        "fieldConfig": {"defaults": {"unit": "short"}, "overrides": []},
    }
    segment_selector = 'model=~"$model", model_version=~"$version", window=~"$window"'
    columns = {
        "A": ("ECE", one(f"calmon_ece{{{segment_selector}}}")),
        "B": ("ACE", one(f"calmon_ace{{{segment_selector}}}")),
        "C": ("Brier", one(f"calmon_brier_score{{{segment_selector}}}")),
        "D": ("labelled", one(f"calmon_window_labelled{{{segment_selector}}}")),
        "E": ("label coverage", one(f"calmon_label_coverage_ratio{{{segment_selector}}}")),
        # without (distribution): rows of every query share the same labels to merge on.
        "F": (
            "PSI raw score",
            f"max without (distribution, {TARGET_LABELS}) "
            f'(calmon_psi{{{segment_selector}, distribution="raw_score"}})',
        ),
        "G": (
            "PSI probability",
            f"max without (distribution, {TARGET_LABELS}) "
            f'(calmon_psi{{{segment_selector}, distribution="probability"}})',
        ),
        "H": ("ROC AUC", one(f"calmon_roc_auc_score{{{segment_selector}}}")),
    }
    segments = {
        "type": "table",
        "title": "Segments (latest window)",
        "description": "Every segment of the model and version side by side; sort by a "
        "column to find the segment that drifts.",
        "datasource": DATASOURCE,
        "targets": [table_target(expr, ref) for ref, (_, expr) in columns.items()],
        "transformations": [
            {"id": "merge", "options": {}},
            {
                "id": "organize",
                "options": {
                    "excludeByName": {
                        "Time": True,
                        "__name__": True,
                        "instance": True,
                        "job": True,
                    },
                    "renameByName": {f"Value #{ref}": name for ref, (name, _) in columns.items()},
                },
            },
        ],
        "fieldConfig": {
            "defaults": {"decimals": 3},
            "overrides": [
                {
                    "matcher": {"id": "byName", "options": "ECE"},
                    "properties": [
                        {"id": "custom.cellOptions", "value": {"type": "color-background"}},
                        {"id": "thresholds", "value": thresholds((0.05, "red"))},
                    ],
                },
                {
                    "matcher": {"id": "byName", "options": "labelled"},
                    "properties": [{"id": "decimals", "value": 0}],
                },
            ],
        },
        "options": {"showHeader": True, "sortBy": [{"displayName": "ECE", "desc": True}]},
    }

    def distribution_chart(distribution: str, title: str) -> Panel:
        return {
            "type": "barchart",
            "title": title,
            "description": "Share of events in each of the reference's quantile bins (PSI "
            "bins): the reference is flat by construction, drift shows as current bars "
            "moving away from it.",
            "datasource": DATASOURCE,
            "targets": [
                table_target(
                    one(f'calmon_drift_bin_fraction{{{s}, distribution="{distribution}"}}'), "A"
                )
            ],
            "transformations": [
                {
                    "id": "groupingToMatrix",
                    "options": {"columnField": "source", "rowField": "bin", "valueField": "Value"},
                },
                {"id": "organize", "options": {"renameByName": {"bin\\source": "bin"}}},
                {"id": "sortBy", "options": {"sort": [{"field": "bin"}]}},
            ],
            "options": {"xField": "bin", "legend": {"showLegend": True}},
            "fieldConfig": {"defaults": {"unit": "percentunit", "min": 0}, "overrides": []},
        }

    panels: list[tuple[Panel, int, int]] = [
        (reliability, 12, 12),
        (bin_counts, 12, 12),
        (segments, 24, 9),
        (distribution_chart("raw_score", "Raw scores: reference vs current"), 12, 9),
        (distribution_chart("probability", "Probabilities: reference vs current"), 12, 9),
        (
            timeseries(
                "ECE with 95% interval",
                [
                    target(one(f"calmon_ece{{{s}}}"), "ECE"),
                    target(one(f"calmon_ece_ci_lower{{{s}}}"), "lower", "B"),
                    target(one(f"calmon_ece_ci_upper{{{s}}}"), "upper", "C"),
                ],
                description="ECE of the selected series with its bootstrap interval.",
                lines=((0.05, "red"),),
                decimals=3,
            ),
            12,
            8,
        ),
        (
            timeseries(
                "ROC AUC with 95% interval",
                [
                    target(one(f"calmon_roc_auc_score{{{s}}}"), "ROC AUC"),
                    target(one(f"calmon_roc_auc_ci_lower{{{s}}}"), "lower", "B"),
                    target(one(f"calmon_roc_auc_ci_upper{{{s}}}"), "upper", "C"),
                ],
                description="Discrimination next to calibration: AUC holding while ECE "
                "rises means recalibrate; AUC falling means retrain (the webhook's "
                "recommendation).",
                decimals=3,
            ),
            12,
            8,
        ),
        (
            timeseries(
                "Brier score: estimated before labels, and realised",
                [
                    target(one(f"calmon_estimated_brier_score{{{s}}}"), "estimated"),
                    target(one(f"calmon_brier_score{{{s}}}"), "realised", "B"),
                ],
                description="The estimate assumes calibration and needs no labels; once "
                "labels arrive, the two should agree (calmon_estimated_brier_score_gap).",
                decimals=4,
            ),
            12,
            8,
        ),
        (
            timeseries(
                "Drift of the selected series",
                [
                    target(one(f"calmon_psi{{{s}}}"), "PSI {{distribution}}"),
                    target(one(f"calmon_ks_statistic{{{s}}}"), "KS {{distribution}}", "B"),
                ],
                description="PSI and KS of raw scores and probabilities over time.",
                lines=((0.1, "orange"), (0.25, "red")),
                decimals=3,
            ),
            12,
            8,
        ),
        (
            timeseries(
                "Drift reference and window sizes",
                [
                    target(
                        one(f"calmon_drift_reference_events{{{s}}}"), "reference {{distribution}}"
                    ),
                    target(
                        one(f"calmon_drift_window_events{{{s}}}"), "window {{distribution}}", "B"
                    ),
                ],
                description="Events drift is measured on, per distribution: those the "
                "reference was fitted on, and the window's. A reference of 0: no reference (a "
                "new version under a fixed period, nothing before a trailing window, a "
                "constant score), hence no drift values (alert CalmonDriftUnmeasured). Which "
                "reference it is: /api/v1/series.",
            ),
            24,
            6,
        ),
    ]
    single = variables(multi=False)
    return dashboard(
        "calmon-model",
        "calmon / Model drill-down",
        "One model, version, segment and window: reliability diagram, segments, and the "
        "reference versus current score distributions.",
        layout(panels),
        templating={"list": single},
        annotations=drilldown_annotations(),
    )


def class_variable() -> dict[str, Any]:
    """The classes of the chosen multi-class series (several may be shown at once)."""
    expr = f"label_values(calmon_class_psi{{{SERIES}}}, class)"
    return {
        "name": "class",
        "label": "Class",
        "type": "query",
        "datasource": DATASOURCE,
        "query": {"query": expr, "refId": "class-values", "qryType": 1},
        "definition": expr,
        "refresh": 2,
        "sort": 1,
        "multi": True,
        "includeAll": True,
        "current": {},
    }


def multiclass_drilldown() -> dict:  # type: ignore[type-arg]
    """One multi-class model: top-label and classwise calibration, then class by class."""
    s = SERIES
    c = f'{s}, class=~"$class"'
    per_class = f"{{{{class}}}} ({LEGEND})"
    columns = {
        "A": ("ECE", one(f"calmon_class_ece{{{c}}}")),
        "B": ("Brier", one(f"calmon_class_brier_score{{{c}}}")),
        "C": ("ROC AUC", one(f"calmon_class_roc_auc_score{{{c}}}")),
        "D": ("share of labels", one(f"calmon_class_observed_ratio{{{c}}}")),
        "E": ("mean probability", one(f"calmon_class_mean_predicted{{{c}}}")),
        "F": ("PSI", one(f"calmon_class_psi{{{c}}}")),
    }
    classes = {
        "type": "table",
        "title": "Classes (latest window)",
        "description": "Each class one-vs-rest: its calibration, discrimination and the "
        "drift of its probability against the reference. Sort by a column to find the "
        "class that drifts.",
        "datasource": DATASOURCE,
        "targets": [table_target(expr, ref) for ref, (_, expr) in columns.items()],
        "transformations": [
            {"id": "merge", "options": {}},
            {
                "id": "organize",
                "options": {
                    "excludeByName": {"Time": True, "__name__": True},
                    "renameByName": {f"Value #{ref}": name for ref, (name, _) in columns.items()},
                },
            },
        ],
        "fieldConfig": {
            "defaults": {"decimals": 3},
            "overrides": [
                {
                    "matcher": {"id": "byName", "options": "PSI"},
                    "properties": [
                        {"id": "custom.cellOptions", "value": {"type": "color-background"}},
                        {"id": "thresholds", "value": thresholds((0.1, "orange"), (0.25, "red"))},
                    ],
                }
            ],
        },
        "options": {"showHeader": True, "sortBy": [{"displayName": "PSI", "desc": True}]},
    }
    panels: list[tuple[Panel, int, int]] = [
        (row("The model"), 24, 1),
        (
            timeseries(
                "Top-label and classwise ECE",
                [
                    target(one(f"calmon_top_label_ece{{{s}}}"), "top-label"),
                    target(one(f"calmon_classwise_ece{{{s}}}"), "classwise", "B"),
                ],
                description="Top-label ECE: the confidence (largest class probability) "
                "against whether the top class was right. Classwise: the mean over classes "
                "of each class's one-vs-rest ECE.",
                lines=((0.05, "red"),),
                decimals=3,
            ),
            12,
            8,
        ),
        (
            timeseries(
                "Accuracy: estimated before labels, and realised",
                [
                    target(one(f"calmon_estimated_accuracy_score{{{s}}}"), "estimated"),
                    target(one(f"calmon_accuracy_score{{{s}}}"), "realised", "B"),
                    target(one(f"calmon_roc_auc_ovr_macro_score{{{s}}}"), "ROC AUC (macro)", "C"),
                ],
                description="Estimated accuracy is the mean confidence (calibration "
                "assumed, no labels needed); a realised accuracy below it is an "
                "over-confident model. ROC AUC holding while ECE rises: recalibrate.",
                decimals=3,
            ),
            12,
            8,
        ),
        (
            timeseries(
                "Brier score and log loss",
                [
                    target(one(f"calmon_multiclass_brier_score{{{s}}}"), "Brier"),
                    target(
                        one(f"calmon_estimated_multiclass_brier_score{{{s}}}"),
                        "Brier estimated",
                        "B",
                    ),
                    target(one(f"calmon_log_loss{{{s}}}"), "log loss", "C"),
                ],
                description="Multi-class Brier score (0 to 2) and log loss of the labelled "
                "events; the estimate needs no labels.",
                decimals=4,
            ),
            12,
            8,
        ),
        (
            timeseries(
                "Drift of the confidence",
                [
                    target(one(f'calmon_psi{{{s}, distribution="confidence"}}'), "PSI"),
                    target(
                        one(f'calmon_ks_statistic{{{s}, distribution="confidence"}}'), "KS", "B"
                    ),
                ],
                description="PSI and KS of the largest class probability against the reference.",
                lines=((0.1, "orange"), (0.25, "red")),
                decimals=3,
            ),
            12,
            8,
        ),
        (row("Class by class"), 24, 1),
        (classes, 24, 8),
        (
            timeseries(
                "Per-class ECE",
                [target(one(f"calmon_class_ece{{{c}}}"), per_class)],
                description="One-vs-rest ECE of each chosen class's probability.",
                lines=((0.05, "red"),),
                decimals=3,
            ),
            12,
            8,
        ),
        (
            timeseries(
                "Per-class probability drift (PSI)",
                [target(one(f"calmon_class_psi{{{c}}}"), per_class)],
                description="PSI of each chosen class's probability against the "
                "reference: a class that grows or shrinks in the traffic.",
                lines=((0.1, "orange"), (0.25, "red")),
                decimals=3,
            ),
            12,
            8,
        ),
    ]
    return dashboard(
        "calmon-multiclass",
        "calmon / Multi-class drill-down",
        "One multi-class model, version, segment and window: top-label and classwise "
        "calibration, then each class's calibration and drift (Class variable).",
        layout(panels),
        # Only the models with class probabilities.
        templating={
            "list": [*variables(multi=False, source="calmon_classwise_ece"), class_variable()]
        },
        annotations=alert_annotations(),
    )


DASHBOARDS = {
    "calmon-overview.json": overview,
    "calmon-model.json": model_drilldown,
    "calmon-multiclass.json": multiclass_drilldown,
}


def render() -> dict[str, str]:
    return {
        name: json.dumps(build(), indent=2, sort_keys=False) + "\n"
        for name, build in DASHBOARDS.items()
    }


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, text in render().items():
        (OUT / name).write_text(text)
        print(f"wrote {OUT / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
