r"""Weight models of Sec. IV-B and seeded random numbers.

The random linear classifier :math:`w` of Sec. IV has i.i.d. entries with
zero mean and median, :math:`\mu = E|w_1| = \Theta(1)` and
:math:`\sigma^2 = E w_1^2 = \Theta(1)`. :func:`weight_model` gives the three
laws the chapters use, all with :math:`\sigma^2 = 1`:

* Gaussian: :math:`\mu = \sqrt{2/\pi}`, excess kurtosis 0;
* uniform on :math:`[-\sqrt3, \sqrt3]`: :math:`\mu = \sqrt3/2`, excess kurtosis :math:`-6/5`;
* Laplace with scale :math:`b = 1/\sqrt2` (:math:`2b^2 = 1`): :math:`\mu = 1/\sqrt2`, excess kurtosis 3;

with their characteristic functions (used by the exact Kolmogorov–Smirnov
distances of :mod:`sparsenb.theory.gaussianity`) and CDFs.

Everything random in :mod:`sparsenb.theory` takes a ``seed`` and derives its
generator from it and from the case at hand (:func:`make_rng`), so results
do not depend on the order in which cases run.
"""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np
import scipy.special

from .. import checks

__all__ = ["make_rng", "WeightModel", "WEIGHT_MODELS", "weight_model", "sample_weights"]

_SQRT3 = math.sqrt(3.0)
_LAPLACE_B = 1.0 / math.sqrt(2.0)  # unit variance: 2 b^2 = 1


def make_rng(seed, *keys) -> np.random.Generator:
    """A NumPy generator from ``seed`` and the case ``keys`` (strings, ints).

    The same seed and keys give the same stream on every machine and in any
    order of execution; different keys give independent streams. A
    ``np.random.Generator`` passed as ``seed`` (with no keys) is returned as is.
    """
    if isinstance(seed, np.random.Generator) and not keys:
        return seed
    entropy = [checks.seed(seed)] + [zlib.crc32(str(k).encode()) for k in keys]
    return np.random.default_rng(entropy)


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
        raise checks.fail("dist", f"one of {sorted(WEIGHT_MODELS)}", dist)
    return WEIGHT_MODELS[dist]


def sample_weights(dist: str, size, rng) -> np.ndarray:
    """i.i.d. weights of law ``dist`` (unit variance), as a float64 array of ``size``."""
    return weight_model(dist).sample(size, make_rng(rng))
