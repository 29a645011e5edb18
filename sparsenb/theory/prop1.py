r"""Proposition 1: when the front end's support cannot move.

:math:`\lambda` is the smallest kept coefficient magnitude
(:func:`smallest_kept`), :math:`\gamma = 2\max_k\|\psi_k\|_1`. The paper's
condition :math:`\lambda/\epsilon > \gamma` (:func:`snr_condition`)
guarantees :math:`\mathcal{S}_K(x+e) = \mathcal{S}_K(x)` for exactly
:math:`K`-sparse :math:`x`; for any :math:`x` the same proof needs the gap
:math:`(\lambda_K - \lambda_{K+1})/\epsilon > \gamma`
(:func:`coefficient_gap`, :func:`gap_condition`). :func:`prop1_sweep` tests
both on images under three perturbations (:func:`prop1_perturbation`) and
measures :math:`|\mathcal{S}_K(x) \cap \mathcal{S}_K(x+e)|`
(:func:`sparsenb.frontend.support_overlap`).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import torch

from .. import checks
from ..frontend import P_K, S_K
from ._common import _progress, _torch
from .weights import make_rng

__all__ = [
    "smallest_kept",
    "coefficient_gap",
    "snr_condition",
    "gap_condition",
    "PROP1_KINDS",
    "prop1_perturbation",
    "prop1_sweep",
    "prop1_summary",
]

def smallest_kept(x, K: int, transform) -> torch.Tensor:
    r""":math:`\lambda`: magnitude of the smallest nonzero entry of :math:`\mathcal{H}_K(\Psi x)`."""
    K = checks.integer(K, "K", 1, transform.N)
    c = transform.analysis(_torch(x, "x"))
    return torch.topk(c.abs(), K, dim=-1).values.amin(-1)


def coefficient_gap(x, K: int, transform) -> torch.Tensor:
    r""":math:`\lambda_K - \lambda_{K+1}`: the K-th largest coefficient magnitude minus the next one.

    For an exactly :math:`K`-sparse :math:`x` it equals :math:`\lambda`
    (:math:`\lambda_{K+1} = 0`); for an approximately sparse one it is what
    protects the support (see :func:`gap_condition`). With ``K = N`` it is :math:`\lambda`.
    """
    K = checks.integer(K, "K", 1, transform.N)
    c = transform.analysis(_torch(x, "x")).abs()
    top = torch.topk(c, min(K + 1, transform.N), dim=-1).values
    return top[..., K - 1] - (top[..., K] if K < transform.N else 0.0)


def snr_condition(x, K: int, transform, eps: float, gamma: float) -> torch.Tensor:
    r"""Prop. 1's condition as the paper states it, :math:`\lambda/\epsilon > \gamma` (boolean per signal).

    Sufficient for :math:`\mathcal{S}_K(x+e) = \mathcal{S}_K(x)` when
    :math:`x` is exactly :math:`K`-sparse (the model of Sec. III-A): the
    proof bounds the coefficients outside the support by :math:`|\psi_j^Te|`
    alone. For approximately sparse data use :func:`gap_condition`.
    """
    eps = checks.real(eps, "eps", 0, low_open=True)
    gamma = checks.real(gamma, "gamma", 0, low_open=True)
    return smallest_kept(x, K, transform) / eps > gamma


def gap_condition(x, K: int, transform, eps: float, gamma: float) -> torch.Tensor:
    r"""Prop. 1's argument for any :math:`x`: :math:`(\lambda_K - \lambda_{K+1})/\epsilon > \gamma`.

    The proof of App. A with the coefficients outside the support kept:
    :math:`|\psi_i^T(x+e)| \ge \lambda_K - \epsilon\gamma/2 > \lambda_{K+1}
    + \epsilon\gamma/2 \ge |\psi_j^T(x+e)|` for :math:`i \in \mathcal{S}_K(x)`,
    :math:`j \notin`. It reduces to :func:`snr_condition` for exactly
    :math:`K`-sparse :math:`x`.
    """
    eps = checks.real(eps, "eps", 0, low_open=True)
    gamma = checks.real(gamma, "gamma", 0, low_open=True)
    return coefficient_gap(x, K, transform) / eps > gamma


PROP1_KINDS = ("random sign", "white box", "support")


def prop1_perturbation(kind: str, x, K: int, transform, eps: float, seed: int = 0) -> torch.Tensor:
    r"""A perturbation with :math:`\|e\|_\infty = \epsilon` of one of three kinds.

    * ``"random sign"``: :math:`e = \epsilon s`, :math:`s` i.i.d. :math:`\pm1`.
    * ``"white box"``: :math:`e_\mathrm{W} = \epsilon\,\mathrm{sgn}(\mathcal{P}_K(w, x))`,
      the optimal attack of Sec. IV-A on a random linear classifier :math:`w`
      (i.i.d. Gaussian, one per signal) that knows the front end.
    * ``"support"``: :math:`e = -\epsilon\,\mathrm{sgn}(\sum_{k\in\mathcal{S}_K(x)}
      \mathrm{sgn}(\psi_k^Tx)\psi_k)`, the sign vector that most reduces the
      :math:`\ell_1` mass of the kept coefficients: an attack on the support itself.

    ``x`` is ``(B, *transform.shape)`` (with a channel dimension for images).
    The same ``seed`` gives the same signs (and classifiers) for every
    transform, so that bases are compared on equal terms.
    """
    eps = checks.real(eps, "eps", 0, low_open=True)
    K = checks.integer(K, "K", 1, transform.N)
    x = _torch(x, "x")
    if kind not in PROP1_KINDS:
        raise checks.ArgumentError("kind", f"must be one of {PROP1_KINDS}, got {kind!r}")
    rng = make_rng(seed, "prop1", kind)
    if kind == "random sign":
        return eps * torch.from_numpy(rng.choice([-1.0, 1.0], size=tuple(x.shape)))
    if kind == "white box":
        w = torch.from_numpy(rng.standard_normal(tuple(x.shape)))
        return eps * torch.sign(P_K(w, x, K, transform))
    c = transform.analysis(x)
    return -eps * torch.sign(transform.synthesis(torch.sign(c) * S_K(x, K, transform)))


def prop1_sweep(
    images: torch.Tensor,
    transforms: dict,
    gammas: dict,
    K: int,
    epsilons: Sequence[float],
    kinds: Sequence[str] = PROP1_KINDS,
    seed: int = 0,
    progress: bool = False,
) -> pd.DataFrame:
    r"""Prop. 1 on real images: the conditions and the support overlap.

    ``transforms`` maps a label to an image transform and ``gammas`` the same
    labels to :math:`\gamma = 2\max_k\|\psi_k\|_1`. ``x + e`` is not clipped
    (the proposition has no box constraint). One row per ``(basis, eps,
    kind, image)``: ``lam`` (:math:`\lambda`), ``gap``
    (:math:`\lambda_K - \lambda_{K+1}`), ``condition`` (the paper's
    :math:`\lambda/\epsilon > \gamma`), ``gap_condition``, ``overlap``, and
    ``violated`` / ``gap_violated``: the condition holds but the support
    moved (the second must never happen).
    """
    x = _torch(images, "images")
    frames = []
    jobs = [(label, kind, eps) for label in transforms for kind in kinds for eps in epsilons]
    lam = {label: smallest_kept(x, K, t).reshape(len(x)) for label, t in transforms.items()}
    gap = {label: coefficient_gap(x, K, t).reshape(len(x)) for label, t in transforms.items()}
    support_x = {label: S_K(x, K, t) for label, t in transforms.items()}
    directions: dict = {}  # every kind is eps times a sign pattern that does not depend on eps
    for label, kind, eps in _progress(jobs, progress, desc="Prop. 1"):
        t = transforms[label]
        if (label, kind) not in directions:  # jobs are ordered by (label, kind): keep one direction at a time
            directions = {(label, kind): prop1_perturbation(kind, x, K, t, 1.0, seed)}
        e = checks.real(eps, "epsilons", 0, low_open=True) * directions[label, kind]
        # sparsenb.frontend.support_overlap(x, x + e, K, t), with S_K(x) computed once per basis
        overlap = (support_x[label] & S_K(x + e, K, t)).sum(-1).reshape(len(x)).numpy()
        gamma = checks.real(gammas[label], "gammas", 0, low_open=True)
        condition = (lam[label] / eps > gamma).numpy()
        gap_ok = (gap[label] / eps > gamma).numpy()
        frames.append(
            pd.DataFrame(
                {
                    "basis": label,
                    "gamma": gamma,
                    "eps": float(eps),
                    "kind": kind,
                    "image": np.arange(len(x)),
                    "lam": lam[label].numpy(),
                    "gap": gap[label].numpy(),
                    "condition": condition,
                    "gap_condition": gap_ok,
                    "overlap": overlap,
                    "violated": condition & (overlap < K),
                    "gap_violated": gap_ok & (overlap < K),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def prop1_summary(sweep: pd.DataFrame, K: int) -> pd.DataFrame:
    """Per ``(basis, eps, kind)``: shares meeting each condition, share with the support unmoved, mean overlap / K, violations."""
    g = sweep.groupby(["basis", "eps", "kind"], sort=False)
    return g.agg(
        condition_share=("condition", "mean"),
        gap_condition_share=("gap_condition", "mean"),
        unmoved_share=("overlap", lambda o: float(np.mean(o == K))),
        mean_overlap_share=("overlap", lambda o: float(np.mean(o)) / K),
        violated_share=("violated", "mean"),
        gap_violations=("gap_violated", "sum"),
        n=("overlap", "size"),
    ).reset_index()
