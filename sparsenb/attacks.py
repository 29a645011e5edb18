r"""Adversarial attacks as plain functions: explicit arguments in, adversarial images out.

Conventions shared by every attack:

* ``x`` is a batch ``(B, C, H, W)`` in [0, 1]; ``y`` the true labels, int64
  ``(B,)``. For binary models (one logit, class 1 when it is positive) the
  labels are 0/1 and the logit ``z`` is read as the two-class logits
  ``(0, z)``, so the multiclass formulas apply unchanged.
* ``eps`` is the :math:`\ell_\infty` budget in [0, 1] pixel units. Every
  returned batch lies in the :math:`\epsilon`-ball around ``x`` and in the
  [0, 1] box; :func:`check_adversarial` verifies this at run time before
  any attack returns. ``eps = 0`` returns a copy of ``x``, an empty batch an
  empty batch. Inputs are never modified, and no ``.grad`` is left on the
  model's parameters: gradients are taken with respect to the attack's own
  variable only.
* Arguments are checked once per call by :mod:`sparsenb.checks` (one
  :class:`~sparsenb.checks.ArgumentError` naming the argument): labels must
  be classes of the model (0/1 for binary models and the linear attacks),
  and an input gradient with NaN or infinity raises
  :class:`~sparsenb.checks.GradientError` instead of becoming a zero step.
* ``model`` maps images to logits and is used as it is (put it in ``eval()``
  mode first). A defended model is ``nn.Sequential(frontend, classifier)``;
  how gradients pass the front end (``bpda``, ``projection``, ``iterated``)
  is the front end's ``gradient`` setting, so every gradient attack works
  with all three.
* Randomness (PGD's start) is seeded per image from ``seed`` and the image's
  content, so a batch gives the same result per image as one image at a time.

Linear classifiers (Sec. IV, VI-A), with :math:`g(x) = w^T x + b`:
:func:`semi_white_box`, :func:`white_box`, :func:`iterated_white_box`.
Networks (Sec. V-D, V-E, VI-B): :func:`locally_linear`,
:func:`iterative_locally_linear`, :func:`fgsm`, :func:`ifgsm`,
:func:`mifgsm`, :func:`pgd`, :func:`carlini_wagner_l2`.
"""
from __future__ import annotations

import hashlib
import math

import torch
import torch.nn.functional as F

from . import checks
from .frontend import SparsifyingFrontEnd

__all__ = [
    "AttackCheckError",
    "check_adversarial",
    "semi_white_box",
    "white_box",
    "iterated_white_box",
    "locally_linear",
    "iterative_locally_linear",
    "fgsm",
    "ifgsm",
    "mifgsm",
    "pgd",
    "carlini_wagner_l2",
    "two_class_logits",
]


class AttackCheckError(AssertionError):
    """An attack produced an image outside the epsilon-ball or the [0, 1] box."""


# --------------------------------------------------------------------------
# checks and small helpers
# --------------------------------------------------------------------------
def check_adversarial(x_adv: torch.Tensor, x: torch.Tensor, eps: float | None) -> torch.Tensor:
    """Raise :class:`AttackCheckError` unless ``x_adv`` lies in [0, 1] and within ``eps`` of ``x``.

    ``eps=None`` checks the box only (for unbounded attacks such as C&W).
    The tolerance is a few rounding errors of the dtype. An empty batch passes.
    """
    checks.tensor(x_adv, "x_adv")
    checks.images(x, "x", scan=False)
    if eps is not None:
        eps = checks.real(eps, "eps", 0.0, 1.0)
    if x_adv.shape != x.shape:
        raise AttackCheckError(f"x_adv has shape {tuple(x_adv.shape)}, x has {tuple(x.shape)}")
    if not x_adv.numel():
        return x_adv
    if not bool(torch.isfinite(x_adv).all()):
        raise AttackCheckError("x_adv contains NaN or infinite values")
    lo, hi = float(x_adv.min()), float(x_adv.max())
    if lo < 0.0 or hi > 1.0:
        raise AttackCheckError(f"x_adv leaves the [0, 1] box: values in [{lo}, {hi}]")
    if eps is not None:
        tol = 8 * torch.finfo(x.dtype).eps
        dist = float((x_adv - x).abs().max())
        if dist > eps + tol:
            raise AttackCheckError(f"x_adv leaves the eps-ball: ||x_adv - x||_inf = {dist} > eps = {eps}")
    return x_adv


def _eps(eps) -> float:
    return checks.real(eps, "eps", 0.0, 1.0)


