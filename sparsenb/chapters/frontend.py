"""Figures of the chapter "The sparsifying front end" (the paper's Fig. 2 and the basis and energy plots).

The chapter computes what a figure shows, calls one function here and
finishes the figure with :func:`sparsenb.book.page.figure`. Each function draws
only: it takes the numbers or images to plot and returns a matplotlib
``Figure``, leaving gluing and closing to the page. The book's recurring
figure types shared by several chapters are in :mod:`sparsenb.chapters.figures`.
"""
from __future__ import annotations

import numpy as np
import torch

from .. import basis
from ..frontend import SparsifyingFrontEnd

__all__ = ["frontend_at_work", "digits_and_projections", "basis_functions", "energy_curves", "colour_images", "channel_energy_curves"]


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


def frontend_at_work(digit: torch.Tensor, rhos, wavelet: str = "coif1"):
    r"""The paper's Fig. 2 on one image: what the front end keeps and returns for each :math:`\rho`.

    ``digit`` is one image ``(1, 1, H, W)`` in [0, 1]. Top row: the input and
    the front end's output :math:`\hat x` for every ``rho``; bottom row: the
    magnitude of the wavelet coefficients :math:`|\Psi x|` in the Mallat
    (``coeffs_to_array``) layout on a log scale, and the top-K of them that
    survive, dropped ones in black.
    """
    plt = _plt()
    digit = digit.detach().cpu()
    transform = basis.WaveletTransform(wavelet, tuple(digit.shape[-2:]), level=1)
    coeffs = transform.analysis_pyramid(digit[0, 0]).abs()
    scale = {"norm": "log", "vmin": 1e-3 * float(coeffs.max()), "vmax": float(coeffs.max())}
    cmap = plt.get_cmap("magma").with_extremes(bad="black")  # zeros are masked on a log scale
    fig, axes = plt.subplots(2, len(rhos) + 1, figsize=(2.3 * (len(rhos) + 1), 4.8))
    _gray(axes[0, 0], digit[0, 0], "input $x$")
    axes[1, 0].imshow(coeffs.numpy(), cmap=cmap, **scale)
    axes[1, 0].set_title(r"$|\Psi x|$ (log)")
    for j, rho in enumerate(rhos, start=1):
        fe = SparsifyingFrontEnd(rho, wavelet, image_size=transform.shape)
        kept = coeffs * transform.to_pyramid(fe.support(digit)[0, 0].to(coeffs.dtype))
        axes[1, j].imshow(kept.numpy(), cmap=cmap, **scale)
        axes[1, j].set_title(f"top K = {fe.K[0]}")
        _gray(axes[0, j], fe(digit)[0, 0], rf"$\hat x$, $\rho$ = {rho:.1%}")
    _no_ticks(axes)
    return fig


def digits_and_projections(images: torch.Tensor, projections: torch.Tensor, titles, row_labels=("input", "projection")):
    """Images ``(B, 1, H, W)`` on top, their projections below (clipped to [0, 1] for display), titled per column."""
    plt = _plt()
    fig, axes = plt.subplots(2, len(images), figsize=(1.3 * len(images), 3), squeeze=False)
    for d, (image, projected, title) in enumerate(zip(images, projections, titles)):
        _gray(axes[0, d], image[0])
        _gray(axes[1, d], projected[0].clamp(0, 1))
        axes[1, d].set_title(title, fontsize=10)
    _no_ticks(axes)
    axes[0, 0].set_ylabel(row_labels[0])
    axes[1, 0].set_ylabel(row_labels[1])
    return fig


def basis_functions(wavelets, bands=("A1", "H1", "V1", "D1"), shape=(28, 28), position=(7, 7)):
    r"""One one-level basis function :math:`\psi_k` per wavelet (rows) and band (columns), with its :math:`\ell_1` norm.

    ``position`` is the function's place inside its band (row, column of the
    band's grid); the default puts it near the image centre for 28x28.
    """
    plt = _plt()
    labels = np.array(basis.band_labels(shape, level=1))
    band_width = shape[1] // 2
    fig, axes = plt.subplots(len(wavelets), len(bands), figsize=(2.1 * len(bands), 2.2 * len(wavelets)), squeeze=False)
    for i, w in enumerate(wavelets):
        psi = basis.wavelet_basis(w, shape, level=1)
        norms = basis.l1_norms(psi)
        for j, band in enumerate(bands):
            k = np.flatnonzero(labels == band)[position[0] * band_width + position[1]]
            image = psi[k].reshape(shape).numpy()
            lim = float(np.abs(image).max())
            axes[i, j].imshow(image, cmap="RdBu_r", vmin=-lim, vmax=lim)
            axes[i, j].set_title(rf"{w} {band}: $\|\psi_k\|_1$ = {norms[k]:.2f}", fontsize=9)
    _no_ticks(axes)
    return fig


