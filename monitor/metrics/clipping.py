"""Logarithms of probabilities, clipped so that p = 0 or 1 gives a finite value."""

from __future__ import annotations

import numpy as np

from monitor.metrics.validation import FloatArray

#: Probabilities are clipped to [LOG_LOSS_EPS, 1 - LOG_LOSS_EPS] before taking logs, so a
#: confident mistake costs at most -log(1e-15) = 34.5 nats instead of infinity.
LOG_LOSS_EPS = 1e-15


def per_event_log_loss(p: FloatArray, y: FloatArray) -> FloatArray:
    clipped = np.clip(p, LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS)
    return -(y * np.log(clipped) + (1.0 - y) * np.log1p(-clipped))


def log_loss_and_logit(p: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Per-event log loss and clipped logit from one pair of logarithms; ``y`` is 0 or 1.

    The loss is picked, not computed as ``-(y log p + (1 - y) log(1 - p))``: the same
    value (the other term is 0 times a finite log), at a third of the array passes.
    """
    clipped = np.clip(p, LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS)
    log_p, log_not_p = np.log(clipped), np.log1p(-clipped)
    return np.negative(np.where(y == 1.0, log_p, log_not_p)), log_p - log_not_p


def clipped_logit(p: FloatArray) -> FloatArray:
    clipped = np.clip(p, LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS)
    return np.log(clipped) - np.log1p(-clipped)
