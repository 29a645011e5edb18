r"""Certified robustness of a linear classifier behind the sparsifying front end.

:mod:`~sparsenb.certify.bounds` computes a sound lower bound on the margin
over the whole :math:`\epsilon`-ball (:func:`~sparsenb.certify.bounds.certify`, three methods of
increasing tightness); :mod:`~sparsenb.certify.exact` computes the exact
worst case on small problems, against which the bounds are tested, and on
real images by mixed-integer programming.
"""
from __future__ import annotations

from .bounds import (
    METHODS,
    Bounds,
    Certificate,
    ClipLines,
    Method,
    certify,
    clip_relaxation,
    float32_guard,
    linear_frontend,
    logit_bounds,
)
from .exact import (
    defended_logit,
    exact_extremes,
    exact_margin,
    exact_robustness,
    sampled_extremes,
    soundness_check,
    toy_problem,
    vertex_extremes,
)

__all__ = [
    "METHODS",
    "Method",
    "Bounds",
    "logit_bounds",
    "ClipLines",
    "clip_relaxation",
    "float32_guard",
    "linear_frontend",
    "Certificate",
    "certify",
    "defended_logit",
    "vertex_extremes",
    "sampled_extremes",
    "exact_extremes",
    "exact_margin",
    "exact_robustness",
    "toy_problem",
    "soundness_check",
]
