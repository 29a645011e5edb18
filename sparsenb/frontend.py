r"""The sparsifying front end (paper, Sec. III-B) and its notation.

For an image :math:`x` with coefficients :math:`c = \Psi x` (rows of ``Psi``
are the basis functions :math:`\psi_k`, see :mod:`sparsenb.basis`):

* :func:`H_K` keeps the :math:`K` coefficients largest in magnitude and zeroes
  the rest: :math:`\mathcal{H}_K(c)`.
* :func:`S_K` is the support :math:`\mathcal{S}_K(x) = \mathrm{supp}\,
  \mathcal{H}_K(\Psi x)`, returned as a boolean mask over the N coefficients.
* :func:`P_K` projects a vector :math:`e` onto the span of the basis functions
  in :math:`x`'s support: :math:`\mathcal{P}_K(e, x) = \sum_{k \in
  \mathcal{S}_K(x)} \psi_k \psi_k^T e`.
* The front end outputs :math:`\hat x = \Psi^T \mathcal{H}_K(\Psi x) =
  \mathcal{P}_K(x, x)`, clipped to [0, 1] as in the authors' release unless
  ``clip=False``.

Sparsity level: :math:`K = \lfloor \rho N \rfloor` per channel, where
:math:`N = HW`, as in the authors' released code (``int(rho * N)``); so
rho = 2%, 3%, 3.5% on MNIST give K = 15, 23, 27. Support selection is per
image and per channel, over all bands pooled.

All functions work on batches ``(B, C, H, W)`` (any leading dimensions for
the functional forms), on the device and dtype of their input. ``K`` may be
an int or one int per channel. Arguments are checked by :mod:`sparsenb.checks`
(one :class:`~sparsenb.checks.ArgumentError` naming the argument).

The defense is composition: :func:`defended` puts the front end before a
classifier (:func:`split_defended` takes them apart), and
:func:`with_gradient` gives the same front end another gradient treatment.
:class:`DenseFrontEnd` is the same front end in any dense orthonormal basis
and :func:`frontend_for` builds a front end from a short basis spec
(``"coif1:2"``, ``"dct"``, ``"pca"``...).
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from . import checks
from .basis import DENSE_BASES, DenseTransform, WaveletTransform, dense_basis
from .cache import data_fingerprint

__all__ = [
    "sparsity_level",
    "H_K",
    "S_K",
    "P_K",
    "support_overlap",
    "energy_captured",
    "rgb_to_ycbcr",
    "ycbcr_to_rgb",
    "SparsifyingFrontEnd",
    "DenseFrontEnd",
    "frontend_for",
    "defended",
    "split_defended",
    "with_gradient",
    "straight_through",
    "GRADIENTS",
]

GRADIENTS = ("bpda", "projection", "iterated")
_CPU_CHUNK = 1024  # images per block when the front end runs without autograd on CPU


# --------------------------------------------------------------------------
# sparsity level and argument checks
# --------------------------------------------------------------------------
def sparsity_level(rho: float, N: int) -> int:
    r""":math:`K = \lfloor \rho N \rfloor`, checking :math:`\rho \in (0, 1]` and K >= 1.

    The floor is taken after adding 1e-9, so that a rho written as k/N gives
    K = k despite rounding (27/784 * 784 = 26.999...); for every other rho
    this is the released code's ``int(rho * N)``.
    """
    rho = checks.real(rho, "rho", 0.0, 1.0, low_open=True)
    N = checks.integer(N, "N", 1)
    K = math.floor(rho * N + 1e-9)
    if K < 1:
        raise checks.ArgumentError(
            "rho", f"must keep a coefficient: rho={rho} gives K = floor(rho*N) = 0 for N={N}; use rho >= {1 / N:.3g}"
        )
    return K


def _check_K(K, N: int, channels: int | None):
    """``K`` as an int in [1, N], or a tuple of one per channel where ``channels`` is known."""
    if channels is None or not isinstance(K, (list, tuple)):
        return checks.integer(K, "K", 1, N)
    return checks.per_channel(K, "K", channels, lambda k, name: checks.integer(k, name, 1, N))


def _check_transform(transform):
    if not all(hasattr(transform, a) for a in ("analysis", "synthesis", "N", "shape")):
        raise checks.fail("transform", "a WaveletTransform or DenseTransform", transform)
    return transform


def _check_signals(x, name: str, shape) -> torch.Tensor:
    """A finite float tensor ``(..., *shape)``."""
    checks.tensor(x, name, floating=True)
    if x.dim() < len(shape) or tuple(x.shape[x.dim() - len(shape) :]) != tuple(shape):
        raise checks.ArgumentError(name, f"must have shape (..., {', '.join(map(str, shape))}), got shape {tuple(x.shape)}")
    return checks.finite(x, name)


# --------------------------------------------------------------------------
# the paper's operators
# --------------------------------------------------------------------------
def _mark_largest(c: np.ndarray, K: int, neg: np.ndarray, mask: np.ndarray) -> None:
    """Mark in ``mask`` the K largest ``|c|`` of each row of ``c`` ``(R, N)``: ``torch.topk``'s set.

    NumPy's introselect (``np.partition`` on ``neg`` = -|c|, written into
    the given buffer), 2-3x faster than ``torch.topk`` on one thread. Where
    the K-th value of a row is unique there the set is unique; a row where
    it ties with another entry gets ``torch.topk``'s own choice.
    """
    np.negative(np.abs(c, out=neg), out=neg)
    part = np.partition(neg, K - 1, axis=1)
    kth = part[:, K - 1 : K]
    np.less_equal(neg, kth, out=mask)
    if K == c.shape[1]:
        return
    ties = np.flatnonzero(part[:, K:].min(1) == kth[:, 0])
    if len(ties):
        idx = torch.topk(torch.from_numpy(np.abs(c[ties])), K, dim=-1, sorted=False).indices
        mask[ties] = torch.zeros(idx.shape[0], c.shape[1], dtype=torch.bool).scatter_(-1, idx, True).numpy()


def _topk_mask(c: torch.Tensor, K) -> torch.Tensor:
    """Boolean mask of the K largest |c| along the last dim (K per channel, dim -2).

    The set ``torch.topk`` chooses; on CPU found by :func:`_mark_largest`.
    """
    if isinstance(K, int):
        N = c.shape[-1]
        if c.device.type != "cpu" or c.dtype not in (torch.float32, torch.float64) or not c.numel():
            idx = torch.topk(c.abs(), K, dim=-1, sorted=False).indices
            return torch.zeros_like(c, dtype=torch.bool).scatter_(-1, idx, True)
        rows = c.detach().reshape(-1, N).numpy()
        mask = np.empty(rows.shape, dtype=bool)
        _mark_largest(rows, K, np.empty_like(rows), mask)
        return torch.from_numpy(mask).view(c.shape)
    Ks = tuple(K)  # one per channel (dim -2), checked by the callers
    if len(set(Ks)) == 1:
        return _topk_mask(c, Ks[0])
    # one top-k for the largest K, then keep the first K_c ranks of channel c
    kmax = max(Ks)
    idx = torch.topk(c.abs(), kmax, dim=-1, sorted=True).indices
    rank = torch.arange(kmax, device=c.device)
    keep = rank < torch.tensor(Ks, device=c.device)[:, None]  # (C, kmax)
    mask = torch.zeros_like(c, dtype=torch.bool)
    return mask.scatter_(-1, idx, keep.expand_as(idx))


def H_K(c: torch.Tensor, K) -> torch.Tensor:
    r""":math:`\mathcal{H}_K`: keep the K largest-magnitude coefficients, zero the rest.

    ``c`` is ``(..., N)``; ``K`` an int, or one per channel (dim -2) as a tuple.
    """
    checks.tensor(c, "c", floating=True)
    if c.dim() == 0 or c.shape[-1] < 1:
        raise checks.ArgumentError("c", f"must have shape (..., N) with N >= 1, got shape {tuple(c.shape)}")
    K = _check_K(K, c.shape[-1], c.shape[-2] if c.dim() >= 2 else None)
    checks.finite(c, "c")
    return c * _topk_mask(c.detach(), K)


def S_K(x: torch.Tensor, K, transform) -> torch.Tensor:
    r""":math:`\mathcal{S}_K(x)` as a boolean mask ``(..., N)`` over the coefficients.

    ``x`` is ``(..., H, W)``; ``K`` an int, or one per channel (dim -3 of ``x``) as a tuple.
    """
    _check_transform(transform)
    _check_signals(x, "x", transform.shape)
    K = _check_K(K, transform.N, x.shape[-len(transform.shape) - 1] if x.dim() > len(transform.shape) else None)
    with torch.no_grad():
        return _topk_mask(transform.analysis(x), K)


def P_K(e: torch.Tensor, x: torch.Tensor, K, transform) -> torch.Tensor:
    r""":math:`\mathcal{P}_K(e, x) = \sum_{k \in S_K(x)} \psi_k \psi_k^T e`.

    Linear in ``e``; differentiable in ``e`` (the support is that of ``x``).
    """
    mask = S_K(x, K, transform)
    _check_signals(e, "e", transform.shape)
    if e.shape != x.shape:
        raise checks.ArgumentError("e", f"must have the shape of x {tuple(x.shape)}, got shape {tuple(e.shape)}")
    return transform.synthesis(transform.analysis(e) * mask)


def support_overlap(x: torch.Tensor, x_adv: torch.Tensor, K, transform) -> torch.Tensor:
    r""":math:`|\mathcal{S}_K(x) \cap \mathcal{S}_K(x_\mathrm{adv})|` per input, an int64 tensor ``(B,)``.

    ``K`` coefficients survive a perturbation exactly when the overlap is
    ``K`` (Prop. 1: the support did not move). ``x`` and ``x_adv`` are
    images ``(B, C, H, W)``, where the overlap is summed over channels and
    ``K`` may be one int per channel (a front end's ``K``), or 1-D signals
    ``(B, N)`` for a 1-D transform (:mod:`sparsenb.theory.bases1d`).
    ``x_adv`` need not lie in [0, 1].
    """
    _check_transform(transform)
    for name, v in (("x", x), ("x_adv", x_adv)):
        if isinstance(v, torch.Tensor) and v.dim() == 4:
            checks.images(v, name, size=tuple(transform.shape), box=False)
        else:
            _check_signals(v, name, transform.shape)
            if v.dim() != 2:
                raise checks.ArgumentError(name, f"must be images (B, C, H, W) or signals (B, N), got shape {tuple(v.shape)}")
            if not bool(torch.isfinite(v).all()):
                raise checks.ArgumentError(name, "contains NaN or infinite values")
    if x_adv.shape != x.shape:
        raise checks.ArgumentError("x_adv", f"must have the shape of x {tuple(x.shape)}, got {tuple(x_adv.shape)}")
    K = _check_K(K, transform.N, x.shape[1] if x.dim() == 4 else None)
    return (S_K(x, K, transform) & S_K(x_adv, K, transform)).flatten(1).sum(1)


def energy_captured(x: torch.Tensor, transform, Ks) -> torch.Tensor:
    r"""Share of each image's energy kept by :math:`\mathcal{H}_K`, for every K in ``Ks``.

    Returns ``(len(Ks), B)``: :math:`\|\mathcal{H}_K(\Psi x)\|_2^2 / \|x\|_2^2`
    (Parseval: the basis is orthonormal). ``x`` is ``(B, H, W)`` or
    ``(B, 1, H, W)``; images of zero energy count as fully captured.
    """
    _check_transform(transform)
    _check_signals(x, "x", transform.shape)
    if x.dim() not in (3, 4) or (x.dim() == 4 and x.shape[1] != 1):
        raise checks.ArgumentError("x", f"must have shape (B, H, W) or (B, 1, H, W), got shape {tuple(x.shape)}")
    if isinstance(Ks, (str, bytes)) or not hasattr(Ks, "__iter__"):
        raise checks.fail("Ks", f"a list of ints in [1, {transform.N}]", Ks)
    Ks = [checks.integer(k, f"Ks[{i}]", 1, transform.N) for i, k in enumerate(Ks)]
    if not Ks:
        raise checks.fail("Ks", f"a non-empty list of ints in [1, {transform.N}]", Ks)
    c = transform.analysis(x.reshape(-1, *transform.shape))
    power = c.pow(2).sort(dim=-1, descending=True).values.cumsum(dim=-1)
    total = power[:, -1]
    idx = torch.as_tensor([k - 1 for k in Ks], device=c.device)
    share = power[:, idx].T / total.clamp_min(torch.finfo(power.dtype).tiny)
    return torch.where(total > 0, share, torch.ones_like(share))


# --------------------------------------------------------------------------
# colour
# --------------------------------------------------------------------------
# ITU-R BT.601 full range (JPEG): Y, Cb, Cr all in [0, 1] for RGB in [0, 1].
_RGB_TO_YCBCR = torch.tensor(
    [[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], dtype=torch.float64
)
_YCBCR_OFFSET = torch.tensor([0.0, 0.5, 0.5], dtype=torch.float64)


def _check_colour(x, name: str, offset) -> None:
    checks.tensor(x, name, floating=True)
    if x.dim() != 4 or x.shape[1] != 3:
        raise checks.ArgumentError(name, f"must be colour images (B, 3, H, W), got shape {tuple(x.shape)}")
    checks.flag(offset, "offset")


def rgb_to_ycbcr(x: torch.Tensor, offset: bool = True) -> torch.Tensor:
    """RGB ``(B, 3, H, W)`` in [0, 1] -> YCbCr (BT.601 full range, JPEG).

    ``offset=False`` applies the linear part only (for perturbations).
    """
    _check_colour(x, "x", offset)
    m = _RGB_TO_YCBCR.to(x.device, x.dtype)
    z = torch.einsum("ij,bjhw->bihw", m, x)
    return z + _YCBCR_OFFSET.to(x.device, x.dtype)[:, None, None] if offset else z


def ycbcr_to_rgb(z: torch.Tensor, offset: bool = True) -> torch.Tensor:
    """Inverse of :func:`rgb_to_ycbcr` (with the same ``offset``)."""
    _check_colour(z, "z", offset)
    if offset:
        z = z - _YCBCR_OFFSET.to(z.device, z.dtype)[:, None, None]
    m_inv = torch.linalg.inv(_RGB_TO_YCBCR).to(z.device, z.dtype)
    return torch.einsum("ij,bjhw->bihw", m_inv, z)


# --------------------------------------------------------------------------
# the module
# --------------------------------------------------------------------------
class _StraightThrough(torch.autograd.Function):
    """Forward: the given output; backward: identity (BPDA with g'(x) = 1)."""

    @staticmethod
    def forward(ctx, x, y):
        return y

    @staticmethod
    def backward(ctx, grad):
        return grad, None


def straight_through(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``y`` in the forward pass; the backward pass sends the upstream gradient to ``x`` unchanged.

    BPDA of the identity when ``y`` is the front end's output of ``x``; any
    surrogate ``x`` whose gradient should stand in for ``y``'s otherwise.
    """
    return _StraightThrough.apply(x, y)


class _IteratedProjection(torch.autograd.Function):
    """Forward: the given output; backward: projection on a refined support."""

    @staticmethod
    def forward(ctx, x, y, frontend):
        ctx.save_for_backward(x)
        ctx.frontend = frontend
        return y

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return ctx.frontend.iterated_gradient(x, grad), None, None


class SparsifyingFrontEnd(nn.Module):
    r"""Project each image onto its K largest wavelet coefficients.

    Parameters:

    rho : float or tuple of floats
        Sparsity level :math:`\rho \in (0, 1]`; one per channel as a tuple
        (e.g. ``(0.035, 0.01, 0.01)`` for Y, Cb, Cr). ``K = floor(rho * N)``.
    wavelet : str
        Orthogonal PyWavelets wavelet (``"coif1"``, ``"db5"``, ``"sym9"``...).
    level : int
        Decomposition levels; each image side must be divisible by ``2**level``.
    image_size : (H, W)
        Image height and width in pixels.
    channels : int
        Channels per image (1 for MNIST, 3 for colour images).
    gradient : {"bpda", "projection", "iterated"}
        What the backward pass returns for an upstream gradient ``g``:

        * ``"bpda"``: ``g`` itself (identity, Athalye et al.'s BPDA of 1).
        * ``"projection"``: the exact gradient with the support fixed at the
          input's: :math:`\mathcal{P}_K(g, x)` (times the clip's 0/1 slope).
          With ``color="ycbcr"`` it is the exact backward pass of the
          fixed-support map, :math:`M^T \mathcal{P}_K M^{-T} g` for the colour
          matrix :math:`M`, which differs from :meth:`project` because
          :math:`M` is not orthogonal.
        * ``"iterated"``: the same projection on a support refined from the
          current iterate, as in App. B: starting from :math:`x_0 = x`,
          ``refine_steps`` times :math:`x_{j+1} = \mathrm{clip}_{[0,1]}(x_j +
          \delta\,\mathrm{sgn}\,\mathcal{P}_K(g, x_j))` with
          :math:`\delta` = ``refine_step``, then :math:`\mathcal{P}_K(g,
          x_J)`. With ``refine_steps=0`` it equals ``"projection"``.
    clip : bool
        Clip the output to [0, 1] (the released code does). ``False`` gives
        the exact projection :math:`\mathcal{P}_K(x, x)`.
    color : {"rgb", "ycbcr"}
        With ``"ycbcr"`` (3 channels), sparsify in YCbCr and convert back.
    """

    def __init__(
        self,
        rho,
        wavelet: str = "coif1",
        level: int = 1,
        image_size=(28, 28),
        channels: int = 1,
        gradient: str = "bpda",
        clip: bool = True,
        color: str = "rgb",
        refine_steps: int = 20,
        refine_step: float = 0.01,
    ):
        super().__init__()
        self.channels = checks.integer(channels, "channels", 1)
        self.gradient = checks.choice(gradient, "gradient", GRADIENTS)
        self.clip = checks.flag(clip, "clip")
        self.color = checks.choice(color, "color", ("rgb", "ycbcr"))
        if color == "ycbcr" and channels != 3:
            raise checks.ArgumentError("color", f"must be 'rgb' unless channels=3 ('ycbcr' needs 3), got channels={channels}")
        self.refine_steps = checks.integer(refine_steps, "refine_steps", 0)
        self.refine_step = checks.real(refine_step, "refine_step", 0.0, 1.0, low_open=True)
        rho = checks.per_channel(rho, "rho", self.channels, lambda r, name: checks.real(r, name, 0.0, 1.0, low_open=True))
        self.transform = WaveletTransform(wavelet, checks.size2d(image_size, "image_size"), level)
        self.image_size = self.transform.shape
        self.rho = rho
        self.K = tuple(sparsity_level(r, self.transform.N) for r in rho)

    def settings(self) -> dict:
        """What defines the front end's output (for cache keys and captions)."""
        return {
            "rho": list(self.rho),
            "K": list(self.K),
            "wavelet": self.wavelet,
            "level": self.level,
            "image_size": list(self.image_size),
            "clip": self.clip,
            "color": self.color,
        }

    @property
    def wavelet(self) -> str:
        return self.transform.wavelet

    @property
    def level(self) -> int:
        return self.transform.level

    def extra_repr(self) -> str:
        return (
            f"rho={self.rho}, K={self.K}, wavelet={self.wavelet!r}, level={self.level}, "
            f"image_size={self.image_size}, gradient={self.gradient!r}, clip={self.clip}, color={self.color!r}"
        )

    # ---- pieces ---------------------------------------------------------
    def _to_working(self, x, offset: bool = True):
        return rgb_to_ycbcr(x, offset) if self.color == "ycbcr" else x

    def _from_working(self, z, offset: bool = True):
        return ycbcr_to_rgb(z, offset) if self.color == "ycbcr" else z

    def check(self, x, name: str = "x", box: bool = True, scan: bool = True) -> torch.Tensor:
        """Check images for this front end (channels, size; values as :func:`sparsenb.checks.images`)."""
        return checks.images(x, name, self.channels, self.image_size, box=box, scan=scan)

    def coefficients(self, x: torch.Tensor) -> torch.Tensor:
        r"""Coefficients :math:`\Psi x` per channel, shape ``(B, C, N)`` (YCbCr if set)."""
        self.check(x, scan=False)
        return self.transform.analysis(self._to_working(x))

    def support(self, x: torch.Tensor) -> torch.Tensor:
        r""":math:`\mathcal{S}_K(x)` per image and channel, boolean ``(B, C, N)`` in basis order."""
        with torch.no_grad():
            return _topk_mask(self.coefficients(x), self.K)

    def project(self, e: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        r""":math:`\mathcal{P}_K(e, x)` in pixel space (through YCbCr if set; never clipped)."""
        self.check(e, "e", scan=False)
        if e.shape != x.shape:
            raise checks.ArgumentError("e", f"must have the shape of x {tuple(x.shape)}, got shape {tuple(e.shape)}")
        c = self.transform.analysis(self._to_working(e, offset=False)) * self.support(x)
        return self._from_working(self.transform.synthesis(c), offset=False)

    # Internally the support is a mask in the transform's pyramid layout
    # (B, C, H, W): the same set as support(), without two permutations.
    def _pyramid_support(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            c = self.transform.analysis_pyramid(self._to_working(x))
            return _topk_mask(c.flatten(-2), self.K).view_as(c)

    def _output(self, x: torch.Tensor, mask: torch.Tensor | None = None, c: torch.Tensor | None = None) -> torch.Tensor:
        """The front end's output, with the support forced to ``mask`` if given.

        Differentiable in ``x`` with the support held fixed; with ``mask=None``
        the support is ``S_K(x)``, found from the same coefficients. ``c``:
        the coefficients of ``x`` in the pyramid layout, when already computed.
        """
        if c is None:
            c = self.transform.analysis_pyramid(self._to_working(x))
        if mask is None:
            mask = _topk_mask(c.detach().flatten(-2), self.K).view_as(c)
        y = self._from_working(self.transform.synthesis_pyramid(c * mask))
        return y.clamp(0.0, 1.0) if self.clip else y

    def iterated_gradient(self, x: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        """Backward of ``gradient="iterated"`` (see the class docstring).

        Every projection is a vector-Jacobian product of the output at the
        same ``x`` with a different support: the coefficients of ``x`` and
        their graph are computed once and kept for all ``refine_steps + 1``
        of them (the same values and the same backward operations as
        recomputing them each time, so the same gradient bit for bit).
        """
        self.check(x, scan=False)
        self.check(grad, "grad", scan=False)
        if grad.shape != x.shape:
            raise checks.ArgumentError("grad", f"must have the shape of x {tuple(x.shape)}, got shape {tuple(grad.shape)}")
        x = x.detach()
        with torch.enable_grad():
            xr = x.clone().requires_grad_(True)
            c = self.transform.analysis_pyramid(self._to_working(xr))

            def vjp(mask, last=False):
                (g,) = torch.autograd.grad(self._output(xr, mask, c), xr, grad, retain_graph=not last)
                return g

            xj = x
            for _ in range(self.refine_steps):
                xj = (xj + self.refine_step * torch.sign(vjp(self._pyramid_support(xj)))).clamp(0.0, 1.0)
            return vjp(self._pyramid_support(xj), last=True)

    def _sparsify_cpu(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`_output` without autograd on CPU, one level, RGB, one K: the same arithmetic, faster.

        The images go in blocks of ``_CPU_CHUNK`` (cache blocking: the
        transform and the selection are memory-bound) through buffers made
        once per call, every step writing into them; a fresh tensor per step
        costs page faults that measured 15-40% of the time, depending on the
        allocator's history. The output equals :meth:`_output`'s bit for bit
        (tested).
        """
        A_h, A_hT, A_w, A_wT = self.transform.one_level_matrices(x.device, x.dtype)
        K, N = self.K[0], self.transform.N
        out = torch.empty_like(x)
        n = min(_CPU_CHUNK, len(x))
        buffers = torch.empty((4, n, *x.shape[1:]), dtype=x.dtype)
        masks = np.empty((n * self.channels, N), dtype=bool)
        for o, b in zip(out.split(_CPU_CHUNK), x.split(_CPU_CHUNK)):
            t, c, neg, kept = (u[: len(b)] for u in buffers)  # work, coefficients, -|c|, kept coefficients
            torch.matmul(A_h, torch.matmul(b, A_wT, out=t), out=c)  # c = A_h x A_w^T
            rows = len(b) * self.channels
            mask = masks[:rows]
            _mark_largest(c.numpy().reshape(rows, N), K, neg.numpy().reshape(rows, N), mask)
            np.multiply(c.numpy(), mask.reshape(c.shape), out=kept.numpy())
            torch.matmul(A_hT, torch.matmul(kept, A_w, out=t), out=o)  # A_h^T H_K(c) A_w
            if self.clip:
                o.clamp_(0.0, 1.0)
        return out

    def _output_no_grad(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`_output` where no gradient flows through it (also BPDA's and the iterated gradient's forward pass)."""
        one_level = isinstance(self.transform, WaveletTransform) and self.transform.level == 1
        if x.device.type == "cpu" and one_level and self.color == "rgb" and len(set(self.K)) == 1:
            return self._sparsify_cpu(x)
        if x.device.type == "cpu" and len(x) > _CPU_CHUNK:
            # cache blocking: on CPU the transform and top-k are memory-bound
            return torch.cat([self._output(b) for b in x.split(_CPU_CHUNK)])
        return self._output(x)

    # ---- forward --------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check(x)
        if not (torch.is_grad_enabled() and x.requires_grad):
            return self._output_no_grad(x)
        if self.gradient == "projection":
            return self._output(x)
        with torch.no_grad():
            y = self._output_no_grad(x)
        if self.gradient == "bpda":
            return straight_through(x, y)
        return _IteratedProjection.apply(x, y, self)


# --------------------------------------------------------------------------
# other bases
# --------------------------------------------------------------------------
class DenseFrontEnd(SparsifyingFrontEnd):
    r"""The sparsifying front end in any orthonormal basis ``basis`` (rows :math:`\psi_k`), named ``name``.

    Everything else (top-K per image, clip, gradient treatments) is
    :class:`SparsifyingFrontEnd`'s. One channel. ``settings()`` holds the
    name and a fingerprint of the matrix, so checkpoints and stored results
    are keyed by the basis itself.
    """

    def __init__(self, rho, basis: torch.Tensor, name: str, image_size=(28, 28), **kwargs):
        super().__init__(rho, "haar", 1, image_size, channels=1, **kwargs)
        if not isinstance(name, str) or not name:
            raise checks.fail("name", "a non-empty string naming the basis", name)
        self.transform = DenseTransform(basis, self.image_size)
        self.basis_name = name
        self.basis_fingerprint = data_fingerprint(basis.detach().double().cpu())

    @property
    def wavelet(self) -> str:
        return self.basis_name

    @property
    def level(self) -> int:
        return 0

    def settings(self) -> dict:
        return {**super().settings(), "basis": self.basis_fingerprint}


def frontend_for(spec: str, rho: float, x_train: torch.Tensor | None = None, basis: torch.Tensor | None = None,
                 **kwargs) -> SparsifyingFrontEnd:
    r"""The front end for a basis spec; ``"pca"`` learns its basis from ``x_train``.

    Specs: ``"haar:1"``, ``"db2:2"``, ``"coif1:3"``...: an orthogonal
    PyWavelets wavelet at that many levels (periodized), the book's
    :class:`SparsifyingFrontEnd`, so its checkpoints and results are shared
    with the other chapters; a dense basis of :data:`sparsenb.basis.DENSE_BASES`
    (:func:`sparsenb.basis.dense_basis`) through :class:`DenseFrontEnd`. A
    dense spec's matrix may be passed as ``basis`` (computed once for many
    :math:`\rho`).
    """
    if not isinstance(spec, str) or not spec:
        raise checks.fail("spec", "a basis spec such as 'coif1:1', 'dct', 'blockdct8', 'pixel' or 'pca'", spec)
    if spec in DENSE_BASES:
        return DenseFrontEnd(rho, dense_basis(spec, x_train) if basis is None else basis, spec, **kwargs)
    name, _, level = spec.partition(":")
    try:
        level = int(level or 1)
    except ValueError:
        raise checks.ArgumentError("spec", f"={spec!r}: the level after ':' must be an int") from None
    return SparsifyingFrontEnd(rho, name, level, **kwargs)


# --------------------------------------------------------------------------
# the defended model
# --------------------------------------------------------------------------
def defended(frontend: nn.Module, classifier: nn.Module) -> nn.Sequential:
    """The defended model: the front end, then the classifier."""
    return nn.Sequential(frontend, classifier)


def split_defended(model) -> tuple[SparsifyingFrontEnd | None, object]:
    """``(frontend, classifier)`` of a defended model ``nn.Sequential(frontend, classifier...)``; ``(None, model)`` otherwise."""
    if isinstance(model, nn.Sequential) and len(model) >= 2 and isinstance(model[0], SparsifyingFrontEnd):
        rest = model[1] if len(model) == 2 else nn.Sequential(*list(model)[1:])
        return model[0], rest
    return None, model


def with_gradient(frontend: SparsifyingFrontEnd, gradient: str) -> SparsifyingFrontEnd:
    """The same front end with another gradient treatment (a shallow copy; the original is unchanged)."""
    import copy

    checks.choice(gradient, "gradient", GRADIENTS)
    if frontend.gradient == gradient:
        return frontend
    out = copy.copy(frontend)
    out.gradient = gradient
    return out
