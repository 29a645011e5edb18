r"""The Carlini-Wagner :math:`\ell_2` attack (untargeted), as CleverHans 2.1 runs it (App. B, Fig. 12)."""
from __future__ import annotations

import math

import torch

from .. import checks
from .base import _logits, _network_inputs, _steps, check_adversarial
from .registry import register

__all__ = ["carlini_wagner_l2"]


@register("carlini_wagner_l2")
def carlini_wagner_l2(
    model,
    x: torch.Tensor,
    y: torch.Tensor,
    confidence: float = 0.0,
    learning_rate: float = 5e-3,
    binary_search_steps: int = 5,
    max_iterations: int = 1000,
    initial_const: float = 1e-2,
    abort_early: bool = True,
) -> torch.Tensor:
    r"""Carlini-Wagner :math:`\ell_2` attack (untargeted), CleverHans 2.1's defaults.

    Minimises :math:`\|x' - x\|_2^2 + c\,\max(Z_t(x') - \max_{i \ne t} Z_i(x'),
    -\kappa)` over :math:`x' = (\tanh w + 1)/2` with Adam, and binary-searches
    the constant :math:`c` per image. Returns, per image, the adversarial
    example of smallest :math:`\ell_2` distance found, or ``x`` itself if none
    was found. It has no :math:`\ell_\infty` budget: only the [0, 1] box is
    checked. :math:`\kappa` = ``confidence``.

    Every image is optimised as if alone, as CleverHans 2.1 does with its
    default ``batch_size=1``: with ``abort_early`` an image stops (and keeps
    its iterate) once its own loss has not fallen by 0.01% over a tenth of
    ``max_iterations``, so a batch gives each image the result it gets alone;
    only the images still optimising are evaluated.
    """
    confidence = checks.real(confidence, "confidence", 0.0)
    learning_rate = checks.real(learning_rate, "learning_rate", 0.0, low_open=True)
    binary_search_steps = _steps(binary_search_steps, "binary_search_steps")
    max_iterations = _steps(max_iterations, "max_iterations")
    initial_const = checks.real(initial_const, "initial_const", 0.0, low_open=True)
    abort_early = checks.flag(abort_early, "abort_early")
    x, y = _network_inputs(model, x, y)
    if not len(x):
        return x.clone()
    B = len(x)
    dev, dt = x.device, x.dtype
    lower = torch.zeros(B, device=dev, dtype=dt)
    upper = torch.full((B,), 1e10, device=dev, dtype=dt)
    const = torch.full((B,), float(initial_const), device=dev, dtype=dt)
    best_l2 = torch.full((B,), math.inf, device=dev, dtype=dt)
    best = x.clone()
    x_in = x.clamp(1e-6, 1 - 1e-6)
    w0 = torch.atanh(2 * x_in - 1)
    b = torch.arange(B, device=dev)

    def margin(z, t):  # Z_t - max_{i != t} Z_i
        rows = torch.arange(len(t), device=dev)
        other = z.clone()
        other[rows, t] = -math.inf
        return z[rows, t] - other.max(1).values

    check_every = max(1, max_iterations // 10)
    finite = torch.ones((), dtype=torch.bool, device=dev)  # checked once, at the end
    for _ in range(binary_search_steps):
        w = w0.clone().requires_grad_(True)
        opt = torch.optim.Adam([w], lr=learning_rate)
        success = torch.zeros(B, dtype=torch.bool, device=dev)
        active = torch.ones(B, dtype=torch.bool, device=dev)  # images still optimising
        idx = b  # their indices: only they are evaluated (they change at the stall checks only), so a
        # stopped image's row of w, which Adam's momentum still moves, is never read again in this search step
        prev = torch.full((B,), 1e6, device=dev, dtype=dt)  # CleverHans starts from 1e6
        for it in range(max_iterations):
            with torch.enable_grad():
                x_adv = (torch.tanh(w[idx]) + 1) / 2
                l2 = (x_adv - x[idx]).pow(2).flatten(1).sum(1)
                m = margin(_logits(model, x_adv), y[idx])
                loss_each = l2 + const[idx] * torch.clamp(m, min=-confidence)
                (w.grad,) = torch.autograd.grad(loss_each.sum(), w)  # w only: no .grad on the model; 0 off idx
            finite &= torch.isfinite(w.grad).all()
            opt.step()
            check = abort_early and it % check_every == 0
            with torch.no_grad():
                keep = torch.ones(len(idx), dtype=torch.bool, device=dev)
                if check:
                    # as CleverHans: an image that stalls stops before this iterate is recorded
                    keep = loss_each.detach() <= 0.9999 * prev[idx]
                    prev[idx[keep]] = loss_each.detach()[keep]
                    active[idx[~keep]] = False
                fooled = keep & (m < -confidence if confidence > 0 else m < 0)
                improve = fooled & (l2 < best_l2[idx])
                best_l2[idx[improve]] = l2[improve]
                best[idx[improve]] = x_adv.detach()[improve]
                success[idx[fooled]] = True
            if check:
                idx = active.nonzero().flatten()
                if not len(idx):
                    break
        # binary search on c, per image
        upper = torch.where(success, torch.minimum(upper, const), upper)
        lower = torch.where(success, lower, torch.maximum(lower, const))
        const = torch.where(upper < 1e9, (lower + upper) / 2, const * 10)
    checks.finite_gradient(finite)
    return check_adversarial(best.clamp(0.0, 1.0).detach(), x, None)
