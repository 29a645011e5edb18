"""Measuring models: predictions, accuracy with Wilson intervals, attacks run in
batches and checked, and the per-image measurements behind Table VI and
Figs. 9-10 (I-FGSM sweeps, ReLU switch flips).

Storing and resuming results is :mod:`sparsenb.experiments`' job; the
functions here compute and return plain data.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from . import checks
from .attacks import check_adversarial, ifgsm, iterative_locally_linear, two_class_logits
from .switches import flip_share, switch_states

__all__ = [
    "predict",
    "accuracy",
    "wilson_interval",
    "accuracy_interval",
    "format_accuracy",
    "run_attack",
    "switch_flips",
    "one_step_flips",
    "ifgsm_sweep",
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


def run_attack(attack: Callable, x: torch.Tensor, y: torch.Tensor, batch_size: int = 500, progress: bool = False, desc: str = "attack", **kwargs) -> torch.Tensor:
    """Apply ``attack(x=..., y=..., **kwargs)`` batch by batch; return all adversarial images."""
    from tqdm.auto import tqdm

    out = []
    batches = list(zip(x.split(batch_size), y.split(batch_size)))
    for xb, yb in tqdm(batches, desc=desc, disable=not progress, leave=False):
        out.append(attack(x=xb, y=yb, **kwargs))
    return torch.cat(out)


@torch.no_grad()
def switch_flips(model, x: torch.Tensor, x_adv: torch.Tensor, batch_size: int = 500) -> dict:
    """How many ReLU switches flip between ``x`` and ``x_adv`` (Fig. 9).

    ``model`` is a :class:`~sparsenb.models.NielsenCNN` or a defended one
    (:func:`sparsenb.switches.switch_states`). Returns ``{"total": [% of all
    units that flip, per image], "layers": {layer: mean % over images}}``.
    """
    if x_adv.shape != x.shape:
        raise ValueError(f"x_adv must have the shape of x {tuple(x.shape)}, got {tuple(x_adv.shape)}")
    total, layers = [], {}
    for xb, ab in zip(x.split(batch_size), x_adv.split(batch_size)):
        t, per = flip_share(switch_states(model, xb), switch_states(model, ab))
        total += t.tolist()
        for k, v in per.items():
            layers.setdefault(k, []).extend(v.tolist())
    return {"total": total, "layers": {k: sum(v) / len(v) for k, v in layers.items()}}


def ifgsm_sweep(
    model,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    step: float,
    record_at,
    batch_size: int = 500,
    count_flips: bool = False,
) -> dict:
    """One I-FGSM run of ``max(record_at)`` steps, read out along the way (Table VI, Fig. 10).

    A run of ``k`` steps is the first ``k`` steps of a longer run, so one run
    gives the per-image outcomes after each ``k`` in ``record_at``
    (``{"correct": {str(k): [0/1 per image]}}``, each iterate checked in the
    ball and box). With ``count_flips``, also the mean and standard deviation
    over images of the % of ReLU switches that flip at each step
    (``"flips_mean"``, ``"flips_std"``, one entry per step;
    :func:`sparsenb.switches.switch_states`).
    """
    record_at = sorted({int(k) for k in record_at})
    if not record_at or record_at[0] < 1:
        raise ValueError(f"record_at must hold step counts >= 1, got {record_at!r}")
    steps = record_at[-1]
    correct = {k: [] for k in record_at}
    s1 = torch.zeros(steps, dtype=torch.float64)
    s2 = torch.zeros(steps, dtype=torch.float64)
    for xb, yb in zip(x.split(batch_size), y.split(batch_size)):
        prev = [switch_states(model, xb)] if count_flips else None

        def record(k, x_adv):
            if k in correct:
                check_adversarial(x_adv, xb, eps)
                correct[k] += (predict(model, x_adv) == yb).int().tolist()
            if count_flips:
                with torch.no_grad():
                    cur = switch_states(model, x_adv)
                share = flip_share(prev[0], cur)[0].cpu()
                s1[k - 1] += share.sum()
                s2[k - 1] += share.pow(2).sum()
                prev[0] = cur

        ifgsm(model, xb, yb, eps, step, steps, callback=record)
    out = {"correct": {str(k): v for k, v in correct.items()}}
    if count_flips:
        mean = s1 / len(x)
        out["flips_mean"] = mean.tolist()
        out["flips_std"] = (s2 / len(x) - mean.pow(2)).clamp_min(0).sqrt().tolist()
    return out


def one_step_flips(model, x: torch.Tensor, y: torch.Tensor, eps: float, step: float, batch_size: int = 500) -> dict:
    """Switch flips caused by one step of size ``step`` of the iterative locally linear attack (Fig. 9).

    The step is checked to stay within ``step`` of ``x``; returns :func:`switch_flips`.
    """
    x1 = run_attack(iterative_locally_linear, x, y, batch_size, model=model, eps=eps, step=step, steps=1)
    check_adversarial(x1, x, step)
    return switch_flips(model, x, x1, batch_size)