def energy_curves(mean, half_width, marks=(), n_images=None):
    r"""Mean share of image energy kept against :math:`\rho`, one curve per basis, with bands.

    ``mean`` and ``half_width`` are pandas DataFrames indexed by :math:`\rho`
    with one column per basis (the band is ``mean ± half_width``); ``marks``
    are the :math:`\rho` drawn as dotted vertical lines.
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    percent = 100 * np.asarray(mean.index, dtype=float)
    for name in mean.columns:
        ax.plot(percent, mean[name], marker=".", label=name)
        ax.fill_between(percent, mean[name] - half_width[name], mean[name] + half_width[name], alpha=0.25)
    for r in marks:
        ax.axvline(100 * r, color="grey", lw=0.6, ls=":")
    ax.set_xscale("log")
    ax.set_xlabel(r"$\rho = K/N$ (%)")
    ax.set_ylabel(r"mean $\|\mathcal{H}_K(\Psi x)\|_2^2 / \|x\|_2^2$")
    images = "" if n_images is None else f" ({n_images} MNIST test images)"
    ax.set_title(f"energy kept by the top K coefficients{images}")
    ax.legend(title="basis")
    return fig


def colour_images(rows: dict, titles=None):
    """A grid of colour images: one row per entry of ``rows`` (label -> images ``(n, 3, H, W)`` in [0, 1]).

    ``titles``: one per column (e.g. the class names), shown above the first row.
    """
    from .. import checks

    if not isinstance(rows, dict) or not rows:
        raise checks.fail("rows", "a non-empty dict of label -> images (n, 3, H, W)", rows)
    n = len(next(iter(rows.values())))
    for label, images in rows.items():
        checks.images(images, f"rows[{label!r}]", channels=3)
        if len(images) != n:
            raise checks.ArgumentError(f"rows[{label!r}]", f"must hold {n} images like the first row, got {len(images)}")
    if titles is not None and len(titles) != n:
        raise checks.ArgumentError("titles", f"must give one title per column ({n}), got {len(titles)}")
    plt = _plt()
    labels = list(rows)
    fig, axes = plt.subplots(len(labels), n, figsize=(1.45 * n + 1.2, 1.5 * len(labels)), squeeze=False)
    for i, label in enumerate(labels):
        for j in range(n):
            axes[i, j].imshow(torch.as_tensor(rows[label][j]).detach().cpu().permute(1, 2, 0).clamp(0, 1).numpy())
        axes[i, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    if titles is not None:
        for j, t in enumerate(titles):
            axes[0, j].set_title(t, fontsize=9)
    _no_ticks(axes)
    return fig


def channel_energy_curves(frame, marks=(), n_images=None):
    r"""Energy missed by the top K coefficients of each YCbCr channel against :math:`\rho`, one panel per channel.

    ``frame``: :func:`sparsenb.chapters.cifar10.channel_energy`'s long frame (columns
    ``basis, channel, rho, missed``); the missed share is drawn on a log
    scale, one curve per basis. ``marks``: ``{channel: [rho, ...]}``, drawn
    as dotted vertical lines (the front end's settings).
    """
    plt = _plt()
    channels = list(dict.fromkeys(frame["channel"]))
    fig, axes = plt.subplots(1, len(channels), figsize=(4.0 * len(channels), 3.6), sharey=True, squeeze=False)
    for ax, channel in zip(axes[0], channels):
        part = frame[frame["channel"] == channel]
        for name, curve in part.groupby("basis", sort=False):
            ax.plot(100 * curve["rho"], curve["missed"].clip(lower=1e-6), marker=".", label=name)
        for r in dict(marks).get(channel, ()):
            ax.axvline(100 * r, color="grey", lw=0.8, ls=":")
        ax.set(xscale="log", yscale="log", xlabel=r"$\rho = K/N$ (%)", title=channel)
    axes[0, 0].set_ylabel(r"mean $1 - \|\mathcal{H}_K(\Psi z)\|_2^2 / \|z\|_2^2$")
    axes[0, -1].legend(title="basis", fontsize=8)
    images = "" if n_images is None else f" ({n_images} images)"
    fig.suptitle(f"energy the top K coefficients miss, per channel{images}", fontsize=10)
    return fig
