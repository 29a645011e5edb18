r"""What every attack shares: the run-time check of its output, argument checks, and small helpers.

:func:`check_adversarial` is the guarantee of the whole package: every
attack's output is verified to lie in the :math:`\epsilon`-ball around its
input and in the [0, 1] box before it is returned (:class:`AttackCheckError`
otherwise). :func:`two_class_logits` reads a binary model's single logit
``z`` as the two-class logits ``(0, z)``, so the multiclass formulas apply.
The rest is private to the attack modules.
"""
from __future__ import annotations

import hashlib
import math

import torch
import torch.nn.functional as F

from .. import checks
from ..frontend import SparsifyingFrontEnd

__all__ = ["AttackCheckError", "check_adversarial", "two_class_logits"]


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


def _image_seeds(x: torch.Tensor, seed: int) -> list[int]:
    """One 63-bit seed per image from ``seed`` and the image's bytes (batch-independent)."""
    flat = x.detach().to("cpu", torch.float64).contiguous().flatten(1).numpy()
    out = []
    for row in flat:
        h = hashlib.blake2b(row.tobytes(), digest_size=8, key=str(int(seed)).encode())
        out.append(int.from_bytes(h.digest(), "little") >> 1)
    return out
