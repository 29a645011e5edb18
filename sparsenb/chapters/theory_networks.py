r"""What the chapter "Theory II: high SNR and neural networks" computes, one function per section.

As in :mod:`sparsenb.chapters.theory_linear`, each function returns a
:class:`~sparsenb.chapters.section.Section`: tables as attributes (shown
by the chapter, drawn by :mod:`sparsenb.chapters.theory_networks`) and
``numbers`` for the prose (``glue(**section.numbers)``).

====================  ==================================================================
:func:`prop1`         Prop. 1 on MNIST digits: the paper's and the gap condition
:func:`overlap_hist`  the support overlap at the paper's Fig. 8a setting
:func:`lemma3`        Lemma 3: exact KS distances for resized digits, Q-Q samples
:func:`thm3`          Thm 3: switch flips of random two-layer networks against :math:`N`
:func:`eq5`           Eq. (5): the linear and switching terms on a random ReLU network
:func:`fgsm`          Sec. V-E: FGSM against the locally linear attack
====================  ==================================================================
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from ..basis import WaveletTransform, gamma, wavelet_basis
from ..frontend import sparsity_level
from ..theory.gaussianity import (
    lemma3_table,
    normalized_digits,
    qq_points,
    standardized_projections,
)
from ..theory.multiclass import fgsm_comparison
from ..theory.networks import eq5_sweep, relu_mlp, thm3_prediction, thm3_sweep
from ..theory.prop1 import PROP1_KINDS, prop1_summary, prop1_sweep
from ..lab.stats import power_law_fits, summarize
from ..theory.weights import make_rng
from .figures import plot_band
from .section import Section, drawn, mnist_digits, numbers

__all__ = ["mnist_digits", "prop1", "overlap_hist", "lemma3", "thm3", "eq5", "fgsm"]


def _kind(kind: str) -> str:
    return kind.replace(" ", "_")


# --------------------------------------------------------------------------
# figures (each section function draws its own, see drawn)
# --------------------------------------------------------------------------
def _subplots(*args, **kw):
    import matplotlib.pyplot as plt

    return plt.subplots(*args, **kw)


def _prop1_figure(s, wavelet: str = "coif1"):
    """(a) shares meeting each condition per wavelet, (b) guarantee against outcome and (c) mean overlap for ``wavelet``."""
    fig, axes = _subplots(1, 3, figsize=(16, 4.4))
    summary = s.summary
    for w in s.wavelets:
        part = summary[(summary.basis == w) & (summary.kind == "random sign")]
        line = axes[0].plot(
            part.eps, part.condition_share, "o-", ms=4, label=rf"{w}: $\lambda/\epsilon>\gamma$"
        )[0]
        axes[0].plot(
            part.eps,
            part.gap_condition_share,
            "s--",
            ms=3,
            color=line.get_color(),
            label=rf"{w}: gap $>\gamma\epsilon$",
        )
    c = summary[summary.basis == wavelet]
    for kind in PROP1_KINDS:
        part = c[c.kind == kind]
        line = axes[1].plot(
            part.eps, part.unmoved_share, "o-", ms=4, label=f"support unmoved, {kind}"
        )[0]
        axes[2].plot(
            part.eps, part.mean_overlap_share, "o-", ms=4, color=line.get_color(), label=kind
        )
    part = c[c.kind == "random sign"]
    axes[1].plot(part.eps, part.condition_share, "k-", lw=1.2, label=r"paper's condition met")
    axes[1].plot(
        part.eps, part.gap_condition_share, "k--", lw=1.2, label="gap condition met (guarantee)"
    )
    axes[0].set(
        xscale="log",
        xlabel=r"$\epsilon$",
        ylabel="share of digits",
        title=f"(a) conditions, $K$ = {s.K}",
    )
    axes[1].set(
        xscale="log",
        xlabel=r"$\epsilon$",
        ylabel="share of digits",
        title=f"(b) {wavelet}: guarantee against outcome",
    )
    ylabel = r"mean $|\mathcal{S}_K(x)\cap\mathcal{S}_K(x+e)|/K$"
    axes[2].set(
        xscale="log", xlabel=r"$\epsilon$", ylabel=ylabel, title=f"(c) {wavelet}: support overlap"
    )
    axes[0].legend(fontsize=7, ncol=2)
    axes[1].legend(fontsize=7)
    axes[2].legend(fontsize=8)
    return fig


def _overlap_hist_figure(s):
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


def _lemma3_figure(s):
    r"""Q-Q plots of :math:`w^Tx` for one digit at the smallest and largest size (digit inset), and the KS distance against :math:`N`."""
    fig, axes = _subplots(1, 3, figsize=(15, 4.2))
    for ax, side in zip(axes[:2], s.qq):
        q_theory, q_sample = s.qq[side]
        ax.plot(q_theory, q_sample, ".", ms=3)
        ax.plot([-4, 4], [-4, 4], "k-", lw=0.8)
        title = f"one digit, $N$ = {side * side}"
        ax.set(
            xlim=[-4, 4],
            ylim=[-5.5, 5.5],
            xlabel="normal quantile",
            ylabel=r"quantile of $w^Tx$",
            title=title,
        )
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


def _thm3_figure(s):
    """Shares of neurons against :math:`N` for scaled (left) and unit (right) biases, with the Gaussian-limit prediction."""
    fig, axes = _subplots(1, 2, figsize=(13, 4.4), sharey=True)
    N_line = np.geomspace(s.Ns[0], s.Ns[-1], 200)
    summary = s.summary
    for ax, bias in zip(axes, ["scaled", "unit"]):
        for (kind, share), (label, style) in _THM3_STYLES.items():
            part = summary[
                (summary.bias == bias) & (summary.kind == kind) & (summary.share == share)
            ]
            line = ax.plot(part.N, part["mean"], style, ms=4, label=label)[0]
            ax.fill_between(
                part.N,
                part.ci_low.clip(lower=0),
                part.ci_high,
                color=line.get_color(),
                alpha=0.2,
                lw=0,
            )
        prediction = thm3_prediction(N_line, s.delta, s.C, bias)
        ax.plot(N_line, prediction, "k:", lw=1.2, label="Gaussian-limit prediction")
        holds = " (Assumption 2 holds)" if bias == "scaled" else " (Assumption 2 fails)"
        ax.set(xscale="log", xlabel="$N$", title=f"{bias} biases" + holds)
    axes[0].set_ylabel("share of neurons")
    axes[1].legend(fontsize=8)
    return fig


def _eq5_figure(s):
    """Left: magnitudes of the two terms of Eq. (5) against the budget. Right: the switching share and the ReLUs flipped."""
    fig, axes = _subplots(1, 2, figsize=(13, 4.3))
    for kind, style in (("attack", "-"), ("random sign", "--")):
        part = s.sweep[s.sweep.kind == kind]
        for col, label in (
            ("abs_linear", r"$|\bar w_{eq}^T e|$"),
            ("abs_switching", "|switching term|"),
        ):
            plot_band(
                axes[0], summarize(part, "eps", col), "eps", label=f"{label}, {kind}", ls=style
            )
        for col, label in (
            ("switching_share", "switching share of $|\\Delta|$"),
            ("flipped", "ReLUs flipped"),
        ):
            plot_band(
                axes[1], summarize(part, "eps", col), "eps", label=f"{label}, {kind}", ls=style
            )
    axes[0].set(
        xscale="log",
        yscale="log",
        xlabel=r"$\epsilon$",
        ylabel="mean magnitude",
        title="the two terms of Eq. (5)",
    )
    axes[1].set(
        xscale="log", xlabel=r"$\epsilon$", ylabel="share", title="how nonlinear the distortion is"
    )
    axes[0].legend(fontsize=7)
    axes[1].legend(fontsize=7)
    return fig


def _fgsm_figure(s):
    """Left: FGSM's first-order gain over the locally linear attack's against :math:`p_t`. Right: true worst margins after each."""
    fig, axes = _subplots(1, 2, figsize=(12, 4.3))
    fc = s.comparison
    axes[0].scatter(fc.p_t, fc.gain_ratio, s=6, alpha=0.5)
    axes[0].axhline(1, color="k", lw=0.8)
    axes[0].set(
        xlabel="$p_t$",
        ylabel="FGSM gain / locally linear gain",
        title="first-order gain on the worst margin",
    )
    lim = [
        min(fc.margin_fgsm.min(), fc.margin_ll.min()),
        max(fc.margin_fgsm.max(), fc.margin_ll.max()),
    ]
    axes[1].scatter(fc.margin_ll, fc.margin_fgsm, s=6, alpha=0.5)
    axes[1].plot(lim, lim, "k-", lw=0.8)
    axes[1].axhline(0, color="grey", lw=0.6, ls=":")
    axes[1].axvline(0, color="grey", lw=0.6, ls=":")
    title = rf"true margin $\max_{{i\neq t}} y_i - y_t$ after the attack, $\epsilon$ = {s.eps:g}"
    axes[1].set(xlabel="locally linear attack", ylabel="FGSM", title=title)
    return fig


# --------------------------------------------------------------------------
# sections
# --------------------------------------------------------------------------
@drawn(_prop1_figure)
def prop1(x: torch.Tensor, wavelets, rho: float, epsilons, eps_ref: float, seed: int) -> Section:
    r"""Prop. 1 on digits ``x`` for one-level ``wavelets``, :math:`K = \lfloor\rho N\rfloor`, the budgets ``epsilons`` and ``eps_ref``."""
    shape = tuple(x.shape[-2:])
    K = sparsity_level(rho, shape[0] * shape[1])
    transforms = {w: WaveletTransform(w, shape, 1) for w in wavelets}
    gammas = {w: gamma(wavelet_basis(w, shape, 1)) for w in wavelets}
    sweep = prop1_sweep(x, transforms, gammas, K, sorted(set(epsilons) | {eps_ref}), seed=seed)
    summary = prop1_summary(sweep, K)
    ref = summary[summary.eps == eps_ref].set_index(["basis", "kind"])
    values = {"p1_n": len(x), "p1_K": K, "p1_eps_ref": eps_ref}
    for w in wavelets:
        values[f"p1_gamma_{w}"] = gammas[w]
        values[f"p1_cond_{w}"] = ref.loc[(w, "random sign"), "condition_share"]
        values[f"p1_gapcond_{w}"] = ref.loc[(w, "random sign"), "gap_condition_share"]
        for kind in PROP1_KINDS:
            values[f"p1_unmoved_{w}_{_kind(kind)}"] = ref.loc[(w, kind), "unmoved_share"]
            values[f"p1_overlap_{w}_{_kind(kind)}"] = ref.loc[(w, kind), "mean_overlap_share"]
    met = sweep[sweep.condition]
    values["p1_moved_given_cond"] = (met.overlap < K).mean()
    values["p1_gap_violations"] = sweep.gap_violated.sum()
    values["p1_rows"] = len(sweep)
    at_ref = sweep[(sweep.kind == "random sign") & (sweep.eps == eps_ref)]
    lam = at_ref.groupby("basis")[["lam", "gap"]].median()
    values["p1_lam_coif1"] = lam.loc["coif1", "lam"]
    values["p1_gap_coif1"] = lam.loc["coif1", "gap"]
    table = pd.DataFrame({"gamma": gammas}).join(lam.add_prefix("median ")).round(4)
    return Section(
        sweep=sweep,
        summary=summary,
        table=table,
        K=K,
        wavelets=list(wavelets),
        transforms=transforms,
        gammas=gammas,
        eps_ref=eps_ref,
        numbers=numbers(**values),
    )


@drawn(_overlap_hist_figure)
def overlap_hist(
    x: torch.Tensor,
    prop1_section: Section,
    rho: float,
    eps: float,
    seed: int,
    wavelet: str = "coif1",
) -> Section:
    r""":math:`|\mathcal{S}_K(x) \cap \mathcal{S}_K(x+e)|` for the three perturbations at one budget, :math:`K = \lfloor\rho N\rfloor`."""
    s = prop1_section
    K = sparsity_level(rho, x.shape[-2] * x.shape[-1])
    sweep = prop1_sweep(x, {wavelet: s.transforms[wavelet]}, s.gammas, K, [eps], seed=seed)
    full = sweep.groupby("kind").overlap.apply(lambda o: float(np.mean(o == K)))
    values = {"hist_K": K}
    for kind in PROP1_KINDS:
        values[f"hist_full_{_kind(kind)}"] = full[kind]
        values[f"hist_mean_{_kind(kind)}"] = sweep[sweep.kind == kind].overlap.mean()
    return Section(sweep=sweep, K=K, eps=eps, wavelet=wavelet, n=len(x), numbers=numbers(**values))


@drawn(_lemma3_figure)
def lemma3(x: torch.Tensor, sides, n_qq: int, seed: int) -> Section:
    r"""Lemma 3: exact KS distances of :math:`w^Tx` for digits ``x`` resized to ``sides``; Q-Q samples of the first digit."""
    table = lemma3_table(x, sides, ["laplace", "uniform"])
    fits = power_law_fits(table, "N", "ks", by="dist", seed=seed).set_index("dist")
    linf_fit = power_law_fits(table[table.dist == "laplace"], "N", "x_linf", seed=seed)["fit"].iloc[
        0
    ]
    summary = summarize(table, ["dist", "N"], "ks")
    digit = x[:1]
    qq = {}
    for side in (sides[0], sides[-1]):
        v = normalized_digits(digit, side)[0]
        qq[side] = qq_points(
            standardized_projections(v, "laplace", n_qq, make_rng(seed, "qq3", side))
        )
    values = {
        "l3_linf_slope": linf_fit.text,
        "l3_N_first": sides[0] ** 2,
        "l3_N_last": sides[-1] ** 2,
        "l3_n": len(x),
    }
    for d in ("laplace", "uniform"):
        means = summary[summary.dist == d]["mean"]
        values[f"l3_slope_{d}"] = fits.loc[d, "fit"].text
        values[f"l3_ks_first_{d}"] = means.iloc[0]
        values[f"l3_ks_last_{d}"] = means.iloc[-1]
    return Section(
        table=table,
        fits=fits,
        summary=summary,
        digit=digit,
        qq=qq,
        n=len(x),
        means=summary.pivot(index="N", columns="dist", values="mean"),
        numbers=numbers(**values),
    )


@drawn(_thm3_figure)
def thm3(
    x: torch.Tensor,
    sides,
    M: int,
    delta: float,
    C: float,
    n_networks: int,
    fit_max_N: int,
    seed: int,
) -> Section:
    r"""Thm 3 on random two-layer networks (Gaussian weights) over digits ``x`` resized to ``sides``.

    Shares of neurons per ``(bias, kind, N)``; the unit-bias random-sign
    flips are fitted up to :math:`N` = ``fit_max_N``, before they saturate.
    """
    sweep = thm3_sweep(x, sides, M, "gaussian", delta, C, n_networks, seed=seed)
    long = sweep.melt(
        id_vars=["bias", "side", "N", "network", "kind", "image"],
        var_name="share",
        value_name="value",
    )
    summary = summarize(long, ["bias", "kind", "share", "N"], "value")
    flips_unit = sweep[(sweep.bias == "unit") & (sweep.kind == "random sign")]
    fit_unit = power_law_fits(flips_unit[flips_unit.N <= fit_max_N], "N", "flipped", seed=seed)[
        "fit"
    ].iloc[0]
    by = sweep.groupby(["bias", "kind", "N"])[["flipped", "outside_S", "worst_case"]].mean()
    Ns = sorted(sweep.N.unique())
    zero = [n for n in Ns if by.loc[("scaled", "attack", n), "worst_case"] == 0]
    no_flips = [
        n
        for n in Ns
        if max(by.loc[("scaled", k, n), "flipped"] for k in ("attack", "random sign")) == 0
    ]
    values = {
        "t3_M": M,
        "t3_delta": delta,
        "t3_C": C,
        "t3_N_first": Ns[0],
        "t3_N_last": Ns[-1],
        "t3_fit_max_N": fit_max_N,
        "t3_worst_scaled_first": by.loc[("scaled", "attack", Ns[0]), "worst_case"],
        "t3_worst_scaled_last": by.loc[("scaled", "attack", Ns[-1]), "worst_case"],
        "t3_pred_scaled_first": thm3_prediction(Ns[0], delta, C, "scaled"),
        "t3_flip_scaled_first": by.loc[("scaled", "attack", Ns[0]), "flipped"],
        "t3_scaled_zero_from": zero[0] if zero else float("nan"),
        "t3_flip_zero_from": no_flips[0] if no_flips else float("nan"),
        "t3_worst_unit_last": by.loc[("unit", "attack", Ns[-1]), "worst_case"],
        "t3_flip_unit_attack_last": by.loc[("unit", "attack", Ns[-1]), "flipped"],
        "t3_flip_unit_random_last": by.loc[("unit", "random sign", Ns[-1]), "flipped"],
        "t3_flip_unit_random_first": by.loc[("unit", "random sign", Ns[0]), "flipped"],
        "t3_unit_slope": fit_unit.text,
    }
    return Section(
        sweep=sweep,
        summary=summary,
        table=by.unstack("kind").round(4),
        Ns=Ns,
        delta=delta,
        C=C,
        numbers=numbers(**values),
    )


@drawn(_eq5_figure)
def eq5(x: torch.Tensor, hidden, epsilons, seed: int) -> Section:
    r"""Eq. (5) on a random ReLU network ``N -> hidden -> 1`` over digits ``x`` (flattened), for the budgets ``epsilons``."""
    X = x.flatten(1)
    sizes = [X.shape[1], *hidden, 1]
    sweep = eq5_sweep(relu_mlp(sizes, seed=seed), X, epsilons, seed=seed)
    sweep = sweep.assign(abs_linear=sweep.linear.abs(), abs_switching=sweep.switching.abs())
    attack = sweep[sweep.kind == "attack"]
    fits = {
        col: power_law_fits(attack, "eps", col, seed=seed)["fit"].iloc[0]
        for col in ("abs_linear", "abs_switching")
    }
    share = sweep.groupby(["kind", "eps"])[["switching_share", "flipped"]].mean()
    small, large = ("attack", epsilons[0]), ("attack", epsilons[-1])
    values = {
        "e5_residual": sweep.residual.abs().max(),
        "e5_delta_scale": sweep.delta.abs().median(),
        "e5_n": len(X),
        "e5_net": " – ".join(str(s) for s in sizes),
        "e5_slope_linear": fits["abs_linear"].text,
        "e5_slope_switching": fits["abs_switching"].text,
        "e5_share_small": share.loc[small, "switching_share"],
        "e5_share_large": share.loc[large, "switching_share"],
        "e5_flip_small": share.loc[small, "flipped"],
        "e5_flip_large": share.loc[large, "flipped"],
        "e5_eps_small": epsilons[0],
        "e5_eps_large": epsilons[-1],
    }
    return Section(sweep=sweep, table=share.unstack("kind").round(4), numbers=numbers(**values))


@drawn(_fgsm_figure)
def fgsm(
    x: torch.Tensor, hidden, eps: float, logit_scale: float, seed: int, classes: int = 10
) -> Section:
    r"""Sec. V-E on a random ``classes``-class ReLU network over digits ``x``: FGSM two ways and the locally linear attack."""
    X = x.flatten(1)
    net = relu_mlp([X.shape[1], *hidden, classes], seed=seed, logit_scale=logit_scale)
    fc = fgsm_comparison(net, X, eps)
    values = {
        "fgsm_n": len(X),
        "fgsm_agree_min": fc.sign_agreement.min(),
        "fgsm_rel_err_max": fc.grad_rel_err.max(),
        "fgsm_ratio_mean": fc.gain_ratio.mean(),
        "fgsm_ratio_below": (fc.gain_ratio < 1 - 1e-9).mean(),
        "fgsm_flip_fgsm": (fc.margin_fgsm > 0).mean(),
        "fgsm_flip_ll": (fc.margin_ll > 0).mean(),
        "fgsm_eps": eps,
        "fgsm_corr": np.corrcoef(fc.p_t, fc.gain_ratio)[0, 1],
    }
    columns = [
        "p_t",
        "sign_agreement",
        "grad_rel_err",
        "gain_fgsm",
        "gain_ll",
        "gain_ratio",
        "margin_fgsm",
        "margin_ll",
    ]
    return Section(
        comparison=fc, eps=eps, table=fc[columns].describe().round(4), numbers=numbers(**values)
    )
