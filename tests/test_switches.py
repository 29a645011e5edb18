"""ReLU switch states s_i(x) and flip shares (sparsenb.theory.switches) for the CNN, defended models and plain MLPs."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from sparsenb import data
from sparsenb.checks import ArgumentError
from sparsenb.frontend import SparsifyingFrontEnd
from sparsenb.frontend import defended
from sparsenb.models import NielsenCNN
from sparsenb.theory.switches import flip_share, switch_states


@pytest.fixture(scope="module")
def digits(mnist_test):
    return data.subset(*mnist_test, 12, seed=3)


@pytest.fixture(scope="module")
def cnn():
    torch.manual_seed(0)
    return NielsenCNN().eval()


def _mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 16), nn.ReLU(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 10)).eval()


def test_switch_states_see_what_the_cnn_sees(cnn, digits):
    x, _ = digits
    fe = SparsifyingFrontEnd(0.035, "coif1")
    for k, v in switch_states(defended(fe, cnn), x).items():
        assert torch.equal(v, cnn.relu_states(fe(x))[k])
    for k, v in switch_states(cnn, x).items():
        assert torch.equal(v, cnn.relu_states(x)[k])
    with pytest.raises(TypeError, match="model"):
        switch_states(nn.Linear(784, 10), x)


def test_switch_states_of_an_mlp_are_the_signs_of_its_pre_activations(digits):
    x, _ = digits
    net = _mlp()
    s = switch_states(net, x)
    assert list(s) == ["2", "4"]  # the indices of the two nn.ReLU in the sequence
    z1 = net[1](x.flatten(1))
    z2 = net[3](torch.relu(z1))
    assert torch.equal(s["2"], z1 > 0) and torch.equal(s["4"], z2 > 0)
    assert s["2"].dtype == torch.bool and s["2"].shape == (len(x), 16)
    # some units on, some off: the test would not notice a constant answer otherwise
    assert 0 < int(s["2"].sum()) < s["2"].numel()
    # behind a front end: the MLP's switches on the front end's output
    fe = SparsifyingFrontEnd(0.035, "coif1")
    behind = switch_states(defended(fe, net), x)
    for k, v in switch_states(net, fe(x)).items():
        assert torch.equal(behind[k], v)
    assert not all(torch.equal(behind[k], s[k]) for k in s)


def test_flip_share_weighs_layers_by_their_units():
    a = {"one": torch.tensor([[True, True, False, False]]), "two": torch.tensor([[True, False]])}
    b = {"one": torch.tensor([[False, True, False, False]]), "two": torch.tensor([[False, True]])}
    total, per = flip_share(a, b)
    # 1 of 4 units flips in "one", 2 of 2 in "two": 3 of all 6
    assert per["one"].tolist() == pytest.approx([25.0]) and per["two"].tolist() == pytest.approx([100.0])
    assert total.tolist() == pytest.approx([50.0])
    assert flip_share(a, a)[0].tolist() == [0.0]


def test_flip_share_on_a_perturbed_network_input(cnn, digits):
    x, _ = digits
    total, per = flip_share(switch_states(cnn, x), switch_states(cnn, (x + 0.2).clamp(0, 1)))
    states = switch_states(cnn, x)
    units = {k: v.shape[1] for k, v in states.items()}
    expected = sum(per[k] * units[k] for k in per) / sum(units.values())
    torch.testing.assert_close(total, expected)
    assert bool((total > 0).all()) and bool((total < 100).all())


def test_bad_arguments_name_the_argument(cnn, digits):
    x, _ = digits
    s = switch_states(cnn, x)
    with pytest.raises(ArgumentError, match="^x"):
        switch_states(cnn, x.numpy())
    with pytest.raises(ArgumentError, match="^b"):
        flip_share(s, {k: v for k, v in list(s.items())[:2]})
    with pytest.raises(ArgumentError, match="^b"):
        flip_share(s, {k: v[:3] for k, v in s.items()})
    with pytest.raises(ArgumentError, match="^a"):
        flip_share([], s)
    with pytest.raises(ArgumentError, match="^a"):
        flip_share({}, {})
