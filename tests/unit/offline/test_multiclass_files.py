"""Multi-class models in a file or a DataFrame (``probability.<class>`` columns, a label
naming a class): the values against scikit-learn and an event-level top-label ECE, and
bad rows rejected with the message validator's reasons, never a traceback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

from monitor import evaluate
from monitor.core.errors import UserError
from monitor.core.series import ALL
from monitor.offline.columns import file_columns, parse_renames
from monitor.offline.output import format_csv, format_json, format_table
from monitor.offline.pipeline import Source
from monitor.offline.run import evaluate_file
from monitor.settings import IngestSettings, MulticlassSettings, Settings

CLASSES = ("billing", "sales", "tech")
T0 = pd.Timestamp("2026-10-01", tz="UTC")


def triage(n: int = 3000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Events of a 3-class model, over-confident (temperature 0.7), a fifth unlabelled."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 1.5, (n, 3)) + 0.3 * np.arange(3)
    truth = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.minimum((truth.cumsum(axis=1) < rng.uniform(size=(n, 1))).sum(axis=1), 2)
    p = np.exp(logits / 0.7)
    p /= p.sum(axis=1, keepdims=True)
    labelled = np.arange(n) % 5 != 0
    frame = pd.DataFrame(
        {
            "event_id": [f"e{i}" for i in range(n)],
            "model_id": "triage",
            "model_version": "v1",
            "timestamp": T0 + pd.to_timedelta(np.arange(n) * 1000, unit="ms"),
            **{f"probability.{name}": p[:, k] for k, name in enumerate(CLASSES)},
            "label": np.where(labelled, np.array(CLASSES, dtype=object)[y], None),
        }
    )
    return frame, p[labelled], y[labelled]


def top_label_ece(p: np.ndarray, y: np.ndarray, n_bins: int = 10) -> float:
    """Top-label ECE from the events: equal-width bins of the confidence."""
    confidence = p.max(axis=1)
    hit = p.argmax(axis=1) == y
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    gaps = [abs(confidence[bins == b].sum() - hit[bins == b].sum()) for b in range(n_bins)]
    return float(np.sum(gaps) / y.size)


def test_values_match_scikit_learn_and_the_events() -> None:
    frame, p, y = triage()
    result = evaluate(frame)
    assert result.rejected == {}
    (whole,) = [r for r in result.results if r.series.model_version == ALL]
    assert (whole.predictions, whole.labelled) == (3000, len(y))
    values = whole.values
    assert values["log_loss"] == pytest.approx(log_loss(y, p, labels=range(3)), abs=1e-12)
    assert values["multiclass_brier_score"] == pytest.approx(
        brier_score_loss(y, p, labels=range(3)), abs=1e-12
    )
    assert values["accuracy_score"] == pytest.approx(np.mean(p.argmax(axis=1) == y))
    assert values["top_label_ece"] == pytest.approx(top_label_ece(p, y), abs=1e-12)
    for k, name in enumerate(CLASSES):
        found = whole.classes[name].values
        assert found["class_brier_score"] == pytest.approx(
            brier_score_loss(y == k, p[:, k]), abs=1e-12
        )
        exact = roc_auc_score(y == k, p[:, k])
        assert abs(found["class_roc_auc_score"] - exact) <= found["class_roc_auc_error_bound"]
        assert found["class_roc_auc_error_bound"] < 1e-3
    assert values["roc_auc_ovr_macro_score"] == pytest.approx(
        roc_auc_score(y, p, multi_class="ovr", average="macro"), abs=1e-3
    )


def test_summary_has_a_class_column_and_a_row_per_class() -> None:
    frame, p, y = triage(1200, seed=1)
    summary = evaluate(frame).summary()
    rows = summary[summary.model_version == "v1"]
    assert rows["class"].isna().tolist() == [True, False, False, False]
    assert list(rows["class"].iloc[1:]) == list(CLASSES)
    series_row, tech = rows.iloc[0], rows.iloc[3]
    assert series_row.top_label_ece == pytest.approx(top_label_ece(p, y), abs=1e-12)
    assert np.isnan(series_row.class_brier_score) and np.isnan(tech.top_label_ece)
    assert tech.class_brier_score == pytest.approx(brier_score_loss(y == 2, p[:, 2]))
    bins = evaluate(frame).reliability(class_name="sales")
    assert bins["count"].sum() == len(y)


def test_integer_labels_name_classes_by_their_text() -> None:
    frame, p, y = triage(1000, seed=2)
    numbered = frame.rename(
        columns={f"probability.{n}": f"probability.{k}" for k, n in enumerate(CLASSES)}
    )
    # pandas keeps integers next to missing values as floats: 0.0, 1.0, NaN
    numbered["label"] = numbered["label"].map({n: k for k, n in enumerate(CLASSES)})
    assert numbered["label"].dtype == float
    result = evaluate(numbered)
    assert result.rejected == {}
    whole = result.results[0]
    assert sorted(whole.classes) == ["0", "1", "2"]
    assert whole.values["log_loss"] == pytest.approx(log_loss(y, p, labels=range(3)), abs=1e-12)


def _bad(frame: pd.DataFrame) -> pd.DataFrame:
    bad = frame.head(20).copy()
    bad.loc[1, "probability.sales"] = None  # a class left out: the rest sums to < 1
    bad.loc[2, ["probability.billing", "probability.sales"]] = [0.7, 0.5]  # sums to > 1
    bad.loc[3, "label"] = "refunds"  # not a class of the row
    bad.loc[4, "probability.tech"] = 1.4
    bad.loc[5, "probability.tech"] = float("nan")  # pandas' missing value: as row 1
    bad.loc[6, ["probability.billing", "probability.sales"]] = [None, None]  # one class
    bad.loc[7, "label"] = "x" * 200  # not a class name the validator takes
    return bad


EXPECTED = {
    2: ("probabilities_sum", "prediction"),
    3: ("probabilities_sum", "prediction"),
    4: ("unknown_class", "label"),
    5: ("bad_probabilities", "prediction"),
    6: ("probabilities_sum", "prediction"),
    7: ("bad_probabilities", "prediction"),
    8: ("bad_label", "label"),
}


def test_bad_rows_get_the_validators_reasons() -> None:
    frame, _, _ = triage(100)
    result = evaluate(_bad(frame), min_labelled=1, min_predictions=1)
    found = {r.row: (r.reason, r.part) for r in result.rejects}
    assert found == EXPECTED
    details = {r.row: r.detail for r in result.rejects}
    assert "more than 0.01 from 1" in details[2]
    assert "'refunds' is not a class" in details[4]
    # the rows whose label was bad keep their prediction
    assert result.results[0].predictions == 20 - 5


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_files_reject_the_same_rows(tmp_path: Path, suffix: str) -> None:
    frame, _, _ = triage(100)
    path = tmp_path / f"bad{suffix}"
    bad = _bad(frame)
    if suffix == ".csv":
        bad.to_csv(path, index=False)
    else:
        bad.to_parquet(path)
    read = evaluate_file(Source(path, file_columns({}, ())), Settings()).read
    assert {r.row: (r.reason, r.part) for r in read.first_rejects} == EXPECTED


def test_configured_classes_and_a_binary_row(tmp_path: Path) -> None:
    frame, _, _ = triage(50)
    frame.loc[0, "probability.tech"] = None
    frame.loc[0, ["probability.billing", "probability.sales"]] = [0.5, 0.5]
    frame.loc[1, ["probability.billing", "probability.sales", "probability.tech"]] = None
    frame["probability"] = np.where(np.arange(50) == 1, 0.4, np.nan)  # a binary row
    configured = Settings(
        ingest=IngestSettings(multiclass=MulticlassSettings(classes={"triage": list(CLASSES)}))
    )
    result = evaluate(frame, settings=configured)
    found = {r.row: r.reason for r in result.rejects}
    assert found == {1: "missing_class", 2: "kind_mismatch"}
    # Not configured: a vector that leaves a class out is valid, as in a message.
    assert [(r.row, r.reason) for r in evaluate(frame).rejects] == [(2, "bad_probabilities")]


def test_json_lines_take_the_messages_probabilities_object(tmp_path: Path) -> None:
    path = tmp_path / "triage.jsonl"
    lines = [
        '{"event_id": "a", "model_id": "m", "model_version": "v1", "timestamp": 1790000000000,'
        ' "probabilities": {"x": 0.7, "y": 0.3}, "label": "x"}',
        '{"event_id": "b", "model_id": "m", "model_version": "v1", "timestamp": 1790000001000,'
        ' "probability.x": 0.2, "probability.y": 0.8, "label": "y"}',
        '{"event_id": "c", "model_id": "m", "model_version": "v1", "timestamp": 1790000002000,'
        ' "probabilities": {"x": 0.2, "y": 0.8}, "label": "z"}',
    ]
    path.write_text("\n".join(lines) + "\n")
    evaluation = evaluate_file(Source(path, file_columns({}, ())), Settings())
    assert [(r.row, r.reason) for r in evaluation.read.first_rejects] == [(3, "unknown_class")]
    whole = evaluation.results[0]
    assert (whole.predictions, whole.labelled) == (3, 2)
    assert sorted(whole.classes) == ["x", "y"]


def test_outputs_name_the_classes() -> None:
    frame, _, _ = triage(600, seed=3)
    results = evaluate(frame).results
    table = format_table(results)
    assert "top_label_ece" in table and "Per class (one-vs-rest):" in table
    assert "tech" in table.split("Per class")[1]
    lines = format_csv(results).splitlines()
    header = lines[0].split(",")
    assert header[3] == "class" and "class_brier_score" in header
    assert [line.split(",")[3] for line in lines[1:5]] == ["", *CLASSES]
    import json

    first = json.loads(format_json(results, {}))["results"][0]
    assert set(first["classes"]) == set(CLASSES)
    assert first["classes"]["sales"]["reliability_bins"]


def test_a_repeated_event_is_merged_as_the_store_merges_it() -> None:
    frame, _, _ = triage(300, seed=4)
    # e0 again, later, with its label: the store keeps the first row's probabilities
    # and joins the label; e1 again with other probabilities: the first ones stay.
    again = frame.iloc[[0, 1]].copy()
    again["label"] = ["tech", None]
    again.loc[again.index[1], [f"probability.{c}" for c in CLASSES]] = [0.0, 0.0, 1.0]
    merged = evaluate(pd.concat([frame.assign(label=None).iloc[:2], frame.iloc[2:], again]))
    once = frame.copy()
    once.loc[0, "label"], once.loc[1, "label"] = "tech", None
    assert merged.repeats == 2
    a = next(r for r in merged.results if r.series.model_version == "v1")
    b = next(r for r in evaluate(once).results if r.series.model_version == "v1")
    assert (a.predictions, a.labelled) == (b.predictions, b.labelled) == (300, b.labelled)
    assert a.values["log_loss"] == pytest.approx(b.values["log_loss"], rel=1e-12)


def test_every_period_drifts_against_the_one_before() -> None:
    frame, _, _ = triage(6000, seed=5)
    frame["timestamp"] = T0 + pd.to_timedelta(np.arange(6000) * 28_800, unit="ms")  # 2 days
    later = frame.timestamp >= T0 + pd.Timedelta(days=1)
    shifted = frame.loc[later, [f"probability.{c}" for c in CLASSES]].to_numpy() ** [1, 1, 0.3]
    frame.loc[later, [f"probability.{c}" for c in CLASSES]] = shifted / shifted.sum(
        axis=1, keepdims=True
    )
    summary = evaluate(frame, every="1d").summary()
    rows = summary[summary.model_version == "v1"].set_index(["window_start", "class"])
    day_2 = T0 + pd.Timedelta(days=1)
    assert rows.loc[(day_2, "tech"), "class_psi"] > 0.2  # tech's probability rose
    assert rows.loc[(day_2, "billing"), "class_psi"] > 0.0
    assert np.isnan(rows.loc[(T0, "tech"), "class_psi"])  # nothing before the first day


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_class_columns_of_other_names_are_mapped(tmp_path: Path, suffix: str) -> None:
    frame, p, y = triage(800, seed=6)
    named = {f"probability.{c}": f"p_{c}" for c in CLASSES} | {"label": "truth"}
    renamed = frame.rename(columns=named)
    path = tmp_path / f"mapped{suffix}"
    if suffix == ".csv":
        renamed.to_csv(path, index=False)
    else:
        renamed.to_parquet(path)
    renames = parse_renames([f"{name}={column}" for name, column in named.items()])
    evaluation = evaluate_file(Source(path, file_columns(renames, ())), Settings())
    by_api = evaluate(renamed, columns=named)
    for whole in (evaluation.results[0], by_api.results[0]):
        assert sorted(whole.classes) == list(CLASSES)
        assert whole.values["log_loss"] == pytest.approx(log_loss(y, p), abs=1e-12)
    with pytest.raises(UserError, match=r"nor probability\.<class>"):
        parse_renames(["probabilities=p"])


def test_a_lone_class_column_leaves_a_binary_file_binary() -> None:
    rng = np.random.default_rng(7)
    p = rng.uniform(0.05, 0.95, 500)
    frame = pd.DataFrame(
        {"probability": p, "label": (rng.uniform(size=500) < p).astype(int), "probability.raw": p}
    )
    result = evaluate(frame)
    assert result.rejected == {} and result.results[0].classes == {}
    assert result.results[0].values["brier_score"] == pytest.approx(
        brier_score_loss(frame.label, p)
    )
