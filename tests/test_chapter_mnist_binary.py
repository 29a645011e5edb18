"""sparsenb.chapters.mnist_binary: each section of the binary page, run end to end on a few hundred images.

The sections are chained as the page chains them (data, SVMs, their grid and
audit, Table I, the figures, the two-layer networks, the comparison), at a
scale of seconds, in a private cache; each test checks what a section
returns against a computation of its own, an identity or a known answer.
"""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from sparsenb import attacks, data  # noqa: E402
from sparsenb.chapters import mnist_binary as chapter  # noqa: E402
from sparsenb.evaluation import predict  # noqa: E402
from sparsenb.frontend import defended  # noqa: E402
from sparsenb.lab.paper import OTHER_SETTING, OURS, PAPERS_ATTACKS, WORST_CASE, paper_number  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

WAVELETS = ["db5", "coif1"]
RHO_MAIN, RHO_GRID = 0.02, [0.05]
EPS_MAIN, EPS_GRID = 0.1, [0.0, 0.1]
ITER_STEP = 0.05
AUDIT_IMAGES = 8
NN_EPS = [0.0, 0.1, 0.25]
NN_GRADIENTS = ["bpda", "projection"]


@pytest.fixture(scope="module")
def page(tmp_path_factory, mnist_root):
    """The page's sections on 300 training and 60 test images (smoke audit), in a private cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SPARSENB_CACHE", str(tmp_path_factory.mktemp("cache")))
        mp.setenv("SPARSENB_DATA", str(mnist_root))
        d = chapter.data_split("official", 300, 60, seed=0)
        svms = chapter.linear_svms(d, WAVELETS, RHO_GRID, RHO_MAIN, svm_max_iter=500, seed=0)
        grid = chapter.svm_grid(d, svms, EPS_MAIN, EPS_GRID, ITER_STEP)
        audited = chapter.svm_audit(d, svms, grid, [EPS_MAIN], "smoke", AUDIT_IMAGES, seed=0)
        t1 = chapter.table1(svms, grid, audited)
        clean = chapter.clean_accuracy(svms, grid)
        nets = chapter.two_layer_networks(d, WAVELETS, 0.03, nn_steps=40, seed=0, device="cpu")
        nn = chapter.network_grid(d, nets, NN_EPS, NN_GRADIENTS, 0.05, 3)
        nn_audited = chapter.network_audit(d, nets, nn, [EPS_MAIN], EPS_MAIN, "smoke", AUDIT_IMAGES, 0)
        nn_clean = chapter.network_clean(nets, nn)
        yield {
            "d": d, "svms": svms, "grid": grid, "audited": audited, "t1": t1, "clean": clean,
            "nets": nets, "nn": nn, "nn_audited": nn_audited, "nn_clean": nn_clean,
        }


def test_iterated_steps_reach_the_budget_then_refine():
    steps = [chapter.iterated_steps(e, 0.01) for e in (0.0, 0.025, 0.05, 0.1, 0.15, 0.3)]
    assert steps == [0, 6, 10, 20, 30, 60]
    a = chapter.svm_attacks(0.1, 0.01)
    assert list(a) == ["semi-white box", "white box", "iterated white box"]
    assert dict(a["iterated white box"].kwargs) == {"step": 0.01, "steps": 20}


def test_data_split_holds_the_3s_and_7s_of_the_test_files(page, mnist_test):
    d = page["d"]
    assert d.numbers == {"n_train": 300, "n_test": 60}
    assert d.table.loc["test", "share of 7s"] == pytest.approx(float(d.y_test.double().mean()), abs=5e-4)
    x, y = mnist_test
    sevens = {bytes(img.numpy()) for img in x[y == 7]}
    threes = {bytes(img.numpy()) for img in x[y == 3]}
    for img, label in zip(d.x_test, d.y_test.tolist()):
        assert bytes(img.numpy()) in (sevens if label == 1 else threes)


def test_data_split_pooled_keeps_every_3_and_7(mnist_root, monkeypatch):
    monkeypatch.setenv("SPARSENB_DATA", str(mnist_root))
    d = chapter.data_split("pooled", 0, 0, seed=0)
    n = sum(int(((y == 3) | (y == 7)).sum()) for _, y in (data.load_mnist(s) for s in ("train", "test")))
    assert d.numbers["n_train"] + d.numbers["n_test"] == n
    assert d.numbers["n_test"] == pytest.approx(0.25 * n, abs=2)


def test_linear_svms_one_per_wavelet_and_rho(page):
    svms = page["svms"]
    assert svms.numbers == {"K": 15}  # floor(0.02 * 784)
    assert set(svms.defended) == {f"{w} rho={r}" for w in WAVELETS for r in (0.02, 0.05)}
    assert list(svms.main_victims) == ["db5 rho=0.02", "coif1 rho=0.02"]
    assert svms.plain["no defense"].frontend is None
    assert not torch.equal(svms.defended["db5 rho=0.02"].classifier.w, svms.plain["no defense"].classifier.w)


def test_svm_grid_cells_and_outcomes(page):
    d, svms, grid = page["d"], page["svms"], page["grid"]
    # clean: 1 + 2; semi-white box on the undefended SVM at 0 and 0.1; three attacks on the 4 SVMs at 0.1 (Table I)
    # and on the 2 main ones at 0 and 0.1 (Fig. 6b), whose cells at 0.1 are Table I's: 3 + 2 + 12 + 6
    assert grid.numbers == {"n_svm_cells": 23, "iter_step": ITER_STEP}
    out = grid.outcomes
    for a in grid.attacks:  # a budget of 0 leaves every image as it is
        np.testing.assert_array_equal(out.correct("coif1 rho=0.02", a, eps=0.0), out.correct("coif1 rho=0.02", "no attack"))
    svm = svms.plain["no defense"].classifier
    x_adv = attacks.semi_white_box(svm.w, d.x_test, d.y_test, EPS_MAIN)
    expected = (predict(svm, x_adv) == d.y_test).int().numpy()
    np.testing.assert_array_equal(out.correct("no defense", "semi-white box", eps=EPS_MAIN), expected)


def test_svm_audit_worst_case_is_below_the_papers_attacks(page):
    audited, svms = page["audited"], page["svms"]
    n = audited.numbers
    assert n["n_audit"] == AUDIT_IMAGES and n["audit_eps_shown"] == "0.1" and n["eps_main"] == EPS_MAIN
    for w in WAVELETS:
        worst = audited.audits[EPS_MAIN][svms.main[w]]
        assert n[f"wc_svm_{w}"] == pytest.approx(100 * worst.robust.mean())
        assert n[f"wc_svm_{w}"] <= n[f"wc_paper_svm_{w}"]  # more attacks can only lower it
        assert isinstance(n[f"found_svm_{w}"], str)


def test_table1_numbers_rows_and_closest_wavelet(page):
    t1, grid, audited = page["t1"], page["grid"], page["audited"]
    out = grid.outcomes
    assert t1.numbers["t1_none"] == pytest.approx(100 * out.correct("no defense", "semi-white box", eps=EPS_MAIN).mean())
    assert t1.numbers["t1_coif1_white"] == pytest.approx(100 * out.correct("coif1 rho=0.02", "white box", eps=EPS_MAIN).mean())
    defended_values = [t1.numbers[f"t1_{w}_{s}"] for w in WAVELETS for s in ("semi", "white")]
    assert t1.least_defended == min(defended_values)
    assert list(t1.table.index) == ["semi-white box", "white box",
                                    f"{PAPERS_ATTACKS} ({AUDIT_IMAGES} images)", f"{WORST_CASE} ({AUDIT_IMAGES} images)"]
    assert list(t1.table.columns[::2]) == ["no defense", "front end db5", "front end coif1"]
    kinds = {(r["column"], r["row"]): r["kind"] for r in t1.comparison.rows}
    assert kinds[("front end db5", "white box")] == OURS and kinds[("front end coif1", "white box")] == OTHER_SETTING
    # the closest front end, from the paper's numbers: |ours - paper| averaged over its column's four rows
    semi = paper_number(artifact="Table I", defense="front end db5", attack="semi-white box")
    white = paper_number(artifact="Table I", defense="front end db5", attack="white box")
    gaps = {}
    for w in WAVELETS:
        worst = audited.numbers
        ours = [(t1.numbers[f"t1_{w}_semi"], semi), (t1.numbers[f"t1_{w}_white"], white),
                (worst[f"wc_paper_svm_{w}"], white), (worst[f"wc_svm_{w}"], white)]
        gaps[w] = np.mean([abs(o - p) for o, p in ours])
    closest = t1.numbers["closest_wavelet"]
    assert t1.numbers["closest_gap"] == pytest.approx(gaps[closest], abs=0.01)  # the comparison rounds to 0.01
    assert gaps[closest] == pytest.approx(min(gaps.values()), abs=0.01)  # ties may go either way


def test_clean_accuracy_is_the_svms_own(page):
    d, svms, clean = page["d"], page["svms"], page["clean"]
    svm = svms.plain["no defense"].classifier
    assert clean.numbers["svm_clean"] == pytest.approx(100 * float((predict(svm, d.x_test) == d.y_test).double().mean()))
    fe = svms.frontends["db5 rho=0.02"]
    ours = predict(defended(fe, svms.defended["db5 rho=0.02"].classifier), d.x_test)
    p = 100 * float((ours == d.y_test).double().mean())
    assert clean.table.loc["no attack", "front end db5"].startswith(f"{p:.1f} [")
    assert [r["column"] for r in clean.comparison.rows] == ["no defense"]  # the paper gives the undefended one only


def test_svm_sweeps_series_and_best_rho(page):
    svms, grid = page["svms"], page["grid"]
    s = chapter.svm_sweeps(svms, grid, page["audited"])
    out = grid.outcomes
    rhos = [0.02, 0.05]
    white = {w: [100 * out.correct(f"{w} rho={r}", "white box", eps=EPS_MAIN).mean() for r in rhos] for w in WAVELETS}
    expected = ", ".join(f"{rhos[int(np.argmax(white[w]))]:.1%} ({w})" for w in WAVELETS)
    assert s.numbers == {"best_rho": expected}
    # Fig. 6a at rho_main and Fig. 6b at eps_main are the same cell
    assert s.by_rho["db5"]["iterated white box"][0] == s.by_eps["db5"]["iterated white box"][EPS_GRID.index(EPS_MAIN)]
    assert s.audited["coif1"] == [page["audited"].audits[EPS_MAIN]["coif1 rho=0.02"].accuracy()]
    assert len(s.figure.axes) == 2 * len(WAVELETS)
    assert not plt.fignum_exists(s.figure.number)


def test_support_overlap_is_the_supports_intersection(page):
    d, svms, grid = page["d"], page["svms"], page["grid"]
    s = chapter.support_overlap(svms, grid)
    fe, svm = svms.frontends["coif1 rho=0.02"], svms.defended["coif1 rho=0.02"].classifier
    x_adv = attacks.white_box(svm.w, d.x_test, d.y_test, EPS_MAIN, fe)
    overlap = (fe.support(d.x_test) & fe.support(x_adv)).flatten(1).sum(1).numpy()
    np.testing.assert_array_equal(s.overlaps["coif1"], overlap)
    assert s.numbers["overlap_full_coif1"] == pytest.approx(float(np.mean(overlap == 15)))
    assert s.numbers["overlap_mean_coif1"] == pytest.approx(float(np.mean(overlap)))
    assert len(s.figure.axes) == len(WAVELETS)


def test_successes_and_failures_picks_the_first_image_of_each_case(page):
    d, svms, grid = page["d"], page["svms"], page["grid"]
    s = chapter.successes_and_failures(d, svms, grid)
    assert s.numbers == {"fig11_wavelet": "coif1"}
    fe, svm = svms.frontends["coif1 rho=0.02"], svms.defended["coif1 rho=0.02"].classifier
    x_adv = attacks.white_box(svm.w, d.x_test, d.y_test, EPS_MAIN, fe)
    held = (predict(defended(fe, svm), x_adv) == d.y_test).numpy()
    ov = grid.outcomes.values("overlap", "coif1 rho=0.02", "white box", eps=EPS_MAIN)
    for case, i in s.picks.items():
        mask = held == case.startswith("holds")
        mask &= ov >= np.quantile(ov, 0.75) if case.endswith("high overlap") else ov <= np.quantile(ov, 0.25)
        assert i == int(np.flatnonzero(mask)[0])
    assert s.picks, "premise: some case has an image"
    predicted = s.rows[2][2]
    assert [bool(p == d.y_test[i]) for p, i in zip(predicted, s.picks.values())] == [
        c.startswith("holds") for c in s.picks]
    assert len(s.figure.axes) == 3 * len(s.picks)


def test_network_grid_table_and_clean_accuracy(page):
    d, nets, nn, nn_clean = page["d"], page["nets"], page["nn"], page["nn_clean"]
    assert nn.numbers == {"nn_attack_steps": 3, "nn_attack_step": 0.05}
    assert list(nn.table.columns) == NN_EPS
    assert set(nn.table.index) == {("no defense", "-")} | {(f"front end {w}", g) for w in WAVELETS for g in NN_GRADIENTS}
    for v in nets.victims:  # a budget of 0 leaves every image as it is
        np.testing.assert_array_equal(nn.outcomes.correct(v, chapter.ILL, "bpda" if v != "no defense" else None, 0.0),
                                      nn.outcomes.correct(v, "no attack"))
    net = nets.victims["no defense"].model()
    assert nn_clean.numbers["nn_clean"] == pytest.approx(100 * float((predict(net, d.x_test) == d.y_test).double().mean()))
    assert [r["column"] for r in nn_clean.comparison.rows] == ["no defense", "front end db5"]


def test_network_audit_and_sweep(page):
    nets, nn, nn_audited = page["nets"], page["nn"], page["nn_audited"]
    worst = nn_audited.audits[EPS_MAIN]["front end coif1"]
    assert nn_audited.numbers["wc_nn"] == pytest.approx(100 * worst.robust.mean())
    assert nn_audited.numbers["wc_nn"] <= nn_audited.numbers["wc_paper_nn"]
    assert nn_audited.numbers["nn_wavelet"] == "coif1"
    assert len(nn_audited.table) == len(nets.victims)  # one row per victim at the one budget
    s = chapter.network_sweep(nets, nn, nn_audited)
    assert s.numbers["nn_eps_mid"] == 0.25  # the budget nearest 0.2
    worst_gradient = min(100 * nn.outcomes.correct("front end coif1", chapter.ILL, g, 0.25).mean() for g in NN_GRADIENTS)
    assert s.numbers["nn_mid_def"] == pytest.approx(worst_gradient)
    assert s.numbers["nn_mid_plain"] == pytest.approx(100 * nn.outcomes.correct("no defense", chapter.ILL, None, 0.25).mean())
    assert set(s.audited) == {"front end db5", "front end coif1"}
    assert not plt.fignum_exists(s.figure.number)


def test_beside_paper_keeps_every_row_in_order(page):
    t1, clean, nn_clean = page["t1"], page["clean"], page["nn_clean"]
    s = chapter.beside_paper(t1, clean, nn_clean)
    n = len(t1.comparison.rows) + len(clean.comparison.rows) + len(nn_clean.comparison.rows)
    assert s.numbers["n_compared"] == n == len(s.table)
    assert s.numbers["n_agree"] + s.numbers["n_higher"] + s.numbers["n_lower"] == n
    assert list(dict.fromkeys(s.table["table"])) == ["Table I", "text VI-A", "App. B-D"]
    lower = sum(r["accuracy"] < r["paper"] and r["verdict"] != "agrees" for r in s.comparison.rows)
    assert s.numbers["n_lower"] == lower
