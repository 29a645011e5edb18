r"""Lemmas 2 and 3: how close :math:`a^T w` is to a Gaussian, exactly.

Lemma 2 (:math:`a = \psi_k`) and Lemma 3 (:math:`a = x`, a normalized
digit) claim :math:`a^Tw \to \mathcal{N}(0, \sigma^2\|a\|_2^2)` for i.i.d.
:math:`w`. :func:`ks_to_normal` computes the Kolmogorov–Smirnov distance to
that limit exactly, by inverting the characteristic function
:math:`\prod_j \mathrm{cf}(a_j t)` (no sampling noise floor);
:func:`edgeworth_ks` is its first-order Edgeworth prediction
:math:`|\kappa_4|\,\|a\|_4^4\max_x|\varphi He_3|/24`. :func:`lemma2_sweep`
and :func:`lemma3_table` run them over :math:`N`; :func:`qq_points` and
:func:`standardized_projections` give Monte Carlo Q-Q plots.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import scipy.special
import scipy.stats
import torch
import torch.nn.functional as F

from .. import checks
from ._common import _numpy, _progress, _torch
from .bases1d import DCT1D, Wavelet1D, basis_functions
from .weights import WeightModel, make_rng, weight_model

__all__ = [
    "ks_to_normal",
    "edgeworth_ks",
    "qq_points",
    "standardized_projections",
    "LEMMA2_CASES",
    "lemma2_vector",
    "lemma2_sweep",
    "normalized_digits",
    "lemma3_table",
]

def _prepare_coefficients(a, name: str = "a") -> np.ndarray:
    arr = _numpy(np.asarray(a, dtype=np.float64) if isinstance(a, (list, tuple)) else a, name).ravel()
    if not np.all(np.isfinite(arr)):
        raise checks.ArgumentError(name, "must be finite")
    arr = np.abs(arr[arr != 0])  # the laws are symmetric: signs do not matter
    if arr.size == 0:
        raise checks.ArgumentError(name, "must have at least one nonzero entry")
    return arr / np.linalg.norm(arr)


def _log_envelope(a: np.ndarray, model: WeightModel, t: np.ndarray) -> np.ndarray:
    out = np.zeros_like(t)
    step = max(1, 2**22 // max(1, len(t)))
    for j in range(0, len(a), step):
        out += model.log_cf_envelope(a[j : j + step, None] * t[None, :]).sum(0)
    return out


def _cf_of_sum(a: np.ndarray, model: WeightModel, t: np.ndarray) -> np.ndarray:
    """:math:`\\prod_j \\mathrm{cf}(a_j t)` in chunks (signs kept: the uniform's cf changes sign)."""
    out = np.ones_like(t)
    for start in range(0, len(t), max(1, 2**22 // len(a))):
        tt = t[start : start + max(1, 2**22 // len(a))]
        out[start : start + len(tt)] = np.prod(model.cf(a[:, None] * tt[None, :]), axis=0)
    return out


def ks_to_normal(a, dist: str, tol: float = 1e-7, x_max: float = 6.0, dx: float = 0.02, dt: float = 0.01) -> float:
    r"""Exact Kolmogorov–Smirnov distance between :math:`a^Tw/(\sigma\|a\|_2)` and :math:`\mathcal{N}(0, 1)`.

    :math:`w` has i.i.d. entries of law ``dist``. The CDF of the sum comes
    from its characteristic function :math:`\prod_j \mathrm{cf}(a_j t)` by
    the Gil-Pelaez inversion

    .. math:: F(x) - \Phi(x) = \frac1\pi \int_0^\infty \sin(tx)\,
              \frac{\prod_j\mathrm{cf}(a_jt) - e^{-t^2/2}}{t}\,dt,

    integrated with Simpson's rule (step ``dt``) up to the point where an
    envelope of :math:`|\mathrm{cf}|` falls below ``tol``, and maximised over
    a grid of step ``dx`` on :math:`[0, x_{\max}]` (the difference is odd).
    No sampling is involved, so distances far below any Monte Carlo noise
    floor come out right. A single nonzero coefficient uses the law's CDF.
    """
    model = weight_model(dist)
    a = _prepare_coefficients(a)
    if model.name == "gaussian":
        return 0.0  # a sum of Gaussians is Gaussian
    if a.size == 1:
        xs = np.linspace(-x_max, x_max, 240001)
        return float(np.max(np.abs(model.cdf(xs) - scipy.special.ndtr(xs))))
    grid = np.geomspace(1e-2, 1e7, 900)
    log_env = _log_envelope(a, model, grid)
    above = np.nonzero((log_env > math.log(tol)) | (grid < 10.0))[0]
    if above[-1] == len(grid) - 1:
        raise ValueError(f"the characteristic function of the sum does not decay below tol={tol}; a has {a.size} terms")
    T = grid[above[-1] + 1]
    n = int(math.ceil(T / dt))
    n += n % 2
    t = np.linspace(0.0, T, n + 1)
    h = t[1] - t[0]
    simpson = np.ones(n + 1)
    simpson[1:-1:2], simpson[2:-1:2] = 4.0, 2.0
    g = np.zeros_like(t)
    g[1:] = (_cf_of_sum(a, model, t[1:]) - np.exp(-0.5 * t[1:] ** 2)) / t[1:]
    weights = g * simpson * h / 3.0
    xs = np.arange(0.0, x_max + dx / 2, dx)
    D = np.zeros_like(xs)
    step = max(1, 2**22 // len(xs))
    for start in range(0, len(t), step):
        D += np.sin(np.outer(xs, t[start : start + step])) @ weights[start : start + step]
    return float(np.max(np.abs(D)) / np.pi)


# max |phi(x) He_3(x)| / 24, the constant of the first Edgeworth term
_XS = np.linspace(0.0, 6.0, 60001)
_EDGEWORTH_C = float(np.max(np.abs(np.exp(-0.5 * _XS**2) / math.sqrt(2 * math.pi) * (_XS**3 - 3 * _XS))) / 24.0)


def edgeworth_ks(a, dist: str) -> float:
    r"""First-order Edgeworth prediction of :func:`ks_to_normal`.

    For symmetric laws the skewness term vanishes and
    :math:`F(x) - \Phi(x) \approx -\kappa_4 \sum_j a_j^4\,\varphi(x)He_3(x)/24`
    (:math:`\|a\|_2 = 1`, :math:`\kappa_4` the excess kurtosis), so the
    distance is :math:`|\kappa_4|\,\|a\|_4^4\max_x|\varphi He_3|/24`: it
    shrinks like :math:`\|a\|_4^4`, i.e. like :math:`1/N` for spread-out
    :math:`a`, and not at all for a localized :math:`a`.
    """
    model = weight_model(dist)
    a = _prepare_coefficients(a)
    return abs(model.excess_kurtosis) * float(np.sum(a**4)) * _EDGEWORTH_C


def qq_points(samples) -> tuple[np.ndarray, np.ndarray]:
    """Normal Q-Q plot coordinates: theoretical quantiles at ``(i + 1/2)/n`` and the sorted samples."""
    v = np.sort(_numpy(np.asarray(samples, dtype=np.float64), "samples").ravel())
    return scipy.stats.norm.ppf((np.arange(len(v)) + 0.5) / len(v)), v


def standardized_projections(a, dist: str, n: int, rng) -> np.ndarray:
    r"""``n`` Monte Carlo samples of :math:`a^Tw/(\sigma\|a\|_2)`, :math:`w` i.i.d. ``dist`` (for Q-Q plots)."""
    model = weight_model(dist)
    n = checks.integer(n, "n", 1)
    a = _prepare_coefficients(a)
    rng = make_rng(rng)
    out = np.empty(n)
    step = max(1, 2**22 // len(a))
    for start in range(0, n, step):
        b = min(step, n - start)
        out[start : start + b] = model.sample((b, len(a)), rng) @ a
    return out


LEMMA2_CASES = ("dct", "fixed", "full")


def lemma2_vector(case: str, N: int, wavelet: str = "coif1", level: int = 1) -> tuple[str, np.ndarray]:
    r"""A basis function :math:`\psi_k` for Lemma 2's experiments, with a label.

    ``"dct"``: the DCT's :math:`k = 1` (the largest :math:`\|\psi_k\|_\infty`,
    :math:`\approx\sqrt{2/N}`, spread over the signal). ``"fixed"``: the first
    finest-scale detail function of the ``wavelet`` at ``level`` (localized:
    the same few taps for every :math:`N`). ``"full"``: the coarsest detail
    function of the full-depth decomposition (spread over the whole signal).
    """
    if case not in LEMMA2_CASES:
        raise checks.ArgumentError("case", f"must be one of {LEMMA2_CASES}, got {case!r}")
    if case == "dct":
        t, k, label = DCT1D(N), 1, "DCT, k = 1"
    elif case == "fixed":
        t = Wavelet1D(wavelet, N, level)
        k, label = t.band_starts()[-1], f"{wavelet} level {level}, finest detail"
    else:
        t = Wavelet1D(wavelet, N, "full")
        k, label = t.band_starts()[1], f"{wavelet} full depth, coarsest detail"
    return label, basis_functions(t, [k])[0].numpy()


def lemma2_sweep(Ns, dists, wavelet: str = "coif1", level: int = 1, progress: bool = False) -> pd.DataFrame:
    r"""Exact KS distance of :math:`\psi_k^Tw` to :math:`\mathcal{N}(0,\sigma^2)` against ``N`` (Lemma 2).

    One row per ``(case, N, dist)`` (cases of :func:`lemma2_vector`), with
    ``ks``, the Edgeworth prediction ``edgeworth``, :math:`\|\psi_k\|_1`,
    :math:`\|\psi_k\|_\infty` and :math:`\|\psi_k\|_4^4`.
    """
    rows = []
    jobs = [(case, int(N), dist) for case in LEMMA2_CASES for N in Ns for dist in dists]
    for case, N, dist in _progress(jobs, progress, desc="Lemma 2"):
        label, psi = lemma2_vector(case, N, wavelet, level)
        rows.append(
            {
                "case": label,
                "N": N,
                "dist": dist,
                "ks": ks_to_normal(psi, dist),
                "edgeworth": edgeworth_ks(psi, dist),
                "psi_l1": float(np.abs(psi).sum()),
                "psi_linf": float(np.abs(psi).max()),
                "psi_l4_4": float(np.sum(psi**4)),
            }
        )
    return pd.DataFrame(rows)


def normalized_digits(images: torch.Tensor, side: int) -> torch.Tensor:
    r"""Images resized to ``side x side`` (bilinear, antialiased) and scaled to :math:`\|x\|_2 = 1`.

    Lemma 3's and Thm 3's Assumption 1 (:math:`\|x\|_2 = 1`); returns
    ``(B, side*side)`` float64, so :math:`N = \mathrm{side}^2`.
    """
    side = checks.integer(side, "side", 2)
    x = _torch(images, "images")
    if x.dim() != 4 or x.shape[1] != 1:
        raise checks.ArgumentError("images", f"must be (B, 1, H, W), got shape {tuple(x.shape)}")
    y = F.interpolate(x, size=(side, side), mode="bilinear", antialias=True, align_corners=False).clamp_min(0.0)
    y = y.flatten(1)
    norms = y.norm(dim=1, keepdim=True)
    if bool((norms == 0).any()):
        raise checks.ArgumentError("images", "holds an all-zero image, which cannot be normalized")
    return y / norms


def lemma3_table(images: torch.Tensor, sides, dists, progress: bool = False) -> pd.DataFrame:
    r"""Exact KS distance of :math:`w_i^Tx` to :math:`\mathcal{N}(0, \sigma_i^2)` for digits resized to ``N = side^2`` (Lemma 3).

    One row per ``(side, image, dist)``: ``N``, ``ks``, ``edgeworth`` and
    :math:`\|x\|_\infty` (Lindeberg needs it to vanish).
    """
    rows = []
    for side in _progress(list(sides), progress, desc="Lemma 3"):
        x = normalized_digits(images, side).numpy()
        for i, xi in enumerate(x):
            for dist in dists:
                rows.append(
                    {
                        "side": int(side),
                        "N": int(side) ** 2,
                        "image": i,
                        "dist": dist,
                        "ks": ks_to_normal(xi, dist),
                        "edgeworth": edgeworth_ks(xi, dist),
                        "x_linf": float(np.abs(xi).max()),
                    }
                )
    return pd.DataFrame(rows)
