r"""Statistics of the book's experiments: summaries and fits of Monte Carlo draws, and paired comparisons of models.

* :func:`summarize`: means per group with a normal-theory confidence interval
  and an equal-tailed quantile band.
* :func:`fit_power_law`, :func:`power_law_fits`: slopes of :math:`\log y`
  against :math:`\log x` with bootstrap (Monte Carlo draws) or OLS (exact
  values) confidence intervals; :func:`rms_deviation` as a statistic.
* :func:`paired_difference`: the difference of two models' accuracies on the
  same images with Newcombe's interval, and :func:`mcnemar`'s exact test of
  no difference; :func:`paired_comparison` tabulates several, with
  :func:`images_to_resolve` and :func:`discordance_to_resolve` (how many
  images a difference needs).

One accuracy's Wilson interval is :func:`sparsenb.evaluation.wilson_interval`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd
import torch
import scipy.stats

from .. import checks
from ..evaluation import wilson_interval
from ..theory.weights import make_rng

__all__ = [
    "summarize",
    "rms_deviation",
    "PowerLawFit",
    "fit_power_law",
    "power_law_fits",
    "paired_difference",
    "mcnemar",
    "images_to_resolve",
    "discordance_to_resolve",
    "paired_comparison",
]


def summarize(df: pd.DataFrame, by, value: str, level: float = 0.95) -> pd.DataFrame:
    r"""Mean of ``value`` per group with a normal-theory CI and an equal-tailed quantile band.

    Columns: ``n, mean, sem, ci_low, ci_high`` (confidence interval of the
    mean at ``level``), ``q_low, q_high`` (the central ``level`` share of the
    draws), ``median``.
    """
    level = checks.real(level, "level", 0, 1, low_open=True, high_open=True)
    if value not in df:
        raise checks.fail("value", f"a column of df {list(df.columns)}", value)
    z = scipy.stats.norm.ppf(0.5 + level / 2)
    lo, hi = (1 - level) / 2, 1 - (1 - level) / 2
    g = df.groupby(by, sort=True)[value]
    out = g.agg(
        n="size",
        mean="mean",
        sem=lambda v: float(np.std(v, ddof=1) / np.sqrt(len(v))) if len(v) > 1 else np.nan,
        median="median",
        q_low=lambda v: float(np.quantile(v, lo)),
        q_high=lambda v: float(np.quantile(v, hi)),
    ).reset_index()
    out["ci_low"] = out["mean"] - z * out["sem"]
    out["ci_high"] = out["mean"] + z * out["sem"]
    return out


def rms_deviation(center: float) -> Callable:
    """A statistic for :func:`fit_power_law`: :math:`\\sqrt{\\mathrm{mean}((v - c)^2)}` along ``axis``."""

    def stat(v, axis=-1):
        return np.sqrt(np.mean((np.asarray(v) - center) ** 2, axis=axis))

    stat.__name__ = f"rms_deviation({center:g})"
    return stat


@dataclass(frozen=True)
class PowerLawFit:
    r"""A fitted power law :math:`y \approx e^{a} x^{s}`: slope ``s`` with a confidence interval."""

    slope: float
    low: float
    high: float
    intercept: float
    level: float
    method: str
    x_min: float
    x_max: float
    n_points: int

    def predict(self, x) -> np.ndarray:
        return np.exp(self.intercept) * np.asarray(x, dtype=np.float64) ** self.slope

    def __str__(self) -> str:
        return f"{self.slope:.2f} [{self.low:.2f}, {self.high:.2f}]"

    @property
    def text(self) -> str:
        """The slope and its interval in words, for glueing into prose."""
        return f"{self.slope:.2f} ({self.level:.0%} CI {self.low:.2f} to {self.high:.2f})"


_STATISTICS = {"mean": np.mean, "median": np.median}


def _clean(v) -> float:
    """``v`` with rounding noise below 1e-12 removed (and no negative zero), for printing."""
    v = float(v)
    return float(np.round(v, 12)) + 0.0 if math.isfinite(v) else v


def fit_power_law(
    x, y, level: float = 0.95, n_boot: int = 2000, statistic="mean", seed: int = 0
) -> PowerLawFit:
    r"""Least-squares slope of :math:`\log y` against :math:`\log x`, with a confidence interval.

    ``y`` is either one value per ``x`` (deterministic: the interval is the
    OLS :math:`t`-interval, which measures how far the points are from a
    straight line), or one array of Monte Carlo draws per ``x``, summarized
    by ``statistic`` (``"mean"``, ``"median"`` or a callable taking
    ``axis``): the interval is then a percentile bootstrap over draws,
    resampled independently at each ``x``.
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    if len(x) < 2 or np.any(x <= 0):
        raise checks.ArgumentError("x", f"must hold at least two positive values, got {x}")
    level = checks.real(level, "level", 0, 1, low_open=True, high_open=True)
    stat = _STATISTICS.get(statistic, statistic) if isinstance(statistic, str) else statistic
    if not callable(stat):
        raise checks.ArgumentError(
            "statistic", f"must be 'mean', 'median' or a callable, got {statistic!r}"
        )
    lx = np.log(x)
    X = np.stack([np.ones_like(lx), lx], 1)
    ragged = not np.isscalar(y) and len(y) == len(x) and all(np.ndim(v) == 1 for v in y)
    if ragged:
        rows = [np.asarray(v, dtype=np.float64) for v in y]
        point = np.array([stat(r, axis=-1) for r in rows])
    else:
        point = np.asarray(y, dtype=np.float64).ravel()
        if point.shape != x.shape:
            raise checks.ArgumentError(
                "y", f"must hold one value per x ({len(x)}) or one array of draws per x"
            )
    if np.any(~np.isfinite(point)) or np.any(point <= 0):
        raise ValueError(f"the fitted values must be positive and finite, got {point}")
    coef, *_ = np.linalg.lstsq(X, np.log(point), rcond=None)
    alpha = 1 - level
    if ragged:
        n_boot = checks.integer(n_boot, "n_boot", 1)
        rng = make_rng(seed, "bootstrap")
        boot = np.empty((n_boot, len(x)))
        for j, r in enumerate(rows):
            idx = rng.integers(0, len(r), size=(n_boot, len(r)))
            boot[:, j] = stat(r[idx], axis=-1)
        if np.any(boot <= 0):
            raise ValueError("a bootstrap statistic is not positive; the log-log fit is undefined")
        slopes = np.linalg.lstsq(X, np.log(boot).T, rcond=None)[0][1]
        low, high = np.quantile(slopes, [alpha / 2, 1 - alpha / 2])
        method = f"bootstrap ({n_boot} resamples of the draws)"
    else:
        n = len(x)
        if n > 2:
            resid = np.log(point) - X @ coef
            s2 = resid @ resid / (n - 2)
            se = math.sqrt(s2 / np.sum((lx - lx.mean()) ** 2))
            q = scipy.stats.t.ppf(1 - alpha / 2, n - 2)
            low, high = coef[1] - q * se, coef[1] + q * se
        else:
            low = high = math.nan
        method = "OLS t-interval"
    return PowerLawFit(
        slope=_clean(coef[1]),
        low=_clean(low),
        high=_clean(high),
        intercept=float(coef[0]),
        level=level,
        method=method,
        x_min=float(x.min()),
        x_max=float(x.max()),
        n_points=len(x),
    )


