r"""Orthonormal bases for images: wavelets, the DCT and the pixel basis.

Notation (paper, Sec. III). An image :math:`x \in \mathbb{R}^N` with
:math:`N = HW` has coefficients :math:`c_k = \psi_k^T x` in an orthonormal
basis :math:`\{\psi_k\}_{k=1}^N`. Here the basis is stored as a dense
:math:`N \times N` matrix ``Psi`` whose *rows* are the basis functions, so

    c = Psi @ x            (analysis)
    x = Psi.T @ c          (synthesis, because Psi Psi^T = I)

Wavelet bases come from PyWavelets with ``mode="periodization"``; the order of
the coefficients is PyWavelets' ``wavedec2`` order flattened: the coarsest
approximation band, then for each level from coarse to fine the horizontal,
vertical and diagonal detail bands, each band row-major. With one level this
is the order of the authors' released code (approximation, horizontal,
vertical, diagonal).

Two implementations of the same wavelet operator live here:

* :func:`wavelet_basis` builds the dense matrix by transforming unit impulses
  with ``pywt.wavedec2``. It is the reference, used by the theory chapters
  (``||psi_k||_1``, gamma) and by the tests.
* :class:`WaveletTransform` applies the operator separably, one level at a
  time, as batched matrix products with small one-dimensional DWT matrices
  (a 28x28 image costs two 28x28 products per level instead of one 784x784
  product). It runs on any device and dtype and is what the front end uses.

Besides wavelets, the dense bases the basis comparison sweeps
(:data:`DENSE_BASES`, :func:`dense_basis`): the whole-image DCT
(:func:`dct_basis`), JPEG's 8x8 block DCT (:func:`block_dct_basis`), the
pixel basis (:func:`pixel_basis`) and a basis learned from training images
(:func:`pca_basis`); :class:`DenseTransform` applies any of them.
"""
from __future__ import annotations

import functools
import warnings

import numpy as np
import pywt
import torch

from . import checks

__all__ = [
    "check_wavelet",
    "check_level",
    "wavelet_basis",
    "dct_basis",
    "pixel_basis",
    "l1_norms",
    "gamma",
    "band_labels",
    "WaveletTransform",
    "DenseTransform",
    "DENSE_BASES",
    "block_dct_basis",
    "pca_basis",
    "dense_basis",
]


_ORTHONORMAL_FAMILIES = ("haar", "db", "sym", "coif")


# --------------------------------------------------------------------------
# argument checks
# --------------------------------------------------------------------------
def check_wavelet(wavelet: str) -> pywt.Wavelet:
    """Return the PyWavelets wavelet named ``wavelet`` if it is orthogonal.

    Raises :class:`~sparsenb.checks.ArgumentError` naming ``wavelet`` for
    non-strings, unknown names and biorthogonal or continuous wavelets, whose
    transforms are not orthonormal.
    """
    if not isinstance(wavelet, str):
        raise checks.fail("wavelet", "a PyWavelets name such as 'coif1'", wavelet)
    if wavelet not in pywt.wavelist(kind="discrete"):
        raise checks.ArgumentError(
            "wavelet",
            f"must be a discrete PyWavelets wavelet, got wavelet={wavelet!r}; "
            "use an orthogonal one such as 'db5', 'coif1', 'sym9' or 'haar'",
        )
    w = pywt.Wavelet(wavelet)
    # PyWavelets marks 'dmey' orthogonal, but its FIR approximation of the
    # Meyer wavelet gives max|Psi Psi^T - I| ~ 5e-3: not a basis to project on.
    if not w.orthogonal or w.short_family_name not in _ORTHONORMAL_FAMILIES:
        raise checks.ArgumentError(
            "wavelet",
            f"must be an orthogonal wavelet (haar, dbN, symN or coifN): wavelet={wavelet!r} "
            "does not give an orthonormal basis",
        )
    return w


def check_level(level: int, shape: tuple[int, int]) -> int:
    """Check that ``level`` decomposition levels fit an image of ``shape``.

    With periodization the transform is orthonormal exactly when each side is
    divisible by ``2**level``; otherwise PyWavelets pads and returns more
    coefficients than pixels. (Levels beyond ``pywt.dwt_max_level`` are fine:
    the filters wrap around, which periodization handles exactly.)
    """
    shape = checks.size2d(shape, "shape")
    level = checks.integer(level, "level", 1)
    for side in shape:
        if side % (2**level):
            raise checks.ArgumentError(
                "level",
                f"must fit the image size {shape}: level={level} is too deep, each side must be "
                f"divisible by 2**level = {2**level} for an orthonormal periodized transform",
            )
    return level


