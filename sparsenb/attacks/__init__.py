r"""Adversarial attacks as plain functions: explicit arguments in, adversarial images out.

Conventions shared by every attack:

* ``x`` is a batch ``(B, C, H, W)`` in [0, 1]; ``y`` the true labels, int64
  ``(B,)``. For binary models (one logit, class 1 when it is positive) the
  labels are 0/1 and the logit ``z`` is read as the two-class logits
  ``(0, z)``, so the multiclass formulas apply unchanged.
* ``eps`` is the :math:`\ell_\infty` budget in [0, 1] pixel units. Every
  returned batch lies in the :math:`\epsilon`-ball around ``x`` and in the
  [0, 1] box; :func:`~sparsenb.attacks.base.check_adversarial` verifies this at run time before
  any attack returns. ``eps = 0`` returns a copy of ``x``, an empty batch an
  empty batch. Inputs are never modified, and no ``.grad`` is left on the
  model's parameters: gradients are taken with respect to the attack's own
  variable only.
* Arguments are checked once per call by :mod:`sparsenb.checks` (one
  :class:`~sparsenb.checks.ArgumentError` naming the argument): labels must
  be classes of the model (0/1 for binary models and the linear attacks),
  and an input gradient with NaN or infinity raises
  :class:`~sparsenb.checks.GradientError` instead of becoming a zero step.
* ``model`` maps images to logits and is used as it is (put it in ``eval()``
  mode first). A defended model is ``nn.Sequential(frontend, classifier)``;
  how gradients pass the front end (``bpda``, ``projection``, ``iterated``)
  is the front end's ``gradient`` setting, so every gradient attack works
  with all three.
* Randomness (PGD's start) is seeded per image from ``seed`` and the image's
  content, so a batch gives the same result per image as one image at a time.

Linear classifiers (Sec. IV, VI-A), with :math:`g(x) = w^T x + b`:
:func:`~sparsenb.attacks.linear.semi_white_box`, :func:`~sparsenb.attacks.linear.white_box`, :func:`~sparsenb.attacks.linear.iterated_white_box`.
Networks (Sec. V-D, V-E, VI-B): :func:`~sparsenb.attacks.gradient.locally_linear`,
:func:`~sparsenb.attacks.gradient.iterative_locally_linear`, :func:`~sparsenb.attacks.gradient.fgsm`, :func:`~sparsenb.attacks.gradient.ifgsm`,
:func:`~sparsenb.attacks.gradient.mifgsm`, :func:`~sparsenb.attacks.gradient.pgd`, :func:`~sparsenb.attacks.cw.carlini_wagner_l2`.

The modules: :mod:`~sparsenb.attacks.base` (the output check and shared
helpers), :mod:`~sparsenb.attacks.linear`, :mod:`~sparsenb.attacks.gradient`,
:mod:`~sparsenb.attacks.cw`, :mod:`~sparsenb.attacks.autoattack` (Croce and
Hein's AutoAttack components: APGD-CE, APGD-T, FAB-T, Square) and
:mod:`~sparsenb.attacks.adaptive` (an attack built for this defense). Every
public attack is re-exported here (AutoAttack's orchestrator stays
:func:`sparsenb.attacks.autoattack.autoattack`, its module's name) (``from sparsenb import attacks;
attacks.pgd(...)``) and registered by name in
:mod:`~sparsenb.attacks.registry` (``attacks.get("square")``), which is how
the experiment grid and adversarial training find them.
"""
from __future__ import annotations

from .adaptive import LOSSES, STARTS, SoftTopK, adaptive_attack, soft_top_k
from .autoattack import STANDARD, apgd_ce, apgd_t, fab_t, square
from .base import AttackCheckError, check_adversarial, two_class_logits
from .cw import carlini_wagner_l2
from .gradient import fgsm, ifgsm, iterative_locally_linear, locally_linear, mifgsm, pgd
from .linear import iterated_white_box, semi_white_box, white_box
from .registry import get, names, register

__all__ = [
    "AttackCheckError",
    "check_adversarial",
    "two_class_logits",
    "semi_white_box",
    "white_box",
    "iterated_white_box",
    "locally_linear",
    "iterative_locally_linear",
    "fgsm",
    "ifgsm",
    "mifgsm",
    "pgd",
    "carlini_wagner_l2",
    "apgd_ce",
    "apgd_t",
    "fab_t",
    "square",
    "STANDARD",
    "adaptive_attack",
    "SoftTopK",
    "soft_top_k",
    "STARTS",
    "LOSSES",
    "get",
    "names",
    "register",
]
