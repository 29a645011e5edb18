"""The classifiers of the paper's experiments, as small readable modules.

All take images ``(B, C, H, W)`` in [0, 1] and return logits: ``(B,)`` for the
binary models (class 1 when the logit is positive) and ``(B, L)`` for
multiclass ones. The defense is composition: ``defended(frontend, model)``.

* :class:`LinearClassifier`: :math:`g(x) = w^T x + b` (Sec. IV, VI-A).
* :class:`TwoLayerNet`: one hidden ReLU layer of M units and one logit
  (Sec. V-A, Fig. 3; M = 10 for 3-vs-7 in Sec. VI-B).
* :class:`NielsenCNN`: the 4-layer CNN the authors ran for multiclass MNIST
  (Nielsen, *Neural Networks and Deep Learning*, ch. 6): conv 5x5x20 (same
  padding) + max-pool 2, conv 5x5x40 (valid) + max-pool 2, FC 1000, FC 1000,
  10 logits, ReLU, dropout 0.5 on the fully connected layers in training.
* :class:`CifarResNet`: the ResNet-32 the authors ran for CIFAR-10 (He et
  al. 2016, Sec. 4.2; about 0.46 M parameters).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from . import checks

__all__ = [
    "LinearClassifier",
    "TwoLayerNet",
    "NielsenCNN",
    "CifarResNet",
    "TwoLayerConfig",
    "CNNConfig",
    "ResNetConfig",
    "defended",
]


def _channels_last(x: torch.Tensor) -> torch.Tensor:
    """Images in the channels-last memory layout (the same values; only the strides change).

    The convolutional models keep their weights and activations in this
    layout: on the CPU, PyTorch's convolutions then run 1.6x (the MNIST CNN,
    input gradients of 500 images) to 1.7x (ResNet-32, training steps of 128)
    faster than in the default layout, measured on 2 cores. Inputs must be
    batches ``(B, C, H, W)``.
    """
    return x.contiguous(memory_format=torch.channels_last)


class LinearClassifier(nn.Module):
    r"""A linear binary classifier :math:`g(x) = w^T x + b` on flattened images."""

    def __init__(self, image_shape=(1, 28, 28)):
        super().__init__()
        self.image_shape = tuple(image_shape)
        n = 1
        for s in self.image_shape:
            n *= s
        self.linear = nn.Linear(n, 1)

    @property
    def w(self) -> torch.Tensor:
        """The weight vector as an image ``(C, H, W)``."""
        return self.linear.weight.reshape(self.image_shape)

    @property
    def b(self) -> torch.Tensor:
        return self.linear.bias[0]

    @classmethod
    def from_weights(cls, w: torch.Tensor, b: float, image_shape=(1, 28, 28)) -> "LinearClassifier":
        w = torch.as_tensor(w)
        dtype = w.dtype if w.is_floating_point() else torch.float32
        model = cls(image_shape).to(dtype)
        with torch.no_grad():
            model.linear.weight.copy_(w.reshape(1, -1))
            model.linear.bias.fill_(float(b))
        return model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1)).squeeze(-1)


class TwoLayerNet(nn.Module):
    r""":math:`y(x) = w_0^T \mathrm{ReLU}(W x - b)`: M hidden ReLU units, one logit."""

    def __init__(self, hidden: int = 10, in_features: int = 784):
        super().__init__()
        self.hidden = nn.Linear(in_features, hidden)
        self.out = nn.Linear(hidden, 1)

    def pre_activations(self, x: torch.Tensor) -> torch.Tensor:
        r""":math:`w_i^T x - b_i` for every hidden unit ``(B, M)``; switch :math:`s_i = 1` where > 0."""
        return self.hidden(x.flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.pre_activations(x))).squeeze(-1)


class NielsenCNN(nn.Module):
    """The authors' 4-layer CNN for MNIST (see the module docstring)."""

    def __init__(self, classes: int = 10, dropout: float = 0.5):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 20, 5, padding=2)
        self.conv2 = nn.Conv2d(20, 40, 5)
        self.fc1 = nn.Linear(40 * 5 * 5, 1000)
        self.fc2 = nn.Linear(1000, 1000)
        self.logits = nn.Linear(1000, classes)
        self.dropout = nn.Dropout(dropout)
        self.pool = nn.MaxPool2d(2)
        self.to(memory_format=torch.channels_last)  # see _channels_last

    def features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Pre-activations of every ReLU layer (for counting switches that flip)."""
        out = {}
        h = self.conv1(_channels_last(x))
        out["conv1"] = h
        h = self.pool(torch.relu(h))
        h = self.conv2(h)
        out["conv2"] = h
        h = self.pool(torch.relu(h)).flatten(1)
        h = self.fc1(h)
        out["fc1"] = h
        h = self.fc2(self.dropout(torch.relu(h)))
        out["fc2"] = h
        out["logits"] = self.logits(self.dropout(torch.relu(h)))
        return out

    RELU_LAYERS = ("conv1", "conv2", "fc1", "fc2")

    def relu_states(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The switches :math:`s_i(x)`: which ReLU units are on (pre-activation > 0), per layer ``(B, units)``."""
        feats = self.features(x)
        return {k: feats[k].flatten(1) > 0 for k in self.RELU_LAYERS}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)["logits"]


