"""The audit (sparsenb.lab.audit): worst_case is the per-image AND over every attack and gradient treatment,
credits the first attack that broke each image, is stored and resumed through the experiment layer; the
gradient-masking checklist flags a model whose gradient is zero (a rounding layer) and passes a linear model.
Small float32 models (a nearest-class-mean classifier), a few MNIST test digits, the SMOKE budget."""
from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from sparsenb import models
from sparsenb.attacks.registry import REGISTRY
from sparsenb.frontend import defended
from sparsenb.attacks import autoattack
from sparsenb.lab import audit
from sparsenb.checks import ArgumentError
from sparsenb.frontend import SparsifyingFrontEnd

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def centroids(centroids):
    """The shared nearest-class-mean classifier, in float32 like the book's models."""
    return copy.deepcopy(centroids).float()


class Round(nn.Module):
    """Pixels rounded to {0, 0.5, 1}: piecewise constant, so every input gradient is zero."""

    def forward(self, x):
        return torch.round(x * 2) / 2


@pytest.fixture(scope="module")
def images(mnist_test):
    x, y = mnist_test
    return x[:16].clone(), y[:16].clone()


def test_worst_case_is_the_per_image_and_over_attacks(centroids, images, tmp_path):
    x, y = images
    model = defended(SparsifyingFrontEnd(0.035, "coif1"), centroids).eval()
    wc = audit.worst_case(model, x, y, 0.15, audit.SMOKE, folder=tmp_path)
    cells = list(wc.correct)
    # every paper attack through the three gradients, the strong gradient ones through BPDA, Square and adaptive once
    assert ("PGD", "projection") in cells and ("PGD", "iterated") in cells and ("APGD-CE", "bpda") in cells
    assert ("APGD-CE", "projection") not in cells and ("Square", None) in cells and ("adaptive", None) in cells
    stacked = np.stack(list(wc.correct.values()))
    assert np.array_equal(wc.robust, stacked.min(0) == 1)
    assert 0 < wc.robust.sum() < len(x)
    for i in range(len(x)):
        broke = [k for k, v in wc.correct.items() if v[i] == 0]
        assert (wc.first[i], wc.first_gradient[i]) == (broke[0] if broke else (None, None))
    assert wc.first.count("clean") == int((wc.correct[("clean", None)] == 0).sum())
    # a cell is the attack itself, per image
    direct = autoattack.apgd_ce(model, x, y, 0.15, steps=audit.SMOKE.apgd_steps, seed=0)
    with torch.no_grad():
        assert np.array_equal(wc.correct[("APGD-CE", "bpda")], (model(direct).argmax(1) == y).int().numpy())
    paper = wc.paper()
    assert np.array_equal(paper, np.min([v for (a, _), v in wc.correct.items() if a in audit.PAPER_ATTACKS + ("clean",)], 0))
    assert bool((paper >= wc.robust).all())
    p, lo, hi = wc.accuracy()
    assert p == pytest.approx(100 * wc.robust.mean()) and lo <= p <= hi
    frame = wc.frame()
    assert list(frame["attack"])[-1] == "worst case, all attacks" and frame["accuracy %"].iloc[-1] == pytest.approx(p, abs=0.01)
    assert frame["broke first"].iloc[:-1].sum() == (~wc.robust).sum()


def test_worst_case_is_stored_and_read_back(centroids, images, tmp_path, monkeypatch):
    x, y = images
    first = audit.worst_case(centroids, x, y, 0.1, audit.SMOKE, folder=tmp_path)

    def boom(model, x, y, eps, **kwargs):  # the signature tells the grid the attack is bounded
        raise AssertionError("recomputed a stored cell")

    boom.uses_gradient = False
    boom.batch_invariant = False  # as Square: its batch size is part of the key
    boom.__module__ = REGISTRY["square"].__module__  # the same code as far as the key can tell
    monkeypatch.setitem(REGISTRY, "square", boom)
    again = audit.worst_case(centroids, x, y, 0.1, audit.SMOKE, folder=tmp_path)
    assert np.array_equal(first.robust, again.robust) and first.first == again.first
    with pytest.raises(AssertionError, match="recomputed"):
        audit.worst_case(centroids, x, y, 0.11, audit.SMOKE, folder=tmp_path)


