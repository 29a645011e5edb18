r"""Summaries and fits for the theory chapters.

* :func:`summarize`: means per group with a normal-theory confidence interval
  and an equal-tailed quantile band.
* :func:`fit_power_law`, :func:`power_law_fits`: slopes of :math:`\log y`
  against :math:`\log x` with bootstrap (Monte Carlo draws) or OLS (exact
  values) confidence intervals; :func:`rms_deviation` as a statistic.
* :func:`plot_band`: a :func:`summarize` table as a line with a shaded band.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd
import scipy.stats

from .. import checks
from .weights import make_rng

__all__ = ["summarize", "rms_deviation", "PowerLawFit", "fit_power_law", "power_law_fits", "plot_band"]

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


def fit_power_law(x, y, level: float = 0.95, n_boot: int = 2000, statistic="mean", seed: int = 0) -> PowerLawFit:
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
        raise checks.ArgumentError("statistic", f"must be 'mean', 'median' or a callable, got {statistic!r}")
    lx = np.log(x)
    X = np.stack([np.ones_like(lx), lx], 1)
    ragged = not np.isscalar(y) and len(y) == len(x) and all(np.ndim(v) == 1 for v in y)
    if ragged:
        rows = [np.asarray(v, dtype=np.float64) for v in y]
        point = np.array([stat(r, axis=-1) for r in rows])
    else:
        point = np.asarray(y, dtype=np.float64).ravel()
        if point.shape != x.shape:
            raise checks.ArgumentError("y", f"must hold one value per x ({len(x)}) or one array of draws per x")
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
    df: pd.DataFrame, x: str, value: str, by=None, statistic="mean", level: float = 0.95, n_boot: int = 2000, seed: int = 0
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


def plot_band(ax, summary: pd.DataFrame, x: str, label=None, band: str = "ci", color=None, marker="o", **kw):
    """Plot a :func:`summarize` table: the mean as a line, ``band`` ("ci" or "quantile") shaded."""
    if band not in ("ci", "quantile"):
        raise checks.ArgumentError("band", f"must be 'ci' or 'quantile', got {band!r}")
    s = summary.sort_values(x)
    (line,) = ax.plot(s[x], s["mean"], marker=marker, ms=3.5, label=label, color=color, **kw)
    lo, hi = ("ci_low", "ci_high") if band == "ci" else ("q_low", "q_high")
    ax.fill_between(s[x], s[lo], s[hi], color=line.get_color(), alpha=0.2, lw=0)
    return line
