r"""Attacks on a linear classifier :math:`g(x) = w^T x + b` behind the front end (Sec. IV-A, VI-A).

They take the weights ``w`` (as an image), not a model: the semi-white box
knows the classifier only, the white box also the front end, and the
iterated white box refines the front end's support from its iterate.
"""
from __future__ import annotations

import torch

from .base import _eps, _finish, _frontend, _linear_inputs, _project, _step, _steps
from .registry import register

__all__ = ["semi_white_box", "white_box", "iterated_white_box"]


def _against_true_class(y: torch.Tensor, dtype) -> torch.Tensor:
    """+1 for class 0 (push g up), -1 for class 1 (push g down), shaped to broadcast."""
    return (1.0 - 2.0 * y.to(dtype)).reshape(-1, 1, 1, 1)


@register("semi_white_box")
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


@register("white_box")
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


@register("iterated_white_box")
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
