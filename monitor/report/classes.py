"""The report's section for a multi-class series: the model's multi-class metrics in a
caption, and a table of its classes, one-vs-rest
(docs/windows-and-metrics.md#multi-class-models). Empty for a binary series."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape

from monitor.core.results import WindowResult

#: (result key, name) of the model-wide caption.
HEADLINE = (
    ("top_label_ece", "top-label ECE"),
    ("classwise_ece", "classwise ECE"),
    ("accuracy_score", "accuracy"),
    ("estimated_accuracy_score", "estimated accuracy"),
    ("multiclass_brier_score", "Brier"),
    ("log_loss", "log loss"),
    ("roc_auc_ovr_macro_score", "ROC AUC (macro)"),
    ("psi_confidence", "PSI of the confidence"),
)
#: (per-class key, column heading) of the class table.
COLUMNS = (
    ("class_ece", "ECE"),
    ("class_brier_score", "Brier"),
    ("class_roc_auc_score", "AUC"),
    ("class_observed_ratio", "share of labels"),
    ("class_mean_predicted", "mean probability"),
    ("class_psi", "PSI"),
)
#: (class name, its values), by class name.
ClassRows = tuple[tuple[str, Mapping[str, float]], ...]


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def class_rows(result: WindowResult) -> ClassRows:
    return tuple((name, found.values) for name, found in sorted(result.classes.items()))


def classes_caption(result: WindowResult) -> str:
    if not result.classes:
        return ""
    found = ", ".join(
        f"{name} {_fmt(result.values.get(key))}" for key, name in HEADLINE if key in result.values
    )
    return (
        f"{found}. The reliability diagram above is of the confidence (the largest class "
        "probability) against whether the top class was right."
    )


def class_table(rows: ClassRows, caption: str) -> str:
    """The Classes section's HTML; empty without classes."""
    if not rows:
        return ""
    heads = "".join(f"<th>{escape(title)}</th>" for _, title in COLUMNS)
    body = "".join(
        f"<tr><td>{escape(name)}</td>"
        + "".join(f"<td>{_fmt(values.get(key))}</td>" for key, _ in COLUMNS)
        + "</tr>"
        for name, values in rows
    )
    return (
        f"<h2>Classes</h2><p class='meta'>{escape(caption)}</p>"
        f"<table id='classes'><tr><th>class</th>{heads}</tr>{body}</table>"
    )
