"""Every metric a window result can carry, with its help text: the one list the
exporter (``calmon_<key>``), the rule validator and the metric table in docs/operations.md follow.

Keys are the Prometheus names without the ``calmon_`` prefix. Drift metrics carry the
distribution as a suffix in a result (``psi_raw_score``) and as a label in Prometheus.
"""

from __future__ import annotations

from monitor.metrics.drift import DISTRIBUTIONS

#: Calibration, on the window's labelled events (need ``evaluation.min_labelled``).
LABELLED = {
    "ece": "Expected calibration error (equal-width bins) of labelled events in the window.",
    "ece_noise_floor": "Expected ECE of a perfectly calibrated model with the window's bin "
    "counts and probabilities: the part of ECE that sampling noise explains.",
    "ece_debiased": "ECE minus its noise floor: unbiased (0) for a calibrated model at any "
    "window size, so one threshold fits small and large segments.",
    "ace": "Adaptive calibration error (equal-mass bins).",
    "mce": "Maximum calibration error over occupied bins.",
    "rmsce": "Root-mean-square calibration error.",
    "brier_score": "Brier score (mean squared error of the probability).",
    "brier_reliability": "Reliability term of the Murphy decomposition of the Brier score.",
    "brier_resolution": "Resolution term of the Murphy decomposition.",
    "brier_uncertainty": "Uncertainty term (base rate x (1 - base rate)).",
    "brier_skill_score": "1 - Brier / uncertainty: skill over predicting the prevalence.",
    "log_loss": "Mean log loss in nats (p clipped to [1e-15, 1 - 1e-15]; multi-class: mean "
    "-log p of the label's class).",
    "calibration_slope": "Slope of the logistic recalibration fit on logit(p); 1 is calibrated.",
    "calibration_intercept": "Intercept of the logistic recalibration fit; 0 is calibrated.",
    "calibration_in_the_large": "Mean p minus mean label (positive: over-predicting).",
    "observed_expected_ratio": "Observed positives / expected positives (sum of p).",
    "spiegelhalter_pvalue": "Two-sided p-value of Spiegelhalter's Z test of calibration.",
    "ece_ci_lower": "Lower end of the 95% bootstrap interval of ECE.",
    "ece_ci_upper": "Upper end of the 95% bootstrap interval of ECE.",
    "accuracy_score": "Share of labelled events on the right side of p = 0.5 (multi-class: "
    "whose top class is the label).",
    "roc_auc_score": "ROC AUC of the labelled events (events in one aggregate grid cell "
    "count as tied).",
    "roc_auc_error_bound": "Largest possible distance of roc_auc_score to the events' exact "
    "ROC AUC (pairs tied inside a grid cell).",
    "roc_auc_ci_lower": "Lower end of the 95% interval of ROC AUC (DeLong, widened by "
    "roc_auc_error_bound).",
    "roc_auc_ci_upper": "Upper end of the 95% interval of ROC AUC.",
    "average_precision_score": "Average precision (area under the precision-recall steps) "
    "of the labelled events.",
    "average_precision_error_bound": "Largest possible distance of average_precision_score "
    "to the events' exact average precision.",
}
#: A multi-class series, on its labelled events (need ``evaluation.min_labelled``); it
#: also carries ``log_loss``, ``accuracy_score`` and their estimates, and the drift of
#: its confidence (distribution ``confidence``).
MULTICLASS = {
    "top_label_ece": "Multi-class: ECE of the confidence (largest class probability) "
    "against whether the top class was right.",
    "top_label_mce": "Multi-class: maximum calibration error of the confidence.",
    "classwise_ece": "Multi-class: mean over classes of the one-vs-rest ECE of p_k "
    "(Kull et al. 2019).",
    "multiclass_brier_score": "Multi-class: mean of sum_k (p_k - y_k)^2 (0 to 2).",
    "roc_auc_ovr_macro_score": "Multi-class: mean of the classes' one-vs-rest ROC AUC "
    "(classes without a positive or a negative left out).",
    "roc_auc_ovr_macro_error_bound": "Multi-class: bound on the distance of "
    "roc_auc_ovr_macro_score to the events' exact value (ties inside a cell).",
}
#: Per class of a multi-class series, exported with a ``class`` label; rules on them
#: test the class furthest past the threshold (``rules/model.py``).
CLASS_LABELLED = {
    "class_ece": "One-vs-rest ECE of the class's probability (labelled events).",
    "class_brier_score": "Brier score of the class's probability against 1[label = class].",
    "class_observed_ratio": "Share of labelled events whose label is the class.",
    "class_mean_predicted": "Mean probability of the class over the labelled events.",
    "class_roc_auc_score": "One-vs-rest ROC AUC of the class's probability.",
    "class_roc_auc_error_bound": "Bound on the distance of class_roc_auc_score to the "
    "events' exact value.",
}
#: Label-free estimates from all the window's probabilities, assuming calibration (need
#: ``evaluation.min_predictions``).
ESTIMATED = {
    "estimated_brier_score": "Brier score expected if the model is calibrated, from the "
    "probabilities of all the window's predictions (labels not needed).",
    "estimated_log_loss": "Log loss expected if the model is calibrated (labels not needed).",
    "estimated_accuracy_score": "Accuracy at p = 0.5 expected if the model is calibrated "
    "(labels not needed).",
    "estimated_roc_auc_score": "ROC AUC expected if the model is calibrated (CBPE; labels "
    "not needed).",
}
MULTICLASS_ESTIMATED = {
    "estimated_multiclass_brier_score": "Multi-class: Brier score expected if the model is "
    "calibrated (mean 1 - sum_k p_k^2 over all predictions; labels not needed).",
}
#: Realised minus estimated on the labelled events (need ``evaluation.min_labelled``):
#: far from 0, the calibration assumption of the estimates failed.
ESTIMATE_GAPS = {
    f"{key}_gap": f"Realised minus estimated {key.removeprefix('estimated_')} on the "
    "window's labelled events: far from 0 means the estimates' calibration assumption failed."
    for key in ESTIMATED
}
#: The sequential detector (``evaluation.sequential``), on the labelled buckets of its
#: lookback, whatever their count; a rule of ``kind: sequential`` tests the ratio.
SEQUENTIAL = {
    "calibration_cusum_under": "CUSUM of the per-bucket standardised residual sum(y-p)/"
    "sqrt(sum p(1-p)): evidence that labels run above the probabilities.",
    "calibration_cusum_over": "CUSUM evidence that labels run below the probabilities.",
    "calibration_cusum_limit": "Decision limit of the CUSUM for evaluation.sequential.arl "
    "evaluations between false alarms on a calibrated model.",
    "calibration_cusum_ratio": "The larger CUSUM over its limit: 1 or more is an alarm.",
}
#: Metrics a rule may threshold from the reference (``threshold: {from_reference: 3 sigma}``);
#: their spread over reference chunks is exported only for metrics such rules use.
REFERENCE_THRESHOLD_METRICS = (
    "ece",
    "ece_debiased",
    "ace",
    "mce",
    "rmsce",
    "brier_score",
    "log_loss",
)
REFERENCE_STATISTICS = {
    "reference_chunks": "Reference chunks of the window's length with enough labels, for "
    "thresholds from the reference (fewer than 5: no threshold).",
}
for _metric in REFERENCE_THRESHOLD_METRICS:
    REFERENCE_STATISTICS[f"{_metric}_reference_mean"] = (
        f"Mean of {_metric} over the reference chunks."
    )
    REFERENCE_STATISTICS[f"{_metric}_reference_sd"] = (
        f"Sample standard deviation of {_metric} over the reference chunks."
    )