def _check_basis(basis, name: str = "basis") -> torch.Tensor:
    """A finite, square, floating matrix ``(N, N)`` (rows are basis functions)."""
    checks.tensor(basis, name, floating=True)
    if basis.dim() != 2 or basis.shape[0] != basis.shape[1] or basis.shape[0] < 1:
        raise checks.ArgumentError(name, f"must be a square matrix (N, N) with rows psi_k, got shape {tuple(basis.shape)}")
    return checks.finite(basis, name)


# --------------------------------------------------------------------------
# dense reference bases
# --------------------------------------------------------------------------
def _flatten_wavedec2(coeffs) -> np.ndarray:
    parts = [np.ravel(coeffs[0])]
    for details in coeffs[1:]:
        parts.extend(np.ravel(d) for d in details)
    return np.concatenate(parts)


@functools.lru_cache(maxsize=32)
def _wavelet_basis_np(wavelet: str, shape: tuple[int, int], level: int) -> np.ndarray:
    H, W = shape
    N = H * W
    psi = np.empty((N, N))
    impulse = np.zeros((H, W))
    with warnings.catch_warnings():
        # "Level value of L is too high: all coefficients will experience
        # boundary effects" is harmless under periodization.
        warnings.simplefilter("ignore", UserWarning)
        for i in range(N):
            impulse.flat[i] = 1.0
            # column i of the analysis operator = coefficients of pixel i
            psi[:, i] = _flatten_wavedec2(pywt.wavedec2(impulse, wavelet, mode="periodization", level=level))
            impulse.flat[i] = 0.0
    psi.setflags(write=False)
    return psi


def wavelet_basis(wavelet: str = "coif1", shape=(28, 28), level: int = 1) -> torch.Tensor:
    r"""The orthonormal wavelet basis of an ``H x W`` image as a dense tensor.

    Returns a float64 tensor ``Psi`` of shape ``(N, N)``, ``N = H*W``, whose
    row ``k`` is the basis function :math:`\psi_k` (flattened row-major), so
    that ``Psi @ x.flatten()`` equals the flattened
    ``pywt.wavedec2(x, wavelet, mode="periodization", level=level)``.
    Results are cached; the returned tensor is a fresh copy.
    """
    check_wavelet(wavelet)
    shape = checks.size2d(shape, "shape")
    level = check_level(level, shape)
    return torch.from_numpy(_wavelet_basis_np(wavelet, shape, level).copy())


