r"""AutoAttack and its components (Croce and Hein 2020), from the authors' code, with our conventions.

The algorithms are the authors' own classes from ``pyautoattack`` (their
reference implementation on PyPI): :class:`~pyautoattack.autopgd_base.APGDAttack`,
:class:`~pyautoattack.autopgd_base.APGDAttack_targeted`,
:class:`~pyautoattack.fab_pt.FABAttack_PT` and
:class:`~pyautoattack.square.SquareAttack`. This module only calls them the
way :mod:`sparsenb.attacks` calls everything (read its docstring):

* explicit arguments ``model, x, y, eps`` and the budgets, checked by
  :mod:`sparsenb.checks`; ``eps = 0`` returns a copy, an empty batch an
  empty batch; every returned batch passes
  :func:`sparsenb.attacks.base.check_adversarial` (the :math:`\epsilon`-ball and
  the [0, 1] box) before it is returned;
* inputs are never modified and no ``.grad`` is left on the model's
  parameters (FAB calls ``backward()``: the parameters of an ``nn.Module``
  stop requiring gradients for the call and are restored after);
* seeded: the authors reseed torch's global generator; we do it inside
  :func:`torch.random.fork_rng`, so the caller's random state is untouched;
* quiet: no prints, warnings or log records;
* a NaN or infinite input gradient raises
  :class:`~sparsenb.checks.GradientError` (watched by a hook on the input);
* binary models (one logit) are attacked through
  :func:`sparsenb.attacks.base.two_class_logits`; float64 models work (the
  authors' code runs in float32: the model sees its own dtype, and the
  result is projected back onto the ball in the input's dtype).

Through a defended model ``nn.Sequential(frontend, classifier)`` the
gradient-based attacks (APGD-CE, APGD-T, FAB-T) follow the front end's
``gradient`` setting (``bpda``, ``projection``, ``iterated``) like every
other attack; Square uses no gradients.

**Batch invariance.** APGD-CE and APGD-T give each image the result it gets
alone: we draw each restart's random start per image from ``seed`` and the
image's content (the authors' distribution, :math:`x + \epsilon\,t/\|t\|_\infty`
with :math:`t` uniform in :math:`[-1, 1]^n`) and run the authors' restart loop
ourselves around ``attack_single_run``. FAB-T with ``restarts=1`` (AutoAttack's
setting) has no randomness and is per image too. FAB-T with more restarts
and Square are *not* batch-invariant: the authors draw the random starts of
a whole batch at once, and Square draws one square position and sign per
iteration for the whole batch, so an image's result depends on the batch it
is attacked in (it is reproducible for the same batch and seed).

**Few classes.** APGD-T's targeted DLR loss needs at least 4 classes (it
reads the 4th largest logit), and targets are the other classes, so with
fewer than 4 classes :func:`apgd_t` runs APGD on the cross-entropy (for a
binary model the only target is the other class, which the untargeted loss
already pushes towards), with as many runs as there are targets × restarts.
FAB-T works with any number of classes >= 2: its targets are clipped to the
``L - 1`` other classes (a binary model's one target makes it untargeted FAB).

Model evaluations per image (for comparing budgets): APGD about ``steps + 1``
forward-and-backward passes per restart and target; FAB-T about ``2 steps``
per target (one pass with gradients and one prediction per step); Square at
most ``queries + 1`` forward passes per restart (fewer once the image falls).
"""
from __future__ import annotations

import logging
import warnings
from contextlib import contextmanager

import torch
from torch import nn

from .. import checks
from .base import _eps, _image_seeds, _network_inputs, _project, check_adversarial, two_class_logits
from .registry import register

__all__ = ["apgd_ce", "apgd_t", "fab_t", "square", "autoattack", "STANDARD"]

#: AutoAttack's ``standard`` version for :math:`\ell_\infty` (the authors' settings).
STANDARD = {"steps": 100, "targets": 9, "queries": 5000, "p_init": 0.8}

_QUIET = logging.getLogger("sparsenb.attacks.autoattack.authors")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False
_QUIET.setLevel(logging.CRITICAL + 1)


