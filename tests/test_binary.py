"""Binary 3-vs-7 pieces: the linear attacks of Sec. IV/VI-A, the binary locally linear
attack, the two-layer recipe with the front end in its training graph, the SVM, the
chapter's attack grids (one per eps, merged), the pooled split and the paper's numbers."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from sparsenb import attacks, cache, checks, data, evaluation, training
from sparsenb.chapters import mnist_binary as chapter
from sparsenb.lab import store
from sparsenb.lab.paper import Comparison
from sparsenb.lab.grid import Attack, Grid, Victim, merge, run
from sparsenb.frontend import SparsifyingFrontEnd
from sparsenb.frontend import defended
from sparsenb.models import LinearClassifier, TwoLayerConfig, TwoLayerNet
from sparsenb.lab.paper import paper_number, paper_numbers

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
# training: the release's two-layer recipe and the SVM
# --------------------------------------------------------------------------
RECIPE = dataclasses.replace(training.TWO_LAYER_TRAINING, steps=30, batch_size=8, seed=3)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "cache"))


def _same_weights(a, b) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


def test_two_layer_recipe_is_the_release():
    r = training.TWO_LAYER_TRAINING
    assert (r.optimizer, r.lr, r.l2, r.batch_size, r.steps) == ("adam", 1e-3, 1e-3, 64, 20_000)
    assert TwoLayerConfig().hidden == 10


def test_two_layer_training_is_deterministic(pair):
    x, y = pair
    a, b = training.fit(TwoLayerConfig(), x, y, RECIPE), training.fit(TwoLayerConfig(), x, y, RECIPE)
    assert _same_weights(a, b)
    c = training.fit(TwoLayerConfig(), x, y, dataclasses.replace(RECIPE, seed=4))
    assert not torch.equal(a.hidden.weight, c.hidden.weight)
    assert not a.training


def test_front_end_in_the_graph_gives_the_weights_of_sparsifying_beforehand(pair):
    """The chapter's claim: the front end inside the training graph (new) and the
    training images sparsified beforehand (the release, and this page before) give
    the same two-layer network, weight for weight."""
    x, y = pair
    fe = SparsifyingFrontEnd(0.03, "coif1")
    inside = training.fit(TwoLayerConfig(), x, y, RECIPE, frontend=fe)
    before = training.fit(TwoLayerConfig(), training.sparsify_dataset(x, fe), y, RECIPE)
    assert _same_weights(inside, before)
    assert not _same_weights(inside, training.fit(TwoLayerConfig(), x, y, RECIPE))


def test_training_works_with_grad_disabled(pair):
    x, y = pair
    with torch.no_grad():
        net = training.fit(TwoLayerConfig(), x, y, dataclasses.replace(RECIPE, steps=5))
    assert not net.training


def test_two_layer_training_rejects_labels_beyond_one_logit(pair):
    x, y = pair
    with pytest.raises(checks.ArgumentError, match="^y"):
        training.fit(TwoLayerConfig(), x, y + 5, dataclasses.replace(RECIPE, steps=2))


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


def test_trained_caches_the_two_layer_net_by_front_end(pair, tmp_path):
    x, y = pair
    folder = tmp_path / "checkpoints"
    fe = SparsifyingFrontEnd(0.03, "coif1")
    a = store.trained(TwoLayerConfig(), x, y, RECIPE, frontend=fe, folder=folder)
    assert len(list(folder.glob("*.pt"))) == 1
    b = store.trained(TwoLayerConfig(), x, y, RECIPE, frontend=fe, folder=folder)  # loaded, not retrained
    assert _same_weights(a, b)
    store.trained(TwoLayerConfig(), x, y, RECIPE, frontend=SparsifyingFrontEnd(0.03, "db5"), folder=folder)
    assert len(list(folder.glob("*.pt"))) == 2
    assert not list(folder.glob("*.tmp")) and not list(folder.glob("*.train.pt"))


def test_trained_svm_differs_by_front_end_and_is_reloaded(pair, tmp_path):
    x, y = pair
    cfg = training.SVMConfig(max_iter=2000)
    a = store.trained_svm(x, y, cfg, frontend=SparsifyingFrontEnd(0.02, "db5"), folder=tmp_path)
    b = store.trained_svm(x, y, cfg, frontend=SparsifyingFrontEnd(0.02, "db5"), folder=tmp_path)
    c = store.trained_svm(x, y, cfg, frontend=SparsifyingFrontEnd(0.02, "coif1"), folder=tmp_path)
    assert torch.equal(a.w, b.w) and float(a.b.detach()) == float(b.b.detach())
    assert not torch.equal(a.w, c.w)


# --------------------------------------------------------------------------
# the chapter's SVM grid: one grid per eps (the iterated white box's steps grow with eps), merged
# --------------------------------------------------------------------------
def test_iterated_white_box_step_count_on_the_profiles_grids():
    """The chapter's 2 * ceil(eps / step): enough steps to reach the budget, then as many to refine."""
    eps = (0.0, 0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.2, 0.25, 0.3)
    assert [chapter.iterated_steps(e, 0.01) for e in eps] == [0, 6, 10, 16, 20, 26, 30, 40, 50, 60]
    assert [dict(chapter.svm_attacks(e, 0.01)["iterated white box"].kwargs)["steps"] for e in eps] == [
        0, 6, 10, 16, 20, 26, 30, 40, 50, 60]


