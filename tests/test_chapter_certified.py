"""sparsenb.chapters.certified: each section computes what the page quotes, on small inputs."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from sparsenb import certify  # noqa: E402
from sparsenb.chapters import certified as chapter  # noqa: E402
from sparsenb.checks import ArgumentError  # noqa: E402
from sparsenb.chapters.section import Section  # noqa: E402
from sparsenb.evaluation import accuracy_interval  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A private result store for the module: the sections train and attack into it."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SPARSENB_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="module")
def images(mnist_test):
    """A small stand-in for :func:`chapter.setting`: 3s (0) and 7s (1) of the MNIST test split."""
    x, y = mnist_test
    keep = (y == 3) | (y == 7)
    x, y = x[keep][:700], (y[keep][:700] == 7).long()
    return Section(
        train_all=(x[:400], y[:400]),
        train=(x[:300], y[:300]),
        test=(x[400:], y[400:]),
        certified=(x[400:412], y[400:412]),
        numbers={},
    )


@pytest.fixture(scope="module")
def accuracy(images, cache):
    return chapter.certified_accuracy(
        images, ["haar", "coif1"], 0.02, [0.005, 0.02], [0.02, 0.1], "smoke", 0
    )


def test_setting_is_the_threes_and_sevens(mnist_root, monkeypatch):
    monkeypatch.setenv("SPARSENB_DATA", str(mnist_root))
    from sparsenb.data import load_mnist

    s = chapter.setting(500, 30, 0)
    assert torch.get_num_threads() == 1  # the page's tensors are small: one thread
    _, y_raw = load_mnist("test")
    x_test, y_test = s.test
    assert len(y_test) == int(((y_raw == 3) | (y_raw == 7)).sum())
    assert int(y_test.sum()) == int((y_raw == 7).sum())  # 7 is the positive class
    x_train, _ = s.train
    assert len(x_train) == 500 and len(s.train_all[0]) > 10_000
    xa, ya = s.certified
    assert s.numbers == {"n_train": 500, "n_cert": 30}
    # every certified image is a test image with its label
    match = (xa.flatten(1)[:, None] == x_test.flatten(1)[None]).all(-1)
    assert bool(match.any(1).all()) and torch.equal(y_test[match.int().argmax(1)], ya)
    assert len(chapter.setting(0, 30, 0).train[0]) == len(s.train_all[0])  # 0: every training image


def test_soundness_summarises_every_case(cache):
    s = chapter.soundness(["haar:1"], [0], [0.05, 0.3], ["haar:1"], [0.1], 0)
    cases = s.cases
    # 3 methods x (2 corner budgets + 1 exact budget) x clip on and off
    assert s.numbers["small_cases"] == len(cases) == 3 * 3 * 2
    assert s.numbers["exact_cases"] == 3 * 2 and s.table["cases"].sum() == len(cases)
    # sound: every lower bound below the least value found, every upper bound above the largest
    assert (cases.lower <= cases["min"]).all() and (cases.upper >= cases["max"]).all()
    assert s.numbers["small_max_violation"] <= 0
    tight = cases[cases.method == "tight"]
    slack = (tight["min"] - tight.lower) + (tight.upper - tight["max"])
    assert s.numbers["slack_tight"] == pytest.approx(float(slack.median()))
    # prop1 is vacuous (infinite bounds) exactly where some coefficient is uncertain
    prop1 = cases[cases.method == "prop1"]
    assert (np.isinf(prop1.lower) == (prop1.uncertain > 0)).all()
    assert s.table.loc[(slice(None), "prop1"), "vacuous"].sum() == int((prop1.uncertain > 0).sum())


def test_certified_accuracy_is_sound_and_quotes_the_last_wavelet(accuracy, images):
    s = accuracy
    xa, ya = images.certified
    assert s.numbers["broken"] == 0 and s.numbers["n_audits"] == 2 * 2
    assert s.numbers["main_wavelet"] == "coif1" and s.numbers["wavelets_shown"] == "haar and coif1"
    budgets = [s.numbers[f"eps_{n}"] for n in ("first", "mid", "last")]
    assert budgets == [0.02, 0.02, 0.1]  # 0.02 is the audited budget closest to 0.05
    model = s.models["coif1"]
    for name, eps in (("first", 0.02), ("last", 0.1)):
        cert = certify.certify(model, xa, ya, eps, "tight")
        wc = s.worst["coif1"][eps]
        assert not (cert.certified & ~wc.robust).any()  # no certified image is broken
        assert s.numbers[f"tight_{name}"] == pytest.approx(100 * cert.certified.mean(), abs=0.05)
        assert s.numbers[f"worst_{name}"] == pytest.approx(100 * wc.robust.mean(), abs=0.05)
        assert s.numbers[f"gap_{name}"] == pytest.approx(
            s.numbers[f"worst_{name}"] - s.numbers[f"tight_{name}"]
        )
        # the worst case is the AND over every attack: no single attack leaves fewer images
        assert s.numbers[f"white_{name}"] >= s.numbers[f"worst_{name}"]
    last = certify.certify(model, xa, ya, 0.1, "tight")
    assert s.numbers["fixed_last"] == pytest.approx(float((last.n_uncertain == 0).mean()))
    assert s.numbers["unc_last"] == pytest.approx(float(last.n_uncertain.mean()))
    # every budget of both lists is certified, once per method and image
    assert sorted(s.tables["haar"].eps.unique()) == [0.005, 0.02, 0.1]
    assert len(s.tables["haar"]) == 3 * 3 * len(xa)
    assert len(s.figure.axes) == 2 and not plt.fignum_exists(s.figure.number)


def test_exact_sits_between_the_certificate_and_the_attacks(accuracy, images):
    ex = chapter.exact(accuracy, images, [0.02, 0.1], 8, 5.0)
    t = ex.table
    assert list(t.index) == [0.02, 0.1] and ex.numbers["n_exact"] == 8 and ex.numbers["eps_exact"] == 0.1
    shares = t[["exactly robust %", "undecided %", "exactly broken %"]].sum(axis=1)
    assert np.allclose(shares, 100.0, atol=0.2)  # every image is robust, broken or undecided
    assert (t["certified (tight) %"] <= t["exactly robust %"] + t["undecided %"] + 1e-9).all()
    assert (t["exactly robust %"] <= t["attacks leave %"] + 1e-9).all()
    assert ex.numbers["exact_unsound"] == int(ex.checks.iloc[:, :2].to_numpy().sum()) == 0
    assert ex.numbers["exact_found"] == int(ex.checks["attacks left, MILP broke"].sum())
    wc = accuracy.worst["coif1"][0.1].robust[:8]
    assert t.loc[0.1, "attacks leave %"] == pytest.approx(100 * wc.mean(), abs=0.05)
    with pytest.raises(ArgumentError, match="milp_eps"):
        chapter.exact(accuracy, images, [0.05], 8, 5.0)


def test_closing_note_flattens_the_table(accuracy):
    t = chapter.closing_note(accuracy).table
    assert len(t) == len(accuracy.table) and t["front end"].tolist() == ["haar"] * 2 + ["coif1"] * 2
    assert "worst case 95% CI" not in t.columns
    assert t["certified (tight) %"].tolist() == accuracy.table["certified (tight) %"].tolist()


def test_which_basis_reads_the_sweep(images, cache):
    s = chapter.which_basis(
        images,
        models=["svm"],
        wavelets=["haar"],
        levels=[1, 2],
        dense=["pixel"],
        rhos=[0.05],
        eps=0.1,
        n_train=300,
        n_images=8,
        nn_steps=10,
        budget="smoke",
        overrides={"gradients": ["bpda"]},
        attacks=["white box", "PGD"],
        cnn_specs=[],
        cnn_epochs=1,
        seed=0,
        reference="haar:1",
    )
    worst = s.sweep.set_index("spec").worst
    assert s.numbers["n_settings"] == 3 and s.numbers["basis_train"] == 300
    assert s.numbers["basis_images"] == 8 and s.numbers["n_rhos"] == 1
    assert s.numbers["level1_mean"] == pytest.approx(worst["haar:1"])
    assert s.numbers["level2_mean"] == pytest.approx(worst["haar:2"])
    assert s.numbers["dense_best"] == pytest.approx(worst["pixel"])
    assert s.numbers["verdict_best_worst"] == pytest.approx(worst.max())
    assert s.numbers["verdict_ref_worst"] == pytest.approx(worst["haar:1"])
    # the median width of the Wilson intervals of the screening worst case, recomputed from the accuracies
    widths = [
        accuracy_interval(np.r_[np.ones(round(p * 8 / 100)), np.zeros(8 - round(p * 8 / 100))])
        for p in worst
    ]
    assert s.numbers["ci_width"] == pytest.approx(
        float(np.median([hi - lo for _, lo, hi in widths]))
    )
    best = s.sweep.set_index("spec")  # one rho: every setting is its basis's best
    rank = best.worst.corr(-best.gamma, method="spearman")
    # one model: the mean over models is its correlation
    assert s.numbers["spearman_gamma"] == pytest.approx(rank)
    assert list(s.best.columns)[-3:] == ["gamma", "energy", "Pareto"] and len(s.best) == 3
    assert s.figure.axes[0].get_ylabel() == "worst-case accuracy, basis audit (%)"