class CifarResNet(nn.Module):
    r"""The CIFAR ResNet of He et al. 2016 (Sec. 4.2): ``6 * blocks + 2`` layers; ``blocks=5`` is ResNet-32.

    A 3x3 convolution to 16 channels, then three stages of ``blocks`` basic
    blocks with 16, 32 and 64 channels on 32x32, 16x16 and 8x8 maps (the
    first block of stages 2 and 3 halves the map with stride 2), global
    average pooling and one linear layer to the logits. A basic block is
    conv 3x3, BN, ReLU, conv 3x3, BN, plus the shortcut, then ReLU. Where a
    block changes shape the shortcut is the paper's option A, which has no
    parameters: the input subsampled by 2 and zero-padded with ``c / 2``
    channels (``c / 4`` on each side). Convolutions have no bias (BN follows).
    With ``blocks=5`` and 10 classes this is 464,154 parameters, as in the
    widely used PyTorch reimplementation (``akamaster/pytorch_resnet_cifar10``),
    whose initialisation is kept: Kaiming-normal weights (fan-in) for every
    convolution and the linear layer, PyTorch's defaults for the rest.

    Input: images ``(B, 3, 32, 32)`` in [0, 1], **not** normalised inside the
    model (that reimplementation's model does not normalise either; its
    trainer standardises the data beforehand). Here the front end and the
    attacks work in the pixel box [0, 1], so the model sees pixels as they
    are; the BN after the first convolution absorbs their offset and scale.
    """

    STAGES = (16, 32, 64)

    class Block(nn.Module):
        """conv-BN-ReLU-conv-BN, plus the (option A) shortcut, then ReLU."""

        def __init__(self, cin: int, cout: int, stride: int):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.pad = cout - cin  # channels the shortcut adds in zeros, half on each side
            self.stride = stride

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
            shortcut = x[:, :, :: self.stride, :: self.stride]
            if self.pad:
                shortcut = F.pad(shortcut, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))
            return torch.relu(out + shortcut)

    def __init__(self, classes: int = 10, blocks: int = 5):
        super().__init__()
        self.conv = nn.Conv2d(3, self.STAGES[0], 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(self.STAGES[0])
        layers, cin = [], self.STAGES[0]
        for stage, cout in enumerate(self.STAGES):
            for b in range(blocks):
                layers.append(self.Block(cin, cout, stride=2 if stage > 0 and b == 0 else 1))
                cin = cout
        self.blocks = nn.Sequential(*layers)
        self.logits = nn.Linear(cin, classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)
        self.to(memory_format=torch.channels_last)  # see _channels_last

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(torch.relu(self.bn(self.conv(_channels_last(x)))))
        return self.logits(h.mean(dim=(2, 3)))


@dataclass(frozen=True)
class TwoLayerConfig:
    """The release's 3-vs-7 network: ``hidden`` ReLU units, one logit."""

    hidden: int = 10
    in_features: int = 784

    def build(self) -> TwoLayerNet:
        return TwoLayerNet(self.hidden, self.in_features)


@dataclass(frozen=True)
class CNNConfig:
    """The release's 4-layer CNN (:class:`NielsenCNN`)."""

    classes: int = 10
    dropout: float = 0.5

    def build(self) -> NielsenCNN:
        return NielsenCNN(self.classes, self.dropout)


@dataclass(frozen=True)
class ResNetConfig:
    """The authors' CIFAR-10 network: :class:`CifarResNet`, ResNet-32 by default (``6 * blocks + 2`` layers)."""

    classes: int = 10
    blocks: int = 5

    def __post_init__(self):
        checks.integer(self.classes, "classes", 2)
        checks.integer(self.blocks, "blocks", 1)

    def build(self) -> CifarResNet:
        return CifarResNet(self.classes, self.blocks)


def defended(frontend: nn.Module, classifier: nn.Module) -> nn.Sequential:
    """The defended model: the front end, then the classifier."""
    return nn.Sequential(frontend, classifier)
