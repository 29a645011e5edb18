r"""What the chapter "The sparsifying front end" computes, one function per section.

=========================  ====================================================================
:func:`images`             the MNIST test images the page looks at (a seeded subset)
:func:`sparsity_levels`    :math:`K = \lfloor \rho N \rfloor` for the page's :math:`\rho`
:func:`at_work`            the paper's Fig. 2: one digit, its coefficients, the kept ones, the output
:func:`digits`             one digit per class and its projection, with the energy it keeps
:func:`localization`       basis functions of three wavelets, :math:`\|\psi_k\|_1` and :math:`\gamma`
:func:`energy`             the energy the top :math:`K` coefficients keep, against :math:`\rho`
=========================  ====================================================================

Each returns a :class:`~sparsenb.chapters.section.Section`: its tables and
figure as attributes and ``numbers``, the values the prose quotes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from .. import basis, data
from ..frontend import SparsifyingFrontEnd, energy_captured, sparsity_level
from .section import Section, drawn, numbers

__all__ = ["images", "sparsity_levels", "at_work", "digits", "localization", "energy"]

N = 28 * 28
#: The bases the page compares: three wavelets (one level), the DCT and the pixel basis.
WAVELETS = ("db5", "coif1", "sym9")


def images(n_images: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded subset of ``n_images`` MNIST test images in float64 (all 10,000 if ``n_images`` is 10,000 or 0)."""
    x, y = data.load_mnist("test", dtype=torch.float64)
    return data.subset(x, y, n_images or None, seed=seed)


# --------------------------------------------------------------------------
# figures (each section function draws its own, see drawn)
# --------------------------------------------------------------------------
def _plt():
    import matplotlib.pyplot as plt

    return plt


def _no_ticks(axes) -> None:
    for ax in np.ravel(axes):
        ax.set_xticks([])
        ax.set_yticks([])


def _gray(ax, image, title=None) -> None:
    ax.imshow(torch.as_tensor(image).detach().cpu().numpy(), cmap="gray", vmin=0, vmax=1)
    if title is not None:
        ax.set_title(title)


def _at_work_figure(s: Section):
    """Top: the digit and the front end's output per :math:`\\rho`; bottom: :math:`|\\Psi x|` (log) and what survives."""
    plt = _plt()
    digit = s.digit
    transform = basis.WaveletTransform(s.wavelet, tuple(digit.shape[-2:]), level=1)
    coeffs = transform.analysis_pyramid(digit[0, 0]).abs()
    scale = {"norm": "log", "vmin": 1e-3 * float(coeffs.max()), "vmax": float(coeffs.max())}
    cmap = plt.get_cmap("magma").with_extremes(bad="black")  # zeros are masked on a log scale
    fig, axes = plt.subplots(2, len(s.rhos) + 1, figsize=(2.3 * (len(s.rhos) + 1), 4.8))
    _gray(axes[0, 0], digit[0, 0], "input $x$")
    axes[1, 0].imshow(coeffs.numpy(), cmap=cmap, **scale)
    axes[1, 0].set_title(r"$|\Psi x|$ (log)")
    for j, rho in enumerate(s.rhos, start=1):
        fe = SparsifyingFrontEnd(rho, s.wavelet, image_size=transform.shape)
        kept = coeffs * transform.to_pyramid(fe.support(digit)[0, 0].to(coeffs.dtype))
        axes[1, j].imshow(kept.numpy(), cmap=cmap, **scale)
        axes[1, j].set_title(f"top K = {fe.K[0]}")
        _gray(axes[0, j], fe(digit)[0, 0], rf"$\hat x$, $\rho$ = {rho:.1%}")
    _no_ticks(axes)
    return fig


