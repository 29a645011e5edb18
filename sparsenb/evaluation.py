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
    "paired_difference",
    "images_to_resolve",
    "discordance_to_resolve",
    "paired_comparison",
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


def _outcomes(correct, name: str) -> np.ndarray:
    try:
        v = np.asarray(torch.as_tensor(correct).flatten().cpu().numpy())
    except (TypeError, ValueError, RuntimeError):
        raise checks.fail(name, "per-image 0/1 (or boolean) outcomes", correct) from None
    if v.size == 0 or not np.isin(v, (0, 1)).all():
        raise checks.ArgumentError(name, "must hold at least one 0/1 (or boolean) outcome")
    return v.astype(np.int64)


def paired_difference(a, b) -> tuple[float, float, float]:
    """Accuracy of ``a`` minus accuracy of ``b`` (percentage points) on the same images, with its 95% interval.

    ``a`` and ``b`` are per-image 0/1 outcomes of two models on the same
    images. The interval is Newcombe's (1998, method 10) for paired
    proportions: the two Wilson intervals combined with the correlation of
    the outcomes, so images both models get right or both get wrong tighten
    it. Returns ``(difference, lo, hi)``.
    """
    a, b = _outcomes(a, "a"), _outcomes(b, "b")
    if a.shape != b.shape:
        raise checks.ArgumentError("b", f"must hold one outcome per image of a ({a.size}), got {b.size}")
    n = a.size
    both, only_a, only_b = int((a & b).sum()), int((a & (1 - b)).sum()), int(((1 - a) & b).sum())
    neither = n - both - only_a - only_b
    p1, p2 = (both + only_a) / n, (both + only_b) / n
    l1, u1 = wilson_interval(both + only_a, n)
    l2, u2 = wilson_interval(both + only_b, n)
    denom = float(both + only_a) * (only_b + neither) * (both + only_b) * (only_a + neither)
    phi = (both * neither - only_a * only_b) / np.sqrt(denom) if denom > 0 else 0.0
    dl = np.sqrt(max((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2, 0.0))
    du = np.sqrt(max((u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2, 0.0))
    d = p1 - p2
    return float(100 * d), float(100 * max(d - dl, -1.0)), float(100 * min(d + du, 1.0))


def images_to_resolve(difference: float, discordant: float, z: float = 1.96, power: float = 0.5) -> int:
    """About how many images a paired comparison needs to tell a true ``difference`` from none.

    ``difference`` in percentage points (its sign does not matter);
    ``discordant``: the share of images (in [0, 1]) on which the two models
    disagree. The 95% interval's half-width is about ``z * sqrt(discordant /
    n)``; it excludes 0 with probability ``power`` when ``n = (z + z_power)**2
    * discordant / d**2`` (``d`` as a proportion, ``z_power`` the normal
    quantile of ``power``: 0 for the default 1/2, where the expected half-width
    equals the difference; 0.84 for 0.8). ``discordant`` is at least ``d``.
    """
    from statistics import NormalDist

    difference = checks.real(difference, "difference", -100.0, 100.0)
    if difference == 0:
        raise checks.ArgumentError("difference", "must be non-zero: no number of images resolves a difference of 0")
    d = abs(difference) / 100
    r = checks.real(discordant, "discordant", 0.0, 1.0)
    z = checks.real(z, "z", 0.0, low_open=True)
    power = checks.real(power, "power", 0.0, 1.0, low_open=True, high_open=True)
    return int(np.ceil((z + NormalDist().inv_cdf(power)) ** 2 * max(r, d) / (d * d)))


def discordance_to_resolve(difference: float, n: int, z: float = 1.96) -> float:
    """The share of discordant images below which ``n`` images resolve a true ``difference`` about half the time.

    The inverse of :func:`images_to_resolve` at its default power:
    ``n * d**2 / z**2`` with ``d = |difference| / 100`` (at most 1).
    """
    difference = checks.real(difference, "difference", -100.0, 100.0)
    n = checks.integer(n, "n", 1)
    z = checks.real(z, "z", 0.0, low_open=True)
    return float(min(1.0, n * (difference / 100) ** 2 / (z * z)))


def paired_comparison(pairs: dict, difference: float):
    """Paired differences of two models' outcomes, one row per entry of ``pairs`` (label -> ``(a, b)``).

    Columns: ``images``, ``difference`` (points, a minus b), ``lo`` and
    ``hi`` (its 95% interval, :func:`paired_difference`), ``discordant %``
    (images on which a and b disagree) and ``images to resolve`` the given
    ``difference`` at that disagreement (:func:`images_to_resolve`).
    """
    import pandas as pd

    if not isinstance(pairs, dict) or not pairs:
        raise checks.fail("pairs", "a non-empty dict of label -> (outcomes a, outcomes b)", pairs)
    rows = {}
    for label, pair in pairs.items():
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise checks.fail(f"pairs[{label!r}]", "a pair (outcomes a, outcomes b)", pair)
        d, lo, hi = paired_difference(*pair)
        r = float(np.mean(_outcomes(pair[0], "a") != _outcomes(pair[1], "b")))
        rows[label] = {"images": len(_outcomes(pair[0], "a")), "difference": d, "lo": lo, "hi": hi, "discordant %": 100 * r,
                       "images to resolve": images_to_resolve(difference, r)}
    return pd.DataFrame(rows).T.astype({"images": int, "images to resolve": int})


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
