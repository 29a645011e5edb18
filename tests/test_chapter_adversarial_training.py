"""sparsenb.chapters.adversarial_training: every section on a tiny run (networks of a few batches, a few images).

Also: the page takes its "front end alone" network from the multiclass chapter
(:func:`sparsenb.chapters.mnist_multiclass.cnn_victims` with the same arguments), so that the checkpoint is read back
rather than retrained and the front end of Table III is the network of Table II, as in the paper; the profiles must
agree on the parameters that decide it.
"""

from __future__ import annotations

import math
import statistics
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from sparsenb.book.layout import Book, chapter_parameters  # noqa: E402
from sparsenb.checks import ArgumentError  # noqa: E402
from sparsenb.cache import PROJECT_ROOT  # noqa: E402
from sparsenb.chapters import adversarial_training as chapter  # noqa: E402
from sparsenb.chapters import mnist_multiclass as mnist  # noqa: E402
from sparsenb.lab.audit import BUDGETS, network_audit  # noqa: E402
from sparsenb.lab.paper import FILENAME, SCREENING, WORST_CASE, Comparison, reference_dir  # noqa: E402

EPS = [0.1, 0.2, 0.3]
MADRY = "adversarial training at eps = {}".format
BOTH = "front end + adversarial training at eps = {}".format
ALONE = "front end alone"
PGD = "PGD 100 steps 100 restarts"


# --------------------------------------------------------------------------
# the profiles (formerly tests/test_adversarial_training.py)
# --------------------------------------------------------------------------
#: The parameters that decide the multiclass chapter's checkpoints (training data, recipe, front end).
CHECKPOINT_KEYS = ("n_train", "epochs", "seed", "rho", "wavelet")
BOOK = Book(PROJECT_ROOT)


def test_front_end_alone_is_the_multiclass_chapters_network_in_every_profile():
    for name in ("smoke", "laptop", "full"):
        mine = chapter_parameters(name, "adversarial_training", BOOK)
        multiclass = chapter_parameters(name, "mnist_multiclass", BOOK)
        assert {k: mine[k] for k in CHECKPOINT_KEYS} == {
            k: multiclass[k] for k in CHECKPOINT_KEYS
        }, name


def test_the_papers_budgets_are_trained_and_attacked():
    """Table III's three budgets and the mismatch (train 0.1, test 0.2) in every profile: the chapter's prose
    quotes those cells by name."""
    for name in ("smoke", "laptop", "full"):
        mine = chapter_parameters(name, "adversarial_training", BOOK)
        assert (
            mine["at_eps"] == [0.1, 0.2, 0.3]
            and mine["mismatch"] == [0.1, 0.2]
            and mine["combined_eps"] == 0.2
        ), name
        assert mine["mismatch"][0] in mine["at_eps"] and mine["combined_eps"] in mine["at_eps"], (
            name
        )


# --------------------------------------------------------------------------
# the sections
# --------------------------------------------------------------------------
def _paper(**match) -> float:
    """The paper's number, read from the CSV with pandas (not through sparsenb.lab.paper)."""
    df = pd.read_csv(reference_dir() / FILENAME, dtype=str, keep_default_na=False)
    for k, v in match.items():
        df = df[df[k] == str(v)]
    assert len(df) == 1, match
    return float(df["value"].iloc[0])


def _half_width(p: float, n: int, z: float = 1.96) -> float:
    """Half the width of the Wilson interval, in points, from its textbook formula."""
    return 100 * z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)


