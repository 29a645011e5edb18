r"""The paper's theory (Secs. III–V and App. A) as functions the theory chapters call.

Notation follows the paper. A signal :math:`x \in \mathbb{R}^N` has
coefficients :math:`\psi_k^T x` in an orthonormal basis; :math:`\mathcal{S}_K`,
:math:`\mathcal{P}_K` are :func:`sparsenb.frontend.S_K`, :func:`~sparsenb.frontend.P_K`
(reused here; :func:`linear_distortions` writes :math:`\mathcal{P}_K` out once
to share its intermediate results, and the tests check that the two agree),
and a *transform* is any object with
``analysis``/``synthesis``, ``N`` and ``shape``: the image transforms of
:mod:`sparsenb.basis` or the 1-D ones defined here.

* **Weights** (Sec. IV-B). :func:`weight_model` gives the i.i.d. laws used for
  the random classifier :math:`w` (zero mean and median, unit variance, so
  :math:`\sigma^2 = 1`): Gaussian, uniform and Laplace, with
  :math:`\mu = E|w_1|`, characteristic functions and CDFs.
* **1-D bases** (Thm 2 at :math:`N = 2^n` up to :math:`2^{16}`): :class:`Wavelet1D`
  (PyWavelets ``wavedec``/``waverec``, ``mode="periodization"``, a fixed
  level or the full depth) and :class:`DCT1D` (``scipy.fft.dct``,
  ``norm="ortho"``), both fast: no dense :math:`N \times N` matrix is ever
  formed. :func:`psi_norms` gives :math:`\|\psi_k\|_1`, :math:`\|\psi_k\|_\infty`
  for the needed :math:`k` only, by synthesising unit coefficient vectors in
  batches.
* **Linear classifiers** (Sec. IV): :func:`delta_0` (Eq. 2), :func:`z_k`,
  :func:`delta_sw` (Eq. 4), :func:`delta_w`, :func:`white_box_perturbation`,
  :func:`lemma1_bound`, the exact moments of :math:`Z_K` (:func:`z_k_moments`,
  Lemma 4) and Chebyshev's bound (Eq. 6); Monte Carlo sweeps over
  :math:`N`, :math:`K` and bases (:func:`prop2_paths`, :func:`linear_sweep`,
  :func:`image_white_box`).
* **Normality** (Lemmas 2 and 3): :func:`ks_to_normal` computes the exact
  Kolmogorov–Smirnov distance between :math:`a^T w` (i.i.d. :math:`w`) and
  its Gaussian limit by inverting the characteristic function; no sampling
  noise floor.
* **High SNR** (Prop. 1): :func:`smallest_kept`, :func:`snr_condition` (the
  paper's :math:`\lambda/\epsilon > \gamma`, a guarantee for exactly sparse
  inputs), :func:`gap_condition` (its version for any input, on
  :math:`\lambda_K - \lambda_{K+1}`), :func:`support_overlap`,
  :func:`prop1_perturbation`, :func:`prop1_sweep`.
* **Networks** (Sec. V): random two-layer ReLU networks meeting Thm 3's
  assumptions (:func:`random_two_layer`, :func:`switch_statistics`,
  :func:`thm3_sweep`), the exact locally linear model
  :math:`y = W_\mathrm{eq}(x) x - b_\mathrm{eq}(x)` of any ReLU MLP
  (:func:`locally_linear`), the split of Eq. (5) (:func:`eq5_split`) and the
  multiclass FGSM expression of Sec. V-E (:func:`fgsm_direction_locally_linear`).
* **Fits**: :func:`summarize` (means with confidence intervals and quantile
  bands) and :func:`fit_power_law` (log-log slopes with bootstrap or OLS
  confidence intervals).

Everything random takes a ``seed`` and derives its generators from it and
from the case at hand (:func:`make_rng`), so results do not depend on the
order in which cases run.
"""
from __future__ import annotations

import math
import warnings
import zlib
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np
import pandas as pd
import pywt
import scipy.fft
import scipy.special
import scipy.stats
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm  # plain bars: tqdm.auto warns inside kernels without ipywidgets

from .basis import check_wavelet, l1_norms
from .frontend import P_K, S_K

__all__ = [
    "WeightModel",
    "WEIGHT_MODELS",
    "weight_model",
    "make_rng",
    "sample_weights",
    "Wavelet1D",
    "DCT1D",
    "transform_1d",
    "basis_functions",
    "psi_norms",
    "max_psi_norms",
    "psi_norm_table",
    "sparse_signal",
    "delta_0",
    "z_k",
    "delta_sw",
    "delta_w",
    "white_box_perturbation",
    "lemma1_bound",
    "linear_distortions",
    "ZKMoments",
    "z_k_moments",
    "chebyshev_bound",
    "prop2_paths",
    "linear_sweep",
    "LinearSweep",
    "thm1_table",
    "lemma1_summary",
    "image_white_box",
    "ks_to_normal",
    "edgeworth_ks",
    "standardized_projections",
    "qq_points",
    "LEMMA2_CASES",
    "lemma2_vector",
    "lemma2_sweep",
    "normalized_digits",
    "lemma3_table",
    "smallest_kept",
    "snr_condition",
    "coefficient_gap",
    "gap_condition",
    "support_overlap",
    "PROP1_KINDS",
    "prop1_perturbation",
    "prop1_sweep",
    "prop1_summary",
    "random_two_layer",
    "two_layer_parts",
    "two_layer_w_eq",
    "switch_statistics",
    "thm3_prediction",
    "thm3_sweep",
    "relu_mlp",
    "relu_switches",
    "locally_linear",
    "logits_jacobian",
    "eq5_split",
    "eq5_sweep",
    "fgsm_direction",
    "fgsm_direction_locally_linear",
    "locally_linear_attack",
    "fgsm_comparison",
    "summarize",
    "PowerLawFit",
    "fit_power_law",
    "power_law_fits",
    "rms_deviation",
    "plot_band",
]

_SQRT3 = math.sqrt(3.0)
_LAPLACE_B = 1.0 / math.sqrt(2.0)  # unit variance: 2 b^2 = 1


# ==========================================================================
# argument checks and random numbers
# ==========================================================================
def _check_int(value, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int >= {minimum}, got {value!r}")
    if int(value) < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value}")
    return int(value)


def _check_positive(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name} must be a positive number, got {value!r}")
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value}")
    return value


def _check_K(K, N: int, name: str = "K") -> int:
    K = _check_int(K, name)
    if K > N:
        raise ValueError(f"{name} must lie in [1, N={N}], got {K}")
    return K


def make_rng(seed, *keys) -> np.random.Generator:
    """A NumPy generator from ``seed`` and the case ``keys`` (strings, ints).

    The same seed and keys give the same stream on every machine and in any
    order of execution; different keys give independent streams. A
    ``np.random.Generator`` passed as ``seed`` (with no keys) is returned as is.
    """
    if isinstance(seed, np.random.Generator) and not keys:
        return seed
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or int(seed) < 0:
        raise TypeError(f"seed must be an int >= 0, got {seed!r}")
    entropy = [int(seed)] + [zlib.crc32(str(k).encode()) for k in keys]
    return np.random.default_rng(entropy)


def _torch(x, name: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.to(torch.float64)
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.asarray(x, dtype=np.float64))
    raise TypeError(f"{name} must be a torch.Tensor or numpy array, got {type(x).__name__}")


def _numpy(x, name: str, N: int | None = None) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        arr = x.detach().cpu().to(torch.float64).numpy()
    elif isinstance(x, np.ndarray):
        arr = np.asarray(x, dtype=np.float64)
    else:
        raise TypeError(f"{name} must be a torch.Tensor or numpy array, got {type(x).__name__}")
    if N is not None and (arr.ndim == 0 or arr.shape[-1] != N):
        raise ValueError(f"{name} must end in the signal length N={N}, got shape {arr.shape}")
    return arr


