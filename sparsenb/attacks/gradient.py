r"""Gradient attacks on networks: the locally linear attacks of the paper (Sec. V-D, V-E), FGSM, I-FGSM, MI-FGSM and PGD.

Through a defended model ``nn.Sequential(frontend, classifier)`` the
gradients follow the front end's ``gradient`` setting (``bpda``,
``projection``, ``iterated``), so each attack works with all three.
"""
from __future__ import annotations

import math

import torch

from .. import checks
from .base import _ce_grad, _eps, _finish, _image_seeds, _logits, _network_inputs, _project, _step, _steps
from .registry import register

__all__ = ["locally_linear", "iterative_locally_linear", "fgsm", "ifgsm", "mifgsm", "pgd"]


# --------------------------------------------------------------------------
# networks: locally linear attacks (Sec. V-D, V-E)
# --------------------------------------------------------------------------
def _only_class(y: torch.Tensor) -> int | None:
    """The one class of labels ``y`` when they are all the same (then it is nobody's wrong class), else None: one host sync."""
    return int(y[0]) if len(y) and bool((y == y[0]).all()) else None


def _margin_gradients(model, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Logits ``(B, L)`` and the input gradients of the margins ``z_i - z_t`` ``(L, B, C, H, W)``.

    Row i is :math:`w_{eq}^{\{i\}} - w_{eq}^{\{t\}}` (zero where i = t). Each
    margin is differentiated as one objective, so a front end with
    ``gradient="iterated"`` refines its support along the margin's own
    gradient (for ``bpda`` and ``projection``, linear backward passes, this is
    the difference of the per-class gradients).
    """
    x_ = x.detach().clone().requires_grad_(True)
    only = _only_class(y)
    with torch.enable_grad():
        z = _logits(model, x_)
        b = torch.arange(len(x), device=x.device)
        z_true = z[b, y]
        rows = []
        L = z.shape[1]
        for i in range(L):
            if i == only:  # no image has a wrong class i
                rows.append(torch.zeros_like(x))
                continue
            (g,) = torch.autograd.grad((z[:, i] - z_true).sum(), x_, retain_graph=i + 1 < L, allow_unused=True)
            rows.append(torch.zeros_like(x) if g is None else g)
    return z.detach(), torch.stack(rows)


def _locally_linear_step(model, x_cur: torch.Tensor, y: torch.Tensor, x: torch.Tensor, budget: float, eps: float):
    """One locally linear step of size ``budget`` from ``x_cur``, kept in the eps-ball around ``x``.

    For every wrong class i: candidate ``x_cur + budget * sgn(grad(y_i - y_t))``;
    keep the candidate with the largest margin ``y_i - y_t`` after the step.
    Returns the step and whether its gradients were finite (a 0-d bool tensor).
    """
    z, G = _margin_gradients(model, x_cur, y)
    finite = torch.isfinite(G).all()
    B, L = z.shape
    b = torch.arange(B, device=x.device)
    best = x_cur.clone()
    best_margin = torch.full((B,), -math.inf, device=x.device, dtype=z.dtype)
    only = _only_class(y)
    for i in range(L):
        if i == only:  # no image has a wrong class i
            continue
        wrong = y != i
        cand = _project(x_cur + budget * torch.sign(G[i]), x, eps)
        with torch.no_grad():
            zc = _logits(model, cand)
        margin = torch.where(wrong, zc[:, i] - zc[b, y], torch.full_like(zc[:, 0], -math.inf))
        better = margin > best_margin
        best[better] = cand[better]
        best_margin = torch.where(better, margin, best_margin)
    return best, finite


@register("locally_linear")
def locally_linear(model, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
    r"""Locally linear attack (Sec. V-E): the worst pair over the :math:`L-1` wrong classes.

    For each wrong class :math:`i`, :math:`e_i = \epsilon\,\mathrm{sgn}
    (w_{eq}^{\{i\}} - w_{eq}^{\{t\}})` with :math:`w_{eq}` the input gradients
    of the logits at ``x`` (exact for ReLU networks; through the front end
    they follow its ``gradient`` setting); the adversary keeps the
    :math:`e_i` with the largest :math:`y_i(x + e_i) - y_t(x + e_i)`. For a
    binary model this is FGSM; for a linear model with a front end using
    ``gradient="projection"`` and ``clip=False`` it is :func:`~sparsenb.attacks.linear.white_box`.
    """
    eps = _eps(eps)
    x, y = _network_inputs(model, x, y)
    if eps == 0 or not len(x):
        return x.clone()
    x_adv, finite = _locally_linear_step(model, x, y, x, eps, eps)
    checks.finite_gradient(finite)
    return _finish(x_adv, x, eps)


@register("iterative_locally_linear")
def iterative_locally_linear(model, x: torch.Tensor, y: torch.Tensor, eps: float, step: float, steps: int) -> torch.Tensor:
    r"""Iterative locally linear attack (Sec. V-D): :math:`e_{k+1} = \mathrm{clip}_\epsilon(e_k + A(x + e_k, \delta))`.

    Each of the ``steps`` iterations takes one :func:`locally_linear` step of
    size :math:`\delta` = ``step`` from the current iterate (re-linearising the
    network and re-choosing the worst class), then projects onto the
    :math:`\epsilon`-ball and the box. (The authors' release applied the
    step twice per iteration; this does not.)
    """
    eps, step, steps = _eps(eps), _step(step), _steps(steps)
    x, y = _network_inputs(model, x, y)
    if eps == 0 or steps == 0 or not len(x):
        return x.clone()
    x_adv = x.clone()
    finite = torch.ones((), dtype=torch.bool, device=x.device)  # checked once, after the loop
    for _ in range(steps):
        x_adv, ok = _locally_linear_step(model, x_adv, y, x, step, eps)
        finite &= ok
    checks.finite_gradient(finite)
    return _finish(x_adv, x, eps)


# --------------------------------------------------------------------------
# networks: gradient-sign attacks
# --------------------------------------------------------------------------
@register("fgsm")
def fgsm(model, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
    r"""FGSM (Goodfellow et al.): :math:`x + \epsilon\,\mathrm{sgn}\nabla_x J(x, y)`, cross-entropy :math:`J`."""
    eps = _eps(eps)
    x, y = _network_inputs(model, x, y)
    if eps == 0 or not len(x):
        return x.clone()
    g = checks.finite_gradient(_ce_grad(model, x, y))
    return _finish(_project(x + eps * torch.sign(g), x, eps), x, eps)


@register("ifgsm")
def ifgsm(
    model, x: torch.Tensor, y: torch.Tensor, eps: float, step: float, steps: int, *, callback=None
) -> torch.Tensor:
    r"""Iterative FGSM (Kurakin et al.): ``steps`` FGSM steps of size ``step``, projected each time.

    ``callback(k, x_adv)``, if given, is called after step ``k`` = 1..``steps``
    with the current iterate (which is what a run of ``k`` steps returns), to
    record accuracies or switch flips along one long run.
    """
    eps, step, steps = _eps(eps), _step(step), _steps(steps)
    callback = checks.function(callback, "callback", optional=True)
    x, y = _network_inputs(model, x, y)
    if eps == 0 or steps == 0 or not len(x):
        return x.clone()
    x_adv = x.clone()
    finite = torch.ones((), dtype=torch.bool, device=x.device)  # checked once, after the loop
    for k in range(1, steps + 1):
        g = _ce_grad(model, x_adv, y)
        finite &= torch.isfinite(g).all()
        x_adv = _project(x_adv + step * torch.sign(g), x, eps)
        if callback is not None:
            callback(k, x_adv.detach())
    checks.finite_gradient(finite)
    return _finish(x_adv, x, eps)


@register("mifgsm")
def mifgsm(
    model, x: torch.Tensor, y: torch.Tensor, eps: float, step: float, steps: int, decay: float = 1.0
) -> torch.Tensor:
    r"""Momentum iterative FGSM (Dong et al.): :math:`g \leftarrow \mu g + \nabla / \|\nabla\|_1`.

    The gradient is normalised by its :math:`\ell_1` norm *per image*;
    :math:`\mu` = ``decay`` (1.0 in the paper).
    """
    eps, step, steps = _eps(eps), _step(step), _steps(steps)
    decay = checks.real(decay, "decay", 0.0)
    x, y = _network_inputs(model, x, y)
    if eps == 0 or steps == 0 or not len(x):
        return x.clone()
    x_adv = x.clone()
    g = torch.zeros_like(x)
    finite = torch.ones((), dtype=torch.bool, device=x.device)  # checked once, after the loop
    for _ in range(steps):
        grad = _ce_grad(model, x_adv, y)
        finite &= torch.isfinite(grad).all()
        norm = grad.abs().flatten(1).sum(1).clamp_min(torch.finfo(x.dtype).tiny).reshape(-1, 1, 1, 1)
        g = decay * g + grad / norm
        x_adv = _project(x_adv + step * torch.sign(g), x, eps)
    checks.finite_gradient(finite)
    return _finish(x_adv, x, eps)


def _uniform_start(x: torch.Tensor, eps: float, seeds: list[int], restart: int) -> torch.Tensor:
    noise = torch.empty_like(x, device="cpu")
    for i, s in enumerate(seeds):
        g = torch.Generator().manual_seed((s + 1_000_003 * restart) % (2**63))
        noise[i] = torch.rand(x.shape[1:], generator=g, dtype=x.dtype) * (2 * eps) - eps
    return _project(x + noise.to(x.device), x, eps)


@register("pgd")
def pgd(
    model,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    step: float,
    steps: int,
    restarts: int = 1,
    seed: int = 0,
    max_batch: int | None = None,
) -> torch.Tensor:
    r"""PGD (Madry et al.) with a uniform random start and ``restarts`` restarts.

    Each restart starts uniformly in the :math:`\epsilon`-ball and takes
    ``steps`` projected sign-gradient steps of size ``step`` on the
    cross-entropy. An image counts as robust only if it survives every
    restart: the returned image is the first restart's result that the model
    misclassifies, else the last restart's. Restart ``r`` of an image is the
    same whatever the batch and whatever the total number of restarts, so
    more restarts never raise accuracy.

    Settled work is skipped: an image already fooled is attacked no more (its
    outcome cannot change). The next restarts of the images still standing
    are stacked into one pass of up to ``max_batch`` rows (default
    ``len(x)``, so a pass is never larger than the caller's batch): with
    ``n`` images standing, ``max(1, max_batch // n)`` restarts run side by
    side, and each image keeps its first fooling restart in order, so the
    result is the one-restart-at-a-time result exactly (a stacked restart
    after an image's first fooling one is wasted work, never a different
    answer).
    """
    eps, step, steps = _eps(eps), _step(step), _steps(steps)
    restarts = checks.integer(restarts, "restarts", 1)
    seed = checks.seed(seed)
    max_batch = None if max_batch is None else checks.integer(max_batch, "max_batch", 1)
    x, y = _network_inputs(model, x, y)
    if eps == 0 or not len(x):
        return x.clone()
    max_batch = max_batch or len(x)
    seeds = _image_seeds(x, seed)
    finite = torch.ones((), dtype=torch.bool, device=x.device)  # checked once, after the loops
    best = x.clone()
    alive = torch.ones(len(x), dtype=torch.bool, device=x.device)  # not fooled yet
    r = 0
    while r < restarts:
        idx = alive.nonzero().flatten()
        n = len(idx)
        if n == 0:
            break
        stack = max(1, min(restarts - r, max_batch // n))  # restarts r, ..., r + stack - 1 side by side
        xs, own = x[idx], [seeds[i] for i in idx.tolist()]
        xi, yi = xs.repeat(stack, 1, 1, 1), y[idx].repeat(stack)  # restart-major rows
        x_adv = torch.cat([_uniform_start(xs, eps, own, r + s) for s in range(stack)])
        for _ in range(steps):
            g = _ce_grad(model, x_adv, yi)
            finite &= torch.isfinite(g).all()
            x_adv = _project(x_adv + step * torch.sign(g), xi, eps)
        with torch.no_grad():
            fooled = (_logits(model, x_adv).argmax(1) != yi).reshape(stack, n)
        x_adv = x_adv.reshape(stack, n, *x.shape[1:])
        hit = fooled.any(0)
        first = torch.where(hit, fooled.int().argmax(0), stack - 1)  # first fooling restart, else the last run
        best[idx] = x_adv[first, torch.arange(n, device=x.device)]
        alive[idx[hit]] = False
        r += stack
    checks.finite_gradient(finite)
    return _finish(best, x, eps)
