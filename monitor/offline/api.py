"""The Python API for notebooks: ``monitor.evaluate(df)``, the metrics of a DataFrame.

>>> import numpy as np, pandas as pd
>>> from monitor import evaluate
>>> rng = np.random.default_rng(0)
>>> p = rng.uniform(0.05, 0.95, 2000)
>>> y = (rng.uniform(size=2000) < p).astype(int)
>>> result = evaluate(pd.DataFrame({"probability": p, "label": y}))
>>> row = result.summary().iloc[0]
>>> int(row.labelled), round(float(row.brier_score), 3)
(2000, 0.184)
>>> result.reliability()[["bin", "count"]].head(2).to_dict("list")
{'bin': [0, 1], 'count': [121, 218]}

The DataFrame has the columns of a file for ``calmon evaluate`` (docs/python-api.md); all
but a probability or raw score may be left out: an event id is then the row number, the
model ``model``, the version ``v1`` and the time a fixed instant (one window).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from monitor.core.results import ReliabilityBin, WindowResult
from monitor.core.series import ALL
from monitor.offline.accumulate import Accumulator
from monitor.offline.checks import Reject, check_chunk
from monitor.offline.class_columns import class_columns
from monitor.offline.columns import BadFile
from monitor.offline.evaluation import Reference, evaluate_series
from monitor.offline.events import Events
from monitor.offline.output import class_metric_order, has_classes, metric_order
from monitor.offline.pipeline import Targets, add_merging_repeats
from monitor.offline.read import ROWS_PER_CHUNK, Chunk
from monitor.offline.recalibration import recalibration
from monitor.offline.run import detector_bucket_ms
from monitor.report.from_results import shown
from monitor.settings import EvaluationSettings, Settings, parse_duration
from monitor.windows.metric_names import CONFIDENCE, drift_key

#: The time of every event of a DataFrame without a ``timestamp`` column.
FIXED_TIME_MS = 1_767_225_600_000  # 2026-01-01T00:00Z
DEFAULTS = {"model_id": "model", "model_version": "v1"}


@dataclass
class Evaluation:
    """What :func:`evaluate` found: one :class:`WindowResult` per series and window."""

    results: list[WindowResult]
    #: Rejected rows by reason (the message validator's reasons), and each of them.
    rejected: dict[str, int] = field(default_factory=dict)
    rejects: list[Reject] = field(default_factory=list)
    #: Rows that repeat an earlier row's ``model_id`` and ``event_id``: merged into it
    #: as the store merges them (docs/evaluate.md).
    repeats: int = 0
    #: The recalibration recommended for the series :meth:`report` shows (the whole
    #: model, the latest window), as the daemon's webhook carries it
    #: (docs/recalibration.md): ``status`` ``recommended`` with the artifact under
    #: ``recommended``, or ``unavailable`` with the ``reason``. None: no results.
    recalibration: dict[str, Any] | None = None

    def summary(self) -> pd.DataFrame:
        """One row per series and window: its keys, counts and every metric (NaN: not
        computed, too few events or no reference). With multi-class series, a ``class``
        column: each such series' row (``class`` None) is followed by one row per class
        with its one-vs-rest values (``class_ece``, ``class_brier_score``...)."""
        keys = metric_order()
        classes = has_classes(self.results)
        class_keys = class_metric_order() if classes else []
        rows = []
        for r in self.results:
            series = {
                "model_id": r.series.model,
                "model_version": r.series.model_version,
                "segment": r.series.segment,
                **({"class": None} if classes else {}),
                "window_start": r.window_start,
                "window_end": r.window_end,
                "predictions": r.predictions,
                "labelled": r.labelled,
            }
            rows.append({**series, **{k: r.values.get(k, np.nan) for k in keys}})
            for name, found in sorted(r.classes.items()):
                per_class = {k: found.values.get(k, np.nan) for k in class_keys}
                rows.append({**series, "class": name, **per_class})
        frame = pd.DataFrame(rows)
        measured = [*keys, *class_keys]
        present = [k for k in measured if k in frame and frame[k].notna().any()]
        first = 8 if classes else 7
        return frame[[*frame.columns[:first], *present]] if rows else frame

    def reliability(
        self, segment: str = ALL, model_version: str = ALL, class_name: str | None = None
    ) -> pd.DataFrame:
        """The reliability diagram's occupied bins of one series (default: the whole
        model), one row per bin and window, with Wilson 95% intervals. A multi-class
        series' diagram is of its confidence (the top class); ``class_name``: of that
        class's probability, one-vs-rest."""
        return pd.DataFrame(
            [
                {
                    "model_id": r.series.model,
                    "window_start": r.window_start,
                    "bin": b.index,
                    "lower": b.lower,
                    "upper": b.upper,
                    "count": b.count,
                    "mean_predicted": b.mean_predicted,
                    "observed_ratio": b.observed_ratio,
                    "ci_low": b.ci_low,
                    "ci_high": b.ci_high,
                }
                for r in self._series(segment, model_version)
                for b in _bins(r, class_name)
            ]
        )

    def drift(self, segment: str = ALL, model_version: str = ALL) -> pd.DataFrame:
        """The drift values of one series against the reference, one row per
        distribution and window (PSI, KS, Jensen-Shannon, Wasserstein); a multi-class
        series' distribution is its confidence (the largest class probability)."""
        rows = []
        for r in self._series(segment, model_version):
            # Every multi-class series counts the events its confidence's drift is on.
            multiclass = drift_key("drift_window_events", CONFIDENCE) in r.values
            for distribution in (CONFIDENCE,) if multiclass else ("raw_score", "probability"):
                values = {
                    name: r.values.get(f"{name}_{distribution}", np.nan)
                    for name in (
                        "psi",
                        "ks_statistic",
                        "ks_pvalue",
                        "js_distance",
                        "wasserstein_distance",
                    )
                }
                rows.append(
                    {
                        "model_id": r.series.model,
                        "window_start": r.window_start,
                        "distribution": distribution,
                        **values,
                    }
                )
        return pd.DataFrame(rows)

    def report(self, path: str | Path, title: str = "DataFrame") -> Path:
        """Write the report ``calmon evaluate --report`` writes: HTML, or a PNG image
        when ``path`` ends in ``.png``."""
        from monitor.report import html
        from monitor.report.build import report_from_results

        target = Path(path)
        report = report_from_results(title, self.results, recalibration=self.recalibration)
        if target.suffix.lower() == ".png":
            from monitor.report.png import write_png

            write_png(report, target)
        else:
            target.write_text(html.render(report), encoding="utf-8")
        return target

    def _series(self, segment: str, model_version: str) -> list[WindowResult]:
        versions = {r.series.model_version for r in self.results}
        version = model_version if model_version in versions else sorted(versions)[0]
        return [
            r
            for r in self.results
            if r.series.segment == segment and r.series.model_version == version
        ]

    def _repr_html_(self) -> str:
        """Jupyter: the main columns of the summary."""
        shown = ["model_id", "model_version", "segment", "class", "predictions", "labelled"]
        shown += ["ece", "ece_ci_upper", "brier_score", "log_loss", "psi_raw_score"]
        shown += ["top_label_ece", "classwise_ece", "multiclass_brier_score", "accuracy_score"]
        shown += ["class_ece", "class_brier_score", "class_roc_auc_score"]
        frame = self.summary()
        table = frame[[c for c in shown if c in frame]].to_html(index=False, na_rep="-")
        rejected = f"<p>{sum(self.rejected.values()):,} rows rejected: {self.rejected}</p>"
        return table + (rejected if self.rejected else "")