# ==========================================================================
# weight models (Sec. IV-B assumption)
# ==========================================================================
@dataclass(frozen=True)
class WeightModel:
    r"""An i.i.d. law for the classifier weights, zero mean and median, unit variance.

    ``mu`` is :math:`\mu = E|w_1|`, ``sigma2`` is :math:`\sigma^2 = E w_1^2 = 1`,
    ``excess_kurtosis`` is :math:`E w^4 / \sigma^4 - 3`.
    """

    name: str
    mu: float
    sigma2: float
    excess_kurtosis: float

    def sample(self, size, rng: np.random.Generator) -> np.ndarray:
        if self.name == "gaussian":
            return rng.standard_normal(size)
        if self.name == "uniform":
            return rng.uniform(-_SQRT3, _SQRT3, size)
        return rng.laplace(0.0, _LAPLACE_B, size)

    def cf(self, t: np.ndarray) -> np.ndarray:
        """Characteristic function :math:`E e^{itw}` (real: the laws are symmetric)."""
        t = np.asarray(t, dtype=np.float64)
        if self.name == "gaussian":
            return np.exp(-0.5 * t * t)
        if self.name == "uniform":
            return np.sinc(_SQRT3 * t / np.pi)  # np.sinc(u) = sin(pi u) / (pi u)
        return 1.0 / (1.0 + (_LAPLACE_B * t) ** 2)

    def log_cf_envelope(self, t: np.ndarray) -> np.ndarray:
        r"""An upper bound of :math:`\log|\mathrm{cf}(t)|` for :math:`t \ge 0`.

        Uniform: :math:`\log(\sin u / u) \le -u^2/6` for :math:`u \le \pi`
        (every term of its product expansion is negative) and
        :math:`|\sin u/u| \le 1/u` beyond, with :math:`u = \sqrt3 t`.
        """
        t = np.abs(np.asarray(t, dtype=np.float64))
        if self.name == "gaussian":
            return -0.5 * t * t
        if self.name == "uniform":
            u = _SQRT3 * t
            with np.errstate(divide="ignore"):
                return np.where(u <= np.pi, -u * u / 6.0, -np.log(np.maximum(u, 1e-300)))
        return -np.log1p((_LAPLACE_B * t) ** 2)

    def cdf(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self.name == "gaussian":
            return scipy.special.ndtr(x)
        if self.name == "uniform":
            return np.clip((x + _SQRT3) / (2 * _SQRT3), 0.0, 1.0)
        e = 0.5 * np.exp(-np.abs(x) / _LAPLACE_B)
        return np.where(x < 0, e, 1.0 - e)


WEIGHT_MODELS = {
    "gaussian": WeightModel("gaussian", mu=math.sqrt(2.0 / math.pi), sigma2=1.0, excess_kurtosis=0.0),
    "uniform": WeightModel("uniform", mu=_SQRT3 / 2.0, sigma2=1.0, excess_kurtosis=-1.2),
    "laplace": WeightModel("laplace", mu=_LAPLACE_B, sigma2=1.0, excess_kurtosis=3.0),
}


def weight_model(dist: str) -> WeightModel:
    """The :class:`WeightModel` named ``dist`` ("gaussian", "uniform" or "laplace")."""
    if isinstance(dist, WeightModel):
        return dist
    if dist not in WEIGHT_MODELS:
        raise ValueError(f"dist must be one of {sorted(WEIGHT_MODELS)}, got {dist!r}")
    return WEIGHT_MODELS[dist]


def sample_weights(dist: str, size, rng) -> np.ndarray:
    """i.i.d. weights of law ``dist`` (unit variance), as a float64 array of ``size``."""
    return weight_model(dist).sample(size, make_rng(rng))


# ==========================================================================
# 1-D orthonormal transforms, fast (no dense N x N matrices)
# ==========================================================================
def _check_length(N) -> int:
    N = _check_int(N, "N", minimum=2)
    return N


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
        self.N = _check_length(N)
        if level == "full":
            if self.N & (self.N - 1):
                raise ValueError(f"level='full' needs N to be a power of two, got N={self.N}")
            level = self.N.bit_length() - 1
        level = _check_int(level, "level")
        if self.N % (2**level):
            raise ValueError(
                f"level={level} is too deep for N={self.N}: N must be divisible by 2**level = {2**level} "
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
        self.N = _check_length(N)
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
        raise TypeError(f"spec must be a string such as 'dct', 'coif1:1' or 'haar:full', got {spec!r}")
    if spec == "dct":
        return DCT1D(N)
    name, _, level = spec.partition(":")
    if level in ("", None):
        level = 1
    elif level != "full":
        try:
            level = int(level)
        except ValueError:
            raise ValueError(f"spec={spec!r}: the level after ':' must be an int or 'full'") from None
    return Wavelet1D(name, N, level)


def _flat(v: torch.Tensor, transform) -> torch.Tensor:
    """``v`` with the transform's signal dimensions flattened to one of length N."""
    nd = len(transform.shape)
    if tuple(v.shape[v.dim() - nd :]) != tuple(transform.shape):
        raise ValueError(f"expected a tensor ending in the signal shape {tuple(transform.shape)}, got {tuple(v.shape)}")
    return v.reshape(*v.shape[: v.dim() - nd], -1)


def basis_functions(transform, indices, batch: int = 256) -> torch.Tensor:
    r"""The basis functions :math:`\psi_k`, ``k`` in ``indices``, as rows ``(len, N)`` (float64).

    Synthesises unit coefficient vectors ``batch`` at a time, so only the
    requested functions are ever held in memory.
    """
    N = transform.N
    idx = torch.as_tensor(np.asarray(indices, dtype=np.int64).ravel())
    if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= N):
        raise ValueError(f"indices must lie in [0, N={N}), got range [{int(idx.min())}, {int(idx.max())}]")
    batch = _check_int(batch, "batch")
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

    Evaluated on :meth:`representative_indices` (one function per wavelet
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
    K = _check_K(K, transform.N)
    support = np.sort(rng.choice(transform.N, size=K, replace=False))
    c = torch.zeros(transform.N, dtype=torch.float64)
    c[torch.from_numpy(support)] = torch.from_numpy(
        magnitude * (1.0 + rng.random(K)) * rng.choice([-1.0, 1.0], size=K)
    )
    x = transform.synthesis(c[None])[0]
    return x, support


# ==========================================================================
# linear classifiers (Sec. IV)
# ==========================================================================
def delta_0(w, eps: float = 1.0, transform=None) -> torch.Tensor:
    r"""Baseline distortion without defense, Eq. (2): :math:`\Delta_0 = \epsilon\|w\|_1`.

    ``w`` is ``(..., N)``, or ``(..., *transform.shape)`` if ``transform`` is given.
    """
    eps = _check_positive(eps, "eps")
    w = _torch(w, "w")
    w = _flat(w, transform) if transform is not None else w
    return eps * w.abs().sum(-1)


def _check_K_for(transform, K) -> int:
    return _check_K(K, transform.N)


def z_k(w, x, K: int, transform) -> torch.Tensor:
    r""":math:`Z_K = \mathrm{sgn}(w)^T \mathcal{P}_K(w, x) = \sum_{k \in \mathcal{S}_K(x)} \mathrm{sgn}(w)^T\psi_k\psi_k^T w`.

    The semi-white box distortion is :math:`\Delta_\mathrm{SW} = \epsilon|Z_K|`
    (App. A, proof of Thm 1). ``w`` ``(B, *shape)``, ``x`` ``(*shape)`` or ``(B, *shape)``.
    """
    K = _check_K_for(transform, K)
    w = _torch(w, "w")
    p = P_K(w, _torch(x, "x"), K, transform)
    return (torch.sign(_flat(w, transform)) * _flat(p, transform)).sum(-1)


def delta_sw(w, x, K: int, transform, eps: float = 1.0) -> torch.Tensor:
    r"""Semi-white box distortion, Eq. (4): :math:`\Delta_\mathrm{SW} = \epsilon|\mathrm{sgn}(w)^T\mathcal{P}_K(w, x)|`."""
    return _check_positive(eps, "eps") * z_k(w, x, K, transform).abs()


def delta_w(w, x, K: int, transform, eps: float = 1.0) -> torch.Tensor:
    r"""White box distortion (Sec. IV-A): :math:`\Delta_\mathrm{W} = \epsilon\|\mathcal{P}_K(w, x)\|_1`."""
    eps = _check_positive(eps, "eps")
    K = _check_K_for(transform, K)
    return eps * _flat(P_K(_torch(w, "w"), _torch(x, "x"), K, transform), transform).abs().sum(-1)


def white_box_perturbation(w, x, K: int, transform, eps: float = 1.0) -> torch.Tensor:
    r"""The optimal white box attack :math:`e_\mathrm{W} = \epsilon\,\mathrm{sgn}(\mathcal{P}_K(w, x))`.

    It attains :math:`|e^T \mathcal{P}_K(w, x)| = \Delta_\mathrm{W}` (Hölder).
    """
    eps = _check_positive(eps, "eps")
    K = _check_K_for(transform, K)
    return eps * torch.sign(P_K(_torch(w, "w"), _torch(x, "x"), K, transform))


def _support_l1(x: torch.Tensor, K: int, transform) -> torch.Tensor:
    """``(N,)`` tensor of :math:`\\|\\psi_k\\|_1` on the union of the supports of ``x`` (zero elsewhere)."""
    mask = S_K(x, K, transform).reshape(-1, transform.N).any(0)
    idx = torch.nonzero(mask).flatten().numpy()
    l1 = torch.zeros(transform.N, dtype=torch.float64)
    l1[torch.from_numpy(idx)] = psi_norms(transform, idx)[0]
    return l1


def lemma1_bound(w, x, K: int, transform, eps: float = 1.0, l1=None) -> torch.Tensor:
    r"""Lemma 1's bound :math:`\epsilon\sum_{k \in \mathcal{S}_K(x)} |\psi_k^T w|\,\|\psi_k\|_1 \ge \Delta_\mathrm{W}`.

    ``l1`` is an optional ``(N,)`` tensor of :math:`\|\psi_k\|_1` (only its
    entries on the support are read); by default they are computed.
    """
    eps = _check_positive(eps, "eps")
    K = _check_K_for(transform, K)
    w, x = _torch(w, "w"), _torch(x, "x")
    if l1 is None:
        l1 = _support_l1(x, K, transform)
    c = transform.analysis(w)
    return eps * (c.abs() * S_K(x, K, transform) * _torch(l1, "l1")).sum(-1)


def linear_distortions(w, x, K: int, transform, eps: float = 1.0, l1=None) -> dict[str, torch.Tensor]:
    r"""All of Sec. IV's distortions for a batch of classifiers ``w`` and signals ``x``.

    Returns ``delta_0`` (:math:`\epsilon\|w\|_1`), ``z_k``, ``delta_sw``,
    ``delta_w`` and ``lemma1_bound``, each of shape ``(B,)``, computing
    :math:`\mathcal{P}_K(w, x)` once.
    """
    eps = _check_positive(eps, "eps")
    K = _check_K_for(transform, K)
    w, x = _torch(w, "w"), _torch(x, "x")
    if l1 is None:
        l1 = _support_l1(x, K, transform)
    wf = _flat(w, transform)
    # P_K(w, x) of sparsenb.frontend, written out so that the coefficients
    # c_k = psi_k^T w and the support mask are computed once for all five
    # quantities (the tests check it against P_K)
    mask = S_K(x, K, transform)
    c = transform.analysis(w)
    p = _flat(transform.synthesis(c * mask), transform)
    z = (torch.sign(wf) * p).sum(-1)
    bound = (c.abs() * mask * _torch(l1, "l1")).sum(-1)
    return {
        "delta_0": eps * wf.abs().sum(-1),
        "z_k": z,
        "delta_sw": eps * z.abs(),
        "delta_w": eps * p.abs().sum(-1),
        "lemma1_bound": eps * bound,
    }


@dataclass(frozen=True)
class ZKMoments:
    r"""Exact moments of :math:`Z_K` over i.i.d. weights (Lemma 4), for one support.

    ``mean`` :math:`= K\mu`; ``var`` :math:`= K(\sigma^2+\mu^2) - 2\mu^2\sum_m
    (\sum_{k \in S}\psi_k[m]^2)^2`; ``var_bound`` :math:`= K(\sigma^2+\mu^2)`.
    """

    K: int
    mu: float
    sigma2: float
    mean: float
    var: float
    var_bound: float


def z_k_moments(transform, support, dist: str = "gaussian", batch: int = 256) -> ZKMoments:
    r"""Mean and variance of :math:`Z_K` in closed form (Lemma 4 of App. A).

    The paper's proof gives :math:`E[U_iV_i] = \mu`,
    :math:`\mathrm{var}(U_iV_i) = \sigma^2+\mu^2-2\mu^2\sum_m\psi_i^4[m]` and
    :math:`\mathrm{cov}(U_iV_i, U_jV_j) = -2\mu^2\sum_m\psi_i^2[m]\psi_j^2[m]`;
    summed over the support they give ``var`` exactly, which never exceeds
    the bound :math:`K(\sigma^2+\mu^2)`.
    """
    model = weight_model(dist)
    support = np.asarray(support, dtype=np.int64).ravel()
    K = len(support)
    if K == 0:
        raise ValueError("support must hold at least one index")
    energy = torch.zeros(transform.N, dtype=torch.float64)  # sum_k psi_k[m]^2
    for chunk in np.array_split(support, max(1, math.ceil(K / batch))):
        energy += basis_functions(transform, chunk, batch).pow(2).sum(0)
    bound = K * (model.sigma2 + model.mu**2)
    var = bound - 2.0 * model.mu**2 * float(energy.pow(2).sum())
    return ZKMoments(K=K, mu=model.mu, sigma2=model.sigma2, mean=K * model.mu, var=var, var_bound=bound)


def chebyshev_bound(K, delta: float, dist: str = "gaussian") -> np.ndarray:
    r"""Eq. (6): :math:`\Pr(|Z_K/K - \mu| \le \delta) \ge 1 - (\sigma^2+\mu^2)/(K\delta^2)`, clipped at 0."""
    delta = _check_positive(delta, "delta")
    model = weight_model(dist)
    K = np.asarray(K, dtype=np.float64)
    if np.any(K < 1):
        raise ValueError(f"K must be >= 1, got {K}")
    return np.maximum(0.0, 1.0 - (model.sigma2 + model.mu**2) / (K * delta**2))


# --------------------------------------------------------------------------
# Monte Carlo sweeps for Sec. IV
# --------------------------------------------------------------------------
def _progress(iterable, progress: bool, **kw):
    return tqdm(iterable, disable=not progress, leave=False, **kw)


def prop2_paths(dists, Ns, n_paths: int, eps: float = 1.0, seed: int = 0, progress: bool = False) -> pd.DataFrame:
    r"""Sample paths of :math:`\Delta_0/N = \epsilon\|w_{1:N}\|_1/N` along growing ``Ns`` (Prop. 2).

    Each path is one infinite weight sequence, observed at every ``N`` in
    ``Ns`` (the strong law is a statement about such paths). Returns one row
    per ``(dist, path, N)`` with ``delta_0_over_N``, the limit ``eps_mu`` and
    their difference ``deviation``.
    """
    eps = _check_positive(eps, "eps")
    n_paths = _check_int(n_paths, "n_paths")
    Ns = sorted({_check_int(n, "Ns") for n in Ns})
    if not Ns:
        raise ValueError("Ns must hold at least one length")
    frames = []
    for dist in _progress(list(dists), progress, desc="Prop. 2"):
        model = weight_model(dist)
        rng = make_rng(seed, "prop2", dist)
        total = np.zeros(n_paths)
        done = 0
        out = np.empty((len(Ns), n_paths))
        for j, N in enumerate(Ns):
            while done < N:
                step = min(N - done, max(1, 2**22 // n_paths))
                total += np.abs(model.sample((n_paths, step), rng)).sum(1)
                done += step
            out[j] = eps * total / N
        frames.append(
            pd.DataFrame(
                {
                    "dist": dist,
                    "path": np.tile(np.arange(n_paths), len(Ns)),
                    "N": np.repeat(Ns, n_paths),
                    "delta_0_over_N": out.ravel(),
                    "eps_mu": eps * model.mu,
                    "deviation": out.ravel() - eps * model.mu,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _with_ratios(frame: pd.DataFrame, K: int, eps: float) -> pd.DataFrame:
    """Add the ratios the chapters plot: per-K distortions, attenuations, Lemma 1 tightness, Y_K."""
    return frame.assign(
        y_k=frame["z_k"] / K,
        delta_sw_over_K=frame["delta_sw"] / K,
        delta_w_over_K=frame["delta_w"] / K,
        bound_over_K=frame["lemma1_bound"] / K,
        attenuation_sw=frame["delta_sw"] / frame["delta_0"],
        attenuation_w=frame["delta_w"] / frame["delta_0"],
        tightness=frame["delta_w"] / frame["lemma1_bound"],
    )


@dataclass
class LinearSweep:
    """Result of :func:`linear_sweep`: one row per draw, and one row per case."""

    draws: pd.DataFrame
    cases: pd.DataFrame


def linear_sweep(
    bases: Sequence[str],
    NK: Iterable[tuple[int, int]],
    dist: str = "gaussian",
    n_draws: int = 1000,
    eps: float = 1.0,
    seed: int = 0,
    progress: bool = False,
) -> LinearSweep:
    r"""Sec. IV's distortions for random classifiers, over 1-D bases and ``(N, K)`` pairs.

    For each basis spec (see :func:`transform_1d`) and each ``(N, K)``: a
    :math:`K`-sparse signal :math:`x` with a uniformly random support
    (:func:`sparse_signal`), and ``n_draws`` classifiers :math:`w` with i.i.d.
    entries of law ``dist``. The same :math:`w` draws are used for every
    basis at a given ``(N, K)`` (common random numbers).

    ``draws``: ``basis, N, K, draw, delta_0, z_k, delta_sw, delta_w,
    lemma1_bound`` and the ratios ``y_k`` (:math:`Z_K/K`),
    ``delta_sw_over_K``, ``delta_w_over_K``, ``bound_over_K``,
    ``attenuation_sw`` (:math:`\Delta_\mathrm{SW}/\Delta_0`),
    ``attenuation_w`` and ``tightness`` (:math:`\Delta_\mathrm{W}` / Lemma 1's bound). ``cases``: ``basis, N, K, mu, sigma2, z_mean, z_var,
    z_var_bound`` (exact, :func:`z_k_moments`), and the largest and mean
    :math:`\|\psi_k\|_1` and largest :math:`\|\psi_k\|_\infty` over the support.
    """
    n_draws = _check_int(n_draws, "n_draws")
    eps = _check_positive(eps, "eps")
    model = weight_model(dist)
    NK = [(_check_int(N, "N", 2), _check_int(K, "K")) for N, K in NK]
    draws, cases = [], []
    jobs = [(spec, N, K) for N, K in NK for spec in bases]
    for spec, N, K in _progress(jobs, progress, desc="linear sweep"):
        transform = transform_1d(spec, N)
        K = _check_K(K, N)
        x, support = sparse_signal(transform, K, make_rng(seed, "x", spec, N, K))
        l1_s, linf_s = psi_norms(transform, support)
        l1 = torch.zeros(N, dtype=torch.float64)
        l1[torch.from_numpy(support)] = l1_s
        moments = z_k_moments(transform, support, dist)
        cases.append(
            {
                "basis": spec,
                "N": N,
                "K": K,
                "mu": model.mu,
                "sigma2": model.sigma2,
                "z_mean": moments.mean,
                "z_var": moments.var,
                "z_var_bound": moments.var_bound,
                "l1_max": float(l1_s.max()),
                "l1_mean": float(l1_s.mean()),
                "linf_max": float(linf_s.max()),
            }
        )
        rng_w = make_rng(seed, "w", dist, N, K)
        batch = max(1, min(n_draws, 2**21 // N))
        parts: dict[str, list] = {}
        for start in range(0, n_draws, batch):
            b = min(batch, n_draws - start)
            w = torch.from_numpy(model.sample((b, N), rng_w))
            for key, value in linear_distortions(w, x, K, transform, eps, l1).items():
                parts.setdefault(key, []).append(value.numpy())
        frame = _with_ratios(pd.DataFrame({k: np.concatenate(v) for k, v in parts.items()}), K, eps)
        frame.insert(0, "draw", np.arange(n_draws))
        frame.insert(0, "K", K)
        frame.insert(0, "N", N)
        frame.insert(0, "basis", spec)
        draws.append(frame)
    return LinearSweep(pd.concat(draws, ignore_index=True), pd.DataFrame(cases))


def _wilson(k: np.ndarray, n: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    z = scipy.stats.norm.ppf(0.5 + level / 2)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def thm1_table(sweep: LinearSweep, delta: float, level: float = 0.95) -> pd.DataFrame:
    r"""Thm 1 per ``(basis, N, K)``: the Monte Carlo against Lemma 4 and Eq. (6).

    Columns: ``mean_delta_sw_over_K`` (to compare with :math:`\epsilon\mu`),
    ``attenuation`` (mean :math:`\Delta_\mathrm{SW}/\Delta_0`) and ``K_over_N``;
    ``var_mc`` with a chi-square interval ``var_low, var_high``, the exact
    ``var_exact`` and the bound ``var_bound`` of :math:`\mathrm{var}(Z_K)`;
    ``prob`` :math:`= \Pr(|Y_K - \mu| \le \delta)` with a Wilson interval
    ``prob_low, prob_high``, Chebyshev's lower bound ``chebyshev`` (Eq. 6) and
    the Gaussian approximation ``normal`` :math:`2\Phi(\delta K/\sqrt{\mathrm{var}}) - 1`
    with the exact variance.
    """
    delta = _check_positive(delta, "delta")
    d, cases = sweep.draws, sweep.cases.set_index(["basis", "N", "K"])
    rows = []
    for (basis, N, K), part in d.groupby(["basis", "N", "K"], sort=True):
        case = cases.loc[(basis, N, K)]
        z = part["z_k"].to_numpy()
        n = len(z)
        var = float(np.var(z, ddof=1))
        chi = scipy.stats.chi2.ppf([0.5 + level / 2, 0.5 - level / 2], n - 1)
        k = int(np.sum(np.abs(z / K - case["mu"]) <= delta))
        lo, hi = _wilson(np.array(k), np.array(n), level)
        cheb = 1.0 - (case["sigma2"] + case["mu"] ** 2) / (K * delta**2)
        rows.append(
            {
                "basis": basis,
                "N": N,
                "K": K,
                "K_over_N": K / N,
                "mean_delta_sw_over_K": float(part["delta_sw_over_K"].mean()),
                "attenuation": float(part["attenuation_sw"].mean()),
                "var_mc": var,
                "var_low": (n - 1) * var / chi[0],
                "var_high": (n - 1) * var / chi[1],
                "var_exact": case["z_var"],
                "var_bound": case["z_var_bound"],
                "prob": k / n,
                "prob_low": float(lo),
                "prob_high": float(hi),
                "chebyshev": max(0.0, cheb),
                "chebyshev_raw": cheb,
                "normal": float(2 * scipy.special.ndtr(delta * K / math.sqrt(case["z_var"])) - 1),
            }
        )
    return pd.DataFrame(rows)


def lemma1_summary(df: pd.DataFrame, by="basis") -> pd.DataFrame:
    """Lemma 1 on every draw of a sweep: draws checked, violations, and how tight the bound is."""
    g = df.groupby(by, sort=False)
    return g.agg(
        draws=("delta_w", "size"),
        violations=("tightness", lambda v: int(np.sum(np.asarray(v) > 1 + 1e-12))),
        mean_tightness=("tightness", "mean"),
        min_tightness=("tightness", "min"),
        max_tightness=("tightness", "max"),
    ).reset_index()


def image_white_box(
    images: torch.Tensor,
    transforms: dict,
    Ks: Sequence[int],
    dist: str = "gaussian",
    eps: float = 1.0,
    seed: int = 0,
    progress: bool = False,
) -> pd.DataFrame:
    r"""Sec. IV's distortions on real images: supports :math:`\mathcal{S}_K(x)` of the images themselves.

    ``images`` is ``(B, 1, H, W)`` or ``(B, H, W)``; ``transforms`` maps a
    label to an image transform (:class:`sparsenb.basis.WaveletTransform` or
    :class:`~sparsenb.basis.DenseTransform`). One random classifier per image
    (entries i.i.d. ``dist``), the same for every basis and ``K``. Returns one
    row per ``(basis, K, image)`` with ``delta_0, z_k, delta_sw, delta_w,
    lemma1_bound`` and the ratios of :func:`linear_sweep`.
    """
    x = _torch(images, "images")
    if x.dim() == 4:
        if x.shape[1] != 1:
            raise ValueError(f"images must have one channel, got shape {tuple(x.shape)}")
        x = x[:, 0]
    if x.dim() != 3:
        raise ValueError(f"images must be (B, 1, H, W) or (B, H, W), got shape {tuple(images.shape)}")
    B, H, W = x.shape
    model = weight_model(dist)
    w = torch.from_numpy(model.sample((B, H, W), make_rng(seed, "image-w", dist)))
    frames = []
    for label, transform in _progress(list(transforms.items()), progress, desc="bases"):
        l1 = l1_norms(transform.dense())
        for K in Ks:
            out = linear_distortions(w, x, _check_K(K, H * W), transform, eps, l1)
            frame = _with_ratios(pd.DataFrame({k: v.numpy() for k, v in out.items()}), int(K), eps)
            frame.insert(0, "image", np.arange(B))
            frame.insert(0, "K", int(K))
            frame.insert(0, "basis", label)
            frames.append(frame)
    return pd.concat(frames, ignore_index=True)


# ==========================================================================
# Lemmas 2 and 3: normality, with exact Kolmogorov-Smirnov distances
# ==========================================================================
def _prepare_coefficients(a, name: str = "a") -> np.ndarray:
    arr = _numpy(np.asarray(a, dtype=np.float64) if isinstance(a, (list, tuple)) else a, name).ravel()
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite")
    arr = np.abs(arr[arr != 0])  # the laws are symmetric: signs do not matter
    if arr.size == 0:
        raise ValueError(f"{name} must have at least one nonzero entry")
    return arr / np.linalg.norm(arr)


def _log_envelope(a: np.ndarray, model: WeightModel, t: np.ndarray) -> np.ndarray:
    out = np.zeros_like(t)
    step = max(1, 2**22 // max(1, len(t)))
    for j in range(0, len(a), step):
        out += model.log_cf_envelope(a[j : j + step, None] * t[None, :]).sum(0)
    return out


def _cf_of_sum(a: np.ndarray, model: WeightModel, t: np.ndarray) -> np.ndarray:
    """:math:`\\prod_j \\mathrm{cf}(a_j t)` in chunks (signs kept: the uniform's cf changes sign)."""
    out = np.ones_like(t)
    for start in range(0, len(t), max(1, 2**22 // len(a))):
        tt = t[start : start + max(1, 2**22 // len(a))]
        out[start : start + len(tt)] = np.prod(model.cf(a[:, None] * tt[None, :]), axis=0)
    return out


def ks_to_normal(a, dist: str, tol: float = 1e-7, x_max: float = 6.0, dx: float = 0.02, dt: float = 0.01) -> float:
    r"""Exact Kolmogorov–Smirnov distance between :math:`a^Tw/(\sigma\|a\|_2)` and :math:`\mathcal{N}(0, 1)`.

    :math:`w` has i.i.d. entries of law ``dist``. The CDF of the sum comes
    from its characteristic function :math:`\prod_j \mathrm{cf}(a_j t)` by
    the Gil-Pelaez inversion

    .. math:: F(x) - \Phi(x) = \frac1\pi \int_0^\infty \sin(tx)\,
              \frac{\prod_j\mathrm{cf}(a_jt) - e^{-t^2/2}}{t}\,dt,

    integrated with Simpson's rule (step ``dt``) up to the point where an
    envelope of :math:`|\mathrm{cf}|` falls below ``tol``, and maximised over
    a grid of step ``dx`` on :math:`[0, x_{\max}]` (the difference is odd).
    No sampling is involved, so distances far below any Monte Carlo noise
    floor come out right. A single nonzero coefficient uses the law's CDF.
    """
    model = weight_model(dist)
    a = _prepare_coefficients(a)
    if model.name == "gaussian":
        return 0.0  # a sum of Gaussians is Gaussian
    if a.size == 1:
        xs = np.linspace(-x_max, x_max, 240001)
        return float(np.max(np.abs(model.cdf(xs) - scipy.special.ndtr(xs))))
    grid = np.geomspace(1e-2, 1e7, 900)
    log_env = _log_envelope(a, model, grid)
    above = np.nonzero((log_env > math.log(tol)) | (grid < 10.0))[0]
    if above[-1] == len(grid) - 1:
        raise ValueError(f"the characteristic function of the sum does not decay below tol={tol}; a has {a.size} terms")
    T = grid[above[-1] + 1]
    n = int(math.ceil(T / dt))
    n += n % 2
    t = np.linspace(0.0, T, n + 1)
    h = t[1] - t[0]
    simpson = np.ones(n + 1)
    simpson[1:-1:2], simpson[2:-1:2] = 4.0, 2.0
    g = np.zeros_like(t)
    g[1:] = (_cf_of_sum(a, model, t[1:]) - np.exp(-0.5 * t[1:] ** 2)) / t[1:]
    weights = g * simpson * h / 3.0
    xs = np.arange(0.0, x_max + dx / 2, dx)
    D = np.zeros_like(xs)
    step = max(1, 2**22 // len(xs))
    for start in range(0, len(t), step):
        D += np.sin(np.outer(xs, t[start : start + step])) @ weights[start : start + step]
    return float(np.max(np.abs(D)) / np.pi)


# max |phi(x) He_3(x)| / 24, the constant of the first Edgeworth term
_XS = np.linspace(0.0, 6.0, 60001)
_EDGEWORTH_C = float(np.max(np.abs(np.exp(-0.5 * _XS**2) / math.sqrt(2 * math.pi) * (_XS**3 - 3 * _XS))) / 24.0)


def edgeworth_ks(a, dist: str) -> float:
    r"""First-order Edgeworth prediction of :func:`ks_to_normal`.

    For symmetric laws the skewness term vanishes and
    :math:`F(x) - \Phi(x) \approx -\kappa_4 \sum_j a_j^4\,\varphi(x)He_3(x)/24`
    (:math:`\|a\|_2 = 1`, :math:`\kappa_4` the excess kurtosis), so the
    distance is :math:`|\kappa_4|\,\|a\|_4^4\max_x|\varphi He_3|/24`: it
    shrinks like :math:`\|a\|_4^4`, i.e. like :math:`1/N` for spread-out
    :math:`a`, and not at all for a localized :math:`a`.
    """
    model = weight_model(dist)
    a = _prepare_coefficients(a)
    return abs(model.excess_kurtosis) * float(np.sum(a**4)) * _EDGEWORTH_C


def qq_points(samples) -> tuple[np.ndarray, np.ndarray]:
    """Normal Q-Q plot coordinates: theoretical quantiles at ``(i + 1/2)/n`` and the sorted samples."""
    v = np.sort(_numpy(np.asarray(samples, dtype=np.float64), "samples").ravel())
    return scipy.stats.norm.ppf((np.arange(len(v)) + 0.5) / len(v)), v


def standardized_projections(a, dist: str, n: int, rng) -> np.ndarray:
    r"""``n`` Monte Carlo samples of :math:`a^Tw/(\sigma\|a\|_2)`, :math:`w` i.i.d. ``dist`` (for Q-Q plots)."""
    model = weight_model(dist)
    n = _check_int(n, "n")
    a = _prepare_coefficients(a)
    rng = make_rng(rng)
    out = np.empty(n)
    step = max(1, 2**22 // len(a))
    for start in range(0, n, step):
        b = min(step, n - start)
        out[start : start + b] = model.sample((b, len(a)), rng) @ a
    return out


LEMMA2_CASES = ("dct", "fixed", "full")


def lemma2_vector(case: str, N: int, wavelet: str = "coif1", level: int = 1) -> tuple[str, np.ndarray]:
    r"""A basis function :math:`\psi_k` for Lemma 2's experiments, with a label.

    ``"dct"``: the DCT's :math:`k = 1` (the largest :math:`\|\psi_k\|_\infty`,
    :math:`\approx\sqrt{2/N}`, spread over the signal). ``"fixed"``: the first
    finest-scale detail function of the ``wavelet`` at ``level`` (localized:
    the same few taps for every :math:`N`). ``"full"``: the coarsest detail
    function of the full-depth decomposition (spread over the whole signal).
    """
    if case not in LEMMA2_CASES:
        raise ValueError(f"case must be one of {LEMMA2_CASES}, got {case!r}")
    if case == "dct":
        t, k, label = DCT1D(N), 1, "DCT, k = 1"
    elif case == "fixed":
        t = Wavelet1D(wavelet, N, level)
        k, label = t.band_starts()[-1], f"{wavelet} level {level}, finest detail"
    else:
        t = Wavelet1D(wavelet, N, "full")
        k, label = t.band_starts()[1], f"{wavelet} full depth, coarsest detail"
    return label, basis_functions(t, [k])[0].numpy()


def lemma2_sweep(Ns, dists, wavelet: str = "coif1", level: int = 1, progress: bool = False) -> pd.DataFrame:
    r"""Exact KS distance of :math:`\psi_k^Tw` to :math:`\mathcal{N}(0,\sigma^2)` against ``N`` (Lemma 2).

    One row per ``(case, N, dist)`` (cases of :func:`lemma2_vector`), with
    ``ks``, the Edgeworth prediction ``edgeworth``, :math:`\|\psi_k\|_1`,
    :math:`\|\psi_k\|_\infty` and :math:`\|\psi_k\|_4^4`.
    """
    rows = []
    jobs = [(case, int(N), dist) for case in LEMMA2_CASES for N in Ns for dist in dists]
    for case, N, dist in _progress(jobs, progress, desc="Lemma 2"):
        label, psi = lemma2_vector(case, N, wavelet, level)
        rows.append(
            {
                "case": label,
                "N": N,
                "dist": dist,
                "ks": ks_to_normal(psi, dist),
                "edgeworth": edgeworth_ks(psi, dist),
                "psi_l1": float(np.abs(psi).sum()),
                "psi_linf": float(np.abs(psi).max()),
                "psi_l4_4": float(np.sum(psi**4)),
            }
        )
    return pd.DataFrame(rows)


def normalized_digits(images: torch.Tensor, side: int) -> torch.Tensor:
    r"""Images resized to ``side x side`` (bilinear, antialiased) and scaled to :math:`\|x\|_2 = 1`.

    Lemma 3's and Thm 3's Assumption 1 (:math:`\|x\|_2 = 1`); returns
    ``(B, side*side)`` float64, so :math:`N = \mathrm{side}^2`.
    """
    side = _check_int(side, "side", 2)
    x = _torch(images, "images")
    if x.dim() != 4 or x.shape[1] != 1:
        raise ValueError(f"images must be (B, 1, H, W), got shape {tuple(x.shape)}")
    y = F.interpolate(x, size=(side, side), mode="bilinear", antialias=True, align_corners=False).clamp_min(0.0)
    y = y.flatten(1)
    norms = y.norm(dim=1, keepdim=True)
    if bool((norms == 0).any()):
        raise ValueError("images holds an all-zero image, which cannot be normalized")
    return y / norms


def lemma3_table(images: torch.Tensor, sides, dists, progress: bool = False) -> pd.DataFrame:
    r"""Exact KS distance of :math:`w_i^Tx` to :math:`\mathcal{N}(0, \sigma_i^2)` for digits resized to ``N = side^2`` (Lemma 3).

    One row per ``(side, image, dist)``: ``N``, ``ks``, ``edgeworth`` and
    :math:`\|x\|_\infty` (Lindeberg needs it to vanish).
    """
    rows = []
    for side in _progress(list(sides), progress, desc="Lemma 3"):
        x = normalized_digits(images, side).numpy()
        for i, xi in enumerate(x):
            for dist in dists:
                rows.append(
                    {
                        "side": int(side),
                        "N": int(side) ** 2,
                        "image": i,
                        "dist": dist,
                        "ks": ks_to_normal(xi, dist),
                        "edgeworth": edgeworth_ks(xi, dist),
                        "x_linf": float(np.abs(xi).max()),
                    }
                )
    return pd.DataFrame(rows)


# ==========================================================================
# Prop. 1: the high-SNR condition on images
# ==========================================================================
def smallest_kept(x, K: int, transform) -> torch.Tensor:
    r""":math:`\lambda`: magnitude of the smallest nonzero entry of :math:`\mathcal{H}_K(\Psi x)`."""
    K = _check_K_for(transform, K)
    c = transform.analysis(_torch(x, "x"))
    return torch.topk(c.abs(), K, dim=-1).values.amin(-1)


def coefficient_gap(x, K: int, transform) -> torch.Tensor:
    r""":math:`\lambda_K - \lambda_{K+1}`: the K-th largest coefficient magnitude minus the next one.

    For an exactly :math:`K`-sparse :math:`x` it equals :math:`\lambda`
    (:math:`\lambda_{K+1} = 0`); for an approximately sparse one it is what
    protects the support (see :func:`gap_condition`). With ``K = N`` it is :math:`\lambda`.
    """
    K = _check_K_for(transform, K)
    c = transform.analysis(_torch(x, "x")).abs()
    top = torch.topk(c, min(K + 1, transform.N), dim=-1).values
    return top[..., K - 1] - (top[..., K] if K < transform.N else 0.0)


def snr_condition(x, K: int, transform, eps: float, gamma: float) -> torch.Tensor:
    r"""Prop. 1's condition as the paper states it, :math:`\lambda/\epsilon > \gamma` (boolean per signal).

    Sufficient for :math:`\mathcal{S}_K(x+e) = \mathcal{S}_K(x)` when
    :math:`x` is exactly :math:`K`-sparse (the model of Sec. III-A): the
    proof bounds the coefficients outside the support by :math:`|\psi_j^Te|`
    alone. For approximately sparse data use :func:`gap_condition`.
    """
    eps = _check_positive(eps, "eps")
    gamma = _check_positive(gamma, "gamma")
    return smallest_kept(x, K, transform) / eps > gamma


def gap_condition(x, K: int, transform, eps: float, gamma: float) -> torch.Tensor:
    r"""Prop. 1's argument for any :math:`x`: :math:`(\lambda_K - \lambda_{K+1})/\epsilon > \gamma`.

    The proof of App. A with the coefficients outside the support kept:
    :math:`|\psi_i^T(x+e)| \ge \lambda_K - \epsilon\gamma/2 > \lambda_{K+1}
    + \epsilon\gamma/2 \ge |\psi_j^T(x+e)|` for :math:`i \in \mathcal{S}_K(x)`,
    :math:`j \notin`. It reduces to :func:`snr_condition` for exactly
    :math:`K`-sparse :math:`x`.
    """
    eps = _check_positive(eps, "eps")
    gamma = _check_positive(gamma, "gamma")
    return coefficient_gap(x, K, transform) / eps > gamma


def support_overlap(x, e, K: int, transform) -> torch.Tensor:
    r""":math:`|\mathcal{S}_K(x) \cap \mathcal{S}_K(x + e)|` per signal (``K`` means the support did not move)."""
    K = _check_K_for(transform, K)
    x, e = _torch(x, "x"), _torch(e, "e")
    if x.shape != e.shape:
        raise ValueError(f"e must have the shape of x {tuple(x.shape)}, got {tuple(e.shape)}")
    return (S_K(x, K, transform) & S_K(x + e, K, transform)).sum(-1)


PROP1_KINDS = ("random sign", "white box", "support")


def prop1_perturbation(kind: str, x, K: int, transform, eps: float, seed: int = 0) -> torch.Tensor:
    r"""A perturbation with :math:`\|e\|_\infty = \epsilon` of one of three kinds.

    * ``"random sign"``: :math:`e = \epsilon s`, :math:`s` i.i.d. :math:`\pm1`.
    * ``"white box"``: :math:`e_\mathrm{W} = \epsilon\,\mathrm{sgn}(\mathcal{P}_K(w, x))`,
      the optimal attack of Sec. IV-A on a random linear classifier :math:`w`
      (i.i.d. Gaussian, one per signal) that knows the front end.
    * ``"support"``: :math:`e = -\epsilon\,\mathrm{sgn}(\sum_{k\in\mathcal{S}_K(x)}
      \mathrm{sgn}(\psi_k^Tx)\psi_k)`, the sign vector that most reduces the
      :math:`\ell_1` mass of the kept coefficients: an attack on the support itself.

    ``x`` is ``(B, *transform.shape)`` (with a channel dimension for images).
    The same ``seed`` gives the same signs (and classifiers) for every
    transform, so that bases are compared on equal terms.
    """
    eps = _check_positive(eps, "eps")
    K = _check_K_for(transform, K)
    x = _torch(x, "x")
    if kind not in PROP1_KINDS:
        raise ValueError(f"kind must be one of {PROP1_KINDS}, got {kind!r}")
    rng = make_rng(seed, "prop1", kind)
    if kind == "random sign":
        return eps * torch.from_numpy(rng.choice([-1.0, 1.0], size=tuple(x.shape)))
    if kind == "white box":
        w = torch.from_numpy(rng.standard_normal(tuple(x.shape)))
        return eps * torch.sign(P_K(w, x, K, transform))
    c = transform.analysis(x)
    return -eps * torch.sign(transform.synthesis(torch.sign(c) * S_K(x, K, transform)))


def prop1_sweep(
    images: torch.Tensor,
    transforms: dict,
    gammas: dict,
    K: int,
    epsilons: Sequence[float],
    kinds: Sequence[str] = PROP1_KINDS,
    seed: int = 0,
    progress: bool = False,
) -> pd.DataFrame:
    r"""Prop. 1 on real images: the conditions and the support overlap.

    ``transforms`` maps a label to an image transform and ``gammas`` the same
    labels to :math:`\gamma = 2\max_k\|\psi_k\|_1`. ``x + e`` is not clipped
    (the proposition has no box constraint). One row per ``(basis, eps,
    kind, image)``: ``lam`` (:math:`\lambda`), ``gap``
    (:math:`\lambda_K - \lambda_{K+1}`), ``condition`` (the paper's
    :math:`\lambda/\epsilon > \gamma`), ``gap_condition``, ``overlap``, and
    ``violated`` / ``gap_violated``: the condition holds but the support
    moved (the second must never happen).
    """
    x = _torch(images, "images")
    frames = []
    jobs = [(label, kind, eps) for label in transforms for kind in kinds for eps in epsilons]
    lam = {label: smallest_kept(x, K, t).reshape(len(x)) for label, t in transforms.items()}
    gap = {label: coefficient_gap(x, K, t).reshape(len(x)) for label, t in transforms.items()}
    support_x = {label: S_K(x, K, t) for label, t in transforms.items()}
    directions: dict = {}  # every kind is eps times a sign pattern that does not depend on eps
    for label, kind, eps in _progress(jobs, progress, desc="Prop. 1"):
        t = transforms[label]
        if (label, kind) not in directions:  # jobs are ordered by (label, kind): keep one direction at a time
            directions = {(label, kind): prop1_perturbation(kind, x, K, t, 1.0, seed)}
        e = _check_positive(eps, "epsilons") * directions[label, kind]
        # support_overlap(x, e, K, t), with S_K(x) computed once per basis
        overlap = (support_x[label] & S_K(x + e, K, t)).sum(-1).reshape(len(x)).numpy()
        gamma = _check_positive(gammas[label], "gammas")
        condition = (lam[label] / eps > gamma).numpy()
        gap_ok = (gap[label] / eps > gamma).numpy()
        frames.append(
            pd.DataFrame(
                {
                    "basis": label,
                    "gamma": gamma,
                    "eps": float(eps),
                    "kind": kind,
                    "image": np.arange(len(x)),
                    "lam": lam[label].numpy(),
                    "gap": gap[label].numpy(),
                    "condition": condition,
                    "gap_condition": gap_ok,
                    "overlap": overlap,
                    "violated": condition & (overlap < K),
                    "gap_violated": gap_ok & (overlap < K),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def prop1_summary(sweep: pd.DataFrame, K: int) -> pd.DataFrame:
    """Per ``(basis, eps, kind)``: shares meeting each condition, share with the support unmoved, mean overlap / K, violations."""
    g = sweep.groupby(["basis", "eps", "kind"], sort=False)
    return g.agg(
        condition_share=("condition", "mean"),
        gap_condition_share=("gap_condition", "mean"),
        unmoved_share=("overlap", lambda o: float(np.mean(o == K))),
        mean_overlap_share=("overlap", lambda o: float(np.mean(o)) / K),
        violated_share=("violated", "mean"),
        gap_violations=("gap_violated", "sum"),
        n=("overlap", "size"),
    ).reset_index()


# ==========================================================================
# Sec. V: ReLU networks as locally linear maps
# ==========================================================================
def _layers(net) -> list:
    layers = list(net) if isinstance(net, nn.Sequential) else None
    if not layers or not all(isinstance(m, (nn.Linear, nn.ReLU, nn.Flatten, nn.Identity)) for m in layers):
        raise TypeError("net must be an nn.Sequential of nn.Linear and nn.ReLU layers (nn.Flatten allowed)")
    return layers


def relu_mlp(sizes: Sequence[int], seed: int = 0, logit_scale: float = 1.0) -> nn.Sequential:
    """A float64 ReLU MLP ``sizes[0] -> ... -> sizes[-1]``, seeded.

    Weights and biases are :math:`U(-1/\\sqrt{\\text{fan-in}}, 1/\\sqrt{\\text{fan-in}})`
    (PyTorch's default for ``nn.Linear``), the last layer times ``logit_scale``.
    """
    sizes = [_check_int(s, "sizes") for s in sizes]
    if len(sizes) < 2:
        raise ValueError(f"sizes must list at least an input and an output size, got {sizes}")
    logit_scale = _check_positive(logit_scale, "logit_scale")
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
    N, M = _check_int(N, "N"), _check_int(M, "M")
    delta, C = _check_positive(delta, "delta"), _check_positive(C, "C")
    if bias not in ("scaled", "unit"):
        raise ValueError(f"bias must be 'scaled' or 'unit', got {bias!r}")
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
        raise ValueError("net must be Linear(N, M), ReLU(), Linear(M, 1) (see random_two_layer)")
    b2 = layers[2].bias
    if b2 is not None and bool((b2 != 0).any()):
        raise ValueError("net's output layer must have no bias, as in Fig. 3")
    return layers[0].weight.detach(), -layers[0].bias.detach(), layers[2].weight.detach()[0]


def switch_statistics(net: nn.Sequential, x, e, delta: float) -> dict[str, torch.Tensor]:
    r"""Thm 3's quantities for a two-layer network, per input (rows of ``x``).

    * ``flipped``: share of neurons with :math:`\bar s_i \ne s_i` under :math:`e`;
    * ``outside_S``: share with :math:`|w_i^Tx - b_i| \le |w_i^Te|` (the
      sufficient condition for :math:`\bar s_i = s_i` fails: :math:`i \notin S`);
    * ``worst_case``: share with :math:`|w_i^Tx - b_i| \le \delta\|w_i\|_1`,
      outside :math:`S` for *some* :math:`\|e\|_\infty \le \delta` (the proof's bound).

    ``flipped <= outside_S <= worst_case`` neuron by neuron.
    """
    delta = _check_positive(delta, "delta")
    W, b, _ = two_layer_parts(net)
    x, e = _torch(x, "x"), _torch(e, "e")
    z = x @ W.T - b
    ze = e @ W.T
    flipped = (z > 0) != (z + ze > 0)
    outside = z.abs() <= ze.abs()
    worst = z.abs() <= delta * W.abs().sum(1)
    return {
        "flipped": flipped.double().mean(-1),
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
    delta, C = _check_positive(delta, "delta"), _check_positive(C, "C")
    L1 = model.mu * np.asarray(N, dtype=np.float64)
    Phi = scipy.special.ndtr
    if bias == "scaled":
        return Phi((2 * delta + C) * L1) - Phi(C * L1)
    if bias == "unit":
        return 2 * Phi(delta * L1 / math.sqrt(2.0)) - 1
    raise ValueError(f"bias must be 'scaled' or 'unit', got {bias!r}")


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
    (:func:`normalized_digits`, Assumption 1). Two perturbations of budget
    :math:`\delta`: ``"random sign"`` and ``"attack"``, the semi-white box
    attack :math:`\delta\,\mathrm{sgn}(w_\mathrm{eq}(x))` on the network.
    One row per ``(bias, side, network, kind, image)`` with the shares of
    :func:`switch_statistics`.
    """
    n_networks = _check_int(n_networks, "n_networks")
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


def relu_switches(net: nn.Sequential, x) -> list[torch.Tensor]:
    """The switches :math:`s(x) \\in \\{0, 1\\}` of every ReLU layer, as boolean tensors ``(B, width)``."""
    h = _torch(x, "x")
    out = []
    with torch.no_grad():
        for layer in _layers(net):
            if isinstance(layer, nn.ReLU):
                out.append(h > 0)
            h = layer(h)
    return out


def locally_linear(net: nn.Sequential, x, switches=None) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The exact locally linear model of a ReLU MLP: :math:`y(x) = W_\mathrm{eq}(x)x - b_\mathrm{eq}(x)`.

    Returns ``W_eq`` ``(B, L, N)`` (row :math:`i` is :math:`w_\mathrm{eq}^{\{i\}}`)
    and ``b_eq`` ``(B, L)``, composing the layers with each ReLU replaced by
    its switch (Sec. V-A). ``switches`` (from :func:`relu_switches`) fixes the
    pattern, e.g. that of :math:`x + e`; by default it is the pattern of ``x``.
    The matrix is composed from the output backwards, so memory stays
    ``B x L x width`` rather than ``B x width x N``.
    """
    x = _torch(x, "x")
    if x.dim() != 2:
        raise ValueError(f"x must be (B, N), got shape {tuple(x.shape)}")
    ops = [m for m in _layers(net) if isinstance(m, (nn.Linear, nn.ReLU))]
    if switches is None:
        switches = relu_switches(net, x)
    n_relu = sum(isinstance(m, nn.ReLU) for m in ops)
    if len(switches) != n_relu:
        raise ValueError(f"switches must hold one mask per ReLU ({n_relu}), got {len(switches)}")
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
                    raise ValueError(f"switches[{j}] must have shape {tuple(a.shape)}, got {tuple(s.shape)}")
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
        raise ValueError(f"e must have the shape of x {tuple(x.shape)}, got {tuple(e.shape)}")
    s, s_bar = relu_switches(net, x), relu_switches(net, x + e)
    W, b = locally_linear(net, x, s)
    W_bar, b_bar = locally_linear(net, x + e, s_bar)
    with torch.no_grad():
        delta = net(x + e) - net(x)
    linear = torch.einsum("bln,bn->bl", W_bar, e)
    switching = torch.einsum("bln,bn->bl", W_bar - W, x) - (b_bar - b)
    flips = torch.cat([(u != v) for u, v in zip(s, s_bar)], dim=1).double().mean(1) if s else torch.zeros(len(x))
    return {"delta": delta, "linear": linear, "switching": switching, "residual": delta - linear - switching, "flipped": flips}


def eq5_sweep(net: nn.Sequential, x, epsilons: Sequence[float], seed: int = 0, progress: bool = False) -> pd.DataFrame:
    r"""Eq. (5) for growing budgets: the semi-white box attack :math:`\epsilon\,\mathrm{sgn}(w_\mathrm{eq}(x))` and random signs.

    For a single-output network. One row per ``(kind, eps, image)`` with
    ``delta``, ``linear``, ``switching``, ``residual``, ``flipped`` and
    ``switching_share`` :math:`= |\text{switching}|/(|\text{linear}| + |\text{switching}|)`.
    """
    x = _torch(x, "x")
    W, _ = locally_linear(net, x)
    if W.shape[1] != 1:
        raise ValueError(f"net must have a single output, got {W.shape[1]}")
    signs = torch.from_numpy(make_rng(seed, "eq5").choice([-1.0, 1.0], size=tuple(x.shape)))
    frames = []
    for kind in _progress(["attack", "random sign"], progress, desc="Eq. (5)"):
        direction = torch.sign(W[:, 0]) if kind == "attack" else signs
        for eps in epsilons:
            out = eq5_split(net, x, _check_positive(eps, "epsilons") * direction)
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


# --------------------------------------------------------------------------
# Sec. V-E: multiclass FGSM through the locally linear model
# --------------------------------------------------------------------------
def _check_labels(t, B: int, L: int) -> torch.Tensor:
    t = torch.as_tensor(t, dtype=torch.int64).reshape(-1)
    if t.shape != (B,) or bool(((t < 0) | (t >= L)).any()):
        raise ValueError(f"t must hold {B} class indices in [0, {L}), got {t.tolist()[:8]}...")
    return t


def fgsm_direction(net: nn.Sequential, x, t) -> torch.Tensor:
    r""":math:`\mathrm{sgn}(\nabla_x J)` for the cross-entropy :math:`J = -\log p_t`, by autograd."""
    x = _torch(x, "x").detach().requires_grad_(True)
    logits = net(x)
    t = _check_labels(t, len(x), logits.shape[1])
    (g,) = torch.autograd.grad(F.cross_entropy(logits, t, reduction="sum"), x)
    return torch.sign(g)


def fgsm_direction_locally_linear(W_eq: torch.Tensor, logits: torch.Tensor, t, return_gradient: bool = False):
    r"""Sec. V-E: :math:`\mathrm{sgn}\big(w_\mathrm{eq}^{\{t\}}(p_t - 1) + \sum_{k\ne t} w_\mathrm{eq}^{\{k\}}p_k\big)`.

    ``W_eq`` ``(B, L, N)`` from :func:`locally_linear`, ``logits`` ``(B, L)``
    (:math:`p = \mathrm{softmax}(y)`), ``t`` the true labels. With
    ``return_gradient`` also returns the vector inside the sign.
    """
    B, L, _ = W_eq.shape
    t = _check_labels(t, B, L)
    p = torch.softmax(logits.to(torch.float64), dim=1)
    rows = torch.arange(B)
    w_t = W_eq[rows, t]  # (B, N)
    others = (W_eq * p[..., None]).sum(1) - W_eq[rows, t] * p[rows, t][:, None]
    g = w_t * (p[rows, t] - 1.0)[:, None] + others
    return (torch.sign(g), g) if return_gradient else torch.sign(g)


def locally_linear_attack(W_eq: torch.Tensor, logits: torch.Tensor, t, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The (one-step, semi-white box) locally linear attack of Sec. V-E.

    For each wrong class :math:`i`, the first-order margin after the attack
    :math:`\epsilon\,\mathrm{sgn}(w_\mathrm{eq}^{\{i\}} - w_\mathrm{eq}^{\{t\}})`
    is :math:`y_i - y_t + \epsilon\|w_\mathrm{eq}^{\{i\}} - w_\mathrm{eq}^{\{t\}}\|_1`;
    the attack spends its budget on the worst-case pair. Returns ``(e, i*)``.
    """
    eps = _check_positive(eps, "eps")
    B, L, _ = W_eq.shape
    t = _check_labels(t, B, L)
    rows = torch.arange(B)
    diff = W_eq - W_eq[rows, t][:, None]
    gain = logits - logits[rows, t][:, None] + eps * diff.abs().sum(-1)
    gain[rows, t] = -math.inf
    best = gain.argmax(1)
    return eps * torch.sign(diff[rows, best]), best


def fgsm_comparison(net: nn.Sequential, x, eps: float, t=None) -> pd.DataFrame:
    r"""FGSM two ways (autograd and Sec. V-E's expression) and against the locally linear attack.

    ``t`` defaults to the network's own prediction (the adversary knows the
    label). Per image: ``p_t``; ``sign_agreement`` (share of pixels where the
    two FGSM directions agree, among pixels with a nonzero gradient);
    ``grad_rel_err`` (relative difference between the autograd gradient of
    :math:`J` and :math:`W_\mathrm{eq}^T(p - 1_t)`); the first-order increase of
    the worst margin :math:`\max_{i\ne t} y_i - y_t` for FGSM (``gain_fgsm``) and
    the locally linear attack (``gain_ll``, the first-order optimum); and the
    true margins after each attack (``margin_fgsm``, ``margin_ll``; > 0 means
    the label changed); ``gain_ratio`` = ``gain_fgsm / gain_ll`` (at most 1).
    """
    eps = _check_positive(eps, "eps")
    x = _torch(x, "x")
    W_eq, b_eq = locally_linear(net, x)
    with torch.no_grad():
        logits = net(x)
    B, L, _ = W_eq.shape
    t = logits.argmax(1) if t is None else _check_labels(t, B, L)
    rows = torch.arange(B)
    sign_ll, g_ll = fgsm_direction_locally_linear(W_eq, logits, t, return_gradient=True)
    xr = x.detach().clone().requires_grad_(True)
    (g_auto,) = torch.autograd.grad(F.cross_entropy(net(xr), t, reduction="sum"), xr)
    nonzero = g_auto.abs() > 1e-12 * g_auto.abs().amax(1, keepdim=True)
    agree = ((torch.sign(g_auto) == sign_ll) | ~nonzero).double().mean(1)
    rel = (g_auto - g_ll).norm(dim=1) / g_auto.norm(dim=1).clamp_min(1e-300)

    def first_order_worst(e):
        margin = logits - logits[rows, t][:, None] + torch.einsum("bln,bn->bl", W_eq - W_eq[rows, t][:, None], e)
        margin[rows, t] = -math.inf
        return margin.amax(1)

    def true_worst(e):
        with torch.no_grad():
            y = net(x + e)
        m = y - y[rows, t][:, None]
        m[rows, t] = -math.inf
        return m.amax(1)

    base = logits - logits[rows, t][:, None]
    base[rows, t] = -math.inf
    base = base.amax(1)
    e_f = eps * sign_ll
    e_ll, _ = locally_linear_attack(W_eq, logits, t, eps)
    p = torch.softmax(logits, 1)
    return pd.DataFrame(
        {
            "image": np.arange(B),
            "t": t.numpy(),
            "p_t": p[rows, t].numpy(),
            "sign_agreement": agree.numpy(),
            "grad_rel_err": rel.numpy(),
            "gain_fgsm": (first_order_worst(e_f) - base).numpy(),
            "gain_ll": (first_order_worst(e_ll) - base).numpy(),
            "margin_fgsm": true_worst(e_f).numpy(),
            "margin_ll": true_worst(e_ll).numpy(),
        }
    ).assign(gain_ratio=lambda d: d["gain_fgsm"] / d["gain_ll"])


# ==========================================================================
# summaries, fits, plotting
# ==========================================================================
def summarize(df: pd.DataFrame, by, value: str, level: float = 0.95) -> pd.DataFrame:
    r"""Mean of ``value`` per group with a normal-theory CI and an equal-tailed quantile band.

    Columns: ``n, mean, sem, ci_low, ci_high`` (confidence interval of the
    mean at ``level``), ``q_low, q_high`` (the central ``level`` share of the
    draws), ``median``.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    if value not in df:
        raise KeyError(f"value {value!r} is not a column of df ({list(df.columns)})")
    z = scipy.stats.norm.ppf(0.5 + level / 2)
    lo, hi = (1 - level) / 2, 1 - (1 - level) / 2
    g = df.groupby(by, sort=True)[value]
    out = g.agg(
        n="size",
        mean="mean",
        sem=lambda v: float(np.std(v, ddof=1) / np.sqrt(len(v))) if len(v) > 1 else np.nan,
        median="median",
        q_low=lambda v: float(np.quantile(v, lo)),
        q_high=lambda v: float(np.quantile(v, hi)),
    ).reset_index()
    out["ci_low"] = out["mean"] - z * out["sem"]
    out["ci_high"] = out["mean"] + z * out["sem"]
    return out


def rms_deviation(center: float) -> Callable:
    """A statistic for :func:`fit_power_law`: :math:`\\sqrt{\\mathrm{mean}((v - c)^2)}` along ``axis``."""

    def stat(v, axis=-1):
        return np.sqrt(np.mean((np.asarray(v) - center) ** 2, axis=axis))

    stat.__name__ = f"rms_deviation({center:g})"
    return stat


@dataclass(frozen=True)
class PowerLawFit:
    r"""A fitted power law :math:`y \approx e^{a} x^{s}`: slope ``s`` with a confidence interval."""

    slope: float
    low: float
    high: float
    intercept: float
    level: float
    method: str
    x_min: float
    x_max: float
    n_points: int

    def predict(self, x) -> np.ndarray:
        return np.exp(self.intercept) * np.asarray(x, dtype=np.float64) ** self.slope

    def __str__(self) -> str:
        return f"{self.slope:.2f} [{self.low:.2f}, {self.high:.2f}]"

    @property
    def text(self) -> str:
        """The slope and its interval in words, for glueing into prose."""
        return f"{self.slope:.2f} ({self.level:.0%} CI {self.low:.2f} to {self.high:.2f})"


_STATISTICS = {"mean": np.mean, "median": np.median}


def _clean(v) -> float:
    """``v`` with rounding noise below 1e-12 removed (and no negative zero), for printing."""
    v = float(v)
    return float(np.round(v, 12)) + 0.0 if math.isfinite(v) else v


def fit_power_law(x, y, level: float = 0.95, n_boot: int = 2000, statistic="mean", seed: int = 0) -> PowerLawFit:
    r"""Least-squares slope of :math:`\log y` against :math:`\log x`, with a confidence interval.

    ``y`` is either one value per ``x`` (deterministic: the interval is the
    OLS :math:`t`-interval, which measures how far the points are from a
    straight line), or one array of Monte Carlo draws per ``x``, summarized
    by ``statistic`` (``"mean"``, ``"median"`` or a callable taking
    ``axis``): the interval is then a percentile bootstrap over draws,
    resampled independently at each ``x``.
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    if len(x) < 2 or np.any(x <= 0):
        raise ValueError(f"x must hold at least two positive values, got {x}")
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    stat = _STATISTICS.get(statistic, statistic) if isinstance(statistic, str) else statistic
    if not callable(stat):
        raise ValueError(f"statistic must be 'mean', 'median' or a callable, got {statistic!r}")
    lx = np.log(x)
    X = np.stack([np.ones_like(lx), lx], 1)
    ragged = not np.isscalar(y) and len(y) == len(x) and all(np.ndim(v) == 1 for v in y)
    if ragged:
        rows = [np.asarray(v, dtype=np.float64) for v in y]
        point = np.array([stat(r, axis=-1) for r in rows])
    else:
        point = np.asarray(y, dtype=np.float64).ravel()
        if point.shape != x.shape:
            raise ValueError(f"y must hold one value per x ({len(x)}) or one array of draws per x")
    if np.any(~np.isfinite(point)) or np.any(point <= 0):
        raise ValueError(f"the fitted values must be positive and finite, got {point}")
    coef, *_ = np.linalg.lstsq(X, np.log(point), rcond=None)
    alpha = 1 - level
    if ragged:
        n_boot = _check_int(n_boot, "n_boot")
        rng = make_rng(seed, "bootstrap")
        boot = np.empty((n_boot, len(x)))
        for j, r in enumerate(rows):
            idx = rng.integers(0, len(r), size=(n_boot, len(r)))
            boot[:, j] = stat(r[idx], axis=-1)
        if np.any(boot <= 0):
            raise ValueError("a bootstrap statistic is not positive; the log-log fit is undefined")
        slopes = np.linalg.lstsq(X, np.log(boot).T, rcond=None)[0][1]
        low, high = np.quantile(slopes, [alpha / 2, 1 - alpha / 2])
        method = f"bootstrap ({n_boot} resamples of the draws)"
    else:
        n = len(x)
        if n > 2:
            resid = np.log(point) - X @ coef
            s2 = resid @ resid / (n - 2)
            se = math.sqrt(s2 / np.sum((lx - lx.mean()) ** 2))
            q = scipy.stats.t.ppf(1 - alpha / 2, n - 2)
            low, high = coef[1] - q * se, coef[1] + q * se
        else:
            low = high = math.nan
        method = "OLS t-interval"
    return PowerLawFit(
        slope=_clean(coef[1]),
        low=_clean(low),
        high=_clean(high),
        intercept=float(coef[0]),
        level=level,
        method=method,
        x_min=float(x.min()),
        x_max=float(x.max()),
        n_points=len(x),
    )


def power_law_fits(
    df: pd.DataFrame, x: str, value: str, by=None, statistic="mean", level: float = 0.95, n_boot: int = 2000, seed: int = 0
) -> pd.DataFrame:
    """:func:`fit_power_law` of ``value`` against ``x`` in each group of ``by``, over the draws of ``df``.

    Groups with a single (exact) value per ``x`` get the OLS interval.

    Returns one row per group with ``slope, low, high, intercept, x_min,
    x_max, fit`` (the :class:`PowerLawFit`).
    """
    groups = [((), df)] if by is None else list(df.groupby(by, sort=True))
    rows = []
    for key, part in groups:
        xs = np.sort(part[x].unique())
        draws = [part.loc[part[x] == v, value].to_numpy() for v in xs]
        if all(len(d) == 1 for d in draws):  # one exact value per x: OLS, not a bootstrap
            draws = np.array([d[0] for d in draws])
        fit = fit_power_law(xs, draws, level=level, n_boot=n_boot, statistic=statistic, seed=seed)
        keys = key if isinstance(key, tuple) else (key,)
        names = [] if by is None else ([by] if isinstance(by, str) else list(by))
        rows.append(
            {
                **dict(zip(names, keys)),
                "slope": fit.slope,
                "low": fit.low,
                "high": fit.high,
                "intercept": fit.intercept,
                "x_min": fit.x_min,
                "x_max": fit.x_max,
                "fit": fit,
            }
        )
    return pd.DataFrame(rows)


def plot_band(ax, summary: pd.DataFrame, x: str, label=None, band: str = "ci", color=None, marker="o", **kw):
    """Plot a :func:`summarize` table: the mean as a line, ``band`` ("ci" or "quantile") shaded."""
    if band not in ("ci", "quantile"):
        raise ValueError(f"band must be 'ci' or 'quantile', got {band!r}")
    s = summary.sort_values(x)
    (line,) = ax.plot(s[x], s["mean"], marker=marker, ms=3.5, label=label, color=color, **kw)
    lo, hi = ("ci_low", "ci_high") if band == "ci" else ("q_low", "q_high")
    ax.fill_between(s[x], s[lo], s[hi], color=line.get_color(), alpha=0.2, lw=0)
    return line
