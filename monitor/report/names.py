"""What a reader sees instead of calmon's reserved series values and metric keys.

>>> version_name("__all__"), version_name("v1+cal=2")
('all versions', 'v1, calibrator 2')
>>> segment_name("__all__"), segment_name("region=__other__"), segment_name("region=eu")
('all events', 'region: other values', 'region=eu')
"""

from __future__ import annotations

from monitor.core.series import ALL, CALIBRATOR_SEPARATOR, OTHER

METRIC_NAMES = {
    "ece": "ECE",
    "ece_debiased": "debiased ECE",
    "ace": "ACE",
    "mce": "MCE",
    "rmsce": "RMS calibration error",
    "brier_score": "Brier score",
    "log_loss": "log loss",
    "roc_auc_score": "ROC AUC",
    "average_precision_score": "average precision",
    "accuracy_score": "accuracy",
    "calibration_slope": "calibration slope",
    "estimated_brier_score": "estimated Brier score (label-free)",
    "estimated_log_loss": "estimated log loss (label-free)",
    "estimated_accuracy_score": "estimated accuracy (label-free)",
    "estimated_roc_auc_score": "estimated ROC AUC (label-free)",
    "psi_raw_score": "PSI of raw scores",
    "psi_probability": "PSI of probabilities",
    "ks_statistic_raw_score": "KS of raw scores",
    "ks_statistic_probability": "KS of probabilities",
    "calibration_cusum_over": "CUSUM, labels below p",
    "calibration_cusum_under": "CUSUM, labels above p",
    "calibration_cusum_limit": "CUSUM limit",
    "calibration_cusum_ratio": "CUSUM / limit",
}


def metric_name(key: str) -> str:
    return METRIC_NAMES.get(key, key.replace("_", " "))


def version_name(version: str) -> str:
    if version == ALL:
        return "all versions"
    model_version, sep, calibrator = version.partition(CALIBRATOR_SEPARATOR)
    return f"{model_version}, calibrator {calibrator}" if sep else version


def segment_name(segment: str) -> str:
    if segment == ALL:
        return "all events"
    key, sep, value = segment.partition("=")
    if sep and value == OTHER:
        return f"{key}: other values"
    return segment


def series_name(version: str, segment: str) -> str:
    """``v1, region=eu``; ``all versions, all events``."""
    return f"{version_name(version)}, {segment_name(segment)}"
