r"""Monte Carlo for Sec. IV: Prop. 2's sample paths, Thms 1–2 over 1-D bases, and the white box on images.

* :func:`prop2_paths`: :math:`\Delta_0/N` along growing :math:`N` (Prop. 2).
* :func:`linear_sweep`: :math:`\Delta_0, Z_K, \Delta_\mathrm{SW}, \Delta_\mathrm{W}`
  and Lemma 1's bound for random classifiers over bases and :math:`(N, K)`,
  with the exact moments of :math:`Z_K`; :func:`thm1_table` compares it with
  Lemma 4 and Eq. (6), :func:`lemma1_summary` checks Lemma 1 on every draw.
* :func:`image_white_box`: the same distortions on MNIST digits, with the
  digits' own supports.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import scipy.special
import scipy.stats
import torch

from .. import checks
from ..basis import l1_norms
from ..evaluation import wilson_interval
from ._common import _progress, _torch
from .bases1d import psi_norms, sparse_signal, transform_1d
from .linear import linear_distortions, z_k_moments
from .weights import make_rng, weight_model

__all__ = ["prop2_paths", "LinearSweep", "linear_sweep", "thm1_table", "lemma1_summary", "image_white_box"]


def prop2_paths(dists, Ns, n_paths: int, eps: float = 1.0, seed: int = 0, progress: bool = False) -> pd.DataFrame:
    r"""Sample paths of :math:`\Delta_0/N = \epsilon\|w_{1:N}\|_1/N` along growing ``Ns`` (Prop. 2).

    Each path is one infinite weight sequence, observed at every ``N`` in
    ``Ns`` (the strong law is a statement about such paths). Returns one row
    per ``(dist, path, N)`` with ``delta_0_over_N``, the limit ``eps_mu`` and
    their difference ``deviation``.
    """
    eps = checks.real(eps, "eps", 0, low_open=True)
    n_paths = checks.integer(n_paths, "n_paths", 1)
    Ns = sorted({checks.integer(n, "Ns", 1) for n in Ns})
    if not Ns:
        raise checks.ArgumentError("Ns", "must hold at least one length")
    frames = []
    for dist in _progress(list(dists), progress, desc="Prop. 2"):
        model = weight_model(dist)
        rng = make_rng(seed, "prop2", dist)
        total = np.zeros(n_paths)
        done = 0
        out = np.empty((len(Ns), n_paths))
        for j, N in enumerate(Ns):
            while done < N:
                step = min(N - done, max(1, 2**22 // n_paths))
                total += np.abs(model.sample((n_paths, step), rng)).sum(1)
                done += step
            out[j] = eps * total / N
        frames.append(
            pd.DataFrame(
                {
                    "dist": dist,
                    "path": np.tile(np.arange(n_paths), len(Ns)),
                    "N": np.repeat(Ns, n_paths),
                    "delta_0_over_N": out.ravel(),
                    "eps_mu": eps * model.mu,
                    "deviation": out.ravel() - eps * model.mu,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _with_ratios(frame: pd.DataFrame, K: int, eps: float) -> pd.DataFrame:
    """Add the ratios the chapters plot: per-K distortions, attenuations, Lemma 1 tightness, Y_K."""
    return frame.assign(
        y_k=frame["z_k"] / K,
        delta_sw_over_K=frame["delta_sw"] / K,
        delta_w_over_K=frame["delta_w"] / K,
        bound_over_K=frame["lemma1_bound"] / K,
        attenuation_sw=frame["delta_sw"] / frame["delta_0"],
        attenuation_w=frame["delta_w"] / frame["delta_0"],
        tightness=frame["delta_w"] / frame["lemma1_bound"],
    )


@dataclass
class LinearSweep:
    """Result of :func:`linear_sweep`: one row per draw, and one row per case."""

    draws: pd.DataFrame
    cases: pd.DataFrame


def linear_sweep(
    bases: Sequence[str],
    NK: Iterable[tuple[int, int]],
    dist: str = "gaussian",
    n_draws: int = 1000,
    eps: float = 1.0,
    seed: int = 0,
    progress: bool = False,
) -> LinearSweep:
    r"""Sec. IV's distortions for random classifiers, over 1-D bases and ``(N, K)`` pairs.

    For each basis spec (see :func:`~sparsenb.theory.bases1d.transform_1d`) and each ``(N, K)``: a
    :math:`K`-sparse signal :math:`x` with a uniformly random support
    (:func:`~sparsenb.theory.bases1d.sparse_signal`), and ``n_draws`` classifiers :math:`w` with i.i.d.
    entries of law ``dist``. The same :math:`w` draws are used for every
    basis at a given ``(N, K)`` (common random numbers).

    ``draws``: ``basis, N, K, draw, delta_0, z_k, delta_sw, delta_w,
    lemma1_bound`` and the ratios ``y_k`` (:math:`Z_K/K`),
    ``delta_sw_over_K``, ``delta_w_over_K``, ``bound_over_K``,
    ``attenuation_sw`` (:math:`\Delta_\mathrm{SW}/\Delta_0`),
    ``attenuation_w`` and ``tightness`` (:math:`\Delta_\mathrm{W}` / Lemma 1's bound). ``cases``: ``basis, N, K, mu, sigma2, z_mean, z_var,
    z_var_bound`` (exact, :func:`~sparsenb.theory.linear.z_k_moments`), and the largest and mean
    :math:`\|\psi_k\|_1` and largest :math:`\|\psi_k\|_\infty` over the support.
    """
    n_draws = checks.integer(n_draws, "n_draws", 1)
    eps = checks.real(eps, "eps", 0, low_open=True)
    model = weight_model(dist)
    NK = [(checks.integer(N, "N", 2), checks.integer(K, "K", 1)) for N, K in NK]
    draws, cases = [], []
    jobs = [(spec, N, K) for N, K in NK for spec in bases]
    for spec, N, K in _progress(jobs, progress, desc="linear sweep"):
        transform = transform_1d(spec, N)
        K = checks.integer(K, "K", 1, N)
        x, support = sparse_signal(transform, K, make_rng(seed, "x", spec, N, K))
        l1_s, linf_s = psi_norms(transform, support)
        l1 = torch.zeros(N, dtype=torch.float64)
        l1[torch.from_numpy(support)] = l1_s
        moments = z_k_moments(transform, support, dist)
        cases.append(
            {
                "basis": spec,
                "N": N,
                "K": K,
                "mu": model.mu,
                "sigma2": model.sigma2,
                "z_mean": moments.mean,
                "z_var": moments.var,
                "z_var_bound": moments.var_bound,
                "l1_max": float(l1_s.max()),
                "l1_mean": float(l1_s.mean()),
                "linf_max": float(linf_s.max()),
            }
        )
        rng_w = make_rng(seed, "w", dist, N, K)
        batch = max(1, min(n_draws, 2**21 // N))
        parts: dict[str, list] = {}
        for start in range(0, n_draws, batch):
            b = min(batch, n_draws - start)
            w = torch.from_numpy(model.sample((b, N), rng_w))
            for key, value in linear_distortions(w, x, K, transform, eps, l1).items():
                parts.setdefault(key, []).append(value.numpy())
        frame = _with_ratios(pd.DataFrame({k: np.concatenate(v) for k, v in parts.items()}), K, eps)
        frame.insert(0, "draw", np.arange(n_draws))
        frame.insert(0, "K", K)
        frame.insert(0, "N", N)
        frame.insert(0, "basis", spec)
        draws.append(frame)
    return LinearSweep(pd.concat(draws, ignore_index=True), pd.DataFrame(cases))


def thm1_table(sweep: LinearSweep, delta: float, level: float = 0.95) -> pd.DataFrame:
    r"""Thm 1 per ``(basis, N, K)``: the Monte Carlo against Lemma 4 and Eq. (6).

    Columns: ``mean_delta_sw_over_K`` (to compare with :math:`\epsilon\mu`),
    ``attenuation`` (mean :math:`\Delta_\mathrm{SW}/\Delta_0`) and ``K_over_N``;
    ``var_mc`` with a chi-square interval ``var_low, var_high``, the exact
    ``var_exact`` and the bound ``var_bound`` of :math:`\mathrm{var}(Z_K)`;
    ``prob`` :math:`= \Pr(|Y_K - \mu| \le \delta)` with a Wilson interval
    ``prob_low, prob_high``, Chebyshev's lower bound ``chebyshev`` (Eq. 6) and
    the Gaussian approximation ``normal`` :math:`2\Phi(\delta K/\sqrt{\mathrm{var}}) - 1`
    with the exact variance.
    """
    delta = checks.real(delta, "delta", 0, low_open=True)
    d, cases = sweep.draws, sweep.cases.set_index(["basis", "N", "K"])
    rows = []
    for (basis, N, K), part in d.groupby(["basis", "N", "K"], sort=True):
        case = cases.loc[(basis, N, K)]
        z = part["z_k"].to_numpy()
        n = len(z)
        var = float(np.var(z, ddof=1))
        chi = scipy.stats.chi2.ppf([0.5 + level / 2, 0.5 - level / 2], n - 1)
        k = int(np.sum(np.abs(z / K - case["mu"]) <= delta))
        lo, hi = wilson_interval(k, n, z=float(scipy.stats.norm.ppf(0.5 + level / 2)))
        cheb = 1.0 - (case["sigma2"] + case["mu"] ** 2) / (K * delta**2)
        rows.append(
            {
                "basis": basis,
                "N": N,
                "K": K,
                "K_over_N": K / N,
                "mean_delta_sw_over_K": float(part["delta_sw_over_K"].mean()),
                "attenuation": float(part["attenuation_sw"].mean()),
                "var_mc": var,
                "var_low": (n - 1) * var / chi[0],
                "var_high": (n - 1) * var / chi[1],
                "var_exact": case["z_var"],
                "var_bound": case["z_var_bound"],
                "prob": k / n,
                "prob_low": float(lo),
                "prob_high": float(hi),
                "chebyshev": max(0.0, cheb),
                "chebyshev_raw": cheb,
                "normal": float(2 * scipy.special.ndtr(delta * K / math.sqrt(case["z_var"])) - 1),
            }
        )
    return pd.DataFrame(rows)


def lemma1_summary(df: pd.DataFrame, by="basis") -> pd.DataFrame:
    """Lemma 1 on every draw of a sweep: draws checked, violations, and how tight the bound is."""
    g = df.groupby(by, sort=False)
    return g.agg(
        draws=("delta_w", "size"),
        violations=("tightness", lambda v: int(np.sum(np.asarray(v) > 1 + 1e-12))),
        mean_tightness=("tightness", "mean"),
        min_tightness=("tightness", "min"),
        max_tightness=("tightness", "max"),
    ).reset_index()


def image_white_box(
    images: torch.Tensor,
    transforms: dict,
    Ks: Sequence[int],
    dist: str = "gaussian",
    eps: float = 1.0,
    seed: int = 0,
    progress: bool = False,
) -> pd.DataFrame:
    r"""Sec. IV's distortions on real images: supports :math:`\mathcal{S}_K(x)` of the images themselves.

    ``images`` is ``(B, 1, H, W)`` or ``(B, H, W)``; ``transforms`` maps a
    label to an image transform (:class:`sparsenb.basis.WaveletTransform` or
    :class:`~sparsenb.basis.DenseTransform`). One random classifier per image
    (entries i.i.d. ``dist``), the same for every basis and ``K``. Returns one
    row per ``(basis, K, image)`` with ``delta_0, z_k, delta_sw, delta_w,
    lemma1_bound`` and the ratios of :func:`linear_sweep`.
    """
    x = _torch(images, "images")
    if x.dim() == 4:
        if x.shape[1] != 1:
            raise checks.ArgumentError("images", f"must have one channel, got shape {tuple(x.shape)}")
        x = x[:, 0]
    if x.dim() != 3:
        raise checks.ArgumentError("images", f"must be (B, 1, H, W) or (B, H, W), got shape {tuple(images.shape)}")
    B, H, W = x.shape
    model = weight_model(dist)
    w = torch.from_numpy(model.sample((B, H, W), make_rng(seed, "image-w", dist)))
    frames = []
    for label, transform in _progress(list(transforms.items()), progress, desc="bases"):
        l1 = l1_norms(transform.dense())
        for K in Ks:
            out = linear_distortions(w, x, checks.integer(K, "K", 1, H * W), transform, eps, l1)
            frame = _with_ratios(pd.DataFrame({k: v.numpy() for k, v in out.items()}), int(K), eps)
            frame.insert(0, "image", np.arange(B))
            frame.insert(0, "K", int(K))
            frame.insert(0, "basis", label)
            frames.append(frame)
    return pd.concat(frames, ignore_index=True)
