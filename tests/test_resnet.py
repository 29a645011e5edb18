"""Tests for the CIFAR ResNet (sparsenb.models.CifarResNet / ResNetConfig)."""
from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from sparsenb import models
from sparsenb.checks import ArgumentError
from sparsenb.models import CifarResNet, ResNetConfig
from sparsenb.training import TrainConfig, fit

pytestmark = pytest.mark.usefixtures("one_thread")


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.fixture(scope="module")
def resnet32() -> CifarResNet:
    torch.manual_seed(0)
    return ResNetConfig().build()


def test_resnet32_parameter_count(resnet32):
    n = _params(resnet32)
    assert n == 464_154  # akamaster/pytorch_resnet_cifar10's resnet32 ("0.46M")
    assert 450_000 <= n <= 470_000


def test_resnet32_has_32_weight_layers(resnet32):
    """31 convolutions (1 + 3 stages x 5 blocks x 2) and one linear layer; option A shortcuts have no weights."""
    convs = [m for m in resnet32.modules() if isinstance(m, nn.Conv2d)]
    linears = [m for m in resnet32.modules() if isinstance(m, nn.Linear)]
    assert len(convs) == 31 and len(linears) == 1
    assert all(m.bias is None and m.kernel_size == (3, 3) for m in convs)
    assert [m.out_channels for m in convs] == [16] * 11 + [32] * 10 + [64] * 10
    assert [m.stride for m in convs if m.stride != (1, 1)] == [(2, 2), (2, 2)]


def test_depth_follows_blocks():
    assert _params(ResNetConfig(blocks=3).build()) == 269_722  # ResNet-20, "0.27M"
    assert _params(ResNetConfig(blocks=7).build()) == 658_586  # ResNet-44, "0.66M"
    assert _params(ResNetConfig(classes=2).build()) == 464_154 - 8 * 65


def test_forward_shape_and_batch_of_two(resnet32):
    resnet32.eval()
    with torch.no_grad():
        z = resnet32(torch.rand(2, 3, 32, 32))
    assert z.shape == (2, 10) and z.dtype == torch.float32
    assert bool(torch.isfinite(z).all())
    with torch.no_grad():
        one = resnet32(torch.rand(1, 3, 32, 32))
    assert one.shape == (1, 10)


def test_eval_output_is_per_image(resnet32):
    """In eval mode (BN running statistics) an image's logits do not depend on its batch."""
    resnet32.eval()
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(resnet32(x)[1:2], resnet32(x[1:2]), atol=1e-5)


def test_kaiming_init_and_seeded():
    torch.manual_seed(1)
    a = ResNetConfig().build()
    torch.manual_seed(1)
    b = ResNetConfig().build()
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    # Kaiming-normal (fan-in, ReLU gain): std sqrt(2 / fan_in), e.g. 64 * 9 inputs in the last stage
    w = a.blocks[-1].conv2.weight.detach()
    assert abs(float(w.std()) - (2 / (64 * 9)) ** 0.5) < 0.1 * (2 / (64 * 9)) ** 0.5
    assert abs(float(a.logits.weight.detach().std()) - (2 / 64) ** 0.5) < 0.2 * (2 / 64) ** 0.5


def test_a_few_adam_steps_lower_the_loss():
    torch.manual_seed(0)
    model = ResNetConfig().build().train()
    x, y = torch.rand(8, 3, 32, 32), torch.arange(8) % 10
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(5):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0], losses
    assert all(p.grad is not None for p in model.parameters())


def test_fit_trains_it():
    """``sparsenb.training.fit`` builds and trains it like the other configs."""
    x, y = torch.rand(8, 3, 32, 32), torch.arange(8) % 10
    model = fit(ResNetConfig(blocks=1), x, y, TrainConfig(optimizer="adam", lr=1e-3, batch_size=4, steps=2))
    assert isinstance(model, CifarResNet) and not model.training
    assert model(x).shape == (8, 10)


def test_config_is_a_frozen_dataclass():
    c = ResNetConfig()
    assert dataclasses.asdict(c) == {"classes": 10, "blocks": 5}
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.blocks = 3
    assert {"CifarResNet", "ResNetConfig"} <= set(models.__all__)


@pytest.mark.parametrize(
    "kwargs,name",
    [
        (dict(blocks=0), "blocks"),
        (dict(blocks=2.0), "blocks"),
        (dict(blocks="5"), "blocks"),
        (dict(blocks=True), "blocks"),
        (dict(classes=1), "classes"),
        (dict(classes=None), "classes"),
    ],
)
def test_bad_config_raises_one_argument_error_naming_it(kwargs, name):
    with pytest.raises(ArgumentError) as info:
        ResNetConfig(**kwargs)
    assert info.value.argument == name and str(info.value).startswith(name + " ")
