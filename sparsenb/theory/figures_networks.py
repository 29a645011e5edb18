r"""The figures of "Theory II: high SNR and neural networks", one function per figure.

Each takes the :class:`~sparsenb.theory.chapter_linear.Section` its section
computed (:mod:`sparsenb.theory.chapter_networks`), draws it and returns
the matplotlib ``Figure``; the chapter finishes it with
:func:`sparsenb.page.figure`.
"""
from __future__ import annotations

import numpy as np

from .gaussianity import normalized_digits
from .networks import thm3_prediction
from .prop1 import PROP1_KINDS
from .stats import plot_band, summarize

__all__ = ["prop1", "overlap_hist", "lemma3", "thm3", "eq5", "fgsm"]


def _subplots(*args, **kw):
    import matplotlib.pyplot as plt

    return plt.subplots(*args, **kw)


def prop1(s, wavelet: str = "coif1"):
    """(a) shares meeting each condition per wavelet, (b) guarantee against outcome and (c) mean overlap for ``wavelet``."""
    fig, axes = _subplots(1, 3, figsize=(16, 4.4))
    summary = s.summary
    for w in s.wavelets:
        part = summary[(summary.basis == w) & (summary.kind == "random sign")]
        line = axes[0].plot(part.eps, part.condition_share, "o-", ms=4, label=rf"{w}: $\lambda/\epsilon>\gamma$")[0]
        axes[0].plot(part.eps, part.gap_condition_share, "s--", ms=3, color=line.get_color(), label=rf"{w}: gap $>\gamma\epsilon$")
    c = summary[summary.basis == wavelet]
    for kind in PROP1_KINDS:
        part = c[c.kind == kind]
        line = axes[1].plot(part.eps, part.unmoved_share, "o-", ms=4, label=f"support unmoved, {kind}")[0]
        axes[2].plot(part.eps, part.mean_overlap_share, "o-", ms=4, color=line.get_color(), label=kind)
    part = c[c.kind == "random sign"]
    axes[1].plot(part.eps, part.condition_share, "k-", lw=1.2, label=r"paper's condition met")
    axes[1].plot(part.eps, part.gap_condition_share, "k--", lw=1.2, label="gap condition met (guarantee)")
    axes[0].set(xscale="log", xlabel=r"$\epsilon$", ylabel="share of digits", title=f"(a) conditions, $K$ = {s.K}")
    axes[1].set(xscale="log", xlabel=r"$\epsilon$", ylabel="share of digits", title=f"(b) {wavelet}: guarantee against outcome")
    ylabel = r"mean $|\mathcal{S}_K(x)\cap\mathcal{S}_K(x+e)|/K$"
    axes[2].set(xscale="log", xlabel=r"$\epsilon$", ylabel=ylabel, title=f"(c) {wavelet}: support overlap")
    axes[0].legend(fontsize=7, ncol=2)
    axes[1].legend(fontsize=7)
    axes[2].legend(fontsize=8)
    return fig


def overlap_hist(s):
    r"""Histograms (unit area) of :math:`|\mathcal{S}_K(x) \cap \mathcal{S}_K(x+e)|` for the three perturbations."""
    fig, ax = _subplots(figsize=(7.5, 4))
    overlap = s.sweep.overlap
    bins = np.arange(overlap.min() - 0.5, s.K + 1.5)
    for kind in PROP1_KINDS:
        ax.hist(overlap[s.sweep.kind == kind], bins=bins, density=True, alpha=0.45, label=kind)
    title = rf"{s.wavelet}, $K$ = {s.K}, $\epsilon$ = {s.eps:g}, {s.n} digits"
    ax.set(xlabel=r"$|\mathcal{S}_K(x) \cap \mathcal{S}_K(x+e)|$", ylabel="density", title=title)
    ax.legend()
    return fig


def lemma3(s):
    r"""Q-Q plots of :math:`w^Tx` for one digit at the smallest and largest size (digit inset), and the KS distance against :math:`N`."""
    fig, axes = _subplots(1, 3, figsize=(15, 4.2))
    for ax, side in zip(axes[:2], s.qq):
        q_theory, q_sample = s.qq[side]
        ax.plot(q_theory, q_sample, ".", ms=3)
        ax.plot([-4, 4], [-4, 4], "k-", lw=0.8)
        title = f"one digit, $N$ = {side * side}"
        ax.set(xlim=[-4, 4], ylim=[-5.5, 5.5], xlabel="normal quantile", ylabel=r"quantile of $w^Tx$", title=title)
        inset = ax.inset_axes([0.62, 0.05, 0.33, 0.33])
        inset.imshow(normalized_digits(s.digit, side)[0].reshape(side, side).numpy(), cmap="gray")
        inset.set_xticks([])
        inset.set_yticks([])
    for d in ("laplace", "uniform"):
        part = s.summary[s.summary.dist == d]
        line = plot_band(axes[2], part, "N", label=f"{d} (slope {s.fits.loc[d, 'slope']:.2f})")
        e = summarize(s.table[s.table.dist == d], "N", "edgeworth")
        axes[2].plot(e.N, e["mean"], ":", color=line.get_color(), lw=1.2)
    ylabel, title = "KS distance to $\\mathcal{N}(0,1)$", f"exact KS, mean over {s.n} digits"
    axes[2].set(xscale="log", yscale="log", xlabel="$N$", ylabel=ylabel, title=title)
    axes[2].legend(fontsize=8)
    return fig