def power_law_fits(
    df: pd.DataFrame,
    x: str,
    value: str,
    by=None,
    statistic="mean",
    level: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """:func:`fit_power_law` of ``value`` against ``x`` in each group of ``by``, over the draws of ``df``.

    Groups with a single (exact) value per ``x`` get the OLS interval.

    Returns one row per group with ``slope, low, high, intercept, x_min,
    x_max, fit`` (the :class:`PowerLawFit`).
    """
    groups = [((), df)] if by is None else list(df.groupby(by, sort=True))
    rows = []
    for key, part in groups:
        xs = np.sort(part[x].unique())
        draws = [part.loc[part[x] == v, value].to_numpy() for v in xs]
        if all(len(d) == 1 for d in draws):  # one exact value per x: OLS, not a bootstrap
            draws = np.array([d[0] for d in draws])
        fit = fit_power_law(xs, draws, level=level, n_boot=n_boot, statistic=statistic, seed=seed)
        keys = key if isinstance(key, tuple) else (key,)
        names = [] if by is None else ([by] if isinstance(by, str) else list(by))
        rows.append(
            {
                **dict(zip(names, keys)),
                "slope": fit.slope,
                "low": fit.low,
                "high": fit.high,
                "intercept": fit.intercept,
                "x_min": fit.x_min,
                "x_max": fit.x_max,
                "fit": fit,
            }
        )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------
# paired comparisons of two models on the same images
# --------------------------------------------------------------------------
def _outcomes(correct, name: str) -> np.ndarray:
    try:
        v = np.asarray(torch.as_tensor(correct).flatten().cpu().numpy())
    except (TypeError, ValueError, RuntimeError):
        raise checks.fail(name, "per-image 0/1 (or boolean) outcomes", correct) from None
    if v.size == 0 or not np.isin(v, (0, 1)).all():
        raise checks.ArgumentError(name, "must hold at least one 0/1 (or boolean) outcome")
    return v.astype(np.int64)


def paired_difference(a, b) -> tuple[float, float, float]:
    r"""Accuracy of ``a`` minus accuracy of ``b`` (percentage points) on the same images, with its 95% interval.

    ``a`` and ``b`` are per-image 0/1 outcomes of two models on the same
    images. The interval is Newcombe's (1998, method 10) for paired
    proportions: the two Wilson intervals combined with the correlation
    :math:`\phi` of the outcomes, so images both models get right or both get
    wrong tighten it. As in the method, :math:`\phi` is continuity-corrected:
    with the 2x2 counts :math:`r` (both right), :math:`s` (only ``a``),
    :math:`t` (only ``b``), :math:`u` (neither) and
    :math:`B = ru - st`, the numerator is :math:`B - n/2` when
    :math:`B > n/2`, 0 when :math:`0 \le B \le n/2`, and :math:`B` when
    :math:`B < 0`; :math:`\phi` is that over
    :math:`\sqrt{(r+s)(t+u)(r+t)(s+u)}`. Returns ``(difference, lo, hi)``.
    """
    a, b = _outcomes(a, "a"), _outcomes(b, "b")
    if a.shape != b.shape:
        raise checks.ArgumentError(
            "b", f"must hold one outcome per image of a ({a.size}), got {b.size}"
        )
    n = a.size
    both, only_a, only_b = int((a & b).sum()), int((a & (1 - b)).sum()), int(((1 - a) & b).sum())
    neither = n - both - only_a - only_b
    p1, p2 = (both + only_a) / n, (both + only_b) / n
    l1, u1 = wilson_interval(both + only_a, n)
    l2, u2 = wilson_interval(both + only_b, n)
    denom = float(both + only_a) * (only_b + neither) * (both + only_b) * (only_a + neither)
    B = both * neither - only_a * only_b
    corrected = (
        B - n / 2 if B > n / 2 else (B if B < 0 else 0.0)
    )  # Newcombe's continuity correction of phi
    phi = corrected / np.sqrt(denom) if denom > 0 else 0.0
    dl = np.sqrt(max((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2, 0.0))
    du = np.sqrt(max((u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2, 0.0))
    d = p1 - p2
    return float(100 * d), float(100 * max(d - dl, -1.0)), float(100 * min(d + du, 1.0))


def mcnemar(a, b) -> tuple[int, int, float]:
    r"""McNemar's exact test that two models on the same images are equally accurate.

    ``a``, ``b``: per-image 0/1 outcomes. Only the discordant images carry
    information: under the null each of the ``s + t`` of them is right for
    ``a`` only or for ``b`` only with probability 1/2, so the two-sided
    p-value is :math:`\min(1, 2\,P[X \le \min(s, t)])` with
    :math:`X \sim \mathrm{Binomial}(s + t, 1/2)` (1 without discordant
    images). Returns ``(s, t, p)``: images only ``a`` gets right, only ``b``,
    and the p-value.
    """
    from scipy.stats import binom

    a, b = _outcomes(a, "a"), _outcomes(b, "b")
    if a.shape != b.shape:
        raise checks.ArgumentError(
            "b", f"must hold one outcome per image of a ({a.size}), got {b.size}"
        )
    s, t = int((a & (1 - b)).sum()), int(((1 - a) & b).sum())
    if s + t == 0:
        return s, t, 1.0
    return s, t, float(min(1.0, 2.0 * binom.cdf(min(s, t), s + t, 0.5)))


def images_to_resolve(
    difference: float, discordant: float, z: float = 1.96, power: float = 0.5
) -> int:
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
        raise checks.ArgumentError(
            "difference", "must be non-zero: no number of images resolves a difference of 0"
        )
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
    ``hi`` (its 95% interval, :func:`paired_difference`), ``McNemar p``
    (:func:`mcnemar`'s exact two-sided p-value of no difference),
    ``discordant %`` (images on which a and b disagree) and ``images to
    resolve`` the given ``difference`` at that disagreement
    (:func:`images_to_resolve`).
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
        rows[label] = {
            "images": len(_outcomes(pair[0], "a")),
            "difference": d,
            "lo": lo,
            "hi": hi,
            "McNemar p": mcnemar(*pair)[2],
            "discordant %": 100 * r,
            "images to resolve": images_to_resolve(difference, r),
        }
    return pd.DataFrame(rows).T.astype({"images": int, "images to resolve": int})