def _dct_matrix(n: int) -> np.ndarray:
    """Orthonormal DCT-II matrix (rows are the cosines)."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    m[0] /= np.sqrt(2.0)
    return m


def dct_basis(shape=(28, 28)) -> torch.Tensor:
    """The orthonormal 2-D DCT-II basis (rows are basis images, flattened).

    Row ``k = u*W + v`` is the separable cosine of vertical frequency ``u`` and
    horizontal frequency ``v``; it matches ``scipy.fft.dctn(x, norm="ortho")``.
    Its basis functions are spread over the whole image, so their l1 norms
    grow like sqrt(N): the paper's example of a poor basis for the white box.
    """
    H, W = checks.size2d(shape, "shape")
    return torch.from_numpy(np.kron(_dct_matrix(H), _dct_matrix(W)))


def pixel_basis(shape=(28, 28)) -> torch.Tensor:
    """The standard (pixel) basis: the identity, ``||psi_k||_1 = 1``."""
    H, W = checks.size2d(shape, "shape")
    return torch.eye(H * W, dtype=torch.float64)


def l1_norms(basis: torch.Tensor) -> torch.Tensor:
    r""":math:`\|\psi_k\|_1` for every row of ``basis``."""
    return _check_basis(basis).abs().abs().sum(dim=1)


def gamma(basis: torch.Tensor) -> float:
    r"""Prop. 1's constant :math:`\gamma = 2 \max_k \|\psi_k\|_1`.

    If the smallest retained coefficient :math:`\lambda` satisfies
    :math:`\lambda / \epsilon > \gamma`, an :math:`\ell_\infty` perturbation of
    size :math:`\epsilon` cannot change the support :math:`S_K(x)`.
    """
    return float(2.0 * l1_norms(basis).max())


def band_labels(shape=(28, 28), level: int = 1) -> list[str]:
    """Name of the band of each coefficient, in basis order.

    ``"A{L}"`` for the approximation band, ``"H{l}"``, ``"V{l}"``, ``"D{l}"``
    for the detail bands at level ``l`` (1 = finest).
    """
    H, W = checks.size2d(shape, "shape")
    level = check_level(level, (H, W))
    h, w = H >> level, W >> level
    labels = [f"A{level}"] * (h * w)
    for lev in range(level, 0, -1):
        h, w = H >> lev, W >> lev
        for band in "HVD":
            labels += [f"{band}{lev}"] * (h * w)
    return labels


# --------------------------------------------------------------------------
# fast separable transform
# --------------------------------------------------------------------------
@functools.lru_cache(maxsize=64)
def _dwt_matrix_np(wavelet: str, n: int) -> np.ndarray:
    """One-level periodized 1-D DWT of length ``n`` as an ``n x n`` matrix.

    Rows ``0..n/2-1`` give the approximation, rows ``n/2..n-1`` the detail.
    """
    m = np.empty((n, n))
    e = np.zeros(n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for i in range(n):
            e[i] = 1.0
            cA, cD = pywt.dwt(e, wavelet, mode="periodization")
            m[:, i] = np.concatenate([cA, cD])
            e[i] = 0.0
    return m


@functools.lru_cache(maxsize=32)
def _pyramid_to_flat_np(shape: tuple[int, int], level: int) -> np.ndarray:
    """Index ``p`` such that ``pyramid.flatten()[p]`` is the wavedec2 order.

    The pyramid is the Mallat layout of ``pywt.coeffs_to_array``: the
    approximation in the top-left corner, at each level ``H`` below, ``V`` to
    the right and ``D`` diagonally.
    """
    H, W = shape
    pos = np.arange(H * W).reshape(H, W)
    h, w = H >> level, W >> level
    parts = [pos[:h, :w].ravel()]
    for lev in range(level, 0, -1):
        h, w = H >> lev, W >> lev
        parts += [pos[h : 2 * h, :w].ravel(), pos[:h, w : 2 * w].ravel(), pos[h : 2 * h, w : 2 * w].ravel()]
    return np.concatenate(parts)


class WaveletTransform:
    r"""Fast orthonormal 2-D wavelet analysis and synthesis for image batches.

    ``analysis(x)`` maps ``(..., H, W)`` to ``(..., N)`` coefficients in the
    order of :func:`wavelet_basis` (``Psi @ x``); ``synthesis(c)`` is its
    inverse and adjoint (``Psi.T @ c``). Both are linear, differentiable and
    run on the device and dtype of their input. Level ``l`` applies
    ``A_h X A_w^T`` to the current approximation block, where ``A_n`` is the
    one-level periodized DWT matrix of length ``n``.
    """

    def __init__(self, wavelet: str = "coif1", shape=(28, 28), level: int = 1):
        check_wavelet(wavelet)
        self.wavelet = wavelet
        self.shape = checks.size2d(shape, "shape")
        self.level = check_level(level, self.shape)
        self.N = self.shape[0] * self.shape[1]
        self._cache: dict = {}

    def __repr__(self) -> str:
        return f"WaveletTransform(wavelet={self.wavelet!r}, shape={self.shape}, level={self.level})"

    def _operators(self, device, dtype):
        key = (str(device), dtype)
        if key not in self._cache:
            H, W = self.shape
            mats = []
            for lev in range(self.level):
                A_h, A_w = (
                    torch.as_tensor(_dwt_matrix_np(self.wavelet, n), dtype=dtype, device=device)
                    for n in (H >> lev, W >> lev)
                )
                mats.append((A_h, A_h.T.contiguous(), A_w, A_w.T.contiguous()))
            order = torch.as_tensor(_pyramid_to_flat_np(self.shape, self.level), device=device)
            self._cache[key] = (mats, order, torch.argsort(order))
        return self._cache[key]

    def one_level_matrices(self, device, dtype):
        r"""``(A_h, A_h^T, A_w, A_w^T)`` of a one-level transform: analysis is
        :math:`A_h X A_w^T`, synthesis :math:`A_h^T Y A_w` (the Mallat layout)."""
        if self.level != 1:
            raise ValueError(f"one_level_matrices needs level 1, this transform has level {self.level}")
        return self._operators(device, dtype)[0][0]

    # The pyramid (Mallat) layout is what the front end works in: top-K does
    # not care about the order, and skipping the two permutations saves time.
    def analysis_pyramid(self, x: torch.Tensor) -> torch.Tensor:
        """Coefficients of ``x`` ``(..., H, W)`` in the Mallat layout ``(..., H, W)``."""
        _check_planes(x, "x", self.shape)
        mats, _, _ = self._operators(x.device, x.dtype)
        y = x
        for lev, (A_h, _, _, A_wT) in enumerate(mats):
            h, w = A_h.shape[0], A_wT.shape[0]
            block = A_h @ (y[..., :h, :w] @ A_wT)
            y = block if lev == 0 else _replace_corner(y, block)
        return y

    def synthesis_pyramid(self, y: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`analysis_pyramid`."""
        _check_planes(y, "y", self.shape)
        mats, _, _ = self._operators(y.device, y.dtype)
        for lev in range(len(mats) - 1, -1, -1):
            _, A_hT, A_w, _ = mats[lev]
            h, w = A_hT.shape[0], A_w.shape[0]
            block = A_hT @ (y[..., :h, :w] @ A_w)
            y = block if lev == 0 else _replace_corner(y, block)
        return y

    def to_pyramid(self, c: torch.Tensor) -> torch.Tensor:
        """Coefficients ``(..., N)`` in basis order -> Mallat layout ``(..., H, W)``."""
        _check_coefficients(c, self.N)
        _, _, inverse_order = self._operators(c.device, c.dtype)
        return c[..., inverse_order].unflatten(-1, self.shape)

    def from_pyramid(self, y: torch.Tensor) -> torch.Tensor:
        """Mallat layout ``(..., H, W)`` -> coefficients ``(..., N)`` in basis order."""
        _check_planes(y, "y", self.shape)
        _, order, _ = self._operators(y.device, y.dtype)
        return y.flatten(-2)[..., order]

    def analysis(self, x: torch.Tensor) -> torch.Tensor:
        """Coefficients ``Psi @ x`` of images ``x`` of shape ``(..., H, W)``, in basis order."""
        return self.from_pyramid(self.analysis_pyramid(x))

    def synthesis(self, c: torch.Tensor) -> torch.Tensor:
        """Images ``Psi.T @ c`` from coefficients ``(..., N)`` in basis order."""
        _check_coefficients(c, self.N)
        return self.synthesis_pyramid(self.to_pyramid(c))

    def dense(self) -> torch.Tensor:
        """The same operator as a dense float64 ``(N, N)`` matrix (rows psi_k)."""
        eye = torch.eye(self.N, dtype=torch.float64).reshape(self.N, *self.shape)
        return self.analysis(eye).T.contiguous()


