r"""Fast orthonormal 1-D bases for Theorem 2 at :math:`N = 2^n` up to :math:`2^{16}` and beyond.

A *transform* is any object with ``analysis``/``synthesis`` (coefficients
:math:`\psi_k^T x` and back), ``N`` and ``shape``: the image transforms of
:mod:`sparsenb.basis` or the 1-D ones defined here, so that
:func:`sparsenb.frontend.S_K` and :func:`~sparsenb.frontend.P_K` work on both.

* :class:`Wavelet1D`: PyWavelets ``wavedec``/``waverec`` with
  ``mode="periodization"``, a fixed level or the full depth.
* :class:`DCT1D`: ``scipy.fft.dct(norm="ortho")``.

No dense :math:`N \times N` matrix is ever formed: :func:`psi_norms` gives
:math:`\|\psi_k\|_1` and :math:`\|\psi_k\|_\infty` for the needed :math:`k`
only, by synthesising unit coefficient vectors in batches.
:func:`sparse_signal` draws the paper's data model (Sec. III-A), an exactly
:math:`K`-sparse signal.
"""
from __future__ import annotations

import math
import warnings
from typing import Sequence

import numpy as np
import pandas as pd
import pywt
import scipy.fft
import torch

from .. import checks
from ..basis import check_wavelet
from ._common import _flat, _numpy
from .weights import make_rng

__all__ = [
    "Wavelet1D",
    "DCT1D",
    "transform_1d",
    "basis_functions",
    "psi_norms",
    "max_psi_norms",
    "psi_norm_table",
    "sparse_signal",
]