def test_an_undefended_model_gets_one_cell_per_attack_and_linear_models_the_linear_attacks(images, tmp_path):
    x, y = images
    lin = models.LinearClassifier()
    with torch.no_grad():
        lin.linear.weight.normal_(0, 0.01)
    y2 = (y > 4).long()
    wc = audit.worst_case(lin, x, y2, 0.05, audit.SMOKE, folder=tmp_path)
    assert all(g is None for _, g in wc.correct)
    assert "semi-white box" in wc.attacks() and "Square" in wc.attacks()


def test_a_defended_binary_linear_classifier_faces_the_linear_attacks_too(images, tmp_path):
    x, y = images
    lin = models.LinearClassifier()
    with torch.no_grad():
        lin.linear.weight.normal_(0, 0.01)
    model = defended(SparsifyingFrontEnd(0.035, "coif1"), lin).eval()
    wc = audit.worst_case(model, x, (y > 4).long(), 0.05, audit.SMOKE, folder=tmp_path)
    names = wc.attacks()
    assert names[:4] == ["clean", "semi-white box", "white box", "iterated white box"]
    assert ("white box", None) in wc.correct and ("FGSM", "iterated") in wc.correct and ("APGD-T", "bpda") in wc.correct
    assert np.array_equal(wc.robust, np.stack(list(wc.correct.values())).min(0) == 1)


# a budget under which the iterative attacks can reach eps and Square has queries enough
CHECK = dataclasses.replace(audit.SMOKE, ifgsm_step=0.05, ifgsm_steps=10, pgd_steps=10, apgd_steps=10, square_queries=300)


def _verdicts(table):
    return dict(zip(table["check"], table["verdict"]))


def test_checklist_flags_a_model_that_masks_its_gradient(centroids, images, tmp_path):
    x, y = images
    masked = nn.Sequential(Round(), centroids).eval()
    v = _verdicts(audit.masking_checklist(masked, x, y, 0.3, CHECK, folder=tmp_path))
    assert v["white-box attacks beat black-box ones"] == audit.FAIL
    assert v["gradient-free vs gradient gap"] == audit.FAIL
    assert v["an unbounded attack reaches 100% success"] == audit.FAIL


def test_checklist_passes_a_linear_model(centroids, images, tmp_path):
    x, y = images
    table = audit.masking_checklist(centroids, x, y, 0.1, CHECK, folder=tmp_path)
    assert list(table.columns) == ["check", "measured", "verdict", "meaning"]
    v = _verdicts(table)
    assert len(v) == 7
    for row in ("iterative attacks beat one-step ones", "white-box attacks beat black-box ones",
                "accuracy reaches about 0 at a large eps", "an unbounded attack reaches 100% success",
                "accuracy falls monotonically with eps"):
        assert v[row] == audit.PASS, (row, table)


def test_bad_arguments(centroids, images):
    x, y = images
    with pytest.raises(ArgumentError, match="^pgd_steps "):
        audit.Budget(pgd_steps=0)
    with pytest.raises(ArgumentError, match=r"^strong_gradients\[0\] "):
        audit.Budget(strong_gradients=("exact",))
    with pytest.raises(ArgumentError, match="^model "):
        audit.worst_case(lambda z: z, x, y, 0.1)
    with pytest.raises(ArgumentError, match="^budget "):
        audit.audit_attacks("laptop")
    with pytest.raises(ArgumentError, match="^sweep "):
        audit.masking_checklist(centroids, x, y, 0.1, audit.SMOKE, sweep=[0.1])