def _step(step, name: str = "step") -> float:
    return checks.real(step, name, 0.0, 1.0, low_open=True)


def _steps(steps, name: str = "steps") -> int:
    return checks.integer(steps, name, 0)


def _classes(model, x: torch.Tensor) -> int:
    """The number of classes of ``model``, from its logits on one image (a single logit: two classes)."""
    with torch.no_grad():
        z = model(x[:1])
    if not isinstance(z, torch.Tensor) or not z.is_floating_point() or z.dim() not in (1, 2) or len(z) != 1:
        raise checks.fail("model", "a function of images (B, C, H, W) returning logits (B,) or (B, L)", z)
    return max(2, z.shape[1] if z.dim() == 2 else 1)


def _network_inputs(model, x, y) -> tuple[torch.Tensor, torch.Tensor]:
    """Check ``model``, ``x`` and ``y`` (classes of the model); return ``x`` detached and ``y``."""
    checks.function(model, "model")
    x = checks.images(x, "x").detach()
    y = checks.labels(y, "y", len(x), device=x.device)
    if len(x):
        checks.labels(y, "y", classes=_classes(model, x))
    return x, y


def _frontend(frontend) -> SparsifyingFrontEnd:
    if not isinstance(frontend, SparsifyingFrontEnd):
        raise checks.fail("frontend", "a SparsifyingFrontEnd", frontend)
    return frontend


