"""Binary 3-vs-7 pieces: the linear attacks of Sec. IV/VI-A, the binary locally linear
attack, training determinism, the pooled split and the paper's reference numbers."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sparsenb import attacks, data, evaluation, training
from sparsenb.frontend import SparsifyingFrontEnd
from sparsenb.models import LinearClassifier, TwoLayerNet, defended
from sparsenb.reference import paper_results, paper_value

EPS = 0.05


@pytest.fixture(scope="module")
def pair(mnist_test):
    x, y = data.digit_pair(*mnist_test, negative=3, positive=7)
    return data.subset(x, y, 40, seed=1)


@pytest.fixture(scope="module")
def interior(pair):
    """Images squeezed into [0.2, 0.8], so that an eps <= 0.2 step is never clipped by the box."""
    x, y = pair
    return (0.2 + 0.6 * x).double(), y


def _linear(seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(1, 28, 28, generator=g, dtype=dtype)
    return LinearClassifier.from_weights(w, 0.1).to(dtype), w


def test_semi_white_box_moves_output_by_eps_l1_norm(interior):
    x, y = interior
    model, w = _linear()
    x_adv = attacks.semi_white_box(w, x, y, EPS)
    change = model(x_adv) - model(x)
    expected = EPS * w.abs().sum()
    # against the true class: class 1 (g > 0) pushed down, class 0 pushed up
    torch.testing.assert_close(change, torch.where(y == 1, -expected, expected), rtol=1e-12, atol=1e-10)


def test_white_box_moves_defended_output_by_eps_l1_of_projection(interior):
    """At high SNR (support unchanged), Delta_W = eps * ||P_K(w, x)||_1 exactly (Sec. IV-A)."""
    x, y = interior
    model, w = _linear()
    fe = SparsifyingFrontEnd(0.02, "coif1", clip=False)
    eps = 1e-4  # small enough that Prop. 1 keeps the support for these images
    x_adv = attacks.white_box(w, x, y, eps, fe)
    assert torch.equal(fe.support(x_adv), fe.support(x)), "premise: support unchanged"
    change = model(fe(x_adv)) - model(fe(x))
    expected = eps * fe.project(w.expand_as(x), x).abs().flatten(1).sum(1)
    torch.testing.assert_close(change, torch.where(y == 1, -expected, expected), rtol=1e-9, atol=1e-12)
    # and the semi-white box does no better through the front end
    semi = model(fe(attacks.semi_white_box(w, x, y, eps))) - model(fe(x))
    assert (semi.abs() <= change.abs() + 1e-12).all()


def test_white_box_through_projection_gradient_equals_locally_linear(interior):
    """For a linear model, the locally linear attack through the projection gradient is the white box."""
    x, y = interior
    model, w = _linear()
    fe = SparsifyingFrontEnd(0.035, "coif1", gradient="projection", clip=False)
    a = attacks.white_box(w, x, y, EPS, fe)
    b = attacks.locally_linear(defended(fe, model), x, y, EPS)
    assert torch.equal(a, b)


def test_iterated_white_box_one_full_step_is_the_white_box(interior):
    x, y = interior
    _, w = _linear()
    fe = SparsifyingFrontEnd(0.02, "db5")
    assert torch.equal(attacks.iterated_white_box(w, x, y, EPS, fe, step=EPS, steps=1), attacks.white_box(w, x, y, EPS, fe))


def test_iterated_white_box_refines_the_support(pair):
    """More steps change the result (the support is re-estimated), and never leave the ball."""
    x, y = pair
    _, w = _linear(dtype=torch.float32)
    fe = SparsifyingFrontEnd(0.02, "coif1")
    one = attacks.iterated_white_box(w, x, y, 0.2, fe, step=0.2, steps=1)
    many = attacks.iterated_white_box(w, x, y, 0.2, fe, step=0.01, steps=40)
    assert not torch.equal(one, many)
    attacks.check_adversarial(many, x, 0.2)


@pytest.mark.parametrize("name", ["semi_white_box", "white_box", "iterated_white_box"])
def test_linear_attacks_box_eps0_and_no_mutation(pair, name):
    x, y = pair
    _, w = _linear(dtype=torch.float32)
    fe = SparsifyingFrontEnd(0.02, "coif1")
    extra = {"semi_white_box": (), "white_box": (fe,), "iterated_white_box": (fe, 0.01, 15)}[name]
    fn = getattr(attacks, name)
    before = x.clone()
    x_adv = fn(w, x, y, 0.1, *extra)
    assert torch.equal(x, before)
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert (x_adv - x).abs().max() <= 0.1 + 1e-6
    assert ((x_adv - x).abs() > 0).any()
    assert torch.equal(fn(w, x, y, 0.0, *extra), x)
    # batching does not change the result
    one = torch.cat([fn(w, x[i : i + 1], y[i : i + 1], 0.1, *extra) for i in range(len(x))])
    assert torch.equal(one, x_adv)


def test_linear_attack_rejects_bad_eps(pair):
    x, y = pair
    _, w = _linear(dtype=torch.float32)
    for eps in (-0.1, 1.5, float("nan")):
        with pytest.raises((ValueError, TypeError), match="eps"):
            attacks.semi_white_box(w, x, y, eps)
    with pytest.raises(ValueError, match="^y"):
        attacks.semi_white_box(w, x, y.float(), 0.1)


def test_binary_locally_linear_is_fgsm(pair):
    """Sec. V-D remark: for one logit and cross-entropy, FGSM = semi-white box on w_eq(x)."""
    x, y = pair
    torch.manual_seed(0)
    net = TwoLayerNet(10).double().eval()
    xd = x.double()
    assert torch.equal(attacks.locally_linear(net, xd, y, 0.1), attacks.fgsm(net, xd, y, 0.1))


# --------------------------------------------------------------------------
# training
# --------------------------------------------------------------------------
def test_two_layer_training_is_deterministic(pair):
    x, y = pair
    cfg = training.TwoLayerConfig(steps=30, batch_size=8, seed=3)
    a, b = training.train_two_layer(x, y, cfg), training.train_two_layer(x, y, cfg)
    for p, q in zip(a.state_dict().values(), b.state_dict().values()):
        assert torch.equal(p, q)
    c = training.train_two_layer(x, y, training.TwoLayerConfig(steps=30, batch_size=8, seed=4))
    assert not torch.equal(a.hidden.weight, c.hidden.weight)


def test_training_works_with_grad_disabled(pair):
    x, y = pair
    with torch.no_grad():
        net = training.train_two_layer(x, y, training.TwoLayerConfig(steps=5, batch_size=8))
    assert not net.training


def test_svm_is_deterministic_and_rewritten_for_unit_interval(pair):
    from sklearn.svm import LinearSVC

    x, y = pair
    cfg = training.SVMConfig(seed=0)
    a, b = training.train_linear_svm(x, y, cfg), training.train_linear_svm(x, y, cfg)
    assert torch.equal(a.w, b.w) and torch.equal(a.b, b.b)
    # the [0, 1] classifier has the decision values of the SVM fitted on [-1, 1]
    X = 2 * x.flatten(1).double().numpy() - 1
    ref = LinearSVC(loss="hinge", C=1.0, dual=True, max_iter=cfg.max_iter, random_state=0).fit(X, y.numpy())
    with torch.no_grad():
        ours = a(x).double().numpy()
    np.testing.assert_allclose(ours, ref.decision_function(X), rtol=1e-4, atol=1e-4)


def test_trained_caches_by_settings(pair, tmp_path, monkeypatch):
    monkeypatch.setenv("SPARSENB_CACHE", str(tmp_path))
    x, y = pair
    cfg = training.TwoLayerConfig(steps=5, batch_size=8)
    fe = SparsifyingFrontEnd(0.03, "coif1")
    a = training.trained(cfg, x, y, frontend=fe)
    files = sorted((tmp_path / "checkpoints").glob("*.pt"))
    assert len(files) == 1
    b = training.trained(cfg, x, y, frontend=fe)  # loaded, not retrained
    assert torch.equal(a.hidden.weight, b.hidden.weight)
    training.trained(cfg, x, y, frontend=SparsifyingFrontEnd(0.02, "coif1"))
    assert len(sorted((tmp_path / "checkpoints").glob("*.pt"))) == 2
    assert not list((tmp_path / "checkpoints").glob("*.tmp"))


# --------------------------------------------------------------------------
# data split, evaluation, reference numbers
# --------------------------------------------------------------------------
def test_pooled_split_is_stratified_and_seeded(mnist_test):
    x, y = data.digit_pair(*mnist_test)
    xa, ya, xb, yb = x[:1000], y[:1000], x[1000:], y[1000:]
    tr_x, tr_y, te_x, te_y = data.pooled_split(xa, ya, xb, yb, 0.25, seed=0)
    assert len(tr_x) + len(te_x) == len(x)
    for c in (0, 1):
        assert abs(int((te_y == c).sum()) - 0.25 * int((y == c).sum())) <= 1
    again = data.pooled_split(xa, ya, xb, yb, 0.25, seed=0)
    assert torch.equal(again[2], te_x)
    with pytest.raises(ValueError, match="test_fraction"):
        data.pooled_split(xa, ya, xb, yb, 1.0)


def test_wilson_interval():
    lo, hi = evaluation.wilson_interval(95, 100)
    assert 0.88 < lo < 0.95 < hi < 0.98
    assert evaluation.wilson_interval(0, 10)[0] == 0.0
    with pytest.raises(ValueError):
        evaluation.wilson_interval(11, 10)


def test_result_store_resumes(tmp_path):
    calls = []
    store = evaluation.ResultStore(tmp_path / "r.json")
    assert store.get_or_compute(["a", 1], lambda: calls.append(1) or 0.5) == 0.5
    again = evaluation.ResultStore(tmp_path / "r.json")
    assert again.get_or_compute(["a", 1], lambda: calls.append(1) or 0.7) == 0.5
    assert calls == [1]


def test_paper_reference_numbers():
    df = paper_results()
    assert {"artifact", "value"} <= set(df.columns)
    assert paper_value("Table I", defense="front end db5", attack="white box") == [95.37]
    table5 = paper_value("Table V", attack="momentum iterative FGSM")
    assert table5[:2] == [74.79, 73.55] and np.isnan(table5[2])
    with pytest.raises(LookupError):
        paper_value("Table I", attack="white box")  # two rows match
