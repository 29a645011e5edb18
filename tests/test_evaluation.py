"""Evaluation helpers: predictions, Wilson and accuracy intervals, checked attack outcomes, switch flips, sweeps."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from sparsenb import attacks, cache, checks, data, evaluation, training
from sparsenb.chapters import mnist_multiclass
from sparsenb.frontend import SparsifyingFrontEnd, support_overlap
from sparsenb.frontend import defended
from sparsenb.models import NielsenCNN
from sparsenb.theory.switches import flip_share


pytestmark = pytest.mark.usefixtures("one_thread")

EPS = 0.1


@pytest.fixture(scope="module")
def digits(mnist_test):
    return data.subset(*mnist_test, 12, seed=3)


def _net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 16), nn.ReLU(), nn.Linear(16, 10)).eval()


@pytest.mark.parametrize(
    "k, n, lo, hi",
    [  # published 95% Wilson score intervals
        (0, 10, 0.0, 0.2775),
        (10, 10, 0.7225, 1.0),
        (5, 10, 0.2366, 0.7634),
        (95, 100, 0.8882, 0.9785),
        (1, 1, 0.2065, 1.0),
    ],
)
def test_wilson_interval_known_values(k, n, lo, hi):
    got = evaluation.wilson_interval(k, n)
    assert got == pytest.approx((lo, hi), abs=5e-5)
    assert all(type(v) is float for v in got)


def test_wilson_interval_vectorised_agrees_with_scalars():
    k = np.array([[0, 3, 7], [10, 1, 5]])
    n = np.array([10, 10, 12])  # broadcast over rows
    lo, hi = evaluation.wilson_interval(k, n)
    assert lo.shape == hi.shape == (2, 3)
    for i in range(2):
        for j in range(3):
            assert (lo[i, j], hi[i, j]) == evaluation.wilson_interval(int(k[i, j]), int(n[j]))
    assert np.all((lo <= k / n) & (k / n <= hi))
    wide, narrow = evaluation.wilson_interval(50, 100), evaluation.wilson_interval(500, 1000)
    assert wide[1] - wide[0] > narrow[1] - narrow[0]
    z1 = evaluation.wilson_interval(50, 100, z=1.0)
    assert z1[1] - z1[0] < wide[1] - wide[0]


@pytest.mark.parametrize(
    "k, n, name",
    [
        (1, 0, "n"),
        (1, -5, "n"),
        (1, float("inf"), "n"),
        (1, float("nan"), "n"),
        ("a", 10, "successes"),
        (float("nan"), 10, "successes"),
        (-1, 10, "successes"),
        (11, 10, "successes"),
        (np.array([1, 11]), 10, "successes"),
        (1, np.array([10, 0]), "n"),
        (None, 10, "successes"),
    ],
)
def test_wilson_interval_rejects_bad_input(k, n, name):
    with pytest.raises(checks.ArgumentError) as err:
        evaluation.wilson_interval(k, n)
    assert err.value.argument == name


@pytest.mark.parametrize("z", [0, -1.96, float("nan"), "1.96"])
def test_wilson_interval_rejects_bad_z(z):
    with pytest.raises(checks.ArgumentError, match="^z"):
        evaluation.wilson_interval(5, 10, z=z)


def test_predict_and_accuracy(digits):
    x, y = digits
    net = _net()
    with torch.no_grad():
        assert torch.equal(evaluation.predict(net, x, batch_size=5), net(x).argmax(1))
    assert evaluation.accuracy(net, x, y) == pytest.approx(float((net(x).argmax(1) == y).double().mean()))
    empty = evaluation.predict(net, x[:0])
    assert empty.shape == (0,) and empty.dtype == torch.int64
    with pytest.raises(checks.ArgumentError, match="^x"):
        evaluation.accuracy(net, x[:0], y[:0])
    with pytest.raises(checks.ArgumentError, match="^batch_size"):
        evaluation.predict(net, x, batch_size=0)
    with pytest.raises(checks.ArgumentError, match="^y"):
        evaluation.accuracy(net, x, y[:3])


def test_predict_one_logit_is_class_one_where_positive(digits):
    x, _ = digits
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 1), nn.Flatten(0)).eval()
    with torch.no_grad():
        assert evaluation.predict(net, x).tolist() == (net(x) > 0).long().tolist()


def test_accuracy_interval_matches_wilson():
    p, lo, hi = evaluation.accuracy_interval([1] * 95 + [0] * 5)
    wlo, whi = evaluation.wilson_interval(95, 100)
    assert p == pytest.approx(95.0)
    assert (lo, hi) == pytest.approx((100 * wlo, 100 * whi))
    assert lo < p < hi


@pytest.mark.parametrize(
    "correct",
    [[True, False, True, True], np.array([1, 0, 1, 1]), torch.tensor([1, 0, 1, 1], dtype=torch.int32)],
)
def test_accuracy_interval_accepts_lists_arrays_and_tensors(correct):
    assert evaluation.accuracy_interval(correct)[0] == pytest.approx(75.0)


@pytest.mark.parametrize("bad", [[], [0, 2, 1], [0.5, 1.0], [float("nan")], [-1]])
def test_accuracy_interval_rejects_what_is_not_outcomes(bad):
    with pytest.raises(checks.ArgumentError, match="^correct"):
        evaluation.accuracy_interval(bad)


def test_format_accuracy():
    assert evaluation.format_accuracy([1, 1, 1, 0]) == "75.0 [30.1, 95.4]"
    assert evaluation.format_accuracy([1, 0], digits=2).startswith("50.00 [")


def test_model_fingerprint_follows_the_weights():
    net = _net(0)
    a = cache.model_fingerprint(net)
    assert a == cache.model_fingerprint(_net(0))
    assert a == cache.model_fingerprint(_net(0).double())
    assert a != cache.model_fingerprint(_net(1))
    with torch.no_grad():
        next(net.parameters())[0, 0] += 1e-3
    assert cache.model_fingerprint(net) != a


@pytest.fixture(scope="module")
def cnn():
    torch.manual_seed(0)
    return NielsenCNN().eval()


def test_switch_flips_count_what_flip_share_counts(cnn, digits):
    x, _ = digits
    x2 = (x + 0.1).clamp(0, 1)
    out = mnist_multiclass.switch_flips(cnn, x, x2, batch_size=5)
    total, per = flip_share(cnn.relu_states(x), cnn.relu_states(x2))
    assert out["total"] == pytest.approx(total.tolist())
    assert out["layers"] == pytest.approx({k: float(v.mean()) for k, v in per.items()})
    assert out == mnist_multiclass.switch_flips(cnn, x, x2, batch_size=100)
    still = mnist_multiclass.switch_flips(cnn, x, x.clone())
    assert max(still["total"]) == 0.0
    with pytest.raises(ValueError, match="x_adv"):
        mnist_multiclass.switch_flips(cnn, x, x2[:3])


def test_ifgsm_sweep_reads_shorter_runs_off_one_long_run(cnn, digits):
    x, y = digits
    step = 0.03
    out = mnist_multiclass.ifgsm_sweep(cnn, x, y, EPS, step, [4, 1, 2], batch_size=5, count_flips=True)
    assert sorted(out["correct"]) == ["1", "2", "4"]
    for k in (1, 2, 4):
        x_k = attacks.ifgsm(cnn, x, y, EPS, step, k)
        assert out["correct"][str(k)] == (evaluation.predict(cnn, x_k) == y).int().tolist()
    assert len(out["flips_mean"]) == len(out["flips_std"]) == 4
    first = flip_share(cnn.relu_states(x), cnn.relu_states(attacks.ifgsm(cnn, x, y, EPS, step, 1)))[0]
    assert out["flips_mean"][0] == pytest.approx(float(first.mean()))
    assert out["flips_std"][0] == pytest.approx(float(first.std(unbiased=False)), abs=1e-9)
    again = mnist_multiclass.ifgsm_sweep(cnn, x, y, EPS, step, [1, 2, 4], batch_size=100, count_flips=True)
    assert again["correct"] == out["correct"]
    assert again["flips_mean"] == pytest.approx(out["flips_mean"])
    assert "flips_mean" not in mnist_multiclass.ifgsm_sweep(cnn, x, y, EPS, step, [1])
    with pytest.raises(ValueError, match="record_at"):
        mnist_multiclass.ifgsm_sweep(cnn, x, y, EPS, step, [0, 2])


def test_run_attack_in_batches_equals_one_call(digits):
    x, y = digits
    net = _net()
    kw = {"step": 0.02, "steps": 3}
    batched = mnist_multiclass.run_attack(attacks.ifgsm, x, y, batch_size=5, model=net, eps=EPS, **kw)
    assert torch.equal(batched, attacks.ifgsm(net, x, y, EPS, **kw))


def test_one_step_flips_is_switch_flips_after_one_step(cnn, digits):
    x, y = digits
    x, y = x[:4], y[:4]
    out = mnist_multiclass.one_step_flips(cnn, x, y, EPS, 0.02, batch_size=3)
    x1 = attacks.iterative_locally_linear(cnn, x, y, EPS, 0.02, 1)
    assert out["total"] == pytest.approx(mnist_multiclass.switch_flips(cnn, x, x1)["total"])
    assert max(out["total"]) > 0