def _bins(result: WindowResult, class_name: str | None) -> tuple[ReliabilityBin, ...]:
    if class_name is None:
        return result.reliability_bins
    found = result.classes.get(class_name)
    return () if found is None else found.reliability_bins


def evaluate(
    data: pd.DataFrame | None = None,
    *,
    probability: Sequence[float] | np.ndarray | None = None,
    label: Sequence[float] | np.ndarray | None = None,
    raw_score: Sequence[float] | np.ndarray | None = None,
    columns: Mapping[str, str] | None = None,
    segment_keys: Sequence[str] = (),
    every: str | float | None = None,
    reference: pd.DataFrame | None = None,
    settings: Settings | None = None,
    **evaluation: Any,
) -> Evaluation:
    """Every window metric of a DataFrame of predictions, as the daemon computes them.

    Parameters
    ----------
    data : DataFrame, optional
        One row per event, with the columns of docs/evaluate.md. Or give the arrays
        ``probability``, ``label`` and ``raw_score`` instead.
    columns : mapping, optional
        calmon's name -> the DataFrame's column, e.g. ``{"probability": "pred"}``.
    segment_keys : sequence of str
        Columns that are segment attributes: a series per value.
    every : str or float, optional
        One window per period (``"1d"``, seconds), aligned on the epoch.
    reference : DataFrame, optional
        The drift reference, like ``data``.
    settings : Settings, optional
        The config (``monitor.settings.load_settings``); keyword arguments override its
        ``evaluation`` section: ``n_bins=20``, ``min_labelled=50``...

    Raises
    ------
    monitor.core.errors.UserError
        A missing column or a column of the wrong type, naming it. Bad rows are not
        raised: they are counted in ``Evaluation.rejected`` as ``calmon evaluate``
        counts them.
    """
    frame = _frame(data, probability=probability, label=label, raw_score=raw_score)
    base = settings or Settings()
    config = (
        base.model_copy(update={"evaluation": base.evaluation.model_copy(update=evaluation)})
        if evaluation
        else base
    )
    EvaluationSettings.model_validate(config.evaluation.model_dump())  # named errors
    keys = tuple(segment_keys)
    every_ms = None if every is None else int(parse_duration(every) * 1000)
    # Without timestamps every event is at one instant: no time split to keep slices for
    # (the recommendation says so, ``offline/recalibration.py``).
    timed = (columns or {}).get("timestamp", "timestamp") in frame.columns
    current = _accumulator(keys, config, every_ms, slices=timed)
    rejects: list[Reject] = []

    def pieces(again: bool) -> Iterator[Events]:
        for chunk in _chunks(frame, columns or {}, keys):
            events, found = check_chunk(
                chunk, keys, source="the DataFrame", multiclass=config.ingest.multiclass
            )
            if not again:  # the rows are checked again only to merge repeated events
                rejects.extend(found)
            yield events

    repeats = add_merging_repeats(pieces, Targets(current))
    fitted = None
    if reference is not None:
        # A reference without a segment column fits the whole model's series only.
        ref_frame = _frame(reference).rename(columns={c: n for n, c in (columns or {}).items()})
        ref_keys = tuple(k for k in keys if k in ref_frame.columns)
        accumulator = _accumulator(ref_keys, config, None)

        def reference_pieces(again: bool) -> Iterator[Events]:
            for chunk in _chunks(ref_frame, {}, ref_keys):
                yield check_chunk(
                    chunk, ref_keys, source="the reference", multiclass=config.ingest.multiclass
                )[0]

        add_merging_repeats(reference_pieces, Targets(accumulator))
        if accumulator.first_ms is None or accumulator.last_ms is None:
            raise BadFile("the reference has no valid rows")
        fitted = Reference("file", accumulator, accumulator.first_ms, accumulator.last_ms + 1)
    window = "file" if every is None else str(every)
    results = evaluate_series(
        current,
        settings=config.evaluation,
        window=window,
        every_ms=every_ms,
        psi_bins=config.reference.psi_bins,
        reference=fitted,
    )
    counts: dict[str, int] = {}
    for reject in rejects:
        counts[reject.reason] = counts.get(reject.reason, 0) + 1
    fitted_recalibration = (
        recalibration(current, shown(results).main, every_ms=every_ms, settings=config.evaluation)
        if results
        else None
    )
    return Evaluation(results, counts, rejects, repeats, fitted_recalibration)