def test_known_outcomes_from_a_chapter_grid_join_the_strong_attacks(centroids, images, tmp_path):
    """A chapter's grid of the paper's attacks plus audit.strong_attacks equals the full audit of the same attacks."""
    from sparsenb.lab.grid import Grid, Victim, run

    x, y = images
    fe = SparsifyingFrontEnd(0.035, "coif1")
    model = defended(fe, centroids).eval()
    paper = {k: v for k, v in audit.audit_attacks(audit.SMOKE).items() if k in audit.PAPER_ATTACKS}
    grid = Grid({"front end": Victim(centroids, fe)}, {"no attack": audit.Attack("none"), **paper}, eps=[0.15],
                gradients=list(audit.SMOKE.gradients))
    chapter = run(grid, x, y, progress=False, folder=tmp_path)
    known = chapter.by_attack("front end", skip=["no attack"], images=10)
    assert set(known) == {(a, g) for a in paper for g in audit.SMOKE.gradients}
    strong = audit.strong_attacks(audit.SMOKE)
    assert set(strong) == {"APGD-CE", "APGD-T", "FAB-T", "Square", "adaptive"}
    joined = audit.worst_case(model, x[:10], y[:10], 0.15, audit.SMOKE, attacks=strong, known=known, folder=tmp_path)
    whole = audit.worst_case(model, x[:10], y[:10], 0.15, audit.SMOKE, folder=tmp_path)
    assert np.array_equal(joined.robust, whole.robust)
    assert np.array_equal(joined.paper(), whole.paper()) and joined.known == tuple(paper)
    assert list(joined.correct)[0] == ("clean", None) and list(joined.correct)[1] == ("FGSM", "bpda")
    # model evaluations: known attacks ran elsewhere (None); Square spends at most its queries per image
    assert joined.evaluations("FGSM") is None
    assert 0 < joined.evaluations("Square") <= audit.SMOKE.square_queries + 2
    assert joined.frame()["model evaluations / image"].iloc[0] == 0  # clean: no attack, no evaluation
    with pytest.raises(ArgumentError, match="^known "):
        audit.worst_case(model, x[:10], y[:10], 0.15, audit.SMOKE, attacks=strong, known={("Square", None): known[("FGSM", "bpda")]})
    with pytest.raises(ArgumentError, match="^known "):
        audit.worst_case(model, x[:10], y[:10], 0.15, audit.SMOKE, attacks=strong, known={("FGSM", "bpda"): np.ones(3)})


def test_audit_subset_is_a_seeded_sorted_sample():
    a = audit.subset(1000, 200, seed=0)
    assert len(a) == 200 and len(set(a.tolist())) == 200 and torch.equal(a, a.sort().values)
    assert torch.equal(a, audit.subset(1000, 200, seed=0)) and not torch.equal(a, audit.subset(1000, 200, seed=1))
    assert a.max() > 800  # spread over the attacked images, not their first 200
    assert torch.equal(audit.subset(20, 50, seed=0), torch.arange(20))


def test_audited_checks_its_arguments(centroids, mnist_test, tmp_path):
    from sparsenb.lab.grid import Grid, Victim, run

    x, y = mnist_test[0][:6], mnist_test[1][:6]
    victims = {"no defense": Victim(centroids.float())}
    out = run(Grid(victims, {"FGSM": audit.Attack("fgsm")}, eps=[0.1]), x, y, progress=False, folder=tmp_path)
    with pytest.raises(ArgumentError, match="^outcomes "):
        audit.audited(victims, out, x[:5], y[:5], 0.1, audit.SMOKE, 3)
    with pytest.raises(ArgumentError, match="^budget "):
        audit.audited(victims, out, x, y, 0.1, "smoke", 3)
    with pytest.raises(ArgumentError, match="^n "):
        audit.audited(victims, out, x, y, 0.1, audit.SMOKE, 0)