# --------------------------------------------------------------------------
# calling the authors' classes
# --------------------------------------------------------------------------
class _Logits:
    """``model`` as the authors' code calls it: their float32 in, two-class logits out; input gradients watched."""

    def __init__(self, model, dtype: torch.dtype):
        self.model, self.dtype = model, dtype
        self.finite: torch.Tensor | None = None

    def _watch(self, g: torch.Tensor) -> None:
        ok = torch.isfinite(g).all()
        self.finite = ok if self.finite is None else self.finite & ok

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.requires_grad:
            x.register_hook(self._watch)
        return two_class_logits(self.model(x.to(self.dtype))).float()

    def check(self) -> None:
        if self.finite is not None:
            checks.finite_gradient(self.finite)


@contextmanager
def _authors_run(model, x: torch.Tensor, seed: int):
    """Seed torch inside a forked random state, silence warnings, freeze the model's parameters."""
    frozen = [p for p in model.parameters() if p.requires_grad] if isinstance(model, nn.Module) else []
    devices = [x.device] if x.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.manual_seed(seed)
        for p in frozen:
            p.requires_grad_(False)
        try:
            yield
        finally:
            for p in frozen:
                p.requires_grad_(True)


def _inputs(model, x, y, eps):
    eps = _eps(eps)
    x, y = _network_inputs(model, x, y)
    return eps, x, y


def _classes_of(logits: _Logits, x: torch.Tensor) -> int:
    with torch.no_grad():
        return logits(x[:1].float()).shape[1]


def _finish(adv: torch.Tensor, x: torch.Tensor, eps: float, logits: _Logits) -> torch.Tensor:
    logits.check()
    adv = _project(adv.detach().to(x.dtype), x, eps)  # the authors' float32 back to x's dtype, in the ball
    return check_adversarial(adv, x, eps)


def _apgd_start(x: torch.Tensor, eps: float, seeds: list[int], run: int) -> torch.Tensor:
    """The authors' APGD start, :math:`x + \\epsilon t/\\|t\\|_\\infty` (t uniform), drawn per image."""
    t = torch.empty_like(x, device="cpu")
    for i, s in enumerate(seeds):
        g = torch.Generator().manual_seed((s + 7_919 * run) % (2**63))
        t[i] = torch.rand(x.shape[1:], generator=g, dtype=x.dtype) * 2 - 1
    t = t.to(x.device)
    scale = t.flatten(1).abs().max(1).values.clamp_min(1e-12).reshape(-1, *[1] * (x.dim() - 1))
    return (x + eps * t / scale).clamp(0.0, 1.0)


def _apgd_runs(attack, logits: _Logits, x, y, eps, seed, runs, before_run=None) -> torch.Tensor:
    """The authors' restart loop around ``attack_single_run``, with per-image starts.

    ``runs`` runs; each attacks the images not fooled yet (correctly
    classified at the start). ``before_run(r, idx)`` may set the attack up
    for run ``r`` on the images ``idx`` (APGD-T sets its target there).
    """
    xf = x.float()
    seeds = _image_seeds(x, seed)
    best = xf.clone()
    with torch.no_grad():
        alive = logits(xf).argmax(1) == y
    attack.init_hyperparam(xf)
    for r in range(runs):
        idx = alive.nonzero().flatten()
        if not len(idx):
            break
        if before_run is not None:
            before_run(r, idx)
        start = _apgd_start(xf[idx], eps, [seeds[i] for i in idx.tolist()], r)
        _, acc, _, adv = attack.attack_single_run(xf[idx], y[idx], x_init=start)
        fooled = ~acc.bool()
        best[idx[fooled]] = adv[fooled].detach()
        alive[idx[fooled]] = False
    return best


