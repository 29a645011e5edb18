r"""Sec. V: ReLU networks as locally linear maps, and Theorem 3.

Each ReLU unit is :math:`a_i = s_i(x)(w_i^Tx - b_i)` with a switch
:math:`s_i(x) \in \{0, 1\}`; with the switches fixed, a ReLU MLP is affine,
:math:`y(x) = W_\mathrm{eq}(x)x - b_\mathrm{eq}(x)` (Sec. V-A).

* Random networks: :func:`relu_mlp` (any widths) and :func:`random_two_layer`
  (Fig. 3, meeting or violating Assumption 2), :func:`two_layer_parts`.
* Theorem 3: :func:`switch_statistics`, :func:`thm3_prediction`, :func:`thm3_sweep`.
* The locally linear model: :func:`equivalent_linear` (any ReLU MLP),
  :func:`two_layer_w_eq` (the paper's two-layer formula), :func:`logits_jacobian`
  (the same by autograd).
* Eq. (5): :func:`eq5_split`, :func:`eq5_sweep`.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd
import scipy.special
import torch
from torch import nn

from .. import checks
from .switches import flip_share, switch_states
from ._common import _progress, _torch
from .gaussianity import normalized_digits
from .weights import make_rng, weight_model

__all__ = [
    "relu_mlp",
    "random_two_layer",
    "two_layer_parts",
    "switch_statistics",
    "thm3_prediction",
    "thm3_sweep",
        "equivalent_linear",
    "two_layer_w_eq",
    "logits_jacobian",
    "eq5_split",
    "eq5_sweep",
]

def _layers(net) -> list:
    layers = list(net) if isinstance(net, nn.Sequential) else None
    if not layers or not all(isinstance(m, (nn.Linear, nn.ReLU, nn.Flatten, nn.Identity)) for m in layers):
        raise checks.ArgumentError("net", "must be an nn.Sequential of nn.Linear and nn.ReLU layers (nn.Flatten allowed)")
    return layers


def relu_mlp(sizes: Sequence[int], seed: int = 0, logit_scale: float = 1.0) -> nn.Sequential:
    """A float64 ReLU MLP ``sizes[0] -> ... -> sizes[-1]``, seeded.

    Weights and biases are :math:`U(-1/\\sqrt{\\text{fan-in}}, 1/\\sqrt{\\text{fan-in}})`
    (PyTorch's default for ``nn.Linear``), the last layer times ``logit_scale``.
    """
    sizes = [checks.integer(s, "sizes", 1) for s in sizes]
    if len(sizes) < 2:
        raise checks.ArgumentError("sizes", f"must list at least an input and an output size, got {sizes}")
    logit_scale = checks.real(logit_scale, "logit_scale", 0, low_open=True)
    rng = make_rng(seed, "relu_mlp", *sizes)
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        lin = nn.Linear(n_in, n_out, dtype=torch.float64)
        bound = 1.0 / math.sqrt(n_in)
        scale = logit_scale if i == len(sizes) - 2 else 1.0
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(rng.uniform(-bound, bound, (n_out, n_in)) * scale))
            lin.bias.copy_(torch.from_numpy(rng.uniform(-bound, bound, n_out) * scale))
        layers.append(lin)
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def random_two_layer(
    N: int, M: int, dist: str = "gaussian", bias: str = "scaled", delta: float = 0.01, C: float = 0.002, seed: int = 0
) -> nn.Sequential:
    r"""A random two-layer ReLU network :math:`y = w_0^T\mathrm{ReLU}(Wx - b)` (Fig. 3).

    Rows :math:`w_i` of :math:`W` have i.i.d. entries of law ``dist``
    (:math:`\sigma_i^2 = 1`, Assumption 4), :math:`w_0 \sim \mathcal{N}(0, I/M)`.
    Biases:

    * ``"scaled"``: :math:`b_i = \pm(\delta + C)\|w_i\|_1` with a random sign,
      so that Assumption 2, :math:`\delta \le |b_i|/\|w_i\|_1 - C`, holds
      with equality;
    * ``"unit"``: :math:`b_i \sim \mathcal{N}(0, 1)`, :math:`O(1)` biases as
      in a trained network, which violate Assumption 2 for large :math:`N`.

    Returned as ``nn.Sequential(Linear(N, M), ReLU(), Linear(M, 1, bias=False))``
    in float64 (torch's bias is :math:`-b`).
    """
    N, M = checks.integer(N, "N", 1), checks.integer(M, "M", 1)
    delta, C = checks.real(delta, "delta", 0, low_open=True), checks.real(C, "C", 0, low_open=True)
    if bias not in ("scaled", "unit"):
        raise checks.ArgumentError("bias", f"must be 'scaled' or 'unit', got {bias!r}")
    model = weight_model(dist)
    rng = make_rng(seed, "two_layer", N, M, dist, bias)
    W = model.sample((M, N), rng)
    if bias == "scaled":
        b = rng.choice([-1.0, 1.0], size=M) * (delta + C) * np.abs(W).sum(1)
    else:
        b = rng.standard_normal(M)
    w0 = rng.standard_normal(M) / math.sqrt(M)
    net = nn.Sequential(nn.Linear(N, M, dtype=torch.float64), nn.ReLU(), nn.Linear(M, 1, bias=False, dtype=torch.float64))
    with torch.no_grad():
        net[0].weight.copy_(torch.from_numpy(W))
        net[0].bias.copy_(torch.from_numpy(-b))
        net[2].weight.copy_(torch.from_numpy(w0)[None])
    return net


def two_layer_parts(net: nn.Sequential) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(W, b, w0)`` of a two-layer network in the paper's sign convention (:math:`a = \\mathrm{ReLU}(Wx - b)`)."""
    layers = _layers(net)
    if len(layers) != 3 or not isinstance(layers[1], nn.ReLU) or layers[2].out_features != 1:
        raise checks.ArgumentError("net", "must be Linear(N, M), ReLU(), Linear(M, 1) (see random_two_layer)")
    b2 = layers[2].bias
    if b2 is not None and bool((b2 != 0).any()):
        raise checks.ArgumentError("net", "must have no bias in its output layer, as in Fig. 3")
    return layers[0].weight.detach(), -layers[0].bias.detach(), layers[2].weight.detach()[0]


def switch_statistics(net: nn.Sequential, x, e, delta: float) -> dict[str, torch.Tensor]:
    r"""Thm 3's quantities for a two-layer network, per input (rows of ``x``).

    * ``flipped``: share of neurons with :math:`\bar s_i \ne s_i` under :math:`e`;
    * ``outside_S``: share with :math:`|w_i^Tx - b_i| \le |w_i^Te|` (the
      sufficient condition for :math:`\bar s_i = s_i` fails: :math:`i \notin S`);
    * ``worst_case``: share with :math:`|w_i^Tx - b_i| \le \delta\|w_i\|_1`,
      outside :math:`S` for *some* :math:`\|e\|_\infty \le \delta` (the proof's bound).

    ``flipped <= outside_S <= worst_case`` neuron by neuron (``flipped`` is
    read off the network's own switches, :func:`sparsenb.theory.switches.switch_states`).
    """
    delta = checks.real(delta, "delta", 0, low_open=True)
    W, b, _ = two_layer_parts(net)
    x, e = _torch(x, "x"), _torch(e, "e")
    z = x @ W.T - b  # w_i^T x - b_i
    ze = e @ W.T  # w_i^T e
    outside = z.abs() <= ze.abs()
    worst = z.abs() <= delta * W.abs().sum(1)
    flipped, _ = flip_share(switch_states(net, x), switch_states(net, x + e))
    return {
        "flipped": flipped / 100,
        "outside_S": outside.double().mean(-1),
        "worst_case": worst.double().mean(-1),
    }


def thm3_prediction(N, delta: float, C: float, bias: str, dist: str = "gaussian") -> np.ndarray:
    r"""Thm 3's Gaussian-limit prediction (Lemma 3) of the ``worst_case`` share.

    With :math:`w_i^Tx \approx \mathcal{N}(0, 1)` and :math:`\|w_i\|_1 \approx \mu N`:
    ``"scaled"`` biases give :math:`\Phi((2\delta+C)\mu N) - \Phi(C\mu N) \to 0`;
    ``"unit"`` biases give :math:`2\Phi(\delta\mu N/\sqrt2) - 1 \to 1`.
    """
    model = weight_model(dist)
    delta, C = checks.real(delta, "delta", 0, low_open=True), checks.real(C, "C", 0, low_open=True)
    L1 = model.mu * np.asarray(N, dtype=np.float64)
    Phi = scipy.special.ndtr
    if bias == "scaled":
        return Phi((2 * delta + C) * L1) - Phi(C * L1)
    if bias == "unit":
        return 2 * Phi(delta * L1 / math.sqrt(2.0)) - 1
    raise checks.ArgumentError("bias", f"must be 'scaled' or 'unit', got {bias!r}")


def thm3_sweep(
    images: torch.Tensor,
    sides: Sequence[int],
    M: int,
    dist: str = "gaussian",
    delta: float = 0.01,
    C: float = 0.002,
    n_networks: int = 3,
    biases: Sequence[str] = ("scaled", "unit"),
    seed: int = 0,
    progress: bool = False,
) -> pd.DataFrame:
    r"""Switch flips of random two-layer networks against the input size :math:`N = \mathrm{side}^2` (Thm 3).

    Inputs are the digits of ``images`` resized and normalized
    (:func:`~sparsenb.theory.gaussianity.normalized_digits`, Assumption 1). Two perturbations of budget
    :math:`\delta`: ``"random sign"`` and ``"attack"``, the semi-white box
    attack :math:`\delta\,\mathrm{sgn}(w_\mathrm{eq}(x))` on the network.
    One row per ``(bias, side, network, kind, image)`` with the shares of
    :func:`switch_statistics`.
    """
    n_networks = checks.integer(n_networks, "n_networks", 1)
    frames = []
    jobs = [(bias, int(side), k) for bias in biases for side in sides for k in range(n_networks)]
    digits = {}
    for bias, side, k in _progress(jobs, progress, desc="Thm 3"):
        if side not in digits:
            digits[side] = normalized_digits(images, side)
        x = digits[side]
        N = side * side
        net = random_two_layer(N, M, dist, bias, delta, C, seed=int(make_rng(seed, "net", k).integers(2**31)))
        w_eq, _ = two_layer_w_eq(net, x)
        perturbations = {
            "random sign": delta * torch.from_numpy(make_rng(seed, "sign", side, k).choice([-1.0, 1.0], size=tuple(x.shape))),
            "attack": delta * torch.sign(w_eq),
        }
        for kind, e in perturbations.items():
            stats = switch_statistics(net, x, e, delta)
            frame = pd.DataFrame({key: v.numpy() for key, v in stats.items()})
            frame.insert(0, "image", np.arange(len(x)))
            frame.insert(0, "kind", kind)
            frame.insert(0, "network", k)
            frame.insert(0, "N", N)
            frame.insert(0, "side", side)
            frame.insert(0, "bias", bias)
            frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def equivalent_linear(net: nn.Sequential, x, switches=None) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The equivalent linear model of a ReLU MLP at ``x``: :math:`y(x) = W_\mathrm{eq}(x)x - b_\mathrm{eq}(x)`.

    Returns ``W_eq`` ``(B, L, N)`` (row :math:`i` is :math:`w_\mathrm{eq}^{\{i\}}`)
    and ``b_eq`` ``(B, L)``, composing the layers with each ReLU replaced by
    its switch (Sec. V-A). ``switches`` (:func:`sparsenb.theory.switches.switch_states`
    of the net) fixes the pattern, e.g. that of :math:`x + e`; by default it
    is the pattern of ``x``.
    The matrix is composed from the output backwards, so memory stays
    ``B x L x width`` rather than ``B x width x N``.
    """
    x = _torch(x, "x")
    if x.dim() != 2:
        raise checks.ArgumentError("x", f"must be (B, N), got shape {tuple(x.shape)}")
    ops = [m for m in _layers(net) if isinstance(m, (nn.Linear, nn.ReLU))]
    if switches is None:
        switches = switch_states(net, x)
    if not isinstance(switches, dict):
        raise checks.fail("switches", "a dict of switch states (sparsenb.theory.switches.switch_states)", switches)
    switches = list(switches.values())
    n_relu = sum(isinstance(m, nn.ReLU) for m in ops)
    if len(switches) != n_relu:
        raise checks.ArgumentError("switches", f"must hold one mask per ReLU ({n_relu}), got {len(switches)}")
    B, N = x.shape
    with torch.no_grad():
        # offsets, forward: h = A x + a
        a = torch.zeros(B, N, dtype=torch.float64)
        j = 0
        for m in ops:
            if isinstance(m, nn.Linear):
                a = a @ m.weight.to(torch.float64).T + (m.bias.to(torch.float64) if m.bias is not None else 0.0)
            else:
                s = switches[j].to(torch.float64)
                if s.shape != a.shape:
                    raise checks.ArgumentError(f"switches[{j}]", f"must have shape {tuple(a.shape)}, got {tuple(s.shape)}")
                a = a * s
                j += 1
        # matrix, backward from the output
        A = None
        for m in reversed(ops):
            if isinstance(m, nn.Linear):
                Wl = m.weight.to(torch.float64)
                A = Wl.expand(B, *Wl.shape) if A is None else A @ Wl
            else:
                j -= 1
                s = switches[j].to(torch.float64)
                A = torch.diag_embed(s) if A is None else A * s[:, None, :]
        if A is None:
            A = torch.eye(N, dtype=torch.float64).expand(B, N, N)
    return A.contiguous(), -a


def two_layer_w_eq(net: nn.Sequential, x) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Sec. V-A for a two-layer network: :math:`w_\mathrm{eq}(x) = \sum_i s_i(x)w_0[i]w_i`, :math:`b_\mathrm{eq}(x) = \sum_i s_i(x)w_0[i]b_i`.

    Returns ``(w_eq (B, N), b_eq (B,))``, the paper's formula term by term.
    """
    W, b, w0 = two_layer_parts(net)
    x = _torch(x, "x")
    s = (x @ W.T - b > 0).to(torch.float64)
    return (s * w0) @ W, (s * w0) @ b


def logits_jacobian(net: nn.Sequential, x) -> torch.Tensor:
    """:math:`\\partial y/\\partial x` by autograd, ``(B, L, N)``: the second route to :math:`W_\\mathrm{eq}`."""
    x = _torch(x, "x").detach().requires_grad_(True)
    y = net(x)
    rows = []
    for i in range(y.shape[1]):
        (g,) = torch.autograd.grad(y[:, i].sum(), x, retain_graph=i < y.shape[1] - 1)
        rows.append(g)
    return torch.stack(rows, dim=1).detach()


def eq5_split(net: nn.Sequential, x, e) -> dict[str, torch.Tensor]:
    r"""The split of Eq. (5): :math:`y(x+e) - y(x) = \bar w_\mathrm{eq}^Te + [(\bar w_\mathrm{eq} - w_\mathrm{eq})^Tx - (\bar b_\mathrm{eq} - b_\mathrm{eq})]`.

    Returns, per input and output ``(B, L)``: ``delta`` (the true change,
    from two forward passes), ``linear`` (:math:`\bar w_\mathrm{eq}^Te`),
    ``switching`` (the bracket, due to the ReLUs that flip) and ``residual``
    (``delta - linear - switching``: rounding only); and ``flipped`` ``(B,)``,
    the share of ReLUs whose switch flips.
    """
    x, e = _torch(x, "x"), _torch(e, "e")
    if x.shape != e.shape:
        raise checks.ArgumentError("e", f"must have the shape of x {tuple(x.shape)}, got {tuple(e.shape)}")
    s, s_bar = switch_states(net, x), switch_states(net, x + e)
    W, b = equivalent_linear(net, x, s)
    W_bar, b_bar = equivalent_linear(net, x + e, s_bar)
    with torch.no_grad():
        delta = net(x + e) - net(x)
    linear = torch.einsum("bln,bn->bl", W_bar, e)
    switching = torch.einsum("bln,bn->bl", W_bar - W, x) - (b_bar - b)
    flips = flip_share(s, s_bar)[0] / 100 if s else torch.zeros(len(x), dtype=torch.float64)
    return {"delta": delta, "linear": linear, "switching": switching, "residual": delta - linear - switching, "flipped": flips}


def eq5_sweep(net: nn.Sequential, x, epsilons: Sequence[float], seed: int = 0, progress: bool = False) -> pd.DataFrame:
    r"""Eq. (5) for growing budgets: the semi-white box attack :math:`\epsilon\,\mathrm{sgn}(w_\mathrm{eq}(x))` and random signs.

    For a single-output network. One row per ``(kind, eps, image)`` with
    ``delta``, ``linear``, ``switching``, ``residual``, ``flipped`` and
    ``switching_share`` :math:`= |\text{switching}|/(|\text{linear}| + |\text{switching}|)`.
    """
    x = _torch(x, "x")
    W, _ = equivalent_linear(net, x)
    if W.shape[1] != 1:
        raise checks.ArgumentError("net", f"must have a single output, got {W.shape[1]}")
    signs = torch.from_numpy(make_rng(seed, "eq5").choice([-1.0, 1.0], size=tuple(x.shape)))
    frames = []
    for kind in _progress(["attack", "random sign"], progress, desc="Eq. (5)"):
        direction = torch.sign(W[:, 0]) if kind == "attack" else signs
        for eps in epsilons:
            out = eq5_split(net, x, checks.real(eps, "epsilons", 0, low_open=True) * direction)
            frames.append(
                pd.DataFrame(
                    {
                        "kind": kind,
                        "eps": float(eps),
                        "image": np.arange(len(x)),
                        **{k: v.reshape(len(x), -1)[:, 0].numpy() for k, v in out.items() if k != "flipped"},
                        "flipped": out["flipped"].numpy(),
                    }
                )
            )
    df = pd.concat(frames, ignore_index=True)
    return df.assign(switching_share=df["switching"].abs() / (df["linear"].abs() + df["switching"].abs()))
