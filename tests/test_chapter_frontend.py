"""sparsenb.chapters.frontend: each section computes what the page quotes and draws what it computed."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from sparsenb import basis  # noqa: E402
from sparsenb.chapters import frontend as chapter  # noqa: E402
from sparsenb.frontend import SparsifyingFrontEnd, sparsity_level  # noqa: E402


@pytest.fixture(scope="module")
def digits(mnist_test):
    x, y = mnist_test
    return x[:300].double(), y[:300]


def test_sparsity_levels_table_and_numbers():
    s = chapter.sparsity_levels([0.01, 0.035], 0.035)
    assert s.table.loc["K = floor(rho N)"].tolist() == [7, 27]
    assert s.numbers == {"K_mc": 27.0, "N": 784.0}


def test_at_work_draws_the_kept_coefficients_of_each_rho(digits):
    x, _ = digits
    rhos = [0.01, 0.035]
    s = chapter.at_work(x, rhos)
    titles = [ax.get_title() for ax in s.figure.axes]
    assert len(s.figure.axes) == 2 * (len(rhos) + 1)
    assert all(f"top K = {sparsity_level(r, 784)}" in titles for r in rhos)
    kept = s.figure.axes[len(rhos) + 2].get_images()[0].get_array()  # the first rho's kept coefficients
    assert int(np.count_nonzero(np.ma.filled(kept, 0))) == sparsity_level(rhos[0], 784)
    assert not plt.fignum_exists(s.figure.number)  # closed in pyplot: shown only where the page places it


def test_digits_one_per_class_with_the_energy_they_keep(digits):
    x, y = digits
    s = chapter.digits(x, y, 0.035)
    assert [int(y[(x == e).flatten(1).all(1)][0]) for e in s.examples] == list(range(10))
    fe = SparsifyingFrontEnd(0.035, clip=False)
    c = fe.transform.analysis(s.examples)
    kept = (c * fe.support(s.examples)).pow(2).sum(-1) / c.pow(2).sum(-1)  # Parseval: the projection's energy
    assert s.kept_share == pytest.approx(kept[:, 0].tolist())
    assert [ax.get_title() for ax in s.figure.axes[10:]] == [f"{k:.0%}" for k in s.kept_share]


def test_localization_gamma_is_twice_the_largest_l1_norm():
    s = chapter.localization(["haar", "coif1"], eps_example=0.1)
    assert s.numbers["gamma_haar"] == pytest.approx(2 * 2.0)  # one-level Haar: entries +-1/2 on 4 pixels
    assert s.numbers["gamma_dct"] == pytest.approx(2 * 28.0)  # the DCT's constant function: sqrt(784)
    assert s.numbers["gamma_pixel"] == 2.0
    assert s.numbers["gamma_eps_coif1"] == pytest.approx(0.1 * s.numbers["gamma_coif1"])
    assert s.figure.axes[0].get_title() == r"haar A1: $\|\psi_k\|_1$ = 2.00"


def test_energy_means_and_their_band(digits):
    x, _ = digits
    s = chapter.energy(x[:50], [0.01, 0.035], 0.035, ["coif1"])
    K = sparsity_level(0.035, 784)
    psi = basis.wavelet_basis("coif1", (28, 28), level=1)
    c = x[:50].flatten(1) @ psi.T
    top = c.abs().topk(K, dim=1).values.pow(2).sum(1) / c.pow(2).sum(1)
    assert s.numbers["energy_coif1_35"] == pytest.approx(float(top.mean()))
    assert s.numbers["n_images"] == 50.0
    assert list(s.table.columns) == ["coif1", "dct", "pixel"] and list(s.table.index) == ["1.0%", "3.5%"]
    assert (s.half_width.to_numpy() > 0).all()
    lines = [line for line in s.figure.axes[0].get_lines() if line.get_label() in s.mean.columns]
    assert len(lines) == 3
