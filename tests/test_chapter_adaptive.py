"""sparsenb.chapters.adaptive: each section computes what the page quotes, on small inputs.

The per-attack numbers and the cost figure read an audit: here a :class:`~sparsenb.lab.audit.WorstCase`
built from seeded random per-image outcomes (with a real :class:`~sparsenb.lab.grid.Outcomes` of the
strong attacks for their evaluation counts), so every number can be recomputed from them. The CNN
section runs the multiclass chapter's experiment on a few images and must read it back from the store;
the checklist runs its APGD sweep on a nearest-class-mean classifier. The store goes to a temporary folder.
"""
from __future__ import annotations

import copy
import json

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from sparsenb import data  # noqa: E402
from sparsenb.chapters import adaptive as chapter  # noqa: E402
from sparsenb.chapters import mnist_multiclass  # noqa: E402
from sparsenb.frontend import SparsifyingFrontEnd  # noqa: E402
from sparsenb.lab.audit import FAIL, SMOKE, STRONG, WorstCase, strong_attacks  # noqa: E402
from sparsenb.lab.grid import Grid, Outcomes, Victim  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

N = 30
EPS = 0.2
KNOWN = ("FGSM", "locally linear", "PGD")  # the paper's attacks, credited from the multiclass grid


@pytest.fixture(autouse=True)
def _store(tmp_path, monkeypatch):
    monkeypatch.setenv("SPARSENB_CACHE", str(tmp_path / "cache"))


