"""sparsenb.chapters.frontend draws what it is given: the right panels, titles from the data, no hidden state."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from sparsenb.chapters import frontend as frontend_figures  # noqa: E402
from sparsenb.frontend import sparsity_level  # noqa: E402


def _digit(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, 1, 28, 28, generator=g, dtype=torch.float64)


def test_frontend_at_work_panels_and_K():
    rhos = [0.01, 0.035]
    fig = frontend_figures.frontend_at_work(_digit(), rhos)
    titles = [ax.get_title() for ax in fig.axes]
    assert len(fig.axes) == 2 * (len(rhos) + 1)
    for r in rhos:
        assert f"top K = {sparsity_level(r, 784)}" in titles
    # the kept-coefficient panels show exactly K non-zero coefficients
    kept = fig.axes[len(rhos) + 2].get_images()[0].get_array()
    assert int(np.count_nonzero(np.ma.filled(kept, 0))) == sparsity_level(rhos[0], 784)
    plt.close(fig)


def test_digits_and_projections_titles():
    images = torch.rand(3, 1, 28, 28, dtype=torch.float64)
    fig = frontend_figures.digits_and_projections(images, 2 * images - 0.5, ["a", "b", "c"], ("in", "out"))
    assert [ax.get_title() for ax in fig.axes[3:]] == ["a", "b", "c"]
    shown = fig.axes[3].get_images()[0].get_array()
    assert float(shown.min()) >= 0 and float(shown.max()) <= 1  # projections clipped for display
    plt.close(fig)


def test_basis_functions_titles_carry_l1_norms():
    fig = frontend_figures.basis_functions(["haar"], ["A1", "D1"])
    assert [ax.get_title() for ax in fig.axes] == [r"haar A1: $\|\psi_k\|_1$ = 2.00", r"haar D1: $\|\psi_k\|_1$ = 2.00"]
    plt.close(fig)


def test_energy_curves_one_line_per_basis():
    rho = [0.01, 0.02, 0.05]
    mean = pd.DataFrame({"a": [0.1, 0.2, 0.3], "b": [0.2, 0.3, 0.4]}, index=rho)
    fig = frontend_figures.energy_curves(mean, 0 * mean, marks=[0.02], n_images=5)
    ax = fig.axes[0]
    lines = [line for line in ax.get_lines() if line.get_label() in ("a", "b")]
    assert len(lines) == 2 and np.allclose(lines[0].get_xdata(), [1, 2, 5])
    assert "5 MNIST test images" in ax.get_title()
    plt.close(fig)
