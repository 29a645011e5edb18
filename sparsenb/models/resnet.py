"""The ResNet-32 the authors ran for CIFAR-10 (He et al. 2016, Sec. 4.2; about 0.46 M parameters)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .. import checks
from .cnn import _channels_last

__all__ = ["CifarResNet", "ResNetConfig"]


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
class ResNetConfig:
    """The authors' CIFAR-10 network: :class:`CifarResNet`, ResNet-32 by default (``6 * blocks + 2`` layers)."""

    classes: int = 10
    blocks: int = 5

    def __post_init__(self):
        checks.integer(self.classes, "classes", 2)
        checks.integer(self.blocks, "blocks", 1)

    def build(self) -> CifarResNet:
        return CifarResNet(self.classes, self.blocks)