# --------------------------------------------------------------------------
# the components
# --------------------------------------------------------------------------
@register("apgd_ce")
def apgd_ce(model, x: torch.Tensor, y: torch.Tensor, eps: float, steps: int = 100, restarts: int = 1, seed: int = 0) -> torch.Tensor:
    r"""APGD on the cross-entropy (AutoAttack's first attack): ``steps`` iterations per restart.

    The authors' step-size schedule (start at :math:`2\epsilon`, halve on
    oscillation, momentum 0.75); an image counts as fooled if any iterate
    fooled it, and the last iterate that fooled it is returned (as the
    authors do). Batch-invariant.
    """
    from pyautoattack.autopgd_base import APGDAttack

    eps, x, y = _inputs(model, x, y, eps)
    steps, restarts = checks.integer(steps, "steps", 1), checks.integer(restarts, "restarts", 1)
    seed = checks.seed(seed)
    if eps == 0 or not len(x):
        return x.clone()
    logits = _Logits(model, x.dtype)
    with _authors_run(model, x, seed):
        attack = APGDAttack(logits, n_iter=steps, norm="Linf", n_restarts=1, eps=eps, seed=seed, loss="ce",
                            eot_iter=1, rho=0.75, verbose=False, device=x.device, logger=_QUIET)
        adv = _apgd_runs(attack, logits, x, y, eps, seed, restarts)
    return _finish(adv, x, eps, logits)