def _linear_inputs(w, x, y, frontend=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Check the linear attacks' ``w``, ``x`` (for ``frontend`` if given) and ``y`` (0/1); return ``w`` as an image, ``x``, ``y``."""
    size = None if frontend is None else frontend.image_size
    x = checks.images(x, "x", None if frontend is None else frontend.channels, size).detach()
    y = checks.labels(y, "y", len(x), classes=2, device=x.device)
    checks.tensor(w, "w", floating=True)
    if w.numel() != math.prod(x.shape[1:]):
        raise checks.ArgumentError(
            "w", f"must hold one weight per pixel, as an image {tuple(x.shape[1:])}, got shape {tuple(w.shape)}"
        )
    checks.finite(w, "w")
    return w.detach().to(x.device, x.dtype).reshape(x.shape[1:]), x, y


def _project(x_adv: torch.Tensor, x: torch.Tensor, eps: float) -> torch.Tensor:
    """Project onto the eps-ball around x, then onto the [0, 1] box."""
    return torch.minimum(torch.maximum(x_adv, x - eps), x + eps).clamp_(0.0, 1.0)


def two_class_logits(z: torch.Tensor) -> torch.Tensor:
    """Logits ``(B, L)``; a binary model's single logit ``z`` becomes ``(0, z)``."""
    if not isinstance(z, torch.Tensor) or not z.is_floating_point() or z.dim() not in (1, 2):
        raise checks.fail("z", "a floating tensor of logits (B,) or (B, L)", z)
    if z.dim() == 1:
        z = z[:, None]
    if z.shape[-1] == 1:
        return torch.cat([torch.zeros_like(z), z], dim=-1)
    return z


def _logits(model, x) -> torch.Tensor:
    return two_class_logits(model(x))


def _grad(model, x: torch.Tensor, objective) -> torch.Tensor:
    """Gradient of ``objective(logits).sum()`` with respect to the input."""
    x_ = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        (g,) = torch.autograd.grad(objective(_logits(model, x_)).sum(), x_)
    return g


def _ce_grad(model, x, y):
    y = y.long()  # cross_entropy needs int64 class indices; checks.labels accepts int32 too
    return _grad(model, x, lambda z: F.cross_entropy(z, y, reduction="none"))


def _finish(x_adv, x, eps):
    return check_adversarial(x_adv.detach(), x, eps)


# --------------------------------------------------------------------------
# linear classifiers (Sec. IV-A and VI-A)
# --------------------------------------------------------------------------
def _against_true_class(y: torch.Tensor, dtype) -> torch.Tensor:
    """+1 for class 0 (push g up), -1 for class 1 (push g down), shaped to broadcast."""
    return (1.0 - 2.0 * y.to(dtype)).reshape(-1, 1, 1, 1)


def semi_white_box(w: torch.Tensor, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
    r"""Semi-white box: :math:`e = \epsilon\,\mathrm{sgn}(w)`, pushed against the true class.

    The adversary knows the linear classifier :math:`g(x) = w^T x + b` (``w``
    as an image ``(C, H, W)``) but not the front end. Class 1 is
    :math:`g > 0`, so images of class 1 get :math:`-e` and of class 0 get
    :math:`+e`. Without clipping the output moves by :math:`\epsilon\|w\|_1`
    (Eq. 2); the [0, 1] box can only reduce that.
    """
    eps = _eps(eps)
    w, x, y = _linear_inputs(w, x, y)
    if eps == 0 or not len(x):
        return x.clone()
    d = torch.sign(w).expand_as(x)
    return _finish(_project(x + eps * _against_true_class(y, x.dtype) * d, x, eps), x, eps)


def white_box(w: torch.Tensor, x: torch.Tensor, y: torch.Tensor, eps: float, frontend) -> torch.Tensor:
    r"""White box: :math:`e = \epsilon\,\mathrm{sgn}(\mathcal{P}_K(w, x))`, against the true class.

    The adversary knows the classifier and the front end
    (:class:`~sparsenb.frontend.SparsifyingFrontEnd`); at high SNR the output
    moves by :math:`\epsilon\|\mathcal{P}_K(w, x)\|_1` (Sec. IV-A).
    """
    eps = _eps(eps)
    w, x, y = _linear_inputs(w, x, y, _frontend(frontend))
    if eps == 0 or not len(x):
        return x.clone()
    d = torch.sign(frontend.project(w.expand_as(x), x))
    return _finish(_project(x + eps * _against_true_class(y, x.dtype) * d, x, eps), x, eps)


def iterated_white_box(
    w: torch.Tensor, x: torch.Tensor, y: torch.Tensor, eps: float, frontend, step: float, steps: int
) -> torch.Tensor:
    r"""Iterated white box (Sec. VI-A): refine the support from the current iterate.

    :math:`e^{[i+1]} = \mathrm{clip}_\epsilon\big(e^{[i]} + \delta\,
    \mathrm{sgn}\,\mathcal{P}_K(w, x + e^{[i]})\big)`, :math:`e^{[0]} = 0`,
    :math:`\delta` = ``step`` :math:`\le \epsilon`, against the true class,
    with :math:`x + e` kept in [0, 1] at every step.
    """
    eps, step, steps = _eps(eps), _step(step), _steps(steps)
    w, x, y = _linear_inputs(w, x, y, _frontend(frontend))
    if eps == 0 or steps == 0 or not len(x):
        return x.clone()
    s = _against_true_class(y, x.dtype)
    wb = w.expand_as(x)
    x_adv = x.clone()
    for _ in range(steps):
        x_adv = _project(x_adv + step * s * torch.sign(frontend.project(wb, x_adv)), x, eps)
    return _finish(x_adv, x, eps)


# --------------------------------------------------------------------------
# networks: locally linear attacks (Sec. V-D, V-E)
# --------------------------------------------------------------------------
def _margin_gradients(model, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Logits ``(B, L)`` and the input gradients of the margins ``z_i - z_t`` ``(L, B, C, H, W)``.

    Row i is :math:`w_{eq}^{\{i\}} - w_{eq}^{\{t\}}` (zero where i = t). Each
    margin is differentiated as one objective, so a front end with
    ``gradient="iterated"`` refines its support along the margin's own
    gradient (for ``bpda`` and ``projection``, linear backward passes, this is
    the difference of the per-class gradients).
    """
    x_ = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        z = _logits(model, x_)
        b = torch.arange(len(x), device=x.device)
        z_true = z[b, y]
        rows = []
        L = z.shape[1]
        for i in range(L):
            if not bool((y != i).any()):
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
    for i in range(L):
        wrong = y != i
        if not bool(wrong.any()):
            continue
        cand = _project(x_cur + budget * torch.sign(G[i]), x, eps)
        with torch.no_grad():
            zc = _logits(model, cand)
        margin = torch.where(wrong, zc[:, i] - zc[b, y], torch.full_like(zc[:, 0], -math.inf))
        better = margin > best_margin
        best[better] = cand[better]
        best_margin = torch.where(better, margin, best_margin)
    return best, finite


def locally_linear(model, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
    r"""Locally linear attack (Sec. V-E): the worst pair over the :math:`L-1` wrong classes.

    For each wrong class :math:`i`, :math:`e_i = \epsilon\,\mathrm{sgn}
    (w_{eq}^{\{i\}} - w_{eq}^{\{t\}})` with :math:`w_{eq}` the input gradients
    of the logits at ``x`` (exact for ReLU networks; through the front end
    they follow its ``gradient`` setting); the adversary keeps the
    :math:`e_i` with the largest :math:`y_i(x + e_i) - y_t(x + e_i)`. For a
    binary model this is FGSM; for a linear model with a front end using
    ``gradient="projection"`` and ``clip=False`` it is :func:`white_box`.
    """
    eps = _eps(eps)
    x, y = _network_inputs(model, x, y)
    if eps == 0 or not len(x):
        return x.clone()
    x_adv, finite = _locally_linear_step(model, x, y, x, eps, eps)
    checks.finite_gradient(finite)
    return _finish(x_adv, x, eps)


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
def fgsm(model, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
    r"""FGSM (Goodfellow et al.): :math:`x + \epsilon\,\mathrm{sgn}\nabla_x J(x, y)`, cross-entropy :math:`J`."""
    eps = _eps(eps)
    x, y = _network_inputs(model, x, y)
    if eps == 0 or not len(x):
        return x.clone()
    g = checks.finite_gradient(_ce_grad(model, x, y))
    return _finish(_project(x + eps * torch.sign(g), x, eps), x, eps)


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


def _image_seeds(x: torch.Tensor, seed: int) -> list[int]:
    """One 63-bit seed per image from ``seed`` and the image's bytes (batch-independent)."""
    flat = x.detach().to("cpu", torch.float64).contiguous().flatten(1).numpy()
    out = []
    for row in flat:
        h = hashlib.blake2b(row.tobytes(), digest_size=8, key=str(int(seed)).encode())
        out.append(int.from_bytes(h.digest(), "little") >> 1)
    return out


def _uniform_start(x: torch.Tensor, eps: float, seeds: list[int], restart: int) -> torch.Tensor:
    noise = torch.empty_like(x, device="cpu")
    for i, s in enumerate(seeds):
        g = torch.Generator().manual_seed((s + 1_000_003 * restart) % (2**63))
        noise[i] = torch.rand(x.shape[1:], generator=g, dtype=x.dtype) * (2 * eps) - eps
    return _project(x + noise.to(x.device), x, eps)


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


# --------------------------------------------------------------------------
# Carlini-Wagner L2
# --------------------------------------------------------------------------
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
    ``max_iterations``, so a batch gives each image the result it gets alone.
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

    def margin(z):  # Z_t - max_{i != t} Z_i
        other = z.clone()
        other[b, y] = -math.inf
        return z[b, y] - other.max(1).values

    check_every = max(1, max_iterations // 10)
    finite = torch.ones((), dtype=torch.bool, device=dev)  # checked once, at the end
    for _ in range(binary_search_steps):
        w = w0.clone().requires_grad_(True)
        opt = torch.optim.Adam([w], lr=learning_rate)
        success = torch.zeros(B, dtype=torch.bool, device=dev)
        active = torch.ones(B, dtype=torch.bool, device=dev)  # images still optimising
        prev = torch.full((B,), 1e6, device=dev, dtype=dt)  # CleverHans starts from 1e6
        for it in range(max_iterations):
            w_before = w.detach().clone()
            with torch.enable_grad():
                x_adv = (torch.tanh(w) + 1) / 2
                l2 = (x_adv - x).pow(2).flatten(1).sum(1)
                m = margin(_logits(model, x_adv))
                loss_each = l2 + const * torch.clamp(m, min=-confidence)
                (w.grad,) = torch.autograd.grad(loss_each.sum(), w)  # w only: no .grad on the model
            finite &= torch.isfinite(w.grad).all()
            opt.step()
            with torch.no_grad():
                if abort_early and it % check_every == 0:
                    # as CleverHans: an image that stalls stops before this iterate is recorded
                    stalled = active & (loss_each.detach() > 0.9999 * prev)
                    active &= ~stalled
                    prev = torch.where(active, loss_each.detach(), prev)
                w[~active] = w_before[~active]  # stopped images keep their iterate (Adam moves all of w)
                fooled = active & (m < -confidence if confidence > 0 else m < 0)
                improve = fooled & (l2 < best_l2)
                best_l2 = torch.where(improve, l2, best_l2)
                best[improve] = x_adv.detach()[improve]
                success |= fooled
            if not bool(active.any()):
                break
        # binary search on c, per image
        upper = torch.where(success, torch.minimum(upper, const), upper)
        lower = torch.where(success, lower, torch.maximum(lower, const))
        const = torch.where(upper < 1e9, (lower + upper) / 2, const * 10)
    checks.finite_gradient(finite)
    return check_adversarial(best.clamp(0.0, 1.0).detach(), x, None)
