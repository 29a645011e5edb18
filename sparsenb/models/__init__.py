"""The classifiers of the paper's experiments, one small readable file per family.

All take images ``(B, C, H, W)`` in [0, 1] and return logits: ``(B,)`` for the
binary models (class 1 when the logit is positive) and ``(B, L)`` for
multiclass ones. The defense is composition:
:func:`sparsenb.frontend.defended` puts the front end before a classifier.

* :class:`~sparsenb.models.linear.LinearClassifier`: :math:`g(x) = w^T x + b` (Sec. IV, VI-A);
* :class:`~sparsenb.models.linear.TwoLayerNet`: one hidden ReLU layer of M units and one logit
  (Sec. V-A, Fig. 3; M = 10 for 3-vs-7 in Sec. VI-B);
* :class:`~sparsenb.models.cnn.NielsenCNN`: the 4-layer CNN of the multiclass MNIST experiments (Sec. VI-B);
* :class:`~sparsenb.models.resnet.CifarResNet`: the ResNet-32 of the CIFAR-10 experiments (Sec. VI-C).

Each has a frozen config dataclass with ``build()`` (:class:`~sparsenb.models.linear.TwoLayerConfig`,
:class:`~sparsenb.models.cnn.CNNConfig`, :class:`~sparsenb.models.resnet.ResNetConfig`); checkpoints are keyed by it.
Every name is re-exported here (``from sparsenb.models import CNNConfig``);
a stored result is keyed by the file that defines what it uses, so a new
model family in its own file re-keys nothing.
"""
from __future__ import annotations

from .cnn import CNNConfig, NielsenCNN
from .linear import LinearClassifier, TwoLayerConfig, TwoLayerNet
from .resnet import CifarResNet, ResNetConfig

__all__ = ["LinearClassifier", "TwoLayerNet", "TwoLayerConfig", "NielsenCNN", "CNNConfig", "CifarResNet", "ResNetConfig"]