def _worst_case(seed: int, n: int = N, with_outcomes: bool = True) -> WorstCase:
    """Clean, the paper's attacks (known), then the strong ones, each with seeded random outcomes, and the
    worst case over them as :func:`sparsenb.lab.audit.worst_case` forms it."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    victim = Victim(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10)))
    strong = strong_attacks(SMOKE)
    grid = Grid({"model": victim}, strong, eps=[EPS])
    results = {
        cell: {"correct": [1] * n, "evaluations": [float(rng.integers(5, 50)) * n]} for cell in grid.cells()
    }
    correct = {("clean", None): (rng.random(n) < 0.95).astype(np.int64)}
    for name in (*KNOWN, *strong):
        grads = ("bpda", "projection") if name in KNOWN else (None,) if name in ("Square", "adaptive") else ("bpda",)
        for g in grads:
            correct[(name, g)] = (rng.random(n) < rng.uniform(0.5, 0.9)).astype(np.int64)
    robust = np.ones(n, dtype=bool)
    first = [None] * n
    for (name, g), c in correct.items():
        for i in np.flatnonzero(robust & (c == 0)):
            first[i] = name
        robust &= c == 1
    outcomes = Outcomes(grid, results, n) if with_outcomes else None
    return WorstCase(robust, first, [None] * n, correct, EPS, outcomes, KNOWN)


@pytest.fixture(scope="module")
def result():
    return {"no defense": _worst_case(1), "front end": _worst_case(2)}


def _acc(wc: WorstCase, attack: str) -> float:
    return 100 * float(np.min([c for (a, _), c in wc.correct.items() if a == attack], axis=0).mean())


def test_attacks_lists_the_strong_attacks_settings():
    s = chapter.attacks("smoke")
    table = s.table["smoke"]
    assert list(table.index) == [*chapter.STRONG_SETTINGS, "strong gradient treatments"]
    assert table["square_queries"] == 20 and table["apgd_steps"] == 3
    assert table["strong gradient treatments"] == "bpda"
    assert s.numbers == {"square_queries": 20}
    assert chapter.attacks("full").table.loc["strong gradient treatments", "full"] == "bpda, projection, iterated"


def test_per_attack_numbers_follow_from_the_per_image_outcomes(result):
    s = chapter.per_attack(result, EPS)
    fe = result["front end"]
    accs = {a: _acc(fe, a) for a in KNOWN}
    best = min(KNOWN, key=lambda a: (accs[a], KNOWN.index(a)))
    assert s.numbers["best_paper"] == best and s.numbers["best_paper_acc"] == pytest.approx(accs[best])
    assert s.numbers["wc_fe"] == pytest.approx(100 * fe.robust.mean())
    assert s.numbers["wc_fe_lo"] <= s.numbers["wc_fe"] <= s.numbers["wc_fe_hi"]
    paper_only = np.min([c for (a, _), c in fe.correct.items() if a in ("clean", *KNOWN)], axis=0)
    assert s.numbers["paper_only_fe"] == pytest.approx(100 * paper_only.mean())
    assert s.numbers["paper_only_fe"] >= s.numbers["wc_fe"]
    others = np.min([c for (a, _), c in fe.correct.items() if a not in ("clean", "Square")], axis=0)
    only_square = (fe.correct[("Square", None)] == 0) & (others == 1)
    assert s.numbers["only_square"] == int(only_square.sum())
    square_cells = [c for c in fe.outcomes.results if c.attack == "Square"]
    spent = sum(sum(fe.outcomes.results[c]["evaluations"]) for c in square_cells) / N
    assert s.numbers["square_evals"] == pytest.approx(spent)
    assert s.numbers["apgd_acc"] == pytest.approx(_acc(fe, "APGD-CE"))
    assert s.numbers["wc_plain"] == pytest.approx(100 * result["no defense"].robust.mean())
    assert s.numbers["eps_shown"] == EPS
    assert s.defended.loc["worst case, all attacks", "accuracy %"] == pytest.approx(s.numbers["wc_fe"], abs=0.01)
    assert list(s.undefended.index) == [*result["no defense"].attacks(), "worst case, all attacks"]


def test_cost_draws_the_attacks_that_ran_here(result):
    s = chapter.cost(result)
    ax = s.figure.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == list(strong_attacks(SMOKE))  # the known attacks have no count here
    assert ax.get_xscale() == "log"
    assert len(ax.lines) == 2  # one worst case per CNN


@pytest.fixture(scope="module")
def centroids(centroids):
    return copy.deepcopy(centroids).float()


def test_checklist_counts_the_failed_checks_of_each_cnn(centroids, mnist_test):
    x, y = mnist_test[0][:12].clone(), mnist_test[1][:12].clone()
    fe = SparsifyingFrontEnd(0.035, "coif1")
    victims = {"no defense": Victim(centroids), "front end": Victim(centroids, fe)}
    result = {"no defense": _worst_case(3, 12, False), "front end": _worst_case(4, 12, False)}
    for wc in result.values():  # audited: the first 12 test images
        wc.images = np.arange(12)
    s = chapter.checklist(victims, result, EPS, "smoke", 0, [0.1, 0.3], 6)
    for table, key in ((s.defended, "fails_fe"), (s.undefended, "fails_plain")):
        assert s.numbers[key] == int((table["verdict"] == FAIL).sum())
        assert len(table) == s.numbers["n_checks"] == s.numbers["n_checks_plain"] == 7
    wc = result["front end"]
    white = min(_acc(wc, a) for a in wc.attacks() if a not in ("clean", "Square"))
    verdict = s.defended.set_index("check").loc["white-box attacks beat black-box ones", "verdict"]
    assert verdict == ("pass" if white <= _acc(wc, "Square") + 1.0 else FAIL)


def test_cnn_reads_the_multiclass_chapters_experiment_back(mnist_test, monkeypatch, tmp_path):
    x_test, y_test = mnist_test
    small = {"train": data.subset(x_test[5000:], y_test[5000:], 96, seed=1), "test": (x_test[:40], y_test[:40])}
    monkeypatch.setattr(data, "load_mnist", lambda split, **kw: small[split])
    net = (64, 1, 0, 0.035, "coif1", 2, 0.01)  # n_train, epochs, seed, rho, wavelet, refine_steps, refine_step
    attack = (0.01, 3, 0.05, 2, 0.05, 2, 2)  # I-FGSM, iterative locally linear, PGD: steps and sizes (SMOKE's)
    victims, _, _ = mnist_multiclass.cnn_victims(*net, "cpu")
    x, y = mnist_multiclass.test_images(6, 0)
    grid = mnist_multiclass.attack_grid(victims, x, y, EPS, *attack, 0, 6, 4)
    store = tmp_path / "cache"
    gridded = {p for p in (store / "results").rglob("*.json")}
    audited = mnist_multiclass.audit(victims, EPS, "smoke", 4, 0, 6)
    # the grid attacked the audit's images as a set of their own: the audit ran only the strong attacks
    new = [json.loads(p.read_text())["key"]["attack"]["attack"] for p in (store / "results").rglob("*.json") if p not in gridded]
    assert new and set(new) <= set(STRONG)
    whole = mnist_multiclass.attack_grid(victims, x, y, EPS, *attack, 0, 6)  # the grid in one part: the same outcomes
    assert whole.outcomes.results.keys() == grid.outcomes.results.keys()
    for cell, result in whole.outcomes.results.items():
        for name in ("correct", "linf", "l2", "overlap"):
            if name in result:
                assert result[name] == grid.outcomes.results[cell][name], (cell, name)
    before = sorted(p for p in store.rglob("*") if p.is_file())
    s = chapter.cnn(*net, 6, EPS, *attack, 6, "smoke", 4, "cpu")
    assert sorted(p for p in store.rglob("*") if p.is_file()) == before  # nothing trained or attacked again
    assert s.outcomes.results == grid.outcomes.results
    for name, wc in audited.result.items():
        assert np.array_equal(s.result[name].robust, wc.robust)
    assert s.numbers == {"n_audit": 4} and torch.equal(s.x, x)


def test_convergence_adds_square_on_the_images_left_and_the_checklist_row(centroids, mnist_test, monkeypatch, tmp_path):
    from sparsenb.lab.audit import BUDGETS, network_audit

    monkeypatch.setenv("SPARSENB_CACHE", str(tmp_path / "cache"))
    x_test, y_test = mnist_test
    fe = SparsifyingFrontEnd(0.035, "coif1")
    victims = {"no defense": Victim(centroids), "front end": Victim(centroids, fe)}
    result = {n: network_audit(v.model(), x_test, y_test, EPS, BUDGETS["smoke"], 12, 0, 6) for n, v in victims.items()}
    s = chapter.convergence(victims, result, EPS, "smoke", 3, 0, 6)
    wc, more = result["front end"], s.more
    assert more.queries == 3 * BUDGETS["smoke"].square_queries and more.attacked == int(wc.robust.sum())
    assert more.restarts == 3 * BUDGETS["smoke"].adaptive_restarts
    alone = more.by_attack
    assert set(alone) == {"Square", "adaptive"}
    assert s.numbers["conv_off_square"] == alone["Square"] and s.numbers["conv_restarts"] == more.restarts
    assert (more.robust <= wc.robust).all()  # it only attacks what the audit left, and can only take off
    assert s.numbers["conv_off"] == pytest.approx(100 * (wc.robust.mean() - more.robust.mean()))
    assert s.table["worst case %"].iloc[-1] == pytest.approx(100 * wc.robust.mean())
    assert (s.table["points off"] >= 0).all() and s.table["total evaluations"].is_monotonic_increasing
    assert s.figure is not None
    c = chapter.checklist(victims, result, EPS, "smoke", 0, [0.1, 0.3], 6, more={"front end": more})
    assert c.numbers["n_checks"] == c.numbers["n_checks_plain"] + 1
    last = c.defended.iloc[-1]
    assert last["check"] == "more effort takes little off"
    assert last["verdict"] == ("pass" if more.points_off <= 2.0 else FAIL)


def test_thresholds_sets_the_fixed_threshold_beside_the_audits_competing_one(centroids, mnist_test, monkeypatch, tmp_path):
    from sparsenb import attacks
    from sparsenb.lab.audit import BUDGETS, network_audit

    monkeypatch.setenv("SPARSENB_CACHE", str(tmp_path / "cache"))
    x_test, y_test = mnist_test
    fe = SparsifyingFrontEnd(0.035, "coif1")
    victims = {"no defense": Victim(centroids), "front end": Victim(centroids, fe)}
    model = victims["front end"].model()
    wc = network_audit(model, x_test, y_test, EPS, BUDGETS["smoke"], 12, 0, 6)
    s = chapter.thresholds(victims, {"front end": wc}, EPS, "smoke", 0, 6)
    b = BUDGETS["smoke"]
    x, y = x_test[wc.images], y_test[wc.images]
    adv = attacks.adaptive_attack(model, x, y, EPS, steps=b.adaptive_steps, restarts=b.adaptive_restarts,
                                  threshold="fixed", seed=b.seed)
    with torch.no_grad():
        fixed = (model(adv).argmax(1) == y).numpy().astype(np.int64)
    square, competing = wc.attack_correct("Square"), wc.attack_correct("adaptive")
    t = s.table.set_index("attack")
    assert s.numbers["adaptive_fixed"] == pytest.approx(100 * fixed.mean())
    assert s.numbers["adaptive_competing"] == pytest.approx(100 * competing.mean())
    assert t.loc["adaptive, fixed threshold", "Square broke, this did not"] == int(((square == 0) & (fixed == 1)).sum())
    assert t.loc["adaptive, competing threshold", "this broke, Square did not"] == int(((competing == 0) & (square == 1)).sum())
    assert s.numbers["square_only_after"] == int(wc.only("Square").sum())
    others = [a for a in wc.attacks() if a not in ("clean", "Square", "adaptive")]
    before = (square == 0) & (wc.survived(others) == 1) & (fixed == 1)
    assert s.numbers["square_only_before"] == int(before.sum())
    assert s.numbers["evals_competing"] == pytest.approx(wc.evaluations("adaptive"))
    assert s.numbers["evals_fixed"] > 0
