"""Evaluation helpers: accuracy intervals, checked attack outcomes, fingerprints."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from sparsenb import attacks, data, evaluation, training
from sparsenb.frontend import SparsifyingFrontEnd, support_overlap
from sparsenb.models import NielsenCNN, defended
from sparsenb.switches import flip_share

EPS = 0.1


@pytest.fixture(scope="module")
def digits(mnist_test):
    return data.subset(*mnist_test, 12, seed=3)


def _net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 16), nn.ReLU(), nn.Linear(16, 10)).eval()


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


@pytest.mark.parametrize("bad", [[], [0, 2, 1], [0.5, 1.0]])
def test_accuracy_interval_rejects_what_is_not_outcomes(bad):
    with pytest.raises(ValueError, match="correct"):
        evaluation.accuracy_interval(bad)


def test_format_accuracy():
    assert evaluation.format_accuracy([1, 1, 1, 0]) == "75.0 [30.1, 95.4]"
    assert evaluation.format_accuracy([1, 0], digits=2).startswith("50.00 [")


def test_attack_outcomes_agree_with_attacking_by_hand(digits):
    x, y = digits
    net = _net()
    kw = {"step": 0.02, "steps": 3}
    out = evaluation.attack_outcomes(attacks.ifgsm, net, x, y, EPS, batch_size=5, **kw)
    x_adv = attacks.ifgsm(net, x, y, EPS, **kw)
    assert out == {"correct": (evaluation.predict(net, x_adv) == y).int().tolist()}


def test_attack_outcomes_report_support_overlap_with_a_front_end(digits):
    x, y = digits
    fe = SparsifyingFrontEnd(0.035, "coif1")
    model = defended(fe, _net())
    out = evaluation.attack_outcomes(attacks.fgsm, model, x, y, EPS, frontend=fe)
    x_adv = attacks.fgsm(model, x, y, EPS)
    assert out["overlap"] == (fe.support(x) & fe.support(x_adv)).flatten(1).sum(1).tolist()
    assert out["overlap"] == support_overlap(x, x_adv, fe.K, fe.transform).tolist()
    assert all(0 <= k <= fe.K[0] for k in out["overlap"])
    assert len(out["correct"]) == len(x)


def test_attack_outcomes_refuse_an_attack_that_leaves_the_ball(digits):
    x, y = digits

    def too_far(model, x, y, eps):  # twice the budget, still in the box
        return (x + 2 * eps).clamp(0, 1)

    with pytest.raises(attacks.AttackCheckError, match="eps-ball"):
        evaluation.attack_outcomes(too_far, _net(), x, y, EPS)


def test_code_fingerprint_depends_on_the_modules():
    a = evaluation.code_fingerprint()
    assert a == evaluation.code_fingerprint()
    assert a != evaluation.code_fingerprint(("attacks",))
    with pytest.raises(ValueError, match="modules"):
        evaluation.code_fingerprint(("no_such_module",))


def test_model_fingerprint_follows_the_weights():
    net = _net(0)
    a = training.model_fingerprint(net)
    assert a == training.model_fingerprint(_net(0))
    assert a == training.model_fingerprint(_net(0).double())
    assert a != training.model_fingerprint(_net(1))
    with torch.no_grad():
        next(net.parameters())[0, 0] += 1e-3
    assert training.model_fingerprint(net) != a


@pytest.fixture(scope="module")
def cnn():
    torch.manual_seed(0)
    return NielsenCNN().eval()


def test_switch_flips_count_what_flip_share_counts(cnn, digits):
    x, _ = digits
    x2 = (x + 0.1).clamp(0, 1)
    out = evaluation.switch_flips(cnn, x, x2, batch_size=5)
    total, per = flip_share(cnn.relu_states(x), cnn.relu_states(x2))
    assert out["total"] == pytest.approx(total.tolist())
    assert out["layers"] == pytest.approx({k: float(v.mean()) for k, v in per.items()})
    assert out == evaluation.switch_flips(cnn, x, x2, batch_size=100)
    still = evaluation.switch_flips(cnn, x, x.clone())
    assert max(still["total"]) == 0.0
    with pytest.raises(ValueError, match="x_adv"):
        evaluation.switch_flips(cnn, x, x2[:3])


def test_ifgsm_sweep_reads_shorter_runs_off_one_long_run(cnn, digits):
    x, y = digits
    step = 0.03
    out = evaluation.ifgsm_sweep(cnn, x, y, EPS, step, [4, 1, 2], batch_size=5, count_flips=True)
    assert sorted(out["correct"]) == ["1", "2", "4"]
    for k in (1, 2, 4):
        x_k = attacks.ifgsm(cnn, x, y, EPS, step, k)
        assert out["correct"][str(k)] == (evaluation.predict(cnn, x_k) == y).int().tolist()
    assert len(out["flips_mean"]) == len(out["flips_std"]) == 4
    first = flip_share(cnn.relu_states(x), cnn.relu_states(attacks.ifgsm(cnn, x, y, EPS, step, 1)))[0]
    assert out["flips_mean"][0] == pytest.approx(float(first.mean()))
    assert out["flips_std"][0] == pytest.approx(float(first.std(unbiased=False)), abs=1e-9)
    again = evaluation.ifgsm_sweep(cnn, x, y, EPS, step, [1, 2, 4], batch_size=100, count_flips=True)
    assert again["correct"] == out["correct"]
    assert again["flips_mean"] == pytest.approx(out["flips_mean"])
    assert "flips_mean" not in evaluation.ifgsm_sweep(cnn, x, y, EPS, step, [1])
    with pytest.raises(ValueError, match="record_at"):
        evaluation.ifgsm_sweep(cnn, x, y, EPS, step, [0, 2])


def test_attack_outcomes_of_an_unbounded_attack_report_distances(digits):
    x, y = digits
    net = _net()
    kw = {"max_iterations": 5, "binary_search_steps": 1}
    out = evaluation.attack_outcomes(attacks.carlini_wagner_l2, net, x, y, None, distances=True, **kw)
    e = (attacks.carlini_wagner_l2(net, x, y, **kw) - x).flatten(1)
    assert out["linf"] == pytest.approx(e.abs().max(1).values.tolist())
    assert out["l2"] == pytest.approx(e.norm(dim=1).tolist())
    assert len(out["correct"]) == len(x)