@pytest.fixture(scope="module")
def svm_grid_runs(pair, tmp_path_factory):
    """The chapter's SVM grids on 40 test images, stored in a private folder."""
    x, y = pair
    folder = tmp_path_factory.mktemp("results")
    svm = training.train_linear_svm(x, y, training.SVMConfig(max_iter=2000))
    fe = SparsifyingFrontEnd(0.02, "coif1")
    defended_svm = training.train_linear_svm(training.sparsify_dataset(x, fe), y, training.SVMConfig(max_iter=2000))
    victims = {"coif1": Victim(defended_svm, fe)}
    per_eps = {e: chapter.svm_attacks(e, 0.01) for e in (0.05, 0.1)}
    runs = [run(Grid({"no defense": Victim(svm)}, {"semi-white box": Attack("semi_white_box")}, eps=[0.05, 0.1]), x, y,
                progress=False, folder=folder)]
    runs += [run(Grid(victims, per_eps[e], eps=[e]), x, y, progress=False, folder=folder) for e in per_eps]
    return runs, fe, defended_svm, svm


def test_merged_grid_holds_every_cell_once(svm_grid_runs):
    runs, *_ = svm_grid_runs
    merged = merge(*runs)
    assert len(merged.results) == 2 + 3 * 2
    assert merged.n == 40
    assert sorted({c.eps for c in merged.results}) == [0.05, 0.1]
    assert all(c.gradient is None for c in merged.results)  # linear attacks take no gradient
    assert merge(*runs, runs[1]).results == merged.results  # the same cell twice is fine
    assert merged.grid == [r.grid for r in runs]


def test_merged_outcomes_are_the_attacks_outcomes(pair, svm_grid_runs):
    """A merged cell holds, per image, what the attack itself does to the defended SVM."""
    x, y = pair
    runs, fe, svm, _ = svm_grid_runs
    merged = merge(*runs)
    x_adv = attacks.iterated_white_box(svm.w, x, y, 0.1, fe, 0.01, 20)
    expected = (evaluation.predict(defended(fe, svm), x_adv) == y).int().numpy()
    np.testing.assert_array_equal(merged.correct("coif1", "iterated white box", eps=0.1), expected)
    overlap = merged.values("overlap", "coif1", "white box", eps=0.1)
    assert overlap.shape == (40,) and overlap.min() >= 0 and overlap.max() <= fe.K[0]
    p, lo, hi = merged.accuracy("coif1", "white box", eps=0.1)
    assert lo <= p <= hi


def test_merge_refuses_one_name_for_two_computations(pair, svm_grid_runs, tmp_path):
    x, y = pair
    runs, fe, svm, _ = svm_grid_runs
    other = run(Grid({"coif1": Victim(svm, fe)}, {"iterated white box": Attack("iterated_white_box", step=0.01, steps=1)},
                     eps=[0.1]), x, y, progress=False, folder=tmp_path)
    one_step, full = (o.values("linf", "coif1", "iterated white box", eps=0.1) for o in (other, merge(*runs)))
    assert one_step.max() <= 0.01 + 1e-6 < full.max(), "premise: different per-image outcomes"
    with pytest.raises(checks.ArgumentError, match="^outcomes"):
        merge(*runs, other)
    with pytest.raises(checks.ArgumentError, match="^outcomes"):
        merge()
    with pytest.raises(checks.ArgumentError, match="^outcomes"):
        merge(runs[0], run(Grid({"no defense": Victim(runs[0].grid.victims["no defense"].classifier)},
                                {"no attack": Attack("none")}, eps=[0.0]), x[:10], y[:10], progress=False, folder=tmp_path))


def test_undefended_white_box_is_the_semi_white_box(pair, svm_grid_runs):
    """Without a front end P_K is the identity, so the chapter runs one attack on the undefended SVM."""
    x, y = pair
    *_, svm = svm_grid_runs
    identity = SparsifyingFrontEnd(1.0, "haar", clip=False)  # K = N: every coefficient kept
    assert identity.K[0] == 784
    torch.testing.assert_close(attacks.white_box(svm.w, x, y, 0.1, identity), attacks.semi_white_box(svm.w, x, y, 0.1),
                               rtol=0, atol=1e-6)


# --------------------------------------------------------------------------
# data split, intervals, the paper's numbers
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


def test_paper_numbers_the_chapter_quotes():
    """Each row the chapter glues or compares exists exactly once."""
    assert paper_number(artifact="Table I", defense="front end db5", attack="white box") == 95.37
    assert paper_number(artifact="Table I", defense="front end db5", attack="semi-white box") == 98.37
    for attack in ("semi-white box", "white box"):
        assert paper_number(artifact="Table I", defense="none", attack=attack) == 0.25
    assert paper_number(artifact="text VI-A", defense="none", attack="none") == 98.64
    assert paper_number(artifact="App. B-D", defense="none") == 99.33
    assert paper_number(artifact="App. B-D", defense="front end db5") == 99.28
    with pytest.raises(LookupError):
        paper_number(artifact="Table I", attack="white box")  # two rows match
    assert set(paper_numbers().query("artifact == 'Table I'")["defense"]) == {"none", "front end db5"}


def test_table1_verdicts():
    """Comparison: "agrees" when the paper's number lies in our Wilson interval."""
    comparison = Comparison()
    near = np.r_[np.ones(954), np.zeros(46)]  # 95.4% on 1000 images
    assert comparison.add("Table I", "white box", "db5", near, artifact="Table I", defense="front end db5", attack="white box") == 95.37
    comparison.add("Table I", "white box", "none", near, artifact="Table I", defense="none", attack="white box")
    comparison.add("Table I", "semi-white box", "db5", near, artifact="Table I", defense="front end db5", attack="semi-white box")
    assert list(comparison.frame()["verdict"]) == ["agrees", "ours higher", "ours lower"]
    assert comparison.counts() == {"compared": 3, "agrees": 1, "ours higher": 1, "ours lower": 1}