@register("apgd_t")
def apgd_t(
    model, x: torch.Tensor, y: torch.Tensor, eps: float, steps: int = 100, targets: int = 9, restarts: int = 1, seed: int = 0
) -> torch.Tensor:
    r"""APGD on the targeted DLR loss (AutoAttack's second attack), for the ``targets`` most likely other classes.

    Targets are ranked by the clean logits (2nd largest first), at most the
    :math:`L - 1` other classes; ``restarts`` runs per target. With fewer than
    4 classes the targeted DLR loss is undefined and this runs APGD on the
    cross-entropy instead (as many runs), see the module docstring.
    Batch-invariant.
    """
    from pyautoattack.autopgd_base import APGDAttack, APGDAttack_targeted

    eps, x, y = _inputs(model, x, y, eps)
    steps, restarts = checks.integer(steps, "steps", 1), checks.integer(restarts, "restarts", 1)
    targets, seed = checks.integer(targets, "targets", 1), checks.seed(seed)
    if eps == 0 or not len(x):
        return x.clone()
    logits = _Logits(model, x.dtype)
    L = _classes_of(logits, x)
    targets = min(targets, L - 1)
    with _authors_run(model, x, seed):
        if L < 4:
            attack = APGDAttack(logits, n_iter=steps, norm="Linf", n_restarts=1, eps=eps, seed=seed, loss="ce",
                                eot_iter=1, rho=0.75, verbose=False, device=x.device, logger=_QUIET)
            adv = _apgd_runs(attack, logits, x, y, eps, seed, targets * restarts)
        else:
            attack = APGDAttack_targeted(logits, n_iter=steps, norm="Linf", n_restarts=1, eps=eps, seed=seed,
                                         eot_iter=1, rho=0.75, n_target_classes=targets, verbose=False,
                                         device=x.device, logger=_QUIET)
            with torch.no_grad():
                order = logits(x.float()).sort(dim=1)[1]

            def set_target(r, idx):
                attack.y_target = order[idx, -(2 + r // restarts)]

            adv = _apgd_runs(attack, logits, x, y, eps, seed, targets * restarts, set_target)
    return _finish(adv, x, eps, logits)


@register("fab_t")
def fab_t(
    model, x: torch.Tensor, y: torch.Tensor, eps: float, steps: int = 100, targets: int = 9, restarts: int = 1, seed: int = 0
) -> torch.Tensor:
    r"""Targeted FAB (AutoAttack's third attack): minimal :math:`\ell_\infty` boundary points, kept if within ``eps``.

    ``targets`` most likely other classes (at most :math:`L - 1`; for a
    binary model FAB-T is untargeted FAB), ``restarts`` per target (the
    first without a random start). Batch-invariant with ``restarts=1`` only.
    """
    from pyautoattack.fab_pt import FABAttack_PT

    eps, x, y = _inputs(model, x, y, eps)
    steps, restarts = checks.integer(steps, "steps", 1), checks.integer(restarts, "restarts", 1)
    targets, seed = checks.integer(targets, "targets", 1), checks.seed(seed)
    if eps == 0 or not len(x):
        return x.clone()
    logits = _Logits(model, x.dtype)
    targets = min(targets, _classes_of(logits, x) - 1)
    with _authors_run(model, x, seed):
        attack = FABAttack_PT(logits, norm="Linf", n_restarts=restarts, n_iter=steps, eps=eps, seed=seed,
                              targeted=True, device=x.device, n_target_classes=targets, verbose=False)
        adv = attack.perturb(x.float(), y)
    return _finish(adv, x, eps, logits)


@register("square", uses_gradient=False, batch_invariant=False)
def square(
    model, x: torch.Tensor, y: torch.Tensor, eps: float, queries: int = 5000, restarts: int = 1, seed: int = 0,
    p_init: float = 0.8, rescale_schedule: bool = False,
) -> torch.Tensor:
    r"""Square attack (Andriushchenko et al. 2020; AutoAttack's fourth): random search, no gradients.

    At most ``queries`` model evaluations per image and restart, on the
    margin loss; squares of side :math:`\sqrt{p N}` with :math:`p` falling
    from ``p_init`` on the authors' schedule (over 10,000 queries, as
    AutoAttack runs it, unless ``rescale_schedule`` fits it to ``queries``).
    Not batch-invariant (see the module docstring).
    """
    from pyautoattack.square import SquareAttack

    eps, x, y = _inputs(model, x, y, eps)
    queries, restarts = checks.integer(queries, "queries", 1), checks.integer(restarts, "restarts", 1)
    seed = checks.seed(seed)
    p_init = checks.real(p_init, "p_init", 0.0, 1.0, low_open=True)
    rescale_schedule = checks.flag(rescale_schedule, "rescale_schedule")
    if eps == 0 or not len(x):
        return x.clone()
    logits = _Logits(model, x.dtype)
    with _authors_run(model, x, seed):
        attack = SquareAttack(logits, norm="Linf", n_queries=queries, eps=eps, p_init=p_init, n_restarts=restarts,
                              seed=seed, verbose=False, loss="margin", resc_schedule=rescale_schedule, device=x.device)
        with torch.no_grad():
            adv = attack.perturb(x.float(), y)
    return _finish(adv, x, eps, logits)


@register("autoattack", batch_invariant=False)
def autoattack(
    model, x: torch.Tensor, y: torch.Tensor, eps: float, steps: int = 100, targets: int = 9, queries: int = 5000,
    seed: int = 0,
) -> torch.Tensor:
    r"""AutoAttack, ``standard`` version: APGD-CE, APGD-T, FAB-T, then Square, each on the images still robust.

    The loop of the authors' ``AutoAttack.run_standard_evaluation`` (each
    attack starts from the clean image; an image is returned with the first
    attack that fools it) with their standard budgets by default
    (:data:`STANDARD`), over this module's functions. Per image it is as
    batch-invariant as its last stage: Square is not.
    """
    eps, x, y = _inputs(model, x, y, eps)
    if eps == 0 or not len(x):
        return x.clone()
    stages = (
        lambda xi, yi: apgd_ce(model, xi, yi, eps, steps, 1, seed),
        lambda xi, yi: apgd_t(model, xi, yi, eps, steps, targets, 1, seed),
        lambda xi, yi: fab_t(model, xi, yi, eps, steps, targets, 1, seed),
        lambda xi, yi: square(model, xi, yi, eps, queries, 1, seed),
    )
    best = x.clone()
    with torch.no_grad():
        alive = two_class_logits(model(x)).argmax(1) == y
    for stage in stages:
        idx = alive.nonzero().flatten()
        if not len(idx):
            break
        adv = stage(x[idx], y[idx])
        with torch.no_grad():
            fooled = two_class_logits(model(adv)).argmax(1) != y[idx]
        best[idx[fooled]] = adv[fooled]
        alive[idx[fooled]] = False
    return check_adversarial(best, x, eps)

