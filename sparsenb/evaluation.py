"""Measuring models: predictions, and accuracy with its 95% Wilson interval.

Storing and resuming results is :mod:`sparsenb.lab`'s job; statistics that
compare models (paired differences) are :mod:`sparsenb.lab.stats`.
"""
from __future__ import annotations

import numpy as np
import torch

from . import checks
from .attacks.base import two_class_logits

__all__ = [
    "predict",
    "accuracy",
    "wilson_interval",
    "accuracy_interval",
    "format_accuracy",
]


@torch.no_grad()
def predict(model, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Predicted classes ``(B,)``; binary models (one logit) predict 1 where it is positive."""
    checks.images(x, "x")
    checks.integer(batch_size, "batch_size", 1)
    if len(x) == 0:
        return torch.zeros(0, dtype=torch.int64, device=x.device)
    return torch.cat([two_class_logits(model(b)).argmax(1) for b in x.split(batch_size)])


def accuracy(model, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> float:
    """Share of ``x`` classified as ``y``."""
    checks.labels(y, "y", n=len(x))
    if len(x) == 0:
        raise checks.ArgumentError("x", "must hold at least one image to measure an accuracy")
    return float((predict(model, x, batch_size) == y).double().mean())


def wilson_interval(successes, n, z: float = 1.96):
    """Wilson score interval ``(lo, hi)`` for a proportion ``successes / n`` (95% for z = 1.96).

    Scalars give floats; arrays (numpy broadcasting) give arrays, one
    interval per entry. The one Wilson interval of the package.
    """
    k, m = _numbers(successes, "successes"), _numbers(n, "n")
    z = checks.real(z, "z", 0, low_open=True)  # a negative z would swap the bounds
    if np.any(m <= 0) or not np.all(np.isfinite(m)):
        raise checks.fail("n", "positive", n)
    if not np.all(np.isfinite(k)) or np.any(k < 0) or np.any(k > m):  # NaN would give a NaN interval
        raise checks.fail("successes", "in [0, n]", successes)
    p = k / m
    denom = 1 + z * z / m
    centre = (p + z * z / (2 * m)) / denom
    half = z * np.sqrt(p * (1 - p) / m + z * z / (4 * m * m)) / denom
    lo, hi = np.maximum(0.0, centre - half), np.minimum(1.0, centre + half)
    if lo.ndim == 0:
        return float(lo), float(hi)
    return lo, hi


def _numbers(value, name: str) -> np.ndarray:
    try:
        return np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise checks.fail(name, "a number or an array of numbers", value) from None


def accuracy_interval(correct) -> tuple[float, float, float]:
    """Accuracy in percent and its 95% Wilson interval ``(p, lo, hi)`` from per-image 0/1 outcomes."""
    outcomes = torch.as_tensor(correct).flatten()
    if outcomes.numel() == 0:
        raise checks.ArgumentError("correct", "must hold at least one outcome")
    if not bool(((outcomes == 0) | (outcomes == 1)).all()):
        raise checks.ArgumentError("correct", "must hold 0/1 (or boolean) outcomes")
    k, n = int(outcomes.sum()), outcomes.numel()
    lo, hi = wilson_interval(k, n)
    return 100 * k / n, 100 * lo, 100 * hi


def format_accuracy(correct, digits: int = 1) -> str:
    """``"p [lo, hi]"``: :func:`accuracy_interval` as text, for tables."""
    p, lo, hi = accuracy_interval(correct)
    return f"{p:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"