def _digits_figure(s: Section):
    """One digit per class on top, its projection below, titled with the energy share it keeps."""
    plt = _plt()
    fig, axes = plt.subplots(2, len(s.examples), figsize=(1.3 * len(s.examples), 3), squeeze=False)
    for d, (image, projected, share) in enumerate(zip(s.examples, s.projections, s.kept_share)):
        _gray(axes[0, d], image[0])
        _gray(axes[1, d], projected[0].clamp(0, 1))
        axes[1, d].set_title(f"{share:.0%}", fontsize=10)
    _no_ticks(axes)
    axes[0, 0].set_ylabel("input")
    axes[1, 0].set_ylabel(f"K = {s.K}")
    return fig


def _localization_figure(s: Section, bands=("A1", "H1", "V1", "D1"), position=(7, 7)):
    """One basis function per wavelet (rows) and band (columns), near the image centre, with its l1 norm."""
    plt = _plt()
    shape = (28, 28)
    labels = np.array(basis.band_labels(shape, level=1))
    band_width = shape[1] // 2
    n_rows, n_cols = len(s.wavelets), len(bands)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(2.1 * n_cols, 2.2 * n_rows), squeeze=False)
    for i, w in enumerate(s.wavelets):
        psi = s.bases[w]
        norms = basis.l1_norms(psi)
        for j, band in enumerate(bands):
            k = np.flatnonzero(labels == band)[position[0] * band_width + position[1]]
            image = psi[k].reshape(shape).numpy()
            lim = float(np.abs(image).max())
            axes[i, j].imshow(image, cmap="RdBu_r", vmin=-lim, vmax=lim)
            axes[i, j].set_title(rf"{w} {band}: $\|\psi_k\|_1$ = {norms[k]:.2f}", fontsize=9)
    _no_ticks(axes)
    return fig


def _energy_figure(s: Section):
    """Mean share of image energy kept against rho, one curve per basis, 95% bands."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    percent = 100 * np.asarray(s.mean.index, dtype=float)
    for name in s.mean.columns:
        mean, half = s.mean[name], s.half_width[name]
        ax.plot(percent, mean, marker=".", label=name)
        ax.fill_between(percent, mean - half, mean + half, alpha=0.25)
    for r in s.rhos:
        ax.axvline(100 * r, color="grey", lw=0.6, ls=":")
    ax.set_xscale("log")
    ax.set_xlabel(r"$\rho = K/N$ (%)")
    ax.set_ylabel(r"mean $\|\mathcal{H}_K(\Psi x)\|_2^2 / \|x\|_2^2$")
    ax.set_title(f"energy kept by the top K coefficients ({s.n_images} MNIST test images)")
    ax.legend(title="basis")
    return fig


# --------------------------------------------------------------------------
# sections
# --------------------------------------------------------------------------
def sparsity_levels(rhos, rho_paper: float) -> Section:
    r""":math:`K = \lfloor \rho N \rfloor` for each :math:`\rho` of the page, and for the paper's multiclass :math:`\rho`."""
    table = pd.DataFrame(
        {"K = floor(rho N)": [sparsity_level(r, N) for r in rhos]}, index=[f"{r:.1%}" for r in rhos]
    )
    table.index.name = "rho"
    return Section(table=table.T, numbers=numbers(K_mc=sparsity_level(rho_paper, N), N=N))


@drawn(_at_work_figure)
def at_work(x: torch.Tensor, rhos, wavelet: str = "coif1") -> Section:
    """The paper's Fig. 2 on the first image of ``x``: what the front end keeps and returns for each ``rhos``."""
    return Section(digit=x[:1].detach().cpu(), rhos=list(rhos), wavelet=wavelet, numbers={})


@drawn(_digits_figure)
def digits(x: torch.Tensor, y: torch.Tensor, rho: float, wavelet: str = "coif1") -> Section:
    """The first image of each class in ``x`` and its projection on its K largest coefficients (no clip)."""
    fe = SparsifyingFrontEnd(rho, wavelet, clip=False)
    examples = torch.stack([x[(y == d).nonzero()[0, 0]] for d in range(10)])
    kept = energy_captured(examples, fe.transform, fe.K)[0]
    table = pd.DataFrame(
        {"energy kept %": (100 * kept).numpy()}, index=pd.Index(range(10), name="digit")
    ).T
    return Section(
        examples=examples,
        projections=fe(examples),
        kept_share=kept.tolist(),
        K=fe.K[0],
        table=table.round(1),
        numbers={},
    )


