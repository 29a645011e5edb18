r"""ReLU switch states :math:`s_i(x)` and how many of them flip.

Sec. V writes every ReLU unit as :math:`a_i = \mathrm{ReLU}(z_i) = s_i(x)\,z_i`
with the *switch* :math:`s_i(x) = 1` where its pre-activation :math:`z_i > 0`
and 0 elsewhere. With every switch fixed a ReLU network is affine in its
input, so what an attack does beyond the linear term of Eq. (5) comes from
the switches that flip between :math:`x` and :math:`x + e`
(:func:`flip_share`; Fig. 9 counts them).

:func:`switch_states` reads the switches of the three kinds of network in
the package:

* a :class:`~sparsenb.models.cnn.NielsenCNN` (or any module with
  ``relu_states(x)``): one entry per ReLU layer;
* a ReLU MLP built as ``nn.Sequential`` of ``nn.Linear`` and ``nn.ReLU``
  (``nn.Flatten`` and ``nn.Identity`` allowed), as in
  :mod:`sparsenb.theory.networks`: one entry per ``nn.ReLU``, keyed by its
  index in the sequence;
* a defended model ``nn.Sequential(front end, network)``
  (:func:`sparsenb.frontend.defended`): the switches of the network for the
  input it actually sees, the front end's output.

States are ``{layer: bool tensor (B, units)}``, layers in forward order.
"""
from __future__ import annotations

import torch
from torch import nn

from .. import checks

__all__ = ["switch_states", "flip_share"]

_MLP_LAYERS = (nn.Linear, nn.ReLU, nn.Flatten, nn.Identity)


def _is_mlp(model: nn.Module) -> bool:
    return isinstance(model, nn.Sequential) and len(model) > 0 and all(isinstance(m, _MLP_LAYERS) for m in model)


def _mlp_states(net: nn.Sequential, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """:math:`s_i = [z_i > 0]` at the input of every ``nn.ReLU``, keyed by its index in ``net``."""
    states, h = {}, x
    for name, layer in net.named_children():
        if isinstance(layer, nn.ReLU):
            states[name] = h.flatten(1) > 0
        h = layer(h)
    return states


@torch.no_grad()
def switch_states(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    r"""The switches :math:`s_i(x)` of every ReLU layer of ``model``, ``{layer: bool (B, units)}``.

    ``model`` is a network with ``relu_states`` (:class:`~sparsenb.models.cnn.NielsenCNN`),
    a ReLU MLP (``nn.Sequential`` of ``nn.Linear``/``nn.ReLU``), or
    ``nn.Sequential(front end, network)`` with one of these behind a front
    end; see the module docstring.
    """
    if not isinstance(x, torch.Tensor):
        raise checks.fail("x", "a torch.Tensor", x)
    if hasattr(model, "relu_states"):
        return model.relu_states(x)
    if _is_mlp(model):
        return _mlp_states(model, x)
    if isinstance(model, nn.Sequential) and len(model) == 2 and (hasattr(model[1], "relu_states") or _is_mlp(model[1])):
        return switch_states(model[1], model[0](x))
    raise checks.fail(
        "model",
        "a network with relu_states (NielsenCNN), a ReLU MLP (nn.Sequential of Linear and ReLU) "
        "or nn.Sequential(front end, one of these)",
        model,
    )


def flip_share(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    r"""Per input, the % of all ReLU switches that differ between states ``a`` and ``b``, and the % per layer.

    ``a`` and ``b`` are :func:`switch_states` of two inputs of the same
    network (e.g. :math:`x` and :math:`x + e`). The total weighs each layer
    by its number of units: it is the share of all units with
    :math:`s_i(x) \ne s_i(x + e)`. Returns ``(total (B,), {layer: (B,)})``.
    """
    for name, states in (("a", a), ("b", b)):
        if not isinstance(states, dict):
            raise checks.fail(name, "a dict of switch states (see switch_states)", states)
    if not a:
        raise checks.ArgumentError("a", "must hold switch states, got none (a network without ReLU)")
    if list(a) != list(b):
        raise checks.ArgumentError("b", f"must have the layers of a {list(a)}, got {list(b)}")
    for k in a:
        if a[k].shape != b[k].shape:
            raise checks.ArgumentError(f"b[{k!r}]", f"must have the shape of a[{k!r}] {tuple(a[k].shape)}, got {tuple(b[k].shape)}")
    per_layer = {k: (a[k] != b[k]).double().mean(1) for k in a}
    units = {k: a[k].shape[1] for k in a}
    total = sum(per_layer[k] * units[k] for k in a) / sum(units.values())
    return 100 * total, {k: 100 * v for k, v in per_layer.items()}