#: Volume and freshness, always present.
VOLUME = {
    "window_predictions": "Predictions in the window (by prediction time).",
    "window_labelled": "Predictions in the window whose label has arrived.",
    "label_coverage_ratio": "Labelled / predictions in the window.",
    "seconds_since_last_prediction": "Seconds since the newest prediction of the series.",
    "seconds_since_last_label": "Seconds since the newest label of the series.",
}
#: Drift against the reference, per distribution (need ``evaluation.min_predictions``).
DRIFT = {
    "psi": "Population stability index against the reference (reference-quantile bins).",
    "ks_statistic": "Two-sample Kolmogorov-Smirnov statistic against the reference.",
    "ks_pvalue": "Asymptotic p-value of the KS test against the reference.",
    "js_distance": "Jensen-Shannon distance (base 2) against the reference.",
    "wasserstein_distance": "Wasserstein-1 distance to the reference.",
    # From aggregates KS and Wasserstein are computed on grid cells; their largest
    # difference to the values on the events themselves (monitor/metrics/drift.py).
    "ks_error_bound": "How far the KS statistic (evaluated on grid cells) can be below "
    "the KS statistic of the events themselves; it is never above it.",
    "wasserstein_error_bound": "Largest difference between the Wasserstein-1 distance "
    "(on grid cells' representative values) and that of the events themselves.",
}
#: What drift is measured on, per distribution, always present (the reference's count only
#: in series that have a reference: not a segment's ``__other__``). Together they tell
#: "no drift value because too few events" from "no drift value because no reference".
DRIFT_VOLUME = {
    "drift_window_events": "Events in the window that carry the distribution (a raw score, "
    "or a probability); drift values need evaluation.min_predictions of them.",
    "drift_reference_events": "Events the drift reference was fitted on (0: too few, or one "
    "distinct value, to fit one, so the series has no drift values for that distribution).",
}
#: Label-delay quantile -> result key (exported as one gauge with a ``quantile`` label).
LABEL_DELAY_QUANTILES = {
    0.5: "window_label_delay_seconds_p50",
    0.9: "window_label_delay_seconds_p90",
}


#: The ``distribution`` of a multi-class series' confidence (max_k p_k) in drift keys.
CONFIDENCE = "confidence"
#: Drift of each class's probability against the reference, per class.
CLASS_DRIFT = {
    f"class_{name}": f"Drift of the class's probability: {text[0].lower()}{text[1:]}"
    for name, text in DRIFT.items()
}
#: Every per-class key (``WindowResult.classes``).
CLASS_METRICS = {**CLASS_LABELLED, **CLASS_DRIFT}


def drift_key(metric: str, distribution: str) -> str:
    return f"{metric}_{distribution}"


DRIFT_DISTRIBUTIONS = (*DISTRIBUTIONS, CONFIDENCE)
DRIFT_KEYS = frozenset(
    drift_key(m, d) for m in (*DRIFT, *DRIFT_VOLUME) for d in DRIFT_DISTRIBUTIONS
)
#: Keys only a multi-class series carries.
MULTICLASS_ONLY_KEYS = (
    frozenset(MULTICLASS)
    | frozenset(MULTICLASS_ESTIMATED)
    | frozenset(drift_key(m, CONFIDENCE) for m in (*DRIFT, *DRIFT_VOLUME))
)
ALL_KEYS = (
    frozenset(LABELLED)
    | frozenset(MULTICLASS)
    | frozenset(MULTICLASS_ESTIMATED)
    | frozenset(ESTIMATED)
    | frozenset(ESTIMATE_GAPS)
    | frozenset(SEQUENTIAL)
    | frozenset(REFERENCE_STATISTICS)
    | frozenset(VOLUME)
    | DRIFT_KEYS
    | set(LABEL_DELAY_QUANTILES.values())
)