@drawn(_localization_figure)
def localization(wavelets=WAVELETS, eps_example: float = 0.1) -> Section:
    r""":math:`\|\psi_k\|_1` (min, median, max) and :math:`\gamma = 2\max_k\|\psi_k\|_1` of each basis.

    The wavelets at one level, with the DCT and the pixel basis for contrast;
    ``eps_example`` reads Prop. 1: the support stays put for coefficients
    above :math:`\gamma\epsilon`.
    """
    bases = {w: basis.wavelet_basis(w, (28, 28), level=1) for w in wavelets}
    bases |= {"dct": basis.dct_basis((28, 28)), "pixel": basis.pixel_basis((28, 28))}
    norms = pd.DataFrame({name: basis.l1_norms(psi).numpy() for name, psi in bases.items()})
    table = norms.agg(["min", "median", "max"]).T.add_suffix(" ||psi_k||_1")
    table["gamma"] = [basis.gamma(psi) for psi in bases.values()]
    table.index.name = "basis"
    values = {f"gamma_{name}": g for name, g in table["gamma"].items()}
    values |= {
        "eps_example": eps_example,
        "gamma_eps_coif1": eps_example * float(table.at["coif1", "gamma"]),
    }
    return Section(
        bases=bases, wavelets=list(wavelets), table=table.round(2), numbers=numbers(**values)
    )


@drawn(_energy_figure)
def energy(x: torch.Tensor, rhos, rho_paper: float, wavelets=WAVELETS) -> Section:
    r"""The mean share of energy the top K coefficients keep, against :math:`\rho`, for each basis (95% bands).

    ``table`` holds the means in percent at the page's ``rhos``; ``numbers``
    the means at the paper's multiclass :math:`\rho` (``energy_<basis>_35``)
    and, with Coiflet-1 among the wavelets, how much more the DCT keeps than
    Coiflet-1 at the smallest of ``rhos`` and at the paper's (``dct_gain_low``,
    ``dct_gain_paper``; negative when it keeps less).
    """
    bases = {w: basis.wavelet_basis(w, (28, 28), level=1) for w in wavelets}
    bases |= {"dct": basis.dct_basis((28, 28)), "pixel": basis.pixel_basis((28, 28))}
    grid = np.unique(np.r_[np.geomspace(0.002, 0.3, 25), rhos])
    Ks = [sparsity_level(float(r), N) for r in grid]
    shares = {
        n: energy_captured(x, basis.DenseTransform(psi, (28, 28)), Ks).numpy()
        for n, psi in bases.items()
    }
    mean = pd.DataFrame({n: s.mean(axis=1) for n, s in shares.items()}, index=grid)
    sem = {n: s.std(axis=1, ddof=1) / np.sqrt(s.shape[1]) for n, s in shares.items()}
    half_width = pd.DataFrame({n: 1.96 * v for n, v in sem.items()}, index=grid)
    table = (100 * mean.loc[list(rhos)]).round(1)
    table.index = pd.Index([f"{r:.1%}" for r in rhos], name="rho")
    values = {f"energy_{n}_35": float(mean.at[rho_paper, n]) for n in bases} | {"n_images": len(x)}
    if "coif1" in bases:
        gain = mean["dct"] - mean["coif1"]
        values |= {
            "dct_gain_low": float(gain.at[min(rhos)]),
            "dct_gain_paper": float(gain.at[rho_paper]),
        }
    return Section(
        mean=mean,
        half_width=half_width,
        rhos=list(rhos),
        n_images=len(x),
        table=table,
        numbers=numbers(**values),
    )