def _accumulator(
    keys: tuple[str, ...], settings: Settings, every_ms: int | None, *, slices: bool = False
) -> Accumulator:
    return Accumulator(
        keys,
        all_versions=settings.evaluation.all_versions,
        every_ms=every_ms,
        label_horizon_ms=int(settings.ingest.label_horizon * 1000),
        residual_bucket_ms=detector_bucket_ms(every_ms, settings),
        slices=slices,
    )


def _frame(
    data: pd.DataFrame | None,
    *,
    probability: Any = None,
    label: Any = None,
    raw_score: Any = None,
) -> pd.DataFrame:
    if data is not None:
        if not isinstance(data, pd.DataFrame):
            raise BadFile(f"data must be a pandas DataFrame, got {type(data).__name__}")
        return data
    given = {
        name: np.asarray(values)
        for name, values in (
            ("probability", probability),
            ("label", label),
            ("raw_score", raw_score),
        )
        if values is not None
    }
    if "probability" not in given and "raw_score" not in given:
        raise BadFile("give a DataFrame, or the arrays probability (and label) or raw_score")
    return pd.DataFrame(given)


def _chunks(
    frame: pd.DataFrame, columns: Mapping[str, str], keys: tuple[str, ...]
) -> Iterator[Chunk]:
    by_column = {column: name for name, column in columns.items()}
    renamed = frame.rename(columns=by_column)
    n = len(renamed)
    if n == 0:
        raise BadFile("the DataFrame has no rows")
    for start in range(0, n, ROWS_PER_CHUNK):
        part = renamed.iloc[start : start + ROWS_PER_CHUNK]
        table = pa.Table.from_pandas(part, preserve_index=False)
        if "event_id" not in table.column_names:
            # Integers: read as their decimal text, as in a file, without a string each.
            table = table.append_column("event_id", pa.array(np.arange(start, start + len(part))))
        for name, value in DEFAULTS.items():
            if name not in table.column_names:
                codes = pa.array(np.zeros(len(part), dtype=np.int32))
                table = table.append_column(
                    name, pa.DictionaryArray.from_arrays(codes, pa.array([value]))
                )
        if "timestamp" not in table.column_names:
            table = table.append_column("timestamp", pa.array(np.full(len(part), FIXED_TIME_MS)))
        if not (
            "raw_score" in table.column_names
            or "probability" in table.column_names
            or class_columns(table.column_names)
        ):
            have = ", ".join(map(str, frame.columns))
            raise BadFile(
                "no probability or raw_score column, nor probability.<class> columns "
                f"(the DataFrame has: {have})"
            )
        yield Chunk(start + 1, table=table)
