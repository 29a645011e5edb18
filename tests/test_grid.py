"""Experiments as data (sparsenb.lab.grid): grids, per-image outcomes, resuming, comparisons, stored().

A small untrained net on a dozen MNIST digits and attacks of one to three
steps: the point is bookkeeping (which cells, which images, what is stored
and what is recomputed), not robustness. Results go to a temporary cache.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

from sparsenb import attacks, cache, checks, data
from sparsenb.attacks.registry import REGISTRY
from sparsenb.frontend import with_gradient
from sparsenb.lab import grid as experiments
from sparsenb.lab import store
from sparsenb.evaluation import predict
from sparsenb.lab.paper import Comparison
from sparsenb.lab.grid import Attack, Cell, Grid, Outcomes, Victim
from sparsenb.frontend import SparsifyingFrontEnd, support_overlap
from sparsenb.frontend import defended
from sparsenb.models import LinearClassifier


pytestmark = pytest.mark.usefixtures("one_thread")

EPS = 0.1


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def digits(mnist_test):
    return data.subset(*mnist_test, 12, seed=3)


def _net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 16), nn.ReLU(), nn.Linear(16, 10)).eval()


@pytest.fixture(scope="module")
def net():
    return _net()


def _fe(gradient="bpda"):
    return SparsifyingFrontEnd(0.035, "coif1", gradient=gradient, refine_steps=2)


def _results_files(tmp_path):
    return sorted((tmp_path / "cache" / "results").rglob("*.json"))


# --------------------------------------------------------------------------
# declaring a grid
# --------------------------------------------------------------------------
def test_grid_cells(net):
    grid = Grid(
        {"plain": Victim(net), "defended": Victim(net, _fe())},
        {"clean": Attack("none"), "fgsm": Attack("fgsm"), "cw": Attack("carlini_wagner_l2", max_iterations=2)},
        eps=[0.1, 0.2],
        gradients=["bpda", "projection"],
    )
    assert grid.cells() == [
        Cell("plain", "clean", None, None),
        Cell("plain", "fgsm", None, 0.1),
        Cell("plain", "fgsm", None, 0.2),
        Cell("plain", "cw", None, None),
        Cell("defended", "clean", None, None),
        Cell("defended", "fgsm", "bpda", 0.1),
        Cell("defended", "fgsm", "bpda", 0.2),
        Cell("defended", "fgsm", "projection", 0.1),
        Cell("defended", "fgsm", "projection", 0.2),
        Cell("defended", "cw", "bpda", None),
        Cell("defended", "cw", "projection", None),
    ]
    grid.exclude = lambda c: c.attack == "cw" or (c.gradient == "projection" and c.eps == 0.2)
    assert len(grid.cells()) == 11 - 3 - 1


def test_linear_attacks_need_no_gradient_treatment(net):
    w = torch.zeros(1, 28, 28)
    victim = Victim(LinearClassifier.from_weights(w, 0.0), _fe())
    grid = Grid({"svm": victim}, {"white": Attack("white_box"), "fgsm": Attack("fgsm")}, eps=[0.1], gradients=["bpda", "iterated"])
    assert [c.gradient for c in grid.cells()] == [None, "bpda", "iterated"]
    assert not Attack("white_box").uses_gradient and Attack("white_box").bounded
    assert not Attack("none").uses_gradient and not Attack("none").bounded
    assert Attack("carlini_wagner_l2").uses_gradient and not Attack("carlini_wagner_l2").bounded


def test_attack_settings_are_part_of_the_attack():
    assert Attack("pgd", step=0.01, steps=5) == Attack("pgd", steps=5, step=0.01)
    assert Attack("pgd", step=0.01, steps=5) != Attack("pgd", step=0.01, steps=6)
    assert Attack("pgd", steps=np.int64(5)).spec() == {"attack": "pgd", "steps": 5}


@pytest.mark.parametrize(
    "make, name",
    [
        (lambda net: Attack("nope"), "attack"),
        (lambda net: Attack("check_adversarial"), "attack"),
        (lambda net: Victim("net"), "classifier"),
        (lambda net: Victim(net, nn.Identity()), "frontend"),
        (lambda net: Grid({}, {"a": Attack("fgsm")}, [0.1]), "victims"),
        (lambda net: Grid({"v": net}, {"a": Attack("fgsm")}, [0.1]), "victims"),
        (lambda net: Grid({"v": Victim(net)}, {"a": "fgsm"}, [0.1]), "attacks"),
        (lambda net: Grid({"v": Victim(net)}, {"a": Attack("fgsm")}, 0.1), "eps"),
        (lambda net: Grid({"v": Victim(net)}, {"a": Attack("fgsm")}, []), "eps"),
        (lambda net: Grid({"v": Victim(net)}, {"a": Attack("fgsm")}, [0.1, 2.0]), "eps[1]"),
        (lambda net: Grid({"v": Victim(net)}, {"a": Attack("fgsm")}, [0.1], gradients="bpda"), "gradients"),
        (lambda net: Grid({"v": Victim(net)}, {"a": Attack("fgsm")}, [0.1], gradients=["nope"]), "gradients[0]"),
        (lambda net: Grid({"v": Victim(net)}, {"a": Attack("fgsm")}, [0.1], exclude=3), "exclude"),
    ],
)
def test_declarations_name_their_bad_argument(net, make, name):
    with pytest.raises(checks.ArgumentError) as err:
        make(net)
    assert err.value.argument == name


def test_run_checks_its_arguments(net, digits, tmp_path):
    x, y = digits
    grid = Grid({"v": Victim(net)}, {"a": Attack("fgsm")}, [EPS])
    for kwargs, name in [
        (dict(grid="grid"), "grid"),
        (dict(x=x * 2), "x"),
        (dict(y=y[:3]), "y"),
        (dict(batch_size=0), "batch_size"),
        (dict(x=x[:0], y=y[:0]), "x"),
    ]:
        args = dict(grid=grid, x=x, y=y, progress=False)
        args.update(kwargs)
        with pytest.raises(checks.ArgumentError) as err:
            experiments.run(**args)
        assert err.value.argument == name
    assert not _results_files(tmp_path)  # nothing stored


# --------------------------------------------------------------------------
# running a grid
# --------------------------------------------------------------------------
ATTACKS = {
    "clean": Attack("none"),
    "fgsm": Attack("fgsm"),
    "ifgsm": Attack("ifgsm", step=0.05, steps=2),
    "pgd": Attack("pgd", step=0.05, steps=2, restarts=2, seed=7),
    "cw": Attack("carlini_wagner_l2", max_iterations=3, binary_search_steps=1),
}


def _grid(net, **kwargs):
    return Grid(
        {"plain": Victim(net), "defended": Victim(net, _fe())},
        ATTACKS,
        eps=[EPS],
        gradients=["bpda", "projection"],
        exclude=lambda c: c.victim == "defended" and c.attack == "cw",
        **kwargs,
    )


@pytest.fixture(scope="module")
def outcomes(net, digits, tmp_path_factory):
    x, y = digits
    return experiments.run(_grid(net), x, y, batch_size=5, progress=False, folder=tmp_path_factory.mktemp("results"))


def _by_hand(model, attack, x, y):
    fn, kw = attack.name, dict(attack.kwargs)
    if fn == "none":
        return x.clone()
    if fn == "carlini_wagner_l2":
        return attacks.carlini_wagner_l2(model, x, y, **kw)
    return getattr(attacks, fn)(model, x, y, EPS, **kw)


def test_run_gives_what_attacking_by_hand_gives(outcomes, net, digits):
    x, y = digits
    assert set(outcomes.results) == set(_grid(net).cells())
    for cell in outcomes.results:
        fe = None if cell.victim == "plain" else _fe(cell.gradient or "bpda")
        model = net if fe is None else defended(fe, net)
        x_adv = _by_hand(model, ATTACKS[cell.attack], x, y)
        got = outcomes[cell]
        assert got["correct"] == (predict(model, x_adv) == y).int().tolist(), cell
        e = (x_adv - x).flatten(1)
        assert got["linf"] == pytest.approx(e.abs().max(1).values.tolist(), abs=1e-6), cell
        assert got["l2"] == pytest.approx(e.norm(dim=1).tolist(), abs=1e-5), cell
        if fe is None:
            assert "overlap" not in got
        else:
            assert got["overlap"] == support_overlap(x, x_adv, fe.K, fe.transform).tolist(), cell
        if cell.eps is not None:
            assert max(got["linf"]) <= cell.eps + 1e-6


def test_clean_cells_are_the_clean_accuracy(outcomes, net, digits):
    x, y = digits
    clean = outcomes.correct("plain", "clean")
    assert clean.tolist() == (predict(net, x) == y).int().tolist()
    assert outcomes.values("linf", "plain", "clean").max() == 0
    assert outcomes.correct("defended", "clean").tolist() == (predict(defended(_fe(), net), x) == y).int().tolist()


def test_gradient_treatments_are_attacked_separately(outcomes, net, digits):
    """bpda and projection give the attack different gradients, so (for I-FGSM here) different images."""
    x, _ = digits
    bpda = outcomes.values("l2", "defended", "ifgsm", "bpda")
    projection = outcomes.values("l2", "defended", "ifgsm", "projection")
    assert not np.allclose(bpda, projection)


def test_outcomes_lookups(outcomes):
    p, lo, hi = outcomes.accuracy("plain", "fgsm")
    assert p == pytest.approx(100 * outcomes.correct("plain", "fgsm").mean())
    assert lo <= p <= hi
    assert outcomes.cell("plain", "fgsm", eps=EPS) == Cell("plain", "fgsm", None, EPS)
    with pytest.raises(LookupError):
        outcomes.cell("defended", "fgsm")  # which gradient?
    with pytest.raises(LookupError):
        outcomes.cell("plain", "nope")
    frame = outcomes.frame()
    assert len(frame) == len(outcomes.results)
    row = frame[(frame.victim == "plain") & (frame.attack == "fgsm")].iloc[0]
    assert row["images"] == 12 and row["accuracy %"] == pytest.approx(p)


def test_every_adversarial_image_is_checked(net, digits, monkeypatch, tmp_path):
    x, y = digits
    grid = Grid({"plain": Victim(net)}, {"fgsm": Attack("fgsm")}, eps=[EPS])

    def too_far(model, x, y, eps):  # twice the budget, still in the box
        return (x + 2 * eps).clamp(0, 1)

    monkeypatch.setitem(REGISTRY, "fgsm", too_far)
    with pytest.raises(attacks.AttackCheckError, match="eps-ball"):
        experiments.run(grid, x, y, progress=False)
    monkeypatch.setitem(REGISTRY, "fgsm", lambda model, x, y, eps: x + eps)  # leaves the box
    with pytest.raises(attacks.AttackCheckError, match="box"):
        experiments.run(grid, x, y, progress=False)
    assert not any(json.loads(p.read_text())["complete"] for p in _results_files(tmp_path))


def test_an_unbounded_attack_is_checked_in_the_box(net, digits, monkeypatch):
    x, y = digits
    grid = Grid({"plain": Victim(net)}, {"cw": Attack("carlini_wagner_l2")}, eps=[EPS])
    monkeypatch.setitem(REGISTRY, "carlini_wagner_l2", lambda model, x, y: (x + 0.5).clamp(0, 1))
    out = experiments.run(grid, x, y, progress=False)  # far, but unbounded: fine
    assert out.values("linf", "plain", "cw").max() > EPS
    monkeypatch.setitem(REGISTRY, "carlini_wagner_l2", lambda model, x, y: x + 0.5)
    grid2 = Grid({"plain": Victim(_net(1))}, {"cw": Attack("carlini_wagner_l2")}, eps=[EPS])
    with pytest.raises(attacks.AttackCheckError, match="box"):
        experiments.run(grid2, x, y, progress=False)


def test_batch_size_does_not_change_outcomes(net, digits, tmp_path):
    x, y = digits
    grid = Grid({"plain": Victim(net), "defended": Victim(net, _fe())}, {"pgd": ATTACKS["pgd"], "ifgsm": ATTACKS["ifgsm"]}, [EPS])
    a = experiments.run(grid, x, y, batch_size=5, progress=False, folder=tmp_path / "a")
    b = experiments.run(grid, x, y, batch_size=12, progress=False, folder=tmp_path / "b")
    c = experiments.run(grid, x, y, batch_size=1, progress=False, folder=tmp_path / "c")
    for cell in a.results:
        assert a[cell]["correct"] == b[cell]["correct"] == c[cell]["correct"], cell
        for name in set(a[cell]) - {"evaluations"}:  # per image; evaluations are counted per batch
            assert a[cell][name] == pytest.approx(b[cell][name], abs=1e-6) == c[cell][name], (cell, name)


def test_model_evaluations_are_counted_per_image(net, digits, tmp_path):
    x, y = digits
    steps = 4
    grid = Grid({"plain": Victim(net), "defended": Victim(net, _fe())},
                {"none": Attack("none"), "fgsm": Attack("fgsm"), "ifgsm": Attack("ifgsm", step=0.02, steps=steps)}, [EPS])
    for batch_size in (5, 12):
        out = experiments.run(grid, x, y, batch_size=batch_size, progress=False, folder=tmp_path / str(batch_size))
        batches = -(-len(x) // batch_size)
        probe = batches / len(x)  # attacks ask the model for its number of classes once per batch, on one image
        for victim, gradient in (("plain", None), ("defended", "bpda")):
            assert out.evaluations(victim, "none") == 0.0
            assert out.evaluations(victim, "fgsm", gradient) == pytest.approx(1 + probe)
            assert out.evaluations(victim, "ifgsm", gradient) == pytest.approx(steps + probe)
            assert len(out[out.cell(victim, "ifgsm", gradient)]["evaluations"]) == batches


# --------------------------------------------------------------------------
# stored outcomes and resuming
# --------------------------------------------------------------------------
@pytest.fixture
def counted(monkeypatch):
    """Count calls of fgsm and ifgsm; ``counted["fail_at"] = n`` makes the n-th ifgsm call raise once."""
    calls = {"fgsm": 0, "ifgsm": 0, "fail_at": None}
    real = {"fgsm": attacks.fgsm, "ifgsm": attacks.ifgsm}

    def wrap(name):
        @functools.wraps(real[name])  # keeps the signature, which says how to call the attack
        def attack(*args, **kwargs):
            calls[name] += 1
            if name == "ifgsm" and calls[name] == calls["fail_at"]:
                calls["fail_at"] = None
                raise KeyboardInterrupt("killed")
            return real[name](*args, **kwargs)

        return attack

    for name in real:
        monkeypatch.setitem(REGISTRY, name, wrap(name))
    return calls


def _two_cells(net):
    return Grid({"plain": Victim(net)}, {"fgsm": Attack("fgsm"), "ifgsm": ATTACKS["ifgsm"]}, [EPS])


def test_a_finished_run_is_read_back(net, digits, counted, tmp_path):
    x, y = digits
    first = experiments.run(_two_cells(net), x, y, batch_size=4, progress=False)
    assert (counted["fgsm"], counted["ifgsm"]) == (3, 3)
    again = experiments.run(_two_cells(net), x, y, batch_size=4, progress=False)
    assert (counted["fgsm"], counted["ifgsm"]) == (3, 3)
    assert again.results == first.results
    assert len(_results_files(tmp_path)) == 2
    experiments.run(_two_cells(_net(0)), x, y, batch_size=4, progress=False)  # the same weights in another object
    assert (counted["fgsm"], counted["ifgsm"]) == (3, 3)


def test_a_damaged_result_file_is_recomputed(net, digits, counted, tmp_path):
    x, y = digits
    first = experiments.run(_two_cells(net), x, y, batch_size=12, progress=False)
    for path in _results_files(tmp_path):
        path.write_text(path.read_text()[:40])  # cut short
    again = experiments.run(_two_cells(net), x, y, batch_size=12, progress=False)
    assert (counted["fgsm"], counted["ifgsm"]) == (2, 2)
    assert again.results == first.results


def test_a_killed_run_resumes_without_recomputing(net, digits, counted, tmp_path):
    x, y = digits
    counted["fail_at"] = 2  # the second batch of the second cell
    with pytest.raises(KeyboardInterrupt):
        experiments.run(_two_cells(net), x, y, batch_size=4, progress=False)
    assert (counted["fgsm"], counted["ifgsm"]) == (3, 2)
    resumed = experiments.run(_two_cells(net), x, y, batch_size=4, progress=False)
    assert (counted["fgsm"], counted["ifgsm"]) == (3, 2 + 2)  # only the two unfinished batches
    whole = experiments.run(_two_cells(net), x, y, batch_size=4, progress=False, folder=tmp_path / "whole")
    assert resumed.results == whole.results


def test_a_killed_cell_resumes_with_another_batch_size(net, digits, counted, tmp_path):
    x, y = digits
    counted["fail_at"] = 2
    with pytest.raises(KeyboardInterrupt):
        experiments.run(_two_cells(net), x, y, batch_size=4, progress=False)
    resumed = experiments.run(_two_cells(net), x, y, batch_size=5, progress=False)
    assert counted["ifgsm"] == 2 + 2  # images 4-8 and 9-11
    whole = experiments.run(_two_cells(net), x, y, batch_size=12, progress=False, folder=tmp_path / "whole")
    per_image = lambda out: {c: {k: v for k, v in r.items() if k != "evaluations"} for c, r in out.results.items()}  # noqa: E731
    assert per_image(resumed) == per_image(whole)  # evaluations are counted per batch, and the batches differ
    # one count per batch that ran: fgsm's three batches of 4; ifgsm's first batch of 4, then 5 and 3 after the resume
    assert [len(r["evaluations"]) for r in resumed.results.values()] == [3, 3]


def test_stored_outcomes_are_keyed_by_what_computed_them(net, digits, counted, monkeypatch):
    x, y = digits
    experiments.run(_two_cells(net), x, y, batch_size=12, progress=False)
    assert counted["fgsm"] == 1
    changed = _net(0)
    with torch.no_grad():
        changed[1].bias[0] += 1e-3
    for grid, images, labels in [
        (_two_cells(changed), x, y),  # other weights
        (Grid({"plain": Victim(net)}, {"fgsm": Attack("fgsm")}, [0.05]), x, y),  # other eps
        (Grid({"plain": Victim(net, _fe())}, {"fgsm": Attack("fgsm")}, [EPS]), x, y),  # behind a front end
        (Grid({"plain": Victim(net, _fe())}, {"fgsm": Attack("fgsm")}, [EPS], gradients=["iterated"]), x, y),
        (_two_cells(net), x.flip(-1), y),  # other images
        (_two_cells(net), x, y.roll(1)),  # other labels
    ]:
        before = counted["fgsm"]
        experiments.run(grid, images, labels, batch_size=12, progress=False)
        assert counted["fgsm"] == before + 1
    assert counted["ifgsm"] == 4  # its settings did not change in the last four
    experiments.run(Grid({"plain": Victim(net)}, {"ifgsm": Attack("ifgsm", step=0.05, steps=3)}, [EPS]), x, y, progress=False)
    assert counted["ifgsm"] == 5
    monkeypatch.setattr(experiments, "code_of", lambda *objects: "new code")
    experiments.run(_two_cells(net), x, y, batch_size=12, progress=False)
    assert counted["fgsm"] == 8 and counted["ifgsm"] == 6


# --------------------------------------------------------------------------
# questions asked of outcomes
# --------------------------------------------------------------------------
def _synthetic():
    grid = Grid({"v": Victim(_net())}, {"a": Attack("fgsm"), "b": Attack("ifgsm")}, [0.1, 0.2])
    rows = {
        Cell("v", "a", "bpda", 0.1): [1, 1, 0, 1, 1],
        Cell("v", "a", "projection", 0.1): [1, 0, 1, 1, 1],
        Cell("v", "a", "iterated", 0.1): [0, 1, 1, 1, 1],
        Cell("v", "b", "bpda", 0.1): [1, 1, 1, 1, 0],
        Cell("v", "b", "bpda", 0.2): [1, 0, 0, 0, 0],
    }
    return Outcomes(grid, {c: {"correct": v} for c, v in rows.items()}, 5)


def test_worst_case_is_the_per_image_minimum():
    out = _synthetic()
    assert out.worst(attack="a").tolist() == [0, 0, 0, 1, 1]
    assert out.worst(eps=0.1).tolist() == [0, 0, 0, 1, 0]
    assert out.worst().tolist() == [0, 0, 0, 0, 0]
    cells = [Cell("v", "a", "bpda", 0.1), Cell("v", "b", "bpda", 0.1)]
    assert out.worst(cells).tolist() == [1, 1, 0, 1, 0]
    assert out.worst(cells[:1]).tolist() == [1, 1, 0, 1, 1]
    assert out.worst(attack="a").dtype == np.int64
    with pytest.raises(LookupError):
        out.worst(attack="c")
    with pytest.raises(LookupError):
        out.worst([])


def test_worst_gradient_is_the_one_with_lowest_accuracy():
    out = _synthetic()
    # all three leave 4/5: the tie goes to the first name in alphabetical order
    assert out.worst_gradient("v", "a", eps=0.1) == "bpda"
    out.results[Cell("v", "a", "projection", 0.1)]["correct"] = [0, 0, 1, 1, 1]
    assert out.worst_gradient("v", "a", eps=0.1) == "projection"
    assert out.worst_gradient("v", "b", eps=0.2) == "bpda"


def test_worst_case_of_a_real_grid(outcomes):
    worst = outcomes.worst(victim="defended", attack="ifgsm")
    by_hand = np.minimum(outcomes.correct("defended", "ifgsm", "bpda"), outcomes.correct("defended", "ifgsm", "projection"))
    assert worst.tolist() == by_hand.tolist()
    g = outcomes.worst_gradient("defended", "ifgsm")
    assert outcomes.correct("defended", "ifgsm", g).mean() == min(
        outcomes.correct("defended", "ifgsm", h).mean() for h in ("bpda", "projection")
    )


# --------------------------------------------------------------------------
# beside the paper
# --------------------------------------------------------------------------
PAPER = dict(artifact="Table II", defense="front end coif1", attack="PGD 100 restarts")  # 61.04


def test_comparison_verdicts():
    comparison = Comparison()
    assert comparison.add("Table II", "coif1", "PGD", [1] * 61 + [0] * 39, **PAPER) == 61.04
    comparison.add("Table II", "coif1", "PGD", [1] * 90 + [0] * 10, **PAPER)
    comparison.add("Table II", "coif1", "PGD", [1] * 30 + [0] * 70, **PAPER)
    comparison.add("Table II", "none", "clean", [1] * 99 + [0], artifact="Table II", defense="none", attack="none")
    frame = comparison.frame()
    assert frame["verdict"].tolist() == ["agrees", "ours higher", "ours lower", "agrees"]
    assert frame["paper"].tolist() == [61.04, 61.04, 61.04, 99.31]
    assert frame["ours"].tolist() == [61.0, 90.0, 30.0, 99.0]
    assert frame["ours - paper"].tolist() == pytest.approx([-0.04, 28.96, -31.04, -0.31])
    assert comparison.counts() == {"compared": 4, "agrees": 2, "ours higher": 1, "ours lower": 1}
    assert comparison.frame(disagreements_only=True)["verdict"].tolist() == ["ours higher", "ours lower"]


def test_comparison_agrees_exactly_when_the_paper_is_in_our_interval():
    from sparsenb.evaluation import wilson_interval

    for k in range(40, 80):
        comparison = Comparison()
        comparison.add("T", "r", "c", [1] * k + [0] * (100 - k), **PAPER)
        lo, hi = wilson_interval(k, 100)
        assert (comparison.rows[0]["verdict"] == "agrees") == (100 * lo <= 61.04 <= 100 * hi), k


def test_comparison_needs_one_paper_row():
    with pytest.raises(LookupError):
        Comparison().add("T", "r", "c", [1, 0], artifact="Table II", defense="none")  # several rows
    with pytest.raises(LookupError):
        Comparison().add("T", "r", "c", [1, 0], artifact="Table 99")
    assert Comparison().frame().empty and Comparison().counts()["compared"] == 0


# --------------------------------------------------------------------------
# stored(): any experiment function
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class Settings:
    steps: int = 1


@pytest.fixture
def tally():
    calls = []

    def experiment(model, x, settings=Settings(), scale=1.0):
        calls.append(1)
        with torch.no_grad():
            return {"mean": float(model(x).mean()) * scale, "steps": settings.steps, "pair": (1, 2)}

    return experiment, calls


def test_stored_computes_once(net, digits, tally, tmp_path):
    experiment, calls = tally
    x, _ = digits
    first = store.stored(experiment, net, x, scale=2.0)
    second = store.stored(experiment, net, x, scale=2.0)
    assert len(calls) == 1
    assert second == first  # the same value, fresh or read back (JSON: the tuple is a list both times)
    assert first["pair"] == [1, 2]
    assert len(_results_files(tmp_path)) == 1
    store.stored(experiment, _net(0), x.clone(), scale=2.0)  # equal weights and images, other objects
    assert len(calls) == 1


def test_stored_keys_on_its_arguments(net, digits, tally, monkeypatch):
    experiment, calls = tally
    x, _ = digits
    store.stored(experiment, net, x)
    changed = _net(0)
    with torch.no_grad():
        changed[3].bias[0] += 1e-3
    x2 = x.clone()
    x2[0, 0, 0, 0] += 0.5
    variants = [
        ((changed, x), {}),
        ((defended(_fe(), net), x), {}),
        ((defended(_fe("iterated"), net), x), {}),
        ((net, x2), {}),
        ((net, x[:6]), {}),
        ((net, x), {"settings": Settings(2)}),
        ((net, x), {"scale": 3.0}),
    ]
    for args, kwargs in variants:
        store.stored(experiment, *args, **kwargs)
    assert len(calls) == 1 + len(variants)
    for args, kwargs in variants:
        store.stored(experiment, *args, **kwargs)
    assert len(calls) == 1 + len(variants)
    monkeypatch.setattr(store, "code_of", lambda *objects: "new code")
    store.stored(experiment, net, x)
    assert len(calls) == 2 + len(variants)


def test_stored_keys_numpy_arrays_by_content():
    calls = []

    def total(a):
        calls.append(1)
        return int(a.sum())

    a = np.arange(5000)
    b = a.copy()
    b[2500] += 1  # the same repr ("[0 1 2 ... 4997 4998 4999]"), other content
    assert store.stored(total, a) == int(a.sum())
    assert store.stored(total, b) == int(b.sum())
    assert store.stored(total, a.copy()) == int(a.sum())
    assert len(calls) == 2


def test_stored_gives_the_same_value_fresh_and_read_back():
    def keyed():
        return {1: 0.5, 2: (1, 2)}

    fresh = store.stored(keyed)
    assert store.stored(keyed) == fresh == {"1": 0.5, "2": [1, 2]}


def test_stored_needs_a_function():
    with pytest.raises(checks.ArgumentError, match="^fn"):
        store.stored("not a function")


def test_with_gradient_copies(net):
    fe = _fe("bpda")
    other = with_gradient(fe, "projection")
    assert other.gradient == "projection" and fe.gradient == "bpda"
    assert with_gradient(fe, "bpda") is fe
    with pytest.raises(checks.ArgumentError, match="^gradient"):
        with_gradient(fe, "none")


def test_comparison_table():
    comparison = Comparison()
    table = comparison.table("Table II",
        [
            ("no defense", "clean", [1] * 99 + [0], dict(artifact="Table II", defense="none", attack="none")),
            ("no defense", "ours only", [1, 0], None),
            ("coif1", "clean", [1] * 61 + [0] * 39, dict(artifact="Table II", defense="front end coif1", attack="none")),
            ("coif1", "PGD", [1] * 61 + [0] * 39, dict(PAPER, eps=0.2)),
        ],
    )
    assert list(table.columns) == ["clean", "paper: clean", "ours only", "paper: ours only", "PGD", "paper: PGD"]
    assert list(table.index) == ["no defense", "coif1"]
    assert table.loc["no defense", "clean"] == "99.0 [94.6, 99.8]"
    assert table.loc["no defense", "paper: clean"] == 99.31
    assert table.loc["no defense", "paper: ours only"] == "-"
    assert table.loc["coif1", "paper: PGD"] == 61.04
    assert table.loc["no defense", "PGD"] == ""  # no entry
    assert [r["verdict"] for r in comparison.rows] == ["agrees", "ours lower", "agrees"]


@pytest.mark.parametrize(
    "paper, error, name",
    [
        (dict(artifact="Table II", attack="PGD 100 restart"), checks.ArgumentError, "paper"),  # a typo
        (dict(artifact="Table II", defense="front end coif1"), LookupError, None),  # several rows
        (dict(artifact="Table II", table="x"), checks.ArgumentError, "table"),  # not a column
    ],
)
def test_comparison_table_refuses_lookups_that_cannot_be_right(paper, error, name):
    with pytest.raises(error) as err:
        Comparison().table("T", [("r", "c", [1, 0], paper)])
    if name:
        assert err.value.argument == name


def test_comparison_table_matches_empty_columns_with_none():
    comparison = Comparison()
    paper = dict(artifact="Table II", defense="none", attack="none", gradient=None)
    comparison.table("T", [("r", "c", [1, 0], paper)])
    assert comparison.rows[0]["paper"] == 99.31


def test_merge_joins_runs_on_the_same_images():
    a, b = _synthetic(), _synthetic()
    extra = Cell("v", "c", None, 0.3)
    b.results[extra] = {"correct": [0, 0, 0, 0, 1]}
    merged = experiments.merge(a, b)
    assert set(merged.results) == set(a.results) | {extra}
    assert merged.worst().tolist() == [0, 0, 0, 0, 0]
    assert merged.correct("v", "c").tolist() == [0, 0, 0, 0, 1]
    b.results[Cell("v", "a", "bpda", 0.1)] = {"correct": [0, 0, 0, 0, 0]}
    with pytest.raises(checks.ArgumentError, match="^outcomes"):
        experiments.merge(a, b)  # one cell, two results
    short = Outcomes(a.grid, {extra: {"correct": [1, 1]}}, 2)
    with pytest.raises(checks.ArgumentError, match="^outcomes"):
        experiments.merge(a, short)
    with pytest.raises(checks.ArgumentError, match="^outcomes"):
        experiments.merge()


def test_result_keys_follow_an_attacks_imports_and_library():
    """A cell is keyed by the code its attack's module transitively imports and by the version of the attack
    library that code uses; an attack that uses no library has none in its key."""
    adaptive = Attack("adaptive", steps=2)
    deps = cache.imported_modules(*cache.modules_of(adaptive))
    assert {"attacks.adaptive", "attacks.autoattack", "attacks.base", "frontend"} <= set(deps)
    assert "attacks.cw" not in deps and "attacks.gradient" not in deps
    assert "pyautoattack" in store.library_versions(adaptive)
    assert store.library_versions(Attack("pgd", step=0.1, steps=1)) == {}


def test_batch_dependent_attacks_have_their_batch_size_in_the_key(tmp_path):
    """An attack marked batch_invariant = False is recomputed for another batch size; others are reused."""
    calls = []
    x = torch.rand(6, 1, 28, 28)
    y = torch.zeros(6, dtype=torch.int64)
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 3))
    grid = experiments.Grid({"net": experiments.Victim(net)}, {"sq": experiments.Attack("square", queries=5)}, eps=[0.1])

    def counting(model, x, y, eps, **kwargs):
        calls.append(len(x))
        return x.clone()

    for invariant, expected in ((False, 2), (True, 1)):
        calls.clear()
        counting.uses_gradient, counting.batch_invariant = False, invariant
        folder = tmp_path / str(invariant)
        original = REGISTRY["square"]
        REGISTRY["square"] = counting
        try:
            experiments.run(grid, x, y, batch_size=3, progress=False, folder=folder)
            experiments.run(grid, x, y, batch_size=2, progress=False, folder=folder)
        finally:
            REGISTRY["square"] = original
        assert len({f for f in folder.rglob("*.json")}) == expected


def test_run_parts_stores_the_first_images_apart_and_gives_runs_outcomes(mnist_test, tmp_path, monkeypatch):
    from sparsenb.lab.grid import run_parts

    monkeypatch.setenv("SPARSENB_CACHE", str(tmp_path / "cache"))
    x, y = mnist_test
    x, y = x[:14], y[:14]
    torch.manual_seed(0)
    clf = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10)).eval()
    g = Grid({"fe": Victim(clf, SparsifyingFrontEnd(0.035, "coif1"))},
             {"none": Attack("none"), "PGD": Attack("pgd", step=0.05, steps=2, restarts=2, seed=3)}, eps=[0.2])
    first = [1, 4, 5, 11]
    parts = run_parts(g, x, y, first, batch_size=3, progress=False)
    whole = experiments.run(g, x, y, batch_size=5, progress=False, folder=tmp_path / "elsewhere")
    for cell, result in whole.results.items():
        for name in ("correct", "linf", "l2", "overlap"):
            assert parts.results[cell][name] == result[name], (cell, name)
        # evaluations are counted per batch (with each call's one-image class probe): close, not equal
        assert parts.evaluations(cell.victim, cell.attack, cell.gradient, cell.eps) == pytest.approx(
            whole.evaluations(cell.victim, cell.attack, cell.gradient, cell.eps), rel=0.1)
    # the first images' cells are what a run on exactly those images reads back
    stored = sorted((tmp_path / "cache" / "results").rglob("*.json"))
    again = experiments.run(g, x[first], y[first], batch_size=2, progress=False)
    assert sorted((tmp_path / "cache" / "results").rglob("*.json")) == stored
    assert again.correct("fe", "PGD", "bpda").tolist() == [parts.results[c]["correct"][i] for c in parts.results
                                                           if c.attack == "PGD" and c.gradient == "bpda" for i in first]
    for bad in ([4, 1], [], [0, 14]):
        with pytest.raises(checks.ArgumentError, match="^first "):
            run_parts(g, x, y, bad, progress=False)
    square = Grid({"fe": Victim(clf)}, {"Square": Attack("square", queries=5)}, eps=[0.2])
    with pytest.raises(checks.ArgumentError, match="^grid .*batch"):
        run_parts(square, x, y, first, progress=False)


def test_an_attack_cell_scans_its_images_once_not_once_per_step(monkeypatch, mnist_test, tmp_path):
    """The grid checks the images on the way in and out; inside the attack the front end's value scan (a device
    sync per forward pass) is skipped, so the scans do not grow with the attack's steps."""
    from sparsenb import checks as checks_module
    from sparsenb.frontend import SparsifyingFrontEnd

    x, y = mnist_test[0][:6], mnist_test[1][:6]
    torch.manual_seed(0)
    victim = Victim(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10)).eval(), SparsifyingFrontEnd(0.035, "coif1"))
    real = checks_module.torch.aminmax
    scans = []

    def counted(v, *args, **kwargs):
        scans.append(tuple(v.shape))
        return real(v, *args, **kwargs)

    monkeypatch.setattr(checks_module.torch, "aminmax", counted)
    per_steps = {}
    for steps in (1, 8):
        scans.clear()
        grid = Grid({"fe": victim}, {"PGD": Attack("pgd", step=0.05, steps=steps)}, eps=[0.1])
        experiments.run(grid, x, y, batch_size=6, progress=False, folder=tmp_path)
        per_steps[steps] = scans.count((6, 1, 28, 28))
    assert per_steps[1] == per_steps[8] > 0  # each step is a front-end forward: none of them scans
    monkeypatch.setattr(checks_module, "_TRUSTED", checks_module.contextvars.ContextVar("off", default=False))
    monkeypatch.setattr(checks_module, "trusted", lambda: __import__("contextlib").nullcontext())
    scans.clear()
    grid = Grid({"fe": victim}, {"PGD": Attack("pgd", step=0.05, steps=4)}, eps=[0.1])
    experiments.run(grid, x, y, batch_size=6, progress=False, folder=tmp_path / "untrusted")
    assert scans.count((6, 1, 28, 28)) > per_steps[1]  # without it, the steps would scan
