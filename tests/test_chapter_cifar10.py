"""sparsenb.chapters.cifar10: the pieces of the experiment and each section of the page, on small inputs."""
from __future__ import annotations

import math
import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from sparsenb import data  # noqa: E402
from sparsenb.chapters import cifar10 as cifar  # noqa: E402
from sparsenb.chapters.section import Section  # noqa: E402
from sparsenb.checks import ArgumentError  # noqa: E402
from sparsenb.frontend import rgb_to_ycbcr  # noqa: E402
from sparsenb.lab.audit import AttackSettings, RobustAccuracy, WorstCase  # noqa: E402
from sparsenb.lab.paper import OTHER_SETTING, OURS, WORST_CASE  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

EPS = cifar.EPS
ALONE, MILD = (0.035, 0.01, 0.01), (0.5, 0.25, 0.25)
#: Table IV of the paper (natural, PGD), as paper_numbers.csv holds it.
PAPER = {
    "no defense": (91.11, 11.32),
    "front end": (62.30, 39.60),
    "adversarial training": (88.63, 66.82),
    "front end + adversarial training": (88.02, 67.21),
}


@pytest.fixture
def cifar_data(mnist_root, monkeypatch):
    monkeypatch.setenv("SPARSENB_DATA", str(mnist_root))
    try:
        data.cifar10_source()
    except data.DataNotFoundError:
        pytest.skip("no CIFAR-10 in the data folder")


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson interval of k successes in n, in percent (written out here, not the package's)."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return 100 * (centre - half), 100 * (centre + half)


def outcomes(n: int, correct: int, seed: int) -> np.ndarray:
    """``correct`` ones among ``n`` 0/1 outcomes, in a seeded order."""
    v = np.r_[np.ones(correct, np.int64), np.zeros(n - correct, np.int64)]
    return np.random.default_rng(seed).permutation(v)


# ---------------------------------------------------------------- the pieces: schedule, front end, energy
def test_recipe_is_he_et_al_with_milestones_at_half_and_three_quarters():
    assert cifar.RESNET_TRAINING.milestones == (91, 136) and cifar.RESNET_TRAINING.epochs == 182
    r = cifar.recipe(10, seed=2)
    assert (r.epochs, r.milestones, r.seed, r.lr, r.momentum, r.weight_decay) == (10, (5, 8), 2, 0.1, 0.9, 1e-4)
    assert cifar.recipe(1, 0).milestones == ()
    adam = cifar.recipe(6, 0, 1e-3, 64, "adam")
    assert (adam.optimizer, adam.lr, adam.batch_size, adam.milestones, adam.weight_decay) == ("adam", 1e-3, 64, (3, 4), 1e-4)


def test_the_colour_front_end_keeps_floor_rho_n_per_ycbcr_channel():
    fe = cifar.frontend(ALONE)
    assert fe.K == (35, 10, 10) and fe.color == "ycbcr" and fe.wavelet == "sym9" and fe.channels == 3
    assert cifar.frontend(list(MILD), level=5).K == (512, 256, 256)
    x = torch.rand(4, 3, 32, 32)
    support = fe.support(x)
    assert support.shape == (4, 3, 1024) and support.sum(-1).tolist() == [[35, 10, 10]] * 4
    with pytest.raises(ArgumentError, match="gradient"):
        cifar.frontend(MILD, gradient="nope")


def test_channel_energy_is_a_share_rising_with_rho_and_whole_at_rho_one():
    torch.manual_seed(0)
    x = torch.rand(6, 3, 32, 32)
    frame = cifar.channel_energy(x, [0.01, 0.1, 0.5, 1.0], wavelets=("sym9", "haar"), levels=(1, 2))
    assert set(frame["basis"]) == {"sym9, level 1", "sym9, level 2", "haar, level 1", "haar, level 2", "DCT", "pixel"}
    for _, curve in frame.groupby(["basis", "channel"]):
        assert np.all(np.diff(curve["captured"].to_numpy()) >= -1e-12)
        assert curve["captured"].iloc[-1] == pytest.approx(1.0, abs=1e-9)
    assert np.allclose(frame["captured"] + frame["missed"], 1.0)
    # the pixel basis keeps the K largest pixels of each channel: check one number directly
    z = rgb_to_ycbcr(x.double())[:, 1].flatten(1)
    top = z.pow(2).sort(dim=1, descending=True).values[:, :102].sum(1) / z.pow(2).sum(1)
    got = frame.query("basis == 'pixel' and channel == 'Cb' and rho == 0.1")["captured"].item()
    assert got == pytest.approx(float(top.mean()), rel=1e-9)


def test_channel_energy_takes_any_iterable_of_rhos():
    frame = cifar.channel_energy(torch.rand(2, 3, 32, 32), (r for r in (0.1, 0.2)), dense=())
    assert sorted(set(frame["rho"])) == [0.1, 0.2]


def test_colour_images_one_panel_per_image():
    x = torch.rand(3, 3, 32, 32)
    fig = cifar._colour_images({"a": x, "b": x}, titles=["1", "2", "3"])
    assert len(fig.axes) == 6
    plt.close(fig)


# ---------------------------------------------------------------- sections on the data
def test_data_used_counts_both_splits_and_tells_the_full_set_from_the_subset(cifar_data):
    s = cifar.data_used()
    n_train, n_test = len(data.load_cifar10("train")[0]), len(data.load_cifar10("test")[0])
    assert (s.numbers["n_train_all"], s.numbers["n_test_all"], s.n_all) == (n_train, n_test, n_train + n_test)
    assert s.full == (s.n_all == 60000)  # the full CIFAR-10 holds 50,000 + 10,000 images, the subset 4,000
    assert s.full or (n_train, n_test) == (3000, 1000)
    assert list(s.table.index) == [s.numbers["source"]] and s.table.iloc[0].tolist() == [n_train, n_test]


def test_colour_frontend_shows_the_inputs_and_both_settings(cifar_data):
    s = cifar.colour_frontend(list(ALONE), list(MILD), "sym9", 5, seed=0, n_show=4)
    assert s.numbers["K_alone"] == "(35, 10, 10)" and s.numbers["K_mild"] == "(512, 256, 256)"
    assert s.numbers["rho_alone_shown"] == "(3.5, 1, 1)%" and s.numbers["rho_adv_shown"] == "(50, 25, 25)%"
    assert s.numbers["paper_nat_drop"] == pytest.approx(91.11 - 62.30)
    axes = np.array(s.figure.axes).reshape(3, 4)
    x, y = cifar.test_images(4, 0)
    assert [ax.get_title() for ax in axes[0]] == [data.CIFAR10_CLASSES[int(c)] for c in y]
    drawn = np.array([[ax.get_images()[0].get_array() for ax in row] for row in axes])
    assert np.allclose(drawn[0], x.permute(0, 2, 3, 1).numpy())
    # the sparser front end (middle row) departs further from the inputs than the milder one (bottom row)
    assert np.abs(drawn[1] - drawn[0]).mean() > 2 * np.abs(drawn[2] - drawn[0]).mean() > 0
    assert "K = (35, 10, 10)" in axes[1, 0].get_ylabel() and "K = (512, 256, 256)" in axes[2, 0].get_ylabel()
    assert not plt.fignum_exists(s.figure.number)


def _kept_by_pywt(images: np.ndarray, K: int, wavelet: str, level: int) -> float:
    """Mean share of energy in the K largest coefficients, with PyWavelets (periodic, the front end's convention)."""
    import pywt

    shares = []
    for img in images:
        with warnings.catch_warnings():  # five levels of an 18-tap filter on 32 x 32: PyWavelets warns, and computes
            warnings.simplefilter("ignore")
            arr, _ = pywt.coeffs_to_array(pywt.wavedec2(img, wavelet, mode="periodization", level=level))
        c2 = np.sort(arr.ravel() ** 2)[::-1]
        shares.append(c2[:K].sum() / c2.sum())
    return float(np.mean(shares))


def test_energy_per_channel_against_pywavelets_and_the_pixel_basis(cifar_data):
    rhos = (0.01, 0.035, 0.5)
    s = cifar.energy_per_channel(4, 0, list(ALONE), list(MILD), "sym9", 5, rhos=rhos)
    x, _ = cifar.test_images(4, 0)
    z = rgb_to_ycbcr(x.double()).numpy()
    assert s.numbers["y_kept"] == pytest.approx(100 * _kept_by_pywt(z[:, 0], 35, "sym9", 5), rel=1e-9)
    assert s.numbers["cb_kept"] == pytest.approx(100 * _kept_by_pywt(z[:, 1], 10, "sym9", 5), rel=1e-9)
    assert s.numbers["y_kept_1"] == pytest.approx(100 * _kept_by_pywt(z[:, 0], 35, "sym9", 1), rel=1e-9)
    assert s.numbers["cb_kept_1"] == pytest.approx(100 * _kept_by_pywt(z[:, 1], 10, "sym9", 1), rel=1e-9)
    assert (s.numbers["K_cb"], s.numbers["band_1"], s.numbers["chroma_pairs"], s.numbers["energy_images"]) == (10, 256, 6, 4)
    # the pixel basis keeps the K brightest (Y, Cb, Cr) values: count where Cb or Cr keeps less than Y
    def pixel_share(channel, rho):
        c2 = np.sort(z[:, channel].reshape(4, -1) ** 2, axis=1)[:, ::-1]
        K = int(rho * 1024 + 1e-9)
        return float((c2[:, :K].sum(1) / c2.sum(1)).mean())

    behind = sum(pixel_share(c, r) < pixel_share(0, r) for c in (1, 2) for r in rhos)
    assert s.numbers["chroma_behind_pixel"] == behind
    assert 0 <= s.numbers["chroma_behind_pyramid"] <= 6 and 0 <= s.numbers["chroma_behind_1"] <= 6
    assert list(s.table.columns) == list(rhos) and len(s.table) == 4 * 3  # four bases, three channels
    assert s.table.loc[("pixel", "Cb"), 0.035] == pytest.approx(round(100 * pixel_share(1, 0.035), 2))
    assert s.marks == {"Y": [0.035, 0.5], "Cb": [0.01, 0.25], "Cr": [0.01, 0.25]}
    assert [ax.get_title() for ax in s.figure.axes] == ["Y", "Cb", "Cr"]
    assert len(s.figure.axes[1].get_lines()) == 4 + 2  # a curve per basis, a dotted line per rho of Cb


# ---------------------------------------------------------------- the networks, their speed and their attack
@pytest.fixture(scope="module")
def tiny(mnist_root, tmp_path_factory):
    """Four tiny-trained ResNet-32s (one batch of 8 images), timed and attacked on a handful of images."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SPARSENB_DATA", str(mnist_root))
        mp.setenv("SPARSENB_CACHE", str(tmp_path_factory.mktemp("cache")))
        try:
            data.cifar10_source()
        except data.DataNotFoundError:
            pytest.skip("no CIFAR-10 in the data folder")
        nets = cifar.networks(8, 1, 0, list(ALONE), list(MILD), "sym9", 5, 1, 1.25, "bpda", 1e-3, 8, "adam", 20)
        speed = cifar.training_speed(nets, 1, 1)
        attacked = cifar.pgd_and_audit(nets, 6, 0, 1, 1, 0.5, ["bpda", "projection"], 3, ["APGD-CE"], "smoke",
                                       {"apgd_steps": 3}, 50)
        yield nets, speed, attacked


def test_networks_are_the_four_resnet32s_and_their_natural_accuracy(tiny):
    nets, _, _ = tiny
    assert list(nets.victims) == list(cifar.DEFENSES)
    assert nets.numbers["n_params"] == pytest.approx(0.46e6, rel=0.01)  # He et al.: ResNet-32 has 0.46M parameters
    assert (nets.numbers["n_train_used"], nets.numbers["n_natural"], nets.numbers["epochs"]) == (8, 20, 1)
    assert nets.victims["no defense"].frontend is None and nets.victims["front end"].frontend.K == (35, 10, 10)
    assert nets.victims["front end + adversarial training"].frontend.K == (512, 256, 256)
    x, y = cifar.test_images(20, 0)
    with torch.no_grad():
        for name, victim in nets.victims.items():  # the network behind its front end, on the 20 held-out images
            model = victim.model()
            assert np.array_equal(nets.natural[name], (model(x).argmax(1) == y).int().numpy())
    column = nets.table.columns[0]
    assert "20 held-out images" in column and nets.table[column].str.match(r"\d+\.\d \[").all()
    assert list(nets.runs) == ["plain", "front end", "adversarial, PGD-1", "front end + adversarial, PGD-1"]
    assert nets.runs["front end + adversarial, PGD-1"][0].gradient == "bpda"
    assert dict(nets.runs["adversarial, PGD-1"][1].kwargs)["steps"] == 1


def test_training_speed_converts_seconds_per_batch(tiny):
    _, speed, _ = tiny
    wall = {name: float(np.median(run["wall"])) for name, run in speed.cost["runs"].items()}
    assert speed.numbers["speed_plain"] == pytest.approx(8 / wall["plain"])  # batches of 8
    assert speed.numbers["speed_adv"] == pytest.approx(8 / wall["adversarial, PGD-1"])
    assert speed.numbers["epoch_plain_min"] == pytest.approx(50000 // 8 * wall["plain"] / 60)
    assert speed.numbers["schedule_adv_h"] == pytest.approx(64000 * 128 / speed.numbers["speed_adv"] / 3600)
    assert speed.table.loc["plain", "slowdown (CPU)"] == 1.0 and len(speed.table) == 4


def test_pgd_and_audit_attacks_every_network_and_the_worst_case_is_below_pgd(tiny):
    nets, _, attacked = tiny
    result = attacked.result
    assert result.settings.budget.apgd_steps == 3  # the override replaced the smoke budget's field
    assert attacked.numbers["gradients_shown"] == "bpda, projection" and attacked.numbers["n_images"] == 6
    assert list(attacked.table["defense"]) == list(cifar.DEFENSES)
    for name in cifar.DEFENSES:
        worst = result.worst(name, EPS)
        assert worst.n == 3 and len(result.pgd(name, EPS)) == 6
        assert (worst.robust <= result.pgd(name, EPS)[result.audited]).all()  # the audit credits PGD's outcomes
    assert set(result.pgd_cells[("front end", EPS)]) == {"bpda", "projection"}


# ---------------------------------------------------------------- Table IV and what follows it, on made-up outcomes
@pytest.fixture(scope="module")
def made_up():
    """Natural, PGD (two gradients where there is a front end) and audited outcomes of known accuracies."""
    natural = {name: outcomes(200, k, i) for i, (name, k) in enumerate(zip(cifar.DEFENSES, (182, 100, 178, 120)))}
    pgd_cells, audits = {}, {}
    for i, (name, k) in enumerate(zip(cifar.DEFENSES, (10, 40, 60, 70))):
        if "front end" in name:  # projection leaves more than bpda: bpda is the one reported
            pgd_cells[(name, EPS)] = {"bpda": outcomes(100, k, 10 + i), "projection": outcomes(100, k + 10, 20 + i)}
        else:
            pgd_cells[(name, EPS)] = {None: outcomes(100, k, 10 + i)}
        robust = outcomes(50, k // 4, 30 + i).astype(bool)
        broken = np.cumsum(~robust)  # the broken images, numbered 1, 2, ...: alternately PGD's and Square's
        first = [None if r else ("PGD" if b % 2 else "Square") for r, b in zip(robust, broken)]
        audits[(name, EPS)] = WorstCase(robust, first, [None] * 50, {}, EPS)
    cells = [(name, EPS) for name in cifar.DEFENSES]
    result = RobustAccuracy(cells, pgd_cells, audits, np.arange(50), AttackSettings())
    nets = Section(natural=natural, numbers={"epochs": 3, "n_train_used": 2000, "inner_steps": 1})
    attacked = Section(result=result, numbers={"pgd_restarts": 2, "pgd_steps": 20})
    return nets, attacked


def test_table4_sets_ours_beside_the_papers_numbers(made_up):
    nets, attacked = made_up
    s = cifar.table4(nets, attacked, full=False)
    assert s.numbers["nat_none"] == pytest.approx(91.0) and s.numbers["nat_fe"] == pytest.approx(50.0)
    assert s.numbers["pgd_fe"] == pytest.approx(40.0)  # the most damaging gradient, not projection's 50
    assert s.numbers["worst_at"] == pytest.approx(100 * (60 // 4) / 50)
    for name, tag in cifar.TAGS.items():
        assert (s.numbers[f"paper_nat_{tag}"], s.numbers[f"paper_pgd_{tag}"]) == pytest.approx(PAPER[name])
    assert {r["kind"] for r in s.comparison.rows} == {OTHER_SETTING} and len(s.comparison.rows) == 12
    assert s.table.loc["front end", "paper: PGD"] == pytest.approx(39.6)
    kinds = {(r["column"], r["kind"]) for r in cifar.table4(nets, attacked, full=True).comparison.rows}
    assert kinds == {("natural", OURS), ("PGD", OURS), ("worst case (audited images)", WORST_CASE)}
    # the figure: our three series with error bars, the paper's two hollow beside them
    hollow = [line for line in s.figure.axes[0].get_lines() if line.get_label().startswith("paper")]
    assert [line.get_label() for line in hollow] == ["paper, natural", "paper, PGD"]
    assert list(hollow[1].get_ydata()) == pytest.approx([p for _, p in PAPER.values()])
    assert not plt.fignum_exists(s.figure.number)


def test_the_paired_difference_behind_the_closing_claim(made_up):
    nets, attacked = made_up
    s = cifar.adds_to_adversarial_training(nets, attacked)
    a = attacked.result.pgd_cells[("front end + adversarial training", EPS)]["bpda"]
    b = attacked.result.pgd_cells[("adversarial training", EPS)][None]
    r = float(np.mean(a != b))
    d = 67.21 - 66.82
    assert s.numbers["paper_diff"] == pytest.approx(d)
    assert s.numbers["d_pgd"] == pytest.approx(100 * (a.mean() - b.mean())) == pytest.approx(10.0)
    assert s.numbers["d_pgd_lo"] < s.numbers["d_pgd"] < s.numbers["d_pgd_hi"]
    assert s.numbers["r_pgd"] == pytest.approx(100 * r)
    assert s.numbers["n_resolve"] == math.ceil(1.96**2 * r / (d / 100) ** 2)  # half-width equal to the difference
    assert s.numbers["half_10k"] == pytest.approx(100 * 1.96 * math.sqrt(r / 10000))
    # 10,000 images resolve d at a share r* of discordant images with 1.96 sqrt(r*/10000) = d
    assert s.numbers["r_resolve"] == pytest.approx(100 * 10000 * (d / 100) ** 2 / 1.96**2)
    assert list(s.table.index) == ["natural", "PGD", "worst case"]
    assert s.table.loc["natural", "images"] == 200 and s.table.loc["worst case", "images"] == 50


def test_disagreements_count_the_papers_numbers_outside_our_intervals(made_up):
    nets, attacked = made_up
    t4 = cifar.table4(nets, attacked, full=False)
    subset = Section(full=False, n_all=4000, numbers={"n_train_all": 3000, "n_test_all": 1000})
    s = cifar.disagreements(t4, subset, nets, attacked)
    outside = 0
    for name, (nat, pgd) in PAPER.items():
        k_pgd = int(attacked.result.pgd(name, EPS).sum())
        for k, n, value in ((int(nets.natural[name].sum()), 200, nat), (k_pgd, 100, pgd),
                            (int(attacked.result.worst(name, EPS).robust.sum()), 50, pgd)):
            lo, hi = wilson(k, n)
            outside += not lo <= value <= hi
    assert s.numbers == {"n_compared": 12, "n_disagree": outside} and 0 < outside < 12
    assert len(s.table) == 12
    assert "3 epochs on 2000 images" in s.why["Table IV"] and "PGD 2 x 20 steps" in s.why["Table IV"]
    assert "4,000-image subset" in s.cannot["Table IV"] and "3,000 training, 1,000 held-out" in s.cannot["Table IV"]
    full = Section(full=True, n_all=60000, numbers={"n_train_all": 50000, "n_test_all": 10000})
    assert cifar.disagreements(t4, full, nets, attacked).cannot is None


def test_summary_holds_ours_and_the_papers_per_network(made_up):
    nets, attacked = made_up
    t4 = cifar.table4(nets, attacked, full=False)
    s = cifar.summary(nets, attacked, t4)
    assert list(s.table.index) == list(cifar.DEFENSES)
    assert s.table["paper, natural"].tolist() == pytest.approx([n for n, _ in PAPER.values()])
    assert s.table.loc["front end", "ours, PGD"].startswith("40.0 [")
    # 50 audited images of which 10 robust (40 // 4): 40 broken, alternately by PGD and Square
    assert s.table.loc["front end", "broken by (audited images)"] == "PGD 20, Square 20"