def _check_planes(x, name: str, shape) -> None:
    """A float tensor ``(..., H, W)`` of the transform's image size (O(1): no scan of the values)."""
    checks.tensor(x, name, floating=True)
    if x.dim() < 2 or tuple(x.shape[-2:]) != shape:
        raise checks.ArgumentError(name, f"must end in the image size {shape}, got shape {tuple(x.shape)}")


def _check_coefficients(c, N: int) -> None:
    checks.tensor(c, "c", floating=True)
    if c.dim() < 1 or c.shape[-1] != N:
        raise checks.ArgumentError("c", f"must have {N} coefficients in its last dimension, got shape {tuple(c.shape)}")


def _replace_corner(y: torch.Tensor, block: torch.Tensor) -> torch.Tensor:
    """``y`` with its top-left corner replaced by ``block`` (out of place, autograd-safe)."""
    h, w = block.shape[-2:]
    top = torch.cat([block, y[..., :h, w:]], dim=-1)
    return torch.cat([top, y[..., h:, :]], dim=-2)


class DenseTransform:
    """Analysis and synthesis with any dense orthonormal basis (rows psi_k).

    Used for the DCT and the pixel basis, which have no fast path here, with
    the same interface as :class:`WaveletTransform`.
    """

    def __init__(self, basis: torch.Tensor, shape=(28, 28)):
        self.shape = checks.size2d(shape, "shape")
        self.N = self.shape[0] * self.shape[1]
        _check_basis(basis)
        if basis.shape != (self.N, self.N):
            raise checks.ArgumentError("basis", f"must be ({self.N}, {self.N}) for shape {self.shape}, got {tuple(basis.shape)}")
        b = basis.detach().to(torch.float64)
        tol = 1e-6 if basis.dtype == torch.float64 else 1e-4
        if float((b @ b.T - torch.eye(self.N, dtype=torch.float64)).abs().max()) > tol:
            raise checks.ArgumentError("basis", f"must be orthonormal (Psi Psi^T = I to {tol:g}); its rows are not")
        self.basis = basis
        self._cache: dict = {}

    def _psi(self, device, dtype):
        key = (str(device), dtype)
        if key not in self._cache:
            self._cache[key] = self.basis.to(device=device, dtype=dtype)
        return self._cache[key]

    def analysis(self, x: torch.Tensor) -> torch.Tensor:
        _check_planes(x, "x", self.shape)
        return x.flatten(-2) @ self._psi(x.device, x.dtype).T

    def synthesis(self, c: torch.Tensor) -> torch.Tensor:
        _check_coefficients(c, self.N)
        return (c @ self._psi(c.device, c.dtype)).unflatten(-1, self.shape)

    def dense(self) -> torch.Tensor:
        return self.basis.to(torch.float64)

    # the front end's interface: coefficients laid out as an H x W plane (in basis order)
    def analysis_pyramid(self, x: torch.Tensor) -> torch.Tensor:
        return self.analysis(x).unflatten(-1, self.shape)

    def synthesis_pyramid(self, y: torch.Tensor) -> torch.Tensor:
        return self.synthesis(y.flatten(-2))