@pytest.fixture(scope="module")
def page(tmp_path_factory, mnist_root, one_thread):
    """Every section of the page on a tiny run, in a fresh cache (so everything is computed here)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SPARSENB_DATA", str(mnist_root))
        mp.setenv("SPARSENB_CACHE", str(tmp_path_factory.mktemp("cache")))
        nets = chapter.networks(
            64,
            1,
            0,
            0.035,
            "coif1",
            2,
            0.01,
            64,
            1,
            "adam",
            1e-3,
            32,
            EPS,
            "cyclic",
            0,
            16,
            1,
            1.25,
            "bpda",
            0.2,
            [0.1, 0.2],
            50,
            "cpu",
        )
        att = chapter.attacks(
            nets,
            EPS,
            0.2,
            [0.1, 0.2],
            8,
            0,
            1,
            1,
            0.25,
            ["bpda", "projection"],
            4,
            ["Square"],
            "smoke",
            {},
            [0.2],
            4,
            50,
            "cpu",
        )
        t3 = chapter.table3(nets, att, EPS)
        only_table3 = chapter.disagreements(t3.comparison)  # before combined adds its rows
        comb = chapter.combined(nets, att, t3.comparison, 0.2, [0.1, 0.2])
        cst = chapter.cost(nets, att, EPS, 64, 1, 64, 1, 1, 0.2, [2], 1, 1, "cpu")
        dis = chapter.disagreements(t3.comparison)
        summ = chapter.summary(nets, att, comb, cst)
        yield SimpleNamespace(
            nets=nets,
            att=att,
            t3=t3,
            only_table3=only_table3,
            comb=comb,
            cst=cst,
            dis=dis,
            summ=summ,
        )


def test_conventions_quote_the_settings_and_the_interval_widths():
    s = chapter.conventions(
        EPS,
        0,
        [1, 2, 5],
        "adam",
        1e-3,
        64,
        "cyclic",
        1,
        500,
        3,
        0.5,
        "bpda",
        500,
        20,
        2,
        0.25,
        ["bpda", "projection"],
        100,
        ["APGD-CE", "Square"],
    )
    n = s.numbers
    assert n["at_train_shown"] == 60000 and n["at_optimizer_name"] == "Adam"
    assert n["ci_90"] == pytest.approx(_half_width(0.9, 500))
    assert n["ci_screening"] == pytest.approx(_half_width(0.5, 100))
    assert n["gradients_shown"] == "bpda, projection" and n["screening_shown"] == "APGD-CE, Square"
    assert (
        s.table.at["training images x epochs", "this page"]
        == "60000 x epochs: 1 at eps = 0.1, 2 at eps = 0.2, 5 at eps = 0.3"
    )
    assert n["at_recipe"] == (
        "PGD-3 from a random start (steps of 0.5 eps), a one-cycle learning rate, "
        "eps ramped up over 1 epoch(s), a PGD check of 500 training images after each epoch"
    )
    assert s.table.at["screening audit: images, attacks", "this page"] == "100: APGD-CE, Square"
    sgd = chapter.conventions(
        EPS, 5, 1, "sgd", 0.01, 64, "step", 0, 0, 1, 1.25, "bpda", 10, 2, 1, 0.25, ["bpda"], 5, ["Square"]
    )
    assert sgd.numbers["at_optimizer_name"] == "SGD" and sgd.numbers["at_train_shown"] == 5
    assert sgd.numbers["at_recipe"] == "FGSM from a random start (one step of 1.25 eps), a constant learning rate"
    with pytest.raises(ArgumentError, match="^at_epochs"):
        chapter.epochs_at(EPS, [1, 2])
    with pytest.raises(ArgumentError, match="^at_epochs"):
        chapter.epochs_at(EPS, 0)


def test_networks_front_end_alone_adversarial_training_and_both(page):
    nets = page.nets
    expected = [ALONE, *(MADRY(e) for e in EPS), BOTH(0.1), BOTH(0.2)]
    assert list(nets.victims) == expected
    assert nets.victims[ALONE].frontend is not None and nets.victims[BOTH(0.2)].frontend is nets.fe
    assert all(nets.victims[MADRY(e)].frontend is None for e in EPS)
    assert len(nets.x_at) == 64 and nets.fe_inner.gradient == "bpda"
    assert {e: (a.eps, dict(a.kwargs)["step"]) for e, a in nets.inner.items()} == {
        e: (e, pytest.approx(1.25 * e)) for e in EPS
    }
    # each budget trains its own network: the weights differ
    w = [next(nets.victims[MADRY(e)].model().parameters()) for e in EPS]
    assert not np.allclose(w[0].detach().numpy(), w[2].detach().numpy())
    assert nets.numbers["n_natural"] == 50.0
    # the training log: one row per adversarially trained network, the guard read once per epoch
    log = nets.log
    assert list(log.index) == expected[1:]
    assert (log["epochs run"] == 1).all() and (log["epoch kept"] == 1).all()
    assert all(0 <= float(a) <= 100 for a in log["guard accuracy per epoch (%)"])
    assert nets.numbers["at_minutes"] == pytest.approx(log["minutes"].sum())
    assert nets.numbers["n_stopped"] == int((log["stopped at epoch"] != "").sum())
    assert [nets.victims[MADRY(e)].model().fit_log["epochs"][0]["epoch"] for e in EPS] == [1, 1, 1]
    assert all(len(c) == 50 and set(np.unique(c)) <= {0, 1} for c in nets.natural.values())
    assert list(nets.table.index) == expected


def test_attacks_cells_in_order_and_worst_case_never_above_pgd(page, tmp_path):
    att = page.att
    assert att.cells == [
        (ALONE, 0.1),
        (ALONE, 0.2),
        (ALONE, 0.3),
        (MADRY(0.1), 0.1),
        (MADRY(0.2), 0.2),
        (MADRY(0.3), 0.3),
        (BOTH(0.2), 0.2),
        (MADRY(0.1), 0.2),
        (BOTH(0.1), 0.2),
    ]
    assert att.table3_cells == att.cells[:6]
    assert att.numbers == {"mismatch_train": 0.1, "mismatch_test": 0.2, "n_cells": 9.0, "n_audit": 4}
    assert len(att.table) == 10 and len(att.result.audited) == 4
    # the front end alone at 0.2 shows the network's audit (the multiclass chapter's), the rest a screening
    assert list(att.audits) == [(ALONE, 0.2)] and list(att.table["audit"]).count("screening") == 9
    wc = att.audits[(ALONE, 0.2)]
    victim = page.nets.victims[ALONE]
    x_test, y_test = mnist.test_images(0, 0)
    again = network_audit(victim.model(), x_test, y_test, 0.2, BUDGETS["smoke"], 4, 0, 50, folder=tmp_path)
    assert np.array_equal(wc.robust, again.robust) and np.array_equal(wc.images, again.images)
    assert chapter.shown_worst(att, ALONE, 0.2)[1] == WORST_CASE
    assert chapter.shown_worst(att, ALONE, 0.1)[1] == SCREENING
    for v, e in att.cells:  # PGD is one of the audit's attacks
        assert (att.result.worst(v, e).robust <= att.result.pgd(v, e)[att.result.audited]).all()


def test_table3_numbers_are_the_cells_and_the_papers(page):
    t3, result = page.t3, page.att.result
    n = t3.numbers
    for e in EPS:
        tag = str(e).replace(".", "")
        by_gradient = result.pgd_cells[(ALONE, e)]
        assert n[f"fe_pgd_{tag}"] == pytest.approx(
            100 * min(c.mean() for c in by_gradient.values())
        )
        assert n[f"madry_worst_{tag}"] == pytest.approx(
            100 * result.worst(MADRY(e), e).robust.mean()
        )
        fe_worst = page.att.audits[(ALONE, e)] if e == 0.2 else result.worst(ALONE, e)
        assert n[f"fe_worst_{tag}"] == pytest.approx(100 * fe_worst.robust.mean())
        assert n[f"paper_fe_{tag}"] == _paper(
            artifact="Table III", defense="front end coif1", eps=e, attack=PGD
        )
        assert n[f"paper_madry_{tag}"] == _paper(
            artifact="Table III", defense="Madry adversarial training", eps=e, attack=PGD
        )
    assert "madry_nat_02" not in n and n["madry_nat_03"] == pytest.approx(
        100 * page.nets.natural[MADRY(0.3)].mean()
    )
    assert n["e_lo"] == 0.1 and n["e_hi"] == 0.3
    assert (
        n["fe_drop"] >= 0 and n["madry_drop"] >= 0
    )  # the worst case is never above PGD on the audited images
    # three budgets x two defenses x (PGD, natural, worst case), each with a paper number
    assert [r["table"] for r in t3.comparison.rows[:18]] == [
        "Table III"
    ] * 18  # combined adds its rows after
    worst_rows = [r for r in t3.comparison.rows[:18] if r["kind"] in (WORST_CASE, SCREENING)]
    assert [r["kind"] for r in worst_rows].count(WORST_CASE) == 1 and len(worst_rows) == 6
    assert list(t3.table.index.str.slice(0, 9)) == sorted(t3.table.index.str.slice(0, 9))
    assert set(t3.provable["defense"]) == {"Raghunathan et al", "Wong et al"}


def test_table3_figure_plots_the_papers_numbers_and_is_closed(page):
    t3 = page.t3
    ax = t3.figure.axes[0]
    crosses = [line for line in ax.get_lines() if line.get_label() == "front end alone, paper"]
    assert list(crosses[0].get_ydata()) == [
        _paper(artifact="Table III", defense="front end coif1", eps=e, attack=PGD) for e in EPS
    ]
    assert not plt.fignum_exists(t3.figure.number)


def test_combined_rows_agree_with_table3_and_the_paper(page):
    comb, t3 = page.comb, page.t3
    n = comb.numbers
    assert comb.on_paper and len(comb.table) == 5 and "natural" in comb.table.columns
    assert n["comb_fe"] == t3.numbers["fe_pgd_02"] and n["comb_madry"] == t3.numbers["madry_pgd_02"]
    assert n["comb_worst_fe"] == t3.numbers["fe_worst_02"]
    assert n["paper_fe_alone"] == t3.numbers["paper_fe_02"]
    assert n["paper_both"] == _paper(
        artifact="text VI-B", defense="front end + adversarial training"
    )
    assert n["paper_mm_madry"] == _paper(
        artifact="text VI-B", defense="adversarial training eps 0.1"
    )
    worst = page.att.result.worst(BOTH(0.1), 0.2).robust
    assert n["comb_worst_mm_both"] == pytest.approx(100 * worst.mean())


def test_disagreements_count_and_the_scorecard_sections(page):
    assert (
        page.only_table3.sections == ["Table III"] and page.only_table3.numbers["n_compared"] == 18
    )
    n = page.dis.numbers
    assert page.dis.sections == ["Table III", "Sec. VI-B"]
    assert (
        n["n_compared"] == 18 + 10 == len(page.dis.table)
    )  # five rows of Sec. VI-B, PGD and worst case each
    assert n["n_disagree"] == n["n_disagree_above"] + n["n_disagree_below"]
    assert n["n_disagree"] == int((page.dis.table["verdict"] != "agrees").sum())


def test_cost_slowdowns_and_hours_from_the_measured_medians(page):
    cst = page.cst
    runs, batch = cst.measured["runs"], cst.measured["batch_size"]
    cpu = {k: statistics.median(v["cpu"]) for k, v in runs.items()}
    assert list(cst.table.index) == [
        "plain",
        "front end",
        "adversarial, PGD-1",
        "adversarial, PGD-2",
        "front end + adversarial",
    ]
    assert cst.table.at["plain", "slowdown (CPU)"] == 1.0
    assert cst.ms == [1, 2] and cst.numbers["cost_max_m"] == 2.0
    assert cst.numbers["slowdown_max"] == pytest.approx(cpu["adversarial, PGD-2"] / cpu["plain"])
    assert cst.numbers["paper_hours"] == pytest.approx(
        cpu["adversarial, PGD-2"] / batch * 100_000 * 50 / 3600
    )
    assert list(cst.hours.index) == [ALONE, MADRY(0.2), BOTH(0.2)] == list(cst.points)
    hours = {name: h for name, (h, _, _) in cst.points.items()}
    assert hours[MADRY(0.2)] == pytest.approx(
        cpu["adversarial, PGD-1"] / batch * 64 / 3600
    )  # 64 images, 1 epoch
    assert hours[BOTH(0.2)] == pytest.approx(cpu["front end + adversarial"] / batch * 64 / 3600)
    assert (
        cst.numbers["fe_hours"] == hours[ALONE] >= cpu["front end"] / batch * 64 / 3600
    )  # plus sparsifying once
    panel_a = cst.figure.axes[0].get_lines()
    assert list(panel_a[1].get_ydata()) == [2, 3]  # M + 1
    assert not plt.fignum_exists(cst.figure.number)


def test_summary_one_row_per_cell_with_the_papers_pgd(page):
    table = page.summ.table
    assert list(table.index) == [f"{v} (tested at {e})" for v, e in page.att.cells]
    assert table.at[f"{BOTH(0.2)} (tested at 0.2)", "paper, PGD"] == _paper(
        artifact="text VI-B", defense="front end + adversarial training"
    )
    assert table.at[f"{ALONE} (tested at 0.3)", "paper, PGD"] == _paper(
        artifact="Table III", defense="front end coif1", eps=0.3, attack=PGD
    )
    assert table.at[f"{ALONE} (tested at 0.1)", "training slowdown (CPU)"] == round(
        page.cst.numbers["slowdown_fe"], 2
    )


def _reduced(**change):
    settings = {
        "at_train": 0,  # all 60,000 images
        "at_epochs": chapter.MADRY["steps"] * chapter.MADRY["batch"] // 60_000 + 1,
        "inner_steps": chapter.MADRY["inner_steps"],
        "pgd_restarts": chapter.PAPER_PGD_SETTINGS["restarts"],
        "pgd_steps": chapter.PAPER_PGD_SETTINGS["steps"],
        "at_eps": [0.1, 0.2, 0.3],
        "combined_eps": 0.2,
        "mismatch": (0.1, 0.2),
    }
    return chapter.reduced_settings(**(settings | change))


def test_reduced_settings_separate_less_training_from_a_weaker_attack():
    assert _reduced() == {}
    weaker = _reduced(pgd_restarts=1)
    assert all(kind == "attack" for kind, _ in weaker.values())
    assert "Table III / eps = 0.1, front end alone / adversarial" in weaker
    assert "Table III / eps = 0.3, adversarial training / adversarial" in weaker
    less = _reduced(inner_steps=7, pgd_restarts=1)
    assert less["Table III / eps = 0.1, adversarial training"][0] == "training"  # the whole row, natural included
    assert less["Table III / eps = 0.1, front end alone / adversarial"][0] == "attack"  # no training to reduce
    assert less["Sec. VI-B / adversarial training (tested at 0.2)"][0] == "training"
    assert less["Sec. VI-B / front end alone (tested at 0.2)"][0] == "attack"
    assert "PGD-7" in less["Table III / eps = 0.1, adversarial training"][1]
    assert _reduced(at_epochs=1)["Table III / eps = 0.3, adversarial training"][0] == "training"
    short_at_03 = _reduced(at_epochs=[84, 84, 1])  # only the network at 0.3 trained less than Madry et al.
    assert set(short_at_03) == {"Table III / eps = 0.3, adversarial training"}
    with pytest.raises(ArgumentError, match="^combined_eps"):
        _reduced(combined_eps=0.25)
