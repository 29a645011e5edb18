r"""Sec. IV: the distortion a linear classifier suffers through the front end.

A linear classifier :math:`g(x) = w^T x` under an :math:`\ell_\infty` attack
:math:`\|e\|_\infty \le \epsilon`; behind the front end the perturbation
reaches it as :math:`\mathcal{P}_K(e, x)`, so its output moves by (Eq. 3)
:math:`\Delta = |w^T\mathcal{P}_K(e, x)| = |e^T\mathcal{P}_K(w, x)|`.

==============================  ===================================================================================================
:func:`delta_0`                 Eq. (2), no defense: :math:`\Delta_0 = \epsilon\|w\|_1`
:func:`z_k`                     :math:`Z_K = \mathrm{sgn}(w)^T\mathcal{P}_K(w, x)`
:func:`delta_sw`                Eq. (4), semi-white box: :math:`\Delta_\mathrm{SW} = \epsilon|Z_K|`
:func:`delta_w`                 white box: :math:`\Delta_\mathrm{W} = \epsilon\|\mathcal{P}_K(w, x)\|_1`
:func:`white_box_perturbation`  :math:`e_\mathrm{W} = \epsilon\,\mathrm{sgn}(\mathcal{P}_K(w, x))`
:func:`lemma1_bound`            Lemma 1: :math:`\epsilon\sum_{k\in\mathcal{S}_K(x)}|\psi_k^Tw|\,\|\psi_k\|_1 \ge \Delta_\mathrm{W}`
:func:`linear_distortions`      all of the above for a batch, :math:`\mathcal{P}_K(w, x)` computed once
:func:`z_k_moments`             Lemma 4: :math:`E Z_K = K\mu`, the exact variance and its bound
:func:`chebyshev_bound`         Eq. (6)
==============================  ===================================================================================================

``w`` and ``x`` are ``(..., *transform.shape)`` tensors or arrays (float64).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .. import checks
from ..frontend import S_K
from ._common import _flat, _torch
from .bases1d import basis_functions, psi_norms
from .weights import weight_model

__all__ = [
    "delta_0",
    "z_k",
    "delta_sw",
    "delta_w",
    "white_box_perturbation",
    "lemma1_bound",
    "linear_distortions",
    "ZKMoments",
    "z_k_moments",
    "chebyshev_bound",
]

def delta_0(w, eps: float = 1.0, transform=None) -> torch.Tensor:
    r"""Baseline distortion without defense, Eq. (2): :math:`\Delta_0 = \epsilon\|w\|_1`.

    ``w`` is ``(..., N)``, or ``(..., *transform.shape)`` if ``transform`` is given.
    """
    eps = checks.real(eps, "eps", 0, low_open=True)
    w = _torch(w, "w")
    w = _flat(w, transform) if transform is not None else w
    return eps * w.abs().sum(-1)


def _project(w: torch.Tensor, x: torch.Tensor, K: int, transform) -> torch.Tensor:
    r""":math:`\mathcal{P}_K(w, x)` for a batch of classifiers ``w`` ``(B, *shape)`` and one signal ``x`` (or one per row).

    :func:`sparsenb.frontend.P_K` written out so that the mask
    :math:`\mathcal{S}_K(x)` is computed once and broadcast over the batch
    (the tests check the two against each other).
    """
    return transform.synthesis(transform.analysis(w) * S_K(x, K, transform))


def z_k(w, x, K: int, transform) -> torch.Tensor:
    r""":math:`Z_K = \mathrm{sgn}(w)^T \mathcal{P}_K(w, x) = \sum_{k \in \mathcal{S}_K(x)} \mathrm{sgn}(w)^T\psi_k\psi_k^T w`.

    The semi-white box distortion is :math:`\Delta_\mathrm{SW} = \epsilon|Z_K|`
    (App. A, proof of Thm 1). ``w`` ``(B, *shape)``, ``x`` ``(*shape)`` or ``(B, *shape)``.
    """
    K = checks.integer(K, "K", 1, transform.N)
    w = _torch(w, "w")
    p = _project(w, _torch(x, "x"), K, transform)
    return (torch.sign(_flat(w, transform)) * _flat(p, transform)).sum(-1)


def delta_sw(w, x, K: int, transform, eps: float = 1.0) -> torch.Tensor:
    r"""Semi-white box distortion, Eq. (4): :math:`\Delta_\mathrm{SW} = \epsilon|\mathrm{sgn}(w)^T\mathcal{P}_K(w, x)|`."""
    return checks.real(eps, "eps", 0, low_open=True) * z_k(w, x, K, transform).abs()


def delta_w(w, x, K: int, transform, eps: float = 1.0) -> torch.Tensor:
    r"""White box distortion (Sec. IV-A): :math:`\Delta_\mathrm{W} = \epsilon\|\mathcal{P}_K(w, x)\|_1`."""
    eps = checks.real(eps, "eps", 0, low_open=True)
    K = checks.integer(K, "K", 1, transform.N)
    return eps * _flat(_project(_torch(w, "w"), _torch(x, "x"), K, transform), transform).abs().sum(-1)


def white_box_perturbation(w, x, K: int, transform, eps: float = 1.0) -> torch.Tensor:
    r"""The optimal white box attack :math:`e_\mathrm{W} = \epsilon\,\mathrm{sgn}(\mathcal{P}_K(w, x))`.

    It attains :math:`|e^T \mathcal{P}_K(w, x)| = \Delta_\mathrm{W}` (Hölder).
    """
    eps = checks.real(eps, "eps", 0, low_open=True)
    K = checks.integer(K, "K", 1, transform.N)
    return eps * torch.sign(_project(_torch(w, "w"), _torch(x, "x"), K, transform))


def _support_l1(x: torch.Tensor, K: int, transform) -> torch.Tensor:
    """``(N,)`` tensor of :math:`\\|\\psi_k\\|_1` on the union of the supports of ``x`` (zero elsewhere)."""
    mask = S_K(x, K, transform).reshape(-1, transform.N).any(0)
    idx = torch.nonzero(mask).flatten().numpy()
    l1 = torch.zeros(transform.N, dtype=torch.float64)
    l1[torch.from_numpy(idx)] = psi_norms(transform, idx)[0]
    return l1


def lemma1_bound(w, x, K: int, transform, eps: float = 1.0, l1=None) -> torch.Tensor:
    r"""Lemma 1's bound :math:`\epsilon\sum_{k \in \mathcal{S}_K(x)} |\psi_k^T w|\,\|\psi_k\|_1 \ge \Delta_\mathrm{W}`.

    ``l1`` is an optional ``(N,)`` tensor of :math:`\|\psi_k\|_1` (only its
    entries on the support are read); by default they are computed.
    """
    eps = checks.real(eps, "eps", 0, low_open=True)
    K = checks.integer(K, "K", 1, transform.N)
    w, x = _torch(w, "w"), _torch(x, "x")
    if l1 is None:
        l1 = _support_l1(x, K, transform)
    c = transform.analysis(w)
    return eps * (c.abs() * S_K(x, K, transform) * _torch(l1, "l1")).sum(-1)


def linear_distortions(w, x, K: int, transform, eps: float = 1.0, l1=None) -> dict[str, torch.Tensor]:
    r"""All of Sec. IV's distortions for a batch of classifiers ``w`` and signals ``x``.

    Returns ``delta_0`` (:math:`\epsilon\|w\|_1`), ``z_k``, ``delta_sw``,
    ``delta_w`` and ``lemma1_bound``, each of shape ``(B,)``, computing
    :math:`\mathcal{P}_K(w, x)` once.
    """
    eps = checks.real(eps, "eps", 0, low_open=True)
    K = checks.integer(K, "K", 1, transform.N)
    w, x = _torch(w, "w"), _torch(x, "x")
    if l1 is None:
        l1 = _support_l1(x, K, transform)
    wf = _flat(w, transform)
    # P_K(w, x) of sparsenb.frontend, written out so that the coefficients
    # c_k = psi_k^T w and the support mask are computed once for all five
    # quantities (the tests check it against P_K)
    mask = S_K(x, K, transform)
    c = transform.analysis(w)
    p = _flat(transform.synthesis(c * mask), transform)
    z = (torch.sign(wf) * p).sum(-1)
    bound = (c.abs() * mask * _torch(l1, "l1")).sum(-1)
    return {
        "delta_0": eps * wf.abs().sum(-1),
        "z_k": z,
        "delta_sw": eps * z.abs(),
        "delta_w": eps * p.abs().sum(-1),
        "lemma1_bound": eps * bound,
    }


@dataclass(frozen=True)
class ZKMoments:
    r"""Exact moments of :math:`Z_K` over i.i.d. weights (Lemma 4), for one support.

    ``mean`` :math:`= K\mu`; ``var`` :math:`= K(\sigma^2+\mu^2) - 2\mu^2\sum_m
    (\sum_{k \in S}\psi_k[m]^2)^2`; ``var_bound`` :math:`= K(\sigma^2+\mu^2)`.
    """

    K: int
    mu: float
    sigma2: float
    mean: float
    var: float
    var_bound: float


def z_k_moments(transform, support, dist: str = "gaussian", batch: int = 256) -> ZKMoments:
    r"""Mean and variance of :math:`Z_K` in closed form (Lemma 4 of App. A).

    The paper's proof gives :math:`E[U_iV_i] = \mu`,
    :math:`\mathrm{var}(U_iV_i) = \sigma^2+\mu^2-2\mu^2\sum_m\psi_i^4[m]` and
    :math:`\mathrm{cov}(U_iV_i, U_jV_j) = -2\mu^2\sum_m\psi_i^2[m]\psi_j^2[m]`;
    summed over the support they give ``var`` exactly, which never exceeds
    the bound :math:`K(\sigma^2+\mu^2)`.
    """
    model = weight_model(dist)
    support = np.asarray(support, dtype=np.int64).ravel()
    K = len(support)
    if K == 0:
        raise checks.ArgumentError("support", "must hold at least one index")
    energy = torch.zeros(transform.N, dtype=torch.float64)  # sum_k psi_k[m]^2
    for chunk in np.array_split(support, max(1, math.ceil(K / batch))):
        energy += basis_functions(transform, chunk, batch).pow(2).sum(0)
    bound = K * (model.sigma2 + model.mu**2)
    var = bound - 2.0 * model.mu**2 * float(energy.pow(2).sum())
    return ZKMoments(K=K, mu=model.mu, sigma2=model.sigma2, mean=K * model.mu, var=var, var_bound=bound)


def chebyshev_bound(K, delta: float, dist: str = "gaussian") -> np.ndarray:
    r"""Eq. (6): :math:`\Pr(|Z_K/K - \mu| \le \delta) \ge 1 - (\sigma^2+\mu^2)/(K\delta^2)`, clipped at 0."""
    delta = checks.real(delta, "delta", 0, low_open=True)
    model = weight_model(dist)
    K = np.asarray(K, dtype=np.float64)
    if np.any(K < 1):
        raise checks.ArgumentError("K", f"must be >= 1, got {K}")
    return np.maximum(0.0, 1.0 - (model.sigma2 + model.mu**2) / (K * delta**2))
