r"""The paper's theory (Secs. III–V and App. A) as functions the theory chapters call.

One module per section of the paper; every public name is re-exported
here, so ``from sparsenb import theory; theory.delta_w(...)`` works.

=====================================  ================================================================================================
:mod:`~sparsenb.theory.weights`        weight laws of Sec. IV-B, :func:`~sparsenb.theory.weights.make_rng`
:mod:`~sparsenb.theory.bases1d`        fast 1-D wavelet and DCT bases, :math:`\|\psi_k\|_1`, :math:`\|\psi_k\|_\infty`
:mod:`~sparsenb.theory.linear`         Sec. IV: :math:`\Delta_0, Z_K, \Delta_\mathrm{SW}, \Delta_\mathrm{W}`, Lemma 1, Lemma 4, Eq. (6)
:mod:`~sparsenb.theory.linear_sweeps`  Prop. 2, Thms 1–2 by Monte Carlo; the white box on images
:mod:`~sparsenb.theory.gaussianity`    Lemmas 2 and 3: exact Kolmogorov–Smirnov distances
:mod:`~sparsenb.theory.prop1`          Prop. 1: the high-SNR and gap conditions, support overlap
:mod:`~sparsenb.theory.networks`       Sec. V: random ReLU networks, Thm 3, :math:`W_\mathrm{eq}`, Eq. (5)
:mod:`~sparsenb.theory.multiclass`     Sec. V-E: multiclass FGSM through the locally linear model
:mod:`~sparsenb.theory.switches`       ReLU switch states and the share that flips (Sec. V)
=====================================  ================================================================================================

This package is the maths only: the two theory chapters' sections, their
tables and figures are :mod:`sparsenb.chapters.theory_linear` and
:mod:`sparsenb.chapters.theory_networks`, and the statistics they summarise
and draw with (bands, power-law fits) are :mod:`sparsenb.lab.stats`.

Notation follows the paper: :math:`\mathcal{S}_K`, :math:`\mathcal{P}_K`
are :func:`sparsenb.frontend.S_K`, :func:`~sparsenb.frontend.P_K`; a
*transform* is any object with ``analysis``/``synthesis``, ``N`` and
``shape`` (the image transforms of :mod:`sparsenb.basis` or the 1-D ones of
:mod:`~sparsenb.theory.bases1d`). Everything random takes a ``seed``
(:func:`~sparsenb.theory.weights.make_rng`).
"""
from __future__ import annotations

from . import bases1d, gaussianity, linear, linear_sweeps, multiclass, networks, prop1, switches, weights
from .bases1d import *  # noqa: F401,F403
from .gaussianity import *  # noqa: F401,F403
from .linear import *  # noqa: F401,F403
from .linear_sweeps import *  # noqa: F401,F403
from .multiclass import *  # noqa: F401,F403
from .networks import *  # noqa: F401,F403
from .prop1 import *  # noqa: F401,F403
from .switches import *  # noqa: F401,F403
from .weights import *  # noqa: F401,F403

__all__ = [
    *weights.__all__,
    *bases1d.__all__,
    *linear.__all__,
    *linear_sweeps.__all__,
    *gaussianity.__all__,
    *prop1.__all__,
    *networks.__all__,
    *multiclass.__all__,
    *switches.__all__,
]
