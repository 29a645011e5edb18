r"""The linear models of the paper: :math:`g(x) = w^T x + b` (Sec. IV, VI-A) and the two-layer ReLU network (Sec. V-A).

Both take images ``(B, C, H, W)`` in [0, 1] and return one logit per image
``(B,)``: class 1 when it is positive.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["LinearClassifier", "TwoLayerNet", "TwoLayerConfig"]


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


@dataclass(frozen=True)
class TwoLayerConfig:
    """The release's 3-vs-7 network: ``hidden`` ReLU units, one logit."""

    hidden: int = 10
    in_features: int = 784

    def build(self) -> TwoLayerNet:
        return TwoLayerNet(self.hidden, self.in_features)