# --------------------------------------------------------------------------
# dense bases for the basis comparison
# --------------------------------------------------------------------------
#: The dense bases the front end can sparsify in besides wavelets (see :func:`dense_basis`).
DENSE_BASES = ("dct", "blockdct8", "pixel", "pca")


def _block_dct_1d(n: int, block: int) -> np.ndarray:
    """Block-diagonal 1-D DCT of length ``n``: blocks of ``block``, the last one shorter if ``block`` does not divide ``n``."""
    out = np.zeros((n, n))
    for s in range(0, n, block):
        e = min(s + block, n)
        out[s:e, s:e] = _dct_matrix(e - s)
    return out


def block_dct_basis(shape=(28, 28), block: int = 8) -> torch.Tensor:
    """The orthonormal block DCT of an image (rows are basis images), JPEG's transform for ``block = 8``.

    Separable: the Kronecker product of two block-diagonal 1-D DCTs, so each
    basis image lives in one block; 28 is not a multiple of 8, so the blocks
    along each side are 8, 8, 8 and 4 pixels wide (each block its own
    orthonormal DCT: the whole is orthonormal). Rows are ordered by
    block-frequency pair as the Kronecker product gives them (the order does
    not matter to the front end, which keeps the largest coefficients
    wherever they are).
    """
    H, W = checks.size2d(shape, "shape")
    block = checks.integer(block, "block", 1)
    return torch.from_numpy(np.kron(_block_dct_1d(H, block), _block_dct_1d(W, block)))


def pca_basis(x: torch.Tensor) -> torch.Tensor:
    r"""An orthonormal basis learned from images ``x`` ``(B, 1, H, W)``: eigenvectors of :math:`\frac1B\sum x x^T`.

    The uncentred second moment: the front end has no mean to subtract, so
    its leading K eigenvectors are the ones that capture the most energy of
    :math:`x` itself. Rows by decreasing eigenvalue; each row's sign is fixed
    so that its largest-magnitude entry is positive (deterministic across
    machines).
    """
    checks.images(x, "x", channels=1)
    if len(x) < 2:
        raise checks.ArgumentError("x", "must hold at least two images to learn a basis from")
    X = x.flatten(1).double()
    vals, vecs = torch.linalg.eigh(X.T @ X / len(X))
    psi = vecs.flip(-1).T.contiguous()  # rows: eigenvectors, largest eigenvalue first
    idx = psi.abs().argmax(1)
    sign = torch.sign(psi[torch.arange(len(psi)), idx])
    return psi * sign[:, None]


def dense_basis(spec: str, x_train: torch.Tensor | None = None, shape=(28, 28)) -> torch.Tensor:
    """The matrix of a dense basis (:data:`DENSE_BASES`): ``"dct"``, ``"blockdct8"``, ``"pixel"``, or ``"pca"`` learned from ``x_train``."""
    checks.choice(spec, "spec", DENSE_BASES)
    if spec == "pca":
        if x_train is None:
            raise checks.ArgumentError("x_train", "must hold the training images to learn the 'pca' basis from")
        return pca_basis(x_train)
    return {"dct": dct_basis, "blockdct8": block_dct_basis, "pixel": pixel_basis}[spec](shape)