_THM3_STYLES = {
    ("attack", "worst_case"): ("worst case, any $e$", "o-"),
    ("attack", "outside_S"): (r"$i \notin S$, attack", "s-"),
    ("attack", "flipped"): ("flipped, attack", "^-"),
    ("random sign", "flipped"): ("flipped, random signs", "v--"),
}


def thm3(s):
    """Shares of neurons against :math:`N` for scaled (left) and unit (right) biases, with the Gaussian-limit prediction."""
    fig, axes = _subplots(1, 2, figsize=(13, 4.4), sharey=True)
    N_line = np.geomspace(s.Ns[0], s.Ns[-1], 200)
    summary = s.summary
    for ax, bias in zip(axes, ["scaled", "unit"]):
        for (kind, share), (label, style) in _THM3_STYLES.items():
            part = summary[(summary.bias == bias) & (summary.kind == kind) & (summary.share == share)]
            line = ax.plot(part.N, part["mean"], style, ms=4, label=label)[0]
            ax.fill_between(part.N, part.ci_low.clip(lower=0), part.ci_high, color=line.get_color(), alpha=0.2, lw=0)
        prediction = thm3_prediction(N_line, s.delta, s.C, bias)
        ax.plot(N_line, prediction, "k:", lw=1.2, label="Gaussian-limit prediction")
        holds = " (Assumption 2 holds)" if bias == "scaled" else " (Assumption 2 fails)"
        ax.set(xscale="log", xlabel="$N$", title=f"{bias} biases" + holds)
    axes[0].set_ylabel("share of neurons")
    axes[1].legend(fontsize=8)
    return fig


def eq5(s):
    """Left: magnitudes of the two terms of Eq. (5) against the budget. Right: the switching share and the ReLUs flipped."""
    fig, axes = _subplots(1, 2, figsize=(13, 4.3))
    for kind, style in (("attack", "-"), ("random sign", "--")):
        part = s.sweep[s.sweep.kind == kind]
        for col, label in (("abs_linear", r"$|\bar w_{eq}^T e|$"), ("abs_switching", "|switching term|")):
            plot_band(axes[0], summarize(part, "eps", col), "eps", label=f"{label}, {kind}", ls=style)
        for col, label in (("switching_share", "switching share of $|\\Delta|$"), ("flipped", "ReLUs flipped")):
            plot_band(axes[1], summarize(part, "eps", col), "eps", label=f"{label}, {kind}", ls=style)
    axes[0].set(xscale="log", yscale="log", xlabel=r"$\epsilon$", ylabel="mean magnitude", title="the two terms of Eq. (5)")
    axes[1].set(xscale="log", xlabel=r"$\epsilon$", ylabel="share", title="how nonlinear the distortion is")
    axes[0].legend(fontsize=7)
    axes[1].legend(fontsize=7)
    return fig


def fgsm(s):
    """Left: FGSM's first-order gain over the locally linear attack's against :math:`p_t`. Right: true worst margins after each."""
    fig, axes = _subplots(1, 2, figsize=(12, 4.3))
    fc = s.comparison
    axes[0].scatter(fc.p_t, fc.gain_ratio, s=6, alpha=0.5)
    axes[0].axhline(1, color="k", lw=0.8)
    axes[0].set(xlabel="$p_t$", ylabel="FGSM gain / locally linear gain", title="first-order gain on the worst margin")
    lim = [min(fc.margin_fgsm.min(), fc.margin_ll.min()), max(fc.margin_fgsm.max(), fc.margin_ll.max())]
    axes[1].scatter(fc.margin_ll, fc.margin_fgsm, s=6, alpha=0.5)
    axes[1].plot(lim, lim, "k-", lw=0.8)
    axes[1].axhline(0, color="grey", lw=0.6, ls=":")
    axes[1].axvline(0, color="grey", lw=0.6, ls=":")
    title = rf"true margin $\max_{{i\neq t}} y_i - y_t$ after the attack, $\epsilon$ = {s.eps:g}"
    axes[1].set(xlabel="locally linear attack", ylabel="FGSM", title=title)
    return fig
