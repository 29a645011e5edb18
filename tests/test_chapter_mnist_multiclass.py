"""sparsenb.chapters.mnist_multiclass: each section computes what the page quotes, on small inputs.

Tables II and V, PGD's cost, Fig. 8b and the disagreements read a grid's outcomes: here a real
:class:`~sparsenb.lab.grid.Outcomes` of the chapter's grid filled with seeded random per-image
outcomes, so every number can be recomputed from them independently. The sections that attack
(Table VI, Figs. 5, 9, 10, 12) run on a few test digits against untrained CNNs; the store goes to
a temporary folder.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from sparsenb import attacks, data  # noqa: E402
from sparsenb.chapters import mnist_multiclass as chapter  # noqa: E402
from sparsenb.evaluation import format_accuracy, predict  # noqa: E402
from sparsenb.frontend import GRADIENTS, SparsifyingFrontEnd  # noqa: E402
from sparsenb.lab.audit import WorstCase  # noqa: E402
from sparsenb.lab.grid import Grid, Outcomes, Victim  # noqa: E402
from sparsenb.lab.paper import PAPERS_ATTACKS, WORST_CASE, paper_number  # noqa: E402
from sparsenb.models import NielsenCNN  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

N = 40  # images of the synthetic grid
EPS = 0.2


@pytest.fixture(autouse=True)
def _store(tmp_path, monkeypatch):
    monkeypatch.setenv("SPARSENB_CACHE", str(tmp_path / "cache"))


def _victims(seed=0):
    torch.manual_seed(seed)
    plain, defended = NielsenCNN().eval(), NielsenCNN().eval()
    fe = SparsifyingFrontEnd(0.035, "coif1", refine_steps=2, refine_step=0.01)
    return {"no defense": Victim(plain), "front end": Victim(defended, fe)}


@pytest.fixture(scope="module")
def outcomes():
    """The chapter's grid (both CNNs, the paper's attacks, three gradients) with seeded random outcomes."""
    attacks_ = chapter.table2_attacks(0.01, 3, 0.05, 2, 0.05, 2, 2, seed=0)
    grid = Grid(_victims(), attacks_, eps=[EPS], gradients=GRADIENTS)
    rng = np.random.default_rng(0)
    results = {}
    for cell in grid.cells():
        share = rng.uniform(0.2, 0.9)
        results[cell] = {
            "correct": (rng.random(N) < share).astype(int).tolist(),
            "overlap": rng.integers(20, 28, N).tolist(),
            "evaluations": [float(rng.integers(1, 6 * 20))],  # one batch of N images
        }
    return Outcomes(grid, results, N)


def _worst_case(seed):
    rng = np.random.default_rng(seed)
    n = 12
    correct = {
        ("clean", None): (rng.random(n) < 0.9).astype(np.int64),
        ("PGD", "bpda"): (rng.random(n) < 0.7).astype(np.int64),
        ("Square", None): (rng.random(n) < 0.6).astype(np.int64),
    }
    robust = np.min(list(correct.values()), axis=0).astype(bool)
    return WorstCase(robust, [None] * n, [None] * n, correct, EPS, known=("PGD",))


@pytest.fixture(scope="module")
def audit_result():
    return {"no defense": _worst_case(1), "front end": _worst_case(2)}


def _mean(c) -> float:
    return 100 * float(np.mean(c))


def _worst_gradient(outcomes, attack):
    by_gradient = {g: outcomes.correct("front end", attack, g).mean() for g in GRADIENTS}
    return min(GRADIENTS, key=lambda g: (by_gradient[g], g))


def test_scale_quotes_the_settings_and_the_interval_of_a_coin():
    s = chapter.scale(20, 0, 2, 0.01, 3, 0.05, 2, 0.05, 2, 2, 2, 0.01, 10, [2, 4, 8], 4, 10, 2)
    z, n, p = 1.96, 20, 0.5  # the Wilson interval's half-width at p = 1/2, written out
    half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    assert s.numbers["ci_half_width"] == pytest.approx(100 * half)
    assert s.table.loc["training images", "this page"] == 60000  # n_train = 0: all of them
    assert s.table.loc["Table VI: steps", "this page"] == "2 / 4 / 8"
    assert s.table.loc["PGD: restarts x steps x delta", "this page"] == "2 x 2 x 0.05"
    assert s.numbers["pgd_restarts"] == 2 and isinstance(s.numbers["pgd_restarts"], int)


def test_networks_reports_the_clean_accuracy_of_each_cnn(mnist_test, monkeypatch):
    x_test, y_test = mnist_test
    small = {
        "train": data.subset(x_test[5000:], y_test[5000:], 128, seed=1),
        "test": (x_test[:60], y_test[:60]),
    }
    monkeypatch.setattr(data, "load_mnist", lambda split, **kw: small[split])
    s = chapter.networks(100, 1, 0, 0.035, "coif1", 2, 0.01, 30, "cpu")
    assert s.numbers["K"] == 27 and s.numbers["n_train"] == 100
    for name, key in (("no defense", "clean_all_plain"), ("front end", "clean_all_fe")):
        v = s.victims[name]
        with torch.no_grad():  # the front end (if any) then the classifier, by hand
            logits = v.classifier(x_test[:60] if v.frontend is None else v.frontend(x_test[:60]))
        assert s.numbers[key] == pytest.approx(_mean((logits.argmax(1) == y_test[:60]).numpy()))
        assert s.table.iloc[:, 0][name] == round(s.numbers[key], 2)
    x, y = data.subset(x_test[:60], y_test[:60], 30, seed=0)
    assert torch.equal(s.x, x) and torch.equal(s.y, y)


def test_table2_reports_the_most_damaging_gradient_and_the_audit(outcomes, audit_result):
    s = chapter.table2(outcomes, audit_result)
    g = _worst_gradient(outcomes, "PGD")
    assert s.table.loc["PGD", "front end"] == format_accuracy(
        outcomes.correct("front end", "PGD", g)
    )
    assert s.table.loc["PGD", "front-end gradient"] == g
    assert s.table.loc["no attack", "front-end gradient"] == "-"
    assert s.numbers["pgd_fe"] == pytest.approx(_mean(outcomes.correct("front end", "PGD", g)))
    assert s.numbers["pgd_fe_lo"] < s.numbers["pgd_fe"] < s.numbers["pgd_fe_hi"]
    assert s.numbers["pgd_plain"] == pytest.approx(_mean(outcomes.correct("no defense", "PGD")))
    paper_pgd = paper_number(
        artifact="Table II", defense="front end coif1", attack="PGD 100 restarts"
    )
    assert s.table.loc["PGD", "paper: front end"] == paper_pgd
    rows = s.comparison.rows
    assert len(rows) == 5 * 2 + 2 * 2  # five attacks on two CNNs, and two audited rows per CNN
    audited = [r for r in rows if r["kind"] != "ours"]
    assert [r["kind"] for r in audited] == [PAPERS_ATTACKS, WORST_CASE] * 2
    fe = audit_result["front end"]
    paper_only = np.minimum(
        fe.correct[("clean", None)], fe.correct[("PGD", "bpda")]
    )  # Square is not the paper's
    assert audited[2]["accuracy"] == pytest.approx(_mean(paper_only))
    assert audited[3]["accuracy"] == pytest.approx(_mean(fe.robust))
    assert audited[3]["paper"] == paper_pgd


def test_table5_all_three_is_the_worst_over_the_gradients(outcomes, audit_result):
    s = chapter.table5(outcomes, audit_result)
    for a in chapter.TABLE5_ATTACKS:
        every = np.min([outcomes.correct("front end", a, g) for g in GRADIENTS], axis=0)
        assert s.table.loc[a, "all three"] == format_accuracy(every)
        assert s.table.loc[a, "no defense"] == format_accuracy(outcomes.correct("no defense", a))
    assert (
        s.table.loc["momentum iterative FGSM", "paper: iterated"] == "-"
    )  # the paper has no such number
    assert len(s.comparison.rows) == 6 * 3 - 1
    assert s.table["worst case, all attacks (12 images)"].nunique() == 1
    g = _worst_gradient(outcomes, "FGSM")
    assert s.numbers["fgsm_fe"] == pytest.approx(_mean(outcomes.correct("front end", "FGSM", g)))
    assert s.numbers["ll_plain"] == pytest.approx(
        _mean(outcomes.correct("no defense", "locally linear"))
    )


def test_pgd_cost_sets_the_counted_evaluations_beside_the_nominal_count(outcomes):
    s = chapter.pgd_cost(outcomes, restarts=2, steps=2)
    assert s.numbers["pgd_nominal"] == 2 * (2 + 1)
    assert list(s.frame.index) == [("no defense", "-")] + [("front end", g) for g in GRADIENTS]
    spent = outcomes.results[outcomes.cell("no defense", "PGD", None)]
    assert s.numbers["pgd_cost_plain"] == pytest.approx(100 * sum(spent["evaluations"]) / N / 6)
    g = _worst_gradient(outcomes, "PGD")
    fe = outcomes.results[outcomes.cell("front end", "PGD", g)]
    assert s.numbers["pgd_cost_fe"] == pytest.approx(100 * sum(fe["evaluations"]) / N / 6)


def test_fig8b_counts_unchanged_supports(outcomes):
    s = chapter.fig8b(outcomes)
    overlap = np.asarray(outcomes.values("overlap", "front end", "PGD", "bpda"))
    assert s.K == 27
    assert (
        0 < s.numbers["overlap_full_bpda"] == _mean(overlap == 27) < 100
    )  # support of K = 27 unchanged
    assert s.numbers["overlap_min_bpda"] == overlap.min() and s.numbers[
        "overlap_median_bpda"
    ] == np.median(overlap)
    assert [ax.get_title() for ax in s.figure.axes] == [f"PGD, {g}" for g in GRADIENTS]
    assert not plt.fignum_exists(s.figure.number)


def test_disagreements_join_the_sections_rows(outcomes, audit_result):
    t2, t5 = chapter.table2(outcomes, audit_result), chapter.table5(outcomes, audit_result)
    s = chapter.disagreements(t2.comparison, t5.comparison)
    assert s.comparison.rows == t2.comparison.rows + t5.comparison.rows
    verdicts = [r["verdict"] for r in s.comparison.rows]
    assert s.numbers["n_compared"] == len(verdicts) == 14 + 17
    assert s.numbers["n_disagree"] == s.numbers["n_disagree_above"] + s.numbers["n_disagree_below"]
    assert s.numbers["n_disagree"] == len(s.table) == sum(v != "agrees" for v in verdicts)
    above = [r for r in s.comparison.rows if r["verdict"] == "ours higher"]
    assert all(r["lo"] > r["paper"] for r in above)


@pytest.fixture(scope="module")
def digits(mnist_test):
    x, y = mnist_test
    return x[:8].clone(), y[:8].clone()


def test_fig5_shows_the_images_pgd_fools_without_the_front_end_only_first(outcomes, mnist_test):
    x, y = mnist_test[0][:N].clone(), mnist_test[1][:N].clone()
    s = chapter.fig5(outcomes, x, y, EPS, n_shown=3)
    fooled = outcomes.correct("no defense", "PGD") == 0
    held = outcomes.correct("front end", "PGD", "bpda") == 1
    first = np.flatnonzero(fooled & held)[:3]
    assert len(first) == 3 and torch.equal(s.images, x[first])
    assert torch.equal(
        s.pred_plain, predict(outcomes.grid.victims["no defense"].classifier, s.adv_plain)
    )
    assert (s.adv_fe - s.images).abs().max() <= EPS + 1e-6
    assert len(s.figure.axes) == 4 * 3


def test_table6_reads_each_step_count_off_one_run_and_fig10_splits_it(digits):
    x, y = digits
    victims = _victims(1)
    s = chapter.table6(victims, x, y, EPS, 0, 6, [0.01, 0.05], [2, 20], 0.01, 4)
    x6, y6 = data.subset(x, y, 6, seed=1)
    assert torch.equal(s.x_sweep, x6)
    model = victims["front end"].model("bpda")
    x2 = attacks.ifgsm(model, x6, y6, EPS, 0.05, 2)
    assert s.table.loc["2 steps", "delta = 0.05"] == format_accuracy(predict(model, x2) == y6)
    assert (
        s.table.loc["2 steps", "paper: delta = 0.05"] == "-"
    )  # the paper reports 20, 100 and 1000 steps
    assert [r["row"] for r in s.comparison.rows] == ["20 steps", "20 steps"]
    assert s.comparison.rows[1]["paper"] == paper_number(
        artifact="Table VI", attack="iterative FGSM 20 steps of 0.05"
    )
    assert s.numbers["sweep_max"] == 20
    assert "flips_mean" in s.sweep[0.01] and "flips_mean" not in s.sweep[0.05]
    f = chapter.fig10(s, EPS, 0.01)
    assert (
        f.numbers["flip_reach"] == 19
    )  # eps / delta = 20 steps, at most the run's length less one
    mean = np.asarray(s.sweep[0.01]["flips_mean"])
    total = 19 * f.numbers["flips_first_steps"] + f.numbers["flips_late_steps"]
    assert total == pytest.approx(mean.sum())
    assert f.figure.axes[0].get_title().endswith("6 images")


def test_fig9_counts_the_units_of_the_four_relu_layers(digits):
    x, y = digits
    s = chapter.fig9(_victims(2), x, y, EPS, 0.01, 4)
    assert (
        s.numbers["n_relu"] == 28 * 28 * 20 + 10 * 10 * 40 + 1000 + 1000
    )  # conv1 (same), conv2 (valid), fc1, fc2
    for d, key in (("none", "plain"), ("front end", "fe")):
        total = s.flips[d]["total"]
        assert len(total) == len(x) and s.table.loc["all", d] == round(float(np.mean(total)), 3)
        assert s.numbers[f"flips_mean_{key}"] <= s.numbers[f"flips_p99_{key}"] <= max(total)
    assert list(s.table.index) == [*NielsenCNN.RELU_LAYERS, "all"]


def test_fig12_counts_distances_of_the_images_cw_fooled(digits):
    x, y = digits
    s = chapter.fig12(_victims(3), x, y, EPS, 0, 4, 5, 1, 4)
    for v, key in (("no defense", "plain"), ("front end", "fe")):
        linf = s.linf[v]
        assert len(linf) == 4
        assert s.numbers[f"cw_beyond_{key}"] == pytest.approx(_mean(linf > EPS + 1e-6))
        clean = s.outcomes.correct(v, "no attack")
        assert (
            s.table.loc[v, "fooled (of correct before)"] == f"{s.found[v].sum()} of {clean.sum()}"
        )
        assert not (s.found[v] & (clean == 0)).any()
    rows = s.comparison.rows
    assert rows[0]["row"] == "C&W" and len(rows) == 1 + int(s.found["front end"].any())


def test_reduced_settings_name_each_weaker_attack_and_none_at_the_papers_scale():
    assert chapter.reduced_settings(**chapter.PAPER_ATTACK_SETTINGS) == {}
    reduced = chapter.reduced_settings(ifgsm_steps=1000, ill_steps=100, pgd_restarts=5, pgd_steps=100)
    assert set(reduced) == {"Table II / PGD", "Table V / PGD"}
    assert reduced["Table II / PGD"] == ("attack", "PGD: 5 restart(s) x 100 steps (paper 100 x 100)")
    fewer = chapter.reduced_settings(ifgsm_steps=30, ill_steps=100, pgd_restarts=100, pgd_steps=100)
    assert {k.split(" / ")[1] for k in fewer} == {"iterative FGSM", "momentum iterative FGSM"}