class Wavelet1D:
    r"""Orthonormal periodized 1-D wavelet transform of length ``N``.

    ``analysis(x)`` maps ``(..., N)`` to the ``(..., N)`` coefficients
    :math:`\psi_k^T x` in ``pywt.wavedec`` order (approximation band ``A{L}``,
    then detail bands ``D{L}`` ... ``D1``, coarse to fine), ``synthesis`` is
    its inverse and adjoint. ``level`` is an int (each band a fixed number of
    scales below the signal, the book's convention) or ``"full"`` (level
    :math:`\log_2 N`, a single approximation coefficient: the coarsest
    functions then spread over the whole signal). Inputs may be NumPy arrays
    or tensors; outputs are float64 tensors, so that
    :func:`sparsenb.frontend.S_K` and :func:`~sparsenb.frontend.P_K` work
    unchanged.
    """

    def __init__(self, wavelet: str = "coif1", N: int = 1024, level=1):
        check_wavelet(wavelet)
        self.wavelet = wavelet
        self.N = checks.integer(N, "N", 2)
        if level == "full":
            if self.N & (self.N - 1):
                raise checks.ArgumentError("level", f"='full' needs N to be a power of two, got N={self.N}")
            level = self.N.bit_length() - 1
        level = checks.integer(level, "level", 1)
        if self.N % (2**level):
            raise checks.ArgumentError(
                "level",
                f"={level} is too deep for N={self.N}: N must be divisible by 2**level = {2**level} "
                "for an orthonormal periodized transform"
            )
        self.level = level
        self.full = self.level == self.N.bit_length() - 1 and not self.N & (self.N - 1)
        self.shape = (self.N,)
        self.sizes = (self.N >> level,) + tuple(self.N >> lev for lev in range(level, 0, -1))
        self.bands = (f"A{level}",) + tuple(f"D{lev}" for lev in range(level, 0, -1))
        self._splits = np.cumsum(self.sizes)[:-1]

    def __repr__(self) -> str:
        return f"Wavelet1D(wavelet={self.wavelet!r}, N={self.N}, level={self.level})"

    @property
    def name(self) -> str:
        return f"{self.wavelet}:{'full' if self.full else self.level}"

    def analysis(self, x) -> torch.Tensor:
        arr = _numpy(x, "x", self.N)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "level too high": harmless with periodization
            coeffs = pywt.wavedec(arr, self.wavelet, mode="periodization", level=self.level, axis=-1)
        return torch.from_numpy(np.concatenate(coeffs, axis=-1))

    def synthesis(self, c) -> torch.Tensor:
        arr = _numpy(c, "c", self.N)
        parts = np.split(arr, self._splits, axis=-1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            x = pywt.waverec(parts, self.wavelet, mode="periodization", axis=-1)
        return torch.from_numpy(np.ascontiguousarray(x))

    def band_starts(self) -> list[int]:
        """Index of the first coefficient of each band (``A{L}``, ``D{L}``, ..., ``D1``)."""
        return [0] + [int(s) for s in self._splits]

    def representative_indices(self) -> list[int]:
        """One basis function per band.

        With periodization the functions of a band are circular shifts of one
        another (by :math:`2^l` samples at level :math:`l`), so they share
        their :math:`\\ell_1` and :math:`\\ell_\\infty` norms: the maximum over
        these indices is the maximum over all :math:`k`.
        """
        return self.band_starts()


class DCT1D:
    r"""Orthonormal 1-D DCT-II of length ``N`` (``scipy.fft.dct(norm="ortho")``).

    Its basis functions :math:`\psi_k[i] = c_k \cos(\pi(2i+1)k/2N)` spread
    over the whole signal: :math:`\|\psi_0\|_1 = \sqrt N` is the largest
    :math:`\ell_1` norm (Cauchy–Schwarz gives :math:`\|\psi_k\|_1 \le \sqrt N`
    for every :math:`k`), and :math:`\|\psi_k\|_\infty \le \sqrt{2/N}`.
    """

    def __init__(self, N: int = 1024):
        self.N = checks.integer(N, "N", 2)
        self.shape = (self.N,)

    def __repr__(self) -> str:
        return f"DCT1D(N={self.N})"

    name = "dct"

    def analysis(self, x) -> torch.Tensor:
        return torch.from_numpy(scipy.fft.dct(_numpy(x, "x", self.N), type=2, norm="ortho", axis=-1))

    def synthesis(self, c) -> torch.Tensor:
        return torch.from_numpy(scipy.fft.idct(_numpy(c, "c", self.N), type=2, norm="ortho", axis=-1))

    def representative_indices(self) -> list[int]:
        """:math:`k = 0` (largest :math:`\\ell_1`, :math:`\\sqrt N`), 1 (largest :math:`\\ell_\\infty`) and :math:`N/2`."""
        return sorted({0, 1, self.N // 2})


def transform_1d(spec: str, N: int):
    """A 1-D transform from a short spec: ``"dct"``, ``"coif1"`` (level 1), ``"coif1:3"`` or ``"coif1:full"``."""
    if not isinstance(spec, str) or not spec:
        raise checks.ArgumentError("spec", f"must be a string such as 'dct', 'coif1:1' or 'haar:full', got {spec!r}")
    if spec == "dct":
        return DCT1D(N)
    name, _, level = spec.partition(":")
    if level in ("", None):
        level = 1
    elif level != "full":
        try:
            level = int(level)
        except ValueError:
            raise checks.ArgumentError("spec", f"={spec!r}: the level after ':' must be an int or 'full'") from None
    return Wavelet1D(name, N, level)



def basis_functions(transform, indices, batch: int = 256) -> torch.Tensor:
    r"""The basis functions :math:`\psi_k`, ``k`` in ``indices``, as rows ``(len, N)`` (float64).

    Synthesises unit coefficient vectors ``batch`` at a time, so only the
    requested functions are ever held in memory.
    """
    N = transform.N
    idx = torch.as_tensor(np.asarray(indices, dtype=np.int64).ravel())
    if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= N):
        raise checks.ArgumentError("indices", f"must lie in [0, N={N}), got range [{int(idx.min())}, {int(idx.max())}]")
    batch = checks.integer(batch, "batch", 1)
    rows = []
    for chunk in idx.split(batch):
        unit = torch.zeros(len(chunk), N, dtype=torch.float64)
        unit[torch.arange(len(chunk)), chunk] = 1.0
        rows.append(_flat(transform.synthesis(unit), transform))
    return torch.cat(rows) if rows else torch.zeros(0, N, dtype=torch.float64)


def psi_norms(transform, indices=None, batch: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    r""":math:`\|\psi_k\|_1` and :math:`\|\psi_k\|_\infty` for ``k`` in ``indices`` (all if None)."""
    if indices is None:
        indices = np.arange(transform.N)
    idx = np.asarray(indices, dtype=np.int64).ravel()
    l1, linf = [], []
    for chunk in np.array_split(idx, max(1, math.ceil(len(idx) / batch))):
        psi = basis_functions(transform, chunk, batch)
        l1.append(psi.abs().sum(-1))
        linf.append(psi.abs().amax(-1) if len(chunk) else psi.sum(-1))
    return torch.cat(l1), torch.cat(linf)


def max_psi_norms(transform) -> tuple[float, float]:
    r""":math:`\max_k \|\psi_k\|_1` and :math:`\max_k \|\psi_k\|_\infty`, exactly.

    Evaluated on the transform's ``representative_indices()`` (one function per wavelet
    band; :math:`k = 0, 1, N/2` for the DCT), where the maxima are attained.
    """
    l1, linf = psi_norms(transform, transform.representative_indices())
    return float(l1.max()), float(linf.max())


def psi_norm_table(specs: Sequence[str], Ns) -> pd.DataFrame:
    r""":math:`\max_k\|\psi_k\|_1` and :math:`\max_k\|\psi_k\|_\infty` of 1-D bases against ``N`` (Thm 2's assumptions)."""
    rows = []
    for spec in specs:
        for N in Ns:
            l1, linf = max_psi_norms(transform_1d(spec, int(N)))
            rows.append({"basis": spec, "N": int(N), "l1_max": l1, "linf_max": linf})
    return pd.DataFrame(rows)


def sparse_signal(transform, K: int, rng, magnitude: float = 1.0) -> tuple[torch.Tensor, np.ndarray]:
    r"""A signal with exactly ``K`` nonzero coefficients at random positions.

    The paper's data model (Sec. III-A): :math:`x` is :math:`K`-sparse in the
    basis. Coefficients are :math:`\pm(1 + U)\cdot` ``magnitude`` with
    :math:`U \sim U[0, 1)`, so :math:`\mathcal{S}_K(x)` is the drawn support.
    Returns ``(x, support)`` with ``x`` in the transform's signal shape and
    ``support`` the sorted indices.
    """
    rng = make_rng(rng)
    K = checks.integer(K, "K", 1, transform.N)
    support = np.sort(rng.choice(transform.N, size=K, replace=False))
    c = torch.zeros(transform.N, dtype=torch.float64)
    c[torch.from_numpy(support)] = torch.from_numpy(
        magnitude * (1.0 + rng.random(K)) * rng.choice([-1.0, 1.0], size=K)
    )
    x = transform.synthesis(c[None])[0]
    return x, support
