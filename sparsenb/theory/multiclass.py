r"""Sec. V-E: multiclass FGSM through the locally linear model.

With :math:`L` logits :math:`y_i = w_\mathrm{eq}^{\{i\}T}x - b_\mathrm{eq}^{\{i\}}`,
:math:`p = \mathrm{softmax}(y)` and the cross-entropy :math:`J = -\log p_t`,

.. math:: e_\mathrm{FGSM} = \epsilon\,\mathrm{sgn}\Big(w_\mathrm{eq}^{\{t\}}(p_t - 1)
          + \sum_{k\ne t} w_\mathrm{eq}^{\{k\}}p_k\Big),

while the locally linear attack spends the whole budget on the one wrong
class with the largest first-order margin. :func:`fgsm_comparison` sets the
two side by side on a network.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from .. import checks
from ._common import _torch
from .networks import equivalent_linear

__all__ = ["fgsm_direction", "fgsm_direction_from_w_eq", "worst_pair_perturbation", "fgsm_comparison"]

def fgsm_direction(net: nn.Sequential, x, t) -> torch.Tensor:
    r""":math:`\mathrm{sgn}(\nabla_x J)` for the cross-entropy :math:`J = -\log p_t`, by autograd."""
    x = _torch(x, "x").detach().requires_grad_(True)
    logits = net(x)
    t = checks.labels(t, "t", len(x), logits.shape[1])
    (g,) = torch.autograd.grad(F.cross_entropy(logits, t, reduction="sum"), x)
    return torch.sign(g)


def fgsm_direction_from_w_eq(W_eq: torch.Tensor, logits: torch.Tensor, t, return_gradient: bool = False):
    r"""Sec. V-E: :math:`\mathrm{sgn}\big(w_\mathrm{eq}^{\{t\}}(p_t - 1) + \sum_{k\ne t} w_\mathrm{eq}^{\{k\}}p_k\big)`.

    ``W_eq`` ``(B, L, N)`` from :func:`~sparsenb.theory.networks.equivalent_linear`, ``logits`` ``(B, L)``
    (:math:`p = \mathrm{softmax}(y)`), ``t`` the true labels. With
    ``return_gradient`` also returns the vector inside the sign.
    """
    B, L, _ = W_eq.shape
    t = checks.labels(t, "t", B, L)
    p = torch.softmax(logits.to(torch.float64), dim=1)
    rows = torch.arange(B)
    w_t = W_eq[rows, t]  # (B, N)
    others = (W_eq * p[..., None]).sum(1) - W_eq[rows, t] * p[rows, t][:, None]
    g = w_t * (p[rows, t] - 1.0)[:, None] + others
    return (torch.sign(g), g) if return_gradient else torch.sign(g)


def worst_pair_perturbation(W_eq: torch.Tensor, logits: torch.Tensor, t, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The (one-step, semi-white box) locally linear attack of Sec. V-E.

    For each wrong class :math:`i`, the first-order margin after the attack
    :math:`\epsilon\,\mathrm{sgn}(w_\mathrm{eq}^{\{i\}} - w_\mathrm{eq}^{\{t\}})`
    is :math:`y_i - y_t + \epsilon\|w_\mathrm{eq}^{\{i\}} - w_\mathrm{eq}^{\{t\}}\|_1`;
    the attack spends its budget on the worst-case pair. Returns ``(e, i*)``.
    It is the perturbation of :func:`sparsenb.attacks.gradient.locally_linear` (one
    step, no clipping to the image box) computed from :math:`W_\mathrm{eq}`.
    """
    eps = checks.real(eps, "eps", 0, low_open=True)
    B, L, _ = W_eq.shape
    t = checks.labels(t, "t", B, L)
    rows = torch.arange(B)
    diff = W_eq - W_eq[rows, t][:, None]
    gain = logits - logits[rows, t][:, None] + eps * diff.abs().sum(-1)
    gain[rows, t] = -math.inf
    best = gain.argmax(1)
    return eps * torch.sign(diff[rows, best]), best


def fgsm_comparison(net: nn.Sequential, x, eps: float, t=None) -> pd.DataFrame:
    r"""FGSM two ways (autograd and Sec. V-E's expression) and against the locally linear attack.

    ``t`` defaults to the network's own prediction (the adversary knows the
    label). Per image: ``p_t``; ``sign_agreement`` (share of pixels where the
    two FGSM directions agree, among pixels with a nonzero gradient);
    ``grad_rel_err`` (relative difference between the autograd gradient of
    :math:`J` and :math:`W_\mathrm{eq}^T(p - 1_t)`); the first-order increase of
    the worst margin :math:`\max_{i\ne t} y_i - y_t` for FGSM (``gain_fgsm``) and
    the locally linear attack (``gain_ll``, the first-order optimum); and the
    true margins after each attack (``margin_fgsm``, ``margin_ll``; > 0 means
    the label changed); ``gain_ratio`` = ``gain_fgsm / gain_ll`` (at most 1).
    """
    eps = checks.real(eps, "eps", 0, low_open=True)
    x = _torch(x, "x")
    W_eq, b_eq = equivalent_linear(net, x)
    with torch.no_grad():
        logits = net(x)
    B, L, _ = W_eq.shape
    t = logits.argmax(1) if t is None else checks.labels(t, "t", B, L)
    rows = torch.arange(B)
    sign_ll, g_ll = fgsm_direction_from_w_eq(W_eq, logits, t, return_gradient=True)
    xr = x.detach().clone().requires_grad_(True)
    (g_auto,) = torch.autograd.grad(F.cross_entropy(net(xr), t, reduction="sum"), xr)
    nonzero = g_auto.abs() > 1e-12 * g_auto.abs().amax(1, keepdim=True)
    agree = ((torch.sign(g_auto) == sign_ll) | ~nonzero).double().mean(1)
    rel = (g_auto - g_ll).norm(dim=1) / g_auto.norm(dim=1).clamp_min(1e-300)

    def first_order_worst(e):
        margin = logits - logits[rows, t][:, None] + torch.einsum("bln,bn->bl", W_eq - W_eq[rows, t][:, None], e)
        margin[rows, t] = -math.inf
        return margin.amax(1)

    def true_worst(e):
        with torch.no_grad():
            y = net(x + e)
        m = y - y[rows, t][:, None]
        m[rows, t] = -math.inf
        return m.amax(1)

    base = logits - logits[rows, t][:, None]
    base[rows, t] = -math.inf
    base = base.amax(1)
    e_f = eps * sign_ll
    e_ll, _ = worst_pair_perturbation(W_eq, logits, t, eps)
    p = torch.softmax(logits, 1)
    return pd.DataFrame(
        {
            "image": np.arange(B),
            "t": t.numpy(),
            "p_t": p[rows, t].numpy(),
            "sign_agreement": agree.numpy(),
            "grad_rel_err": rel.numpy(),
            "gain_fgsm": (first_order_worst(e_f) - base).numpy(),
            "gain_ll": (first_order_worst(e_ll) - base).numpy(),
            "margin_fgsm": true_worst(e_f).numpy(),
            "margin_ll": true_worst(e_ll).numpy(),
        }
    ).assign(gain_ratio=lambda d: d["gain_fgsm"] / d["gain_ll"])