def test_audit_images_lie_among_every_pages_attacked_images(mnist_test):
    from sparsenb import data

    x, y = mnist_test
    chosen = audit.audit_images(len(x), 30, seed=3)
    assert len(chosen) == 30 and torch.equal(chosen, chosen.sort().values)
    for n_attacked in (30, 100, 1000):  # a page attacking any number of images (same seed) holds them
        xa, _ = data.subset(x, y, n_attacked, seed=3)
        at = audit.positions(len(x), n_attacked, 30, seed=3)
        assert torch.equal(xa[at], x[chosen])
    assert not torch.equal(chosen, audit.audit_images(len(x), 30, seed=4))
    with pytest.raises(ArgumentError, match="n"):
        audit.positions(len(x), 20, 30, seed=3)


def test_a_networks_audit_depends_only_on_network_budget_and_images(centroids, mnist_test, tmp_path, monkeypatch):
    """Two pages asking for the audit of one network at one budget get the same worst case, the second by
    reading the first's stored outcomes (no attack reruns), whatever images the pages attacked themselves."""
    x, y = mnist_test[0][:300], mnist_test[1][:300]
    model = defended(SparsifyingFrontEnd(0.035, "coif1"), centroids).eval()
    first = audit.network_audit(model, x, y, 0.15, audit.SMOKE, 8, seed=0, folder=tmp_path)
    idx = audit.audit_images(300, 8, seed=0)
    assert first.n == 8 and np.array_equal(first.images, idx.numpy())
    direct = audit.worst_case(model, x[idx], y[idx], 0.15, audit.SMOKE, folder=tmp_path)
    assert np.array_equal(first.robust, direct.robust)

    def booby(real):
        def boom(model, x, y, eps, **kwargs):  # the signature tells the grid the attack is bounded
            raise AssertionError("recomputed a stored cell")

        boom.uses_gradient, boom.batch_invariant = real.uses_gradient, real.batch_invariant
        boom.__module__ = real.__module__  # the same code as far as the key can tell
        return boom

    for name in ("square", "apgd_ce", "pgd"):
        monkeypatch.setitem(REGISTRY, name, booby(REGISTRY[name]))
    again = audit.network_audit(model, x.clone(), y.clone(), 0.15, audit.SMOKE, 8, seed=0, folder=tmp_path)
    assert np.array_equal(first.robust, again.robust) and first.first == again.first
    with pytest.raises(ArgumentError, match="budget"):
        audit.network_audit(model, x, y, 0.15, "smoke", 8, seed=0, folder=tmp_path)
    with pytest.raises(ArgumentError, match="y_test"):
        audit.network_audit(model, x, y[:5], 0.15, audit.SMOKE, 8, seed=0, folder=tmp_path)


def test_more_effort_counts_points_off_in_images_so_the_threshold_is_exact(monkeypatch):
    """4 of 200 images are 2.0 points, not 2.0000000000000018: the convergence row passes at exactly the threshold."""
    from sparsenb.lab.grid import Grid, Outcomes

    n, left = 200, 74
    robust = np.zeros(n, dtype=bool)
    robust[:left] = True
    wc = audit.WorstCase(robust, [None] * n, [None] * n, {("clean", None): np.ones(n, dtype=np.int64)}, 0.2)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    broken = {"Square": {3}, "adaptive": {10, 20, 30}}  # images (among those left) each attack breaks

    def fake_run(grid: Grid, x, y, batch_size=500, progress=True, folder=None):
        results = {c: {"correct": [0 if i in broken[c.attack] else 1 for i in range(len(x))],
                       "evaluations": [7.0 * len(x)]} for c in grid.cells()}
        return Outcomes(grid, results, len(x))

    monkeypatch.setattr(audit, "run", fake_run)
    x, y = torch.zeros(n, 1, 28, 28), torch.zeros(n, dtype=torch.int64)
    more = audit.more_effort(model, x, y, wc, audit.SMOKE, factor=4)
    assert more.points_off == 2.0 and more.by_attack == {"Square": 0.5, "adaptive": 1.5}
    assert more.attacked == left and int(more.robust.sum()) == left - 4
    assert more.queries == 4 * audit.SMOKE.square_queries and more.restarts == 4 * audit.SMOKE.adaptive_restarts
