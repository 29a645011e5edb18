r"""What the chapter "Theory I: linear classifiers" computes, one function per section.

Each function runs a section's experiment with the chapter's parameters and
returns a :class:`~sparsenb.chapters.section.Section`: its tables as attributes (the chapter shows some
and :mod:`sparsenb.chapters.theory_linear` draws them) and ``numbers``, the values
the prose quotes, keyed by their glue names (``glue(**section.numbers)``).
Basis specs such as ``"coif1:1"`` appear in glue names as ``coif1_1``.

=======================  ======================================================================
:func:`prop2`            Prop. 2: sample paths of :math:`\Delta_0/N`
:func:`thm1`             Thm 1 with :math:`K = \lfloor\rho N\rfloor`: Lemma 4, Eq. (6)
:func:`psi_norm_growth`  Thm 2's assumption: :math:`\max_k\|\psi_k\|_1` against :math:`N`
:func:`thm2`             Thm 2: :math:`\Delta_\mathrm{W}` against :math:`N`, :math:`K` and both
:func:`lemma1`           Lemma 1 on every draw of the sweeps
:func:`images`           the white box on MNIST digits
:func:`lemma2`           Lemma 2: exact KS distances and Q-Q plots
=======================  ======================================================================
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from ..basis import DenseTransform, WaveletTransform, dct_basis, pixel_basis
from ..frontend import sparsity_level
from ..theory.bases1d import psi_norm_table
from ..theory.gaussianity import (
    LEMMA2_CASES,
    lemma2_sweep,
    lemma2_vector,
    qq_points,
    standardized_projections,
)
from ..theory.linear_sweeps import (
    image_white_box,
    lemma1_summary,
    linear_sweep,
    prop2_paths,
    thm1_table,
)
from ..lab.stats import power_law_fits, rms_deviation, summarize
from ..theory.weights import make_rng, weight_model
from .figures import plot_band
from .section import Section, drawn, mnist_digits, numbers, powers_of_two

__all__ = ["mnist_digits", "prop2", "thm1", "psi_norm_growth", "thm2", "lemma1", "images", "lemma2"]


# --------------------------------------------------------------------------
# figures (each section function draws its own, see drawn)
# --------------------------------------------------------------------------
def _subplots(*args, **kw):
    import matplotlib.pyplot as plt

    return plt.subplots(*args, **kw)


def _prop2_figure(s):
    r"""Left: :math:`\Delta_0/N` against :math:`N` per law, limit dashed, two single paths. Right: RMS distance to the limit with its fit."""
    fig, axes = _subplots(1, 2, figsize=(12, 4.3))
    paths, fits = s.paths, s.fits.set_index("dist")
    for d in s.dists:
        line = plot_band(axes[0], s.summary[s.summary.dist == d], "N", label=d, band="quantile")
        axes[0].axhline(s.eps * weight_model(d).mu, color=line.get_color(), ls="--", lw=1)
        for k in range(2):
            p = paths[(paths.dist == d) & (paths.path == k)]
            axes[0].plot(p.N, p.delta_0_over_N, color=line.get_color(), lw=0.6, alpha=0.7)
        dev = (
            paths[paths.dist == d]
            .groupby("N")
            .deviation.apply(lambda v: float(np.sqrt(np.mean(v**2))))
        )
        axes[1].plot(dev.index, dev.values, "o", ms=4, color=line.get_color(), label=d)
        fit = fits.loc[d, "fit"]
        axes[1].plot(
            dev.index,
            fit.predict(dev.index),
            color=line.get_color(),
            lw=1,
            label=f"slope {fit.slope:.2f}",
        )
    axes[0].set(
        xscale="log",
        xlabel="$N$",
        ylabel=r"$\Delta_0 / N$",
        title=r"$\Delta_0/N \to \epsilon\mu$ (dashed)",
    )
    axes[1].set(
        xscale="log",
        yscale="log",
        xlabel="$N$",
        ylabel=r"RMS of $\Delta_0/N - \epsilon\mu$",
        title="distance to the limit",
    )
    axes[0].legend(title="weights")
    axes[1].legend(ncol=2, fontsize=9)
    return fig


def _thm1_figure(s):
    r"""(a) :math:`\Delta_\mathrm{SW}/K`, (b) attenuation against :math:`K/N`, (c) :math:`\mathrm{var}(Z_K)/K`, (d) concentration and Eq. (6)."""
    fig, axes = _subplots(2, 2, figsize=(12, 8.2))
    draws, t1 = s.sweep.draws, s.table
    sw = summarize(draws[draws.basis.isin(s.shown)], ["basis", "K"], "delta_sw_over_K")
    for b in s.shown:
        line = plot_band(axes[0, 0], sw[sw.basis == b], "K", label=b, band="quantile")
        c = line.get_color()
        t = t1[t1.basis == b]
        axes[0, 1].plot(
            t.N, t.attenuation, "o-", ms=4, color=c, label=rf"$\Delta_{{SW}}/\Delta_0$, {b}"
        )
        axes[1, 0].plot(t.K, t.var_mc / t.K, "o", ms=4, color=c, label=f"Monte Carlo, {b}")
        axes[1, 0].fill_between(t.K, t.var_low / t.K, t.var_high / t.K, color=c, alpha=0.2, lw=0)
        axes[1, 0].plot(
            t.K, t.var_exact / t.K, "-", color=c, lw=1, label=f"exact (Lemma 4's terms), {b}"
        )
        axes[1, 1].plot(t.K, t.prob, "o-", ms=4, color=c, label=f"empirical, {b}")
        axes[1, 1].fill_between(t.K, t.prob_low, t.prob_high, color=c, alpha=0.2, lw=0)
        axes[1, 1].plot(t.K, t.normal, ":", color=c, lw=1.2, label=f"Gaussian approx., {b}")
    t = t1[t1.basis == s.shown[0]]
    axes[0, 0].axhline(s.eps * s.mu, color="k", ls="--", lw=1, label=r"$\epsilon\mu$")
    axes[0, 1].plot(t.N, t.K_over_N, "k--", lw=1, label="$K/N$")
    axes[1, 0].axhline(1 + s.mu**2, color="k", ls="--", lw=1, label=r"bound $\sigma^2+\mu^2$")
    axes[1, 1].plot(t.K, t.chebyshev, "k--", lw=1, label="Chebyshev, Eq. (6)")
    axes[0, 0].set(
        xscale="log",
        xlabel="$K$",
        ylabel=r"$\Delta_{SW}/K$",
        title=r"(a) $\Delta_{SW}/K \to \epsilon\mu$",
    )
    axes[0, 1].set(
        xscale="log",
        yscale="log",
        xlabel="$N$",
        ylabel="attenuation",
        title=r"(b) $\Delta_{SW}/\Delta_0$ against $K/N$",
    )
    axes[0, 1].set_ylim(0.3 * t.K_over_N.min(), 3 * t.K_over_N.max())
    axes[1, 0].set(xscale="log", xlabel="$K$", ylabel=r"var$(Z_K)/K$", title="(c) spread of $Z_K$")
    prob = rf"Pr$(|Y_K-\mu| \leq {s.delta:g})$"
    axes[1, 1].set(xscale="log", xlabel="$K$", ylabel=prob, title="(d) concentration, Eq. (6)")
    for ax in axes.flat:
        ax.legend(fontsize=8)
    return fig


def _psi_norms_figure(s):
    r""":math:`\max_k\|\psi_k\|_1` (left, with :math:`\log N`) and :math:`\max_k\|\psi_k\|_\infty` (right) against :math:`N`."""
    fig, axes = _subplots(1, 2, figsize=(12, 4.2))
    for b in s.bases:
        part = s.norms[s.norms.basis == b]
        axes[0].plot(
            part.N, part.l1_max, "o-", ms=4, label=f"{b} (slope {s.fits.loc[b, 'slope']:.2f})"
        )
        axes[1].plot(part.N, part.linf_max, "o-", ms=4, label=b)
    axes[0].plot(s.Ns, np.log(s.Ns), "k:", lw=1, label=r"$\log N$")
    axes[0].set(
        xscale="log",
        yscale="log",
        xlabel="$N$",
        ylabel=r"$\max_k \|\psi_k\|_1$",
        title="Theorem 2 asks for $O(\\log N)$",
    )
    axes[1].set(
        xscale="log",
        yscale="log",
        xlabel="$N$",
        ylabel=r"$\max_k \|\psi_k\|_\infty$",
        title="and $O(1)$",
    )
    axes[0].legend(fontsize=8)
    axes[1].legend(fontsize=8)
    return fig


def _thm2_figure(s):
    r"""(a) :math:`\Delta_\mathrm{W}/K` against :math:`N` with Lemma 1, (b) :math:`\Delta_\mathrm{W}` against :math:`K`, (c) the attenuation."""
    fig, axes = _subplots(1, 3, figsize=(15, 4.4))
    a = summarize(s.sweep_N.draws, ["basis", "N"], "delta_w_over_K")
    a_bound = summarize(s.sweep_N.draws, ["basis", "N"], "bound_over_K")
    by_K = summarize(s.sweep_K.draws, ["basis", "K"], "delta_w")
    for b in s.bases:
        line = plot_band(axes[0], a[a.basis == b], "N", label=b)
        bound = a_bound[a_bound.basis == b]
        axes[0].plot(bound.N, bound["mean"], "--", lw=1, color=line.get_color())
        plot_band(axes[1], by_K[by_K.basis == b], "K", label=b, color=line.get_color())
        plot_band(
            axes[2], s.attenuation[s.attenuation.basis == b], "N", label=b, color=line.get_color()
        )
    Ks = np.array(s.Ks, dtype=float)
    axes[1].plot(Ks, s.eps * s.mu * Ks, "k:", lw=1, label=r"$\epsilon\mu K$")
    t = s.rho_table[s.rho_table.basis == s.bases[0]]
    axes[2].plot(t.N, t.K_over_N, "k:", lw=1, label=r"$K/N$ (semi-white box)")
    title_a = f"(a) $K$ = {s.K}: $N$ grows (dashed: Lemma 1)"
    axes[0].set(xscale="log", yscale="log", xlabel="$N$", ylabel=r"$\Delta_W / K$", title=title_a)
    axes[1].set(
        xscale="log",
        yscale="log",
        xlabel="$K$",
        ylabel=r"$\Delta_W$",
        title=f"(b) $N$ = {s.N_fixed}: $K$ grows",
    )
    title_c = rf"(c) $K = \lfloor {s.rho:g} N \rfloor$: attenuation"
    axes[2].set(
        xscale="log", yscale="log", xlabel="$N$", ylabel=r"$\Delta_W / \Delta_0$", title=title_c
    )
    for ax in axes:
        ax.legend(fontsize=8)
    return fig


def _images_figure(s):
    r""":math:`\Delta_\mathrm{W}` on MNIST digits against :math:`K` per basis, with :math:`\Delta_0` and the book's :math:`K`."""
    fig, ax = _subplots(figsize=(7.5, 4.6))
    for b in s.bases:
        plot_band(
            ax,
            s.summary[s.summary.basis == b],
            "K",
            label=f"{b} (slope {s.fits.loc[b, 'slope']:.2f})",
        )
    ax.axhline(s.draws.delta_0.mean(), color="k", ls="--", lw=1, label=r"$\Delta_0$ (no defense)")
    ax.axvline(s.K_ref, color="grey", ls=":", lw=1)
    title = f"white box on {s.n} MNIST digits ($N$ = 784)"
    ax.set(xscale="log", yscale="log", xlabel="$K$", ylabel=r"$\Delta_W$", title=title)
    ax.legend(fontsize=8)
    return fig


def _lemma2_figure(s):
    r"""Three normal Q-Q plots of :math:`\psi_k^Tw` (Laplace), and the exact KS distance against :math:`N` with Edgeworth dotted."""
    fig, axes = _subplots(1, 4, figsize=(17, 4.2))
    ks, Ns = s.ks, s.Ns
    for ax, label in zip(axes, s.cases):
        for N, marker in ((Ns[1], "."), (Ns[-1], "x")):
            q_theory, q_sample = s.qq[label, N]
            ax.plot(q_theory, q_sample, marker, ms=3, label=f"$N$ = {N}")
        ax.plot([-4, 4], [-4, 4], "k-", lw=0.8)
        ax.set(
            xlim=[-4, 4],
            ylim=[-5.5, 5.5],
            xlabel="normal quantile",
            ylabel=r"quantile of $\psi_k^T w$",
            title=label,
        )
        ax.legend(fontsize=8, title="Laplace $w$", title_fontsize=8)
        lap = ks[(ks.case == label) & (ks.dist == "laplace")]
        line = axes[3].plot(lap.N, lap.ks, "o-", ms=4, label=f"{label}")[0]
        axes[3].plot(lap.N, lap.edgeworth, ":", color=line.get_color(), lw=1.2)
        uni = ks[(ks.case == label) & (ks.dist == "uniform")]
        axes[3].plot(uni.N, uni.ks, "s--", ms=3, color=line.get_color(), lw=0.8, alpha=0.7)
    ylabel, title = "KS distance to $\\mathcal{N}(0,1)$", "exact KS (o Laplace, s uniform)"
    axes[3].set(xscale="log", yscale="log", xlabel="$N$", ylabel=ylabel, title=title)
    axes[3].legend(fontsize=7)
    return fig


# --------------------------------------------------------------------------
# sections
# --------------------------------------------------------------------------
@drawn(_prop2_figure)
def prop2(dists, log2_N_max: int, n_paths: int, eps: float, seed: int) -> Section:
    r"""Prop. 2: ``n_paths`` paths of :math:`\Delta_0/N` for each weight law, :math:`N = 4 \ldots 2^{\text{log2\_N\_max}}`."""
    Ns = powers_of_two([2, log2_N_max])
    paths = prop2_paths(dists, Ns, n_paths, eps, seed)
    summary = summarize(paths, ["dist", "N"], "delta_0_over_N")
    fits = power_law_fits(
        paths, "N", "deviation", by="dist", statistic=rms_deviation(0.0), seed=seed
    )
    final = summary[summary.N == Ns[-1]].set_index("dist")
    by_dist = fits.set_index("dist")["fit"]
    values = {"prop2_n_paths": n_paths, "prop2_N_max": Ns[-1]}
    for d in dists:
        values[f"prop2_limit_{d}"] = eps * weight_model(d).mu
        values[f"prop2_final_{d}"] = final.loc[d, "mean"]
        values[f"prop2_band_{d}"] = (final.loc[d, "q_high"] - final.loc[d, "q_low"]) / 2
        values[f"prop2_slope_{d}"] = by_dist[d].text
    table = fits[["dist", "slope", "low", "high", "x_min", "x_max"]].round(3)
    return Section(
        paths=paths,
        summary=summary,
        fits=fits,
        table=table,
        dists=list(dists),
        eps=eps,
        numbers=numbers(**values),
    )


@drawn(_thm1_figure)
def thm1(
    bases, shown, log2_N, rho: float, dist: str, n_draws: int, eps: float, delta: float, seed: int
) -> Section:
    r"""Thm 1 with :math:`K = \lfloor\rho N\rfloor` over 1-D ``bases`` (``shown`` are drawn and quoted).

    Also the sweep that Thm 2 reuses (``sweep``) and Eq. (6) at ``delta``.
    """
    Ns = powers_of_two(log2_N)
    sweep = linear_sweep(bases, [(N, sparsity_level(rho, N)) for N in Ns], dist, n_draws, eps, seed)
    table = thm1_table(sweep, delta)
    fits = power_law_fits(sweep.draws, "K", "delta_sw", by="basis", seed=seed).set_index("basis")
    mu = weight_model(dist).mu
    last = table[table.N == Ns[-1]].set_index("basis")
    values = {
        "thm1_n_draws": n_draws,
        "thm1_eps_mu": eps * mu,
        "thm1_K_max": last["K"].iloc[0],
        "thm1_N_max": Ns[-1],
        "thm1_N_min": Ns[0],
        "thm1_K_over_N": last["K_over_N"].iloc[0],
        "thm1_cheb_last": last["chebyshev"].iloc[0],
        "thm1_cheb_first_K": table[table.chebyshev_raw > 0].K.min(),
        "thm1_mc_in_ci": (
            (table.var_low <= table.var_exact) & (table.var_exact <= table.var_high)
        ).mean(),
    }
    for b in shown:
        values[f"thm1_slope_{b}"] = fits.loc[b, "fit"].text
        values[f"thm1_sw_over_K_{b}"] = last.loc[b, "mean_delta_sw_over_K"]
        values[f"thm1_atten_{b}"] = last.loc[b, "attenuation"]
        values[f"thm1_var_ratio_{b}"] = last.loc[b, "var_exact"] / last.loc[b, "var_bound"]
        values[f"thm1_prob_{b}"] = last.loc[b, "prob"]
    columns = [
        "basis",
        "N",
        "K",
        "mean_delta_sw_over_K",
        "attenuation",
        "var_mc",
        "var_exact",
        "var_bound",
        "prob",
        "chebyshev",
    ]
    shown_table = table[table.basis.isin(shown)][columns].round(4)
    return Section(
        sweep=sweep,
        table=table,
        shown_table=shown_table,
        fits=fits,
        Ns=Ns,
        shown=list(shown),
        eps=eps,
        mu=mu,
        delta=delta,
        rho=rho,
        numbers=numbers(**values),
    )


@drawn(_psi_norms_figure)
def psi_norm_growth(bases, log2_N) -> Section:
    r""":math:`\max_k\|\psi_k\|_1` and :math:`\max_k\|\psi_k\|_\infty` of 1-D ``bases`` against :math:`N`, with fitted exponents."""
    Ns = powers_of_two(log2_N)
    norms = psi_norm_table(bases, Ns)
    fits = power_law_fits(norms, "N", "l1_max", by="basis").set_index("basis")
    values = {}
    for b in bases:
        values[f"norm_slope_{b}"] = fits.loc[b, "slope"]
        values[f"norm_l1_{b}"] = norms[norms.basis == b].l1_max.iloc[-1]
    table = norms.pivot(index="N", columns="basis", values="l1_max").round(2)
    return Section(
        norms=norms, fits=fits, Ns=Ns, bases=list(bases), table=table, numbers=numbers(**values)
    )


@drawn(_thm2_figure)
def thm2(
    bases,
    K: int,
    log2_N,
    log2_N_fixed: int,
    Ks,
    dist: str,
    n_draws: int,
    eps: float,
    seed: int,
    rho_sweep: Section,
    norms: Section,
) -> Section:
    r"""Thm 2: :math:`\Delta_\mathrm{W}` as :math:`N` grows at fixed ``K``, as :math:`K` grows at :math:`N = 2^{\text{log2\_N\_fixed}}`,
    and with :math:`K = \lfloor\rho N\rfloor` (the sweep of :func:`thm1`, ``rho_sweep``).
    """
    Ns = powers_of_two(log2_N)
    N_fixed = 2**log2_N_fixed
    sweep_N = linear_sweep(bases, [(N, K) for N in Ns], dist, n_draws, eps, seed)
    sweep_K = linear_sweep(bases, [(N_fixed, k) for k in Ks], dist, n_draws, eps, seed)
    sweep_rho, Ns_rho = rho_sweep.sweep, rho_sweep.Ns
    fits = {
        "vs N, K fixed": power_law_fits(sweep_N.draws, "N", "delta_w", by="basis", seed=seed),
        "vs K, N fixed": power_law_fits(sweep_K.draws, "K", "delta_w", by="basis", seed=seed),
        "vs N, K = rho N": power_law_fits(sweep_rho.draws, "N", "delta_w", by="basis", seed=seed),
    }
    slopes = pd.DataFrame({k: f.set_index("basis")["fit"].map(str) for k, f in fits.items()})
    attenuation = summarize(sweep_rho.draws, ["basis", "N"], "attenuation_w")
    at_max = attenuation[attenuation.N == Ns_rho[-1]].set_index("basis")
    cases = sweep_rho.cases[sweep_rho.cases.N == Ns_rho[-1]].set_index("basis")
    values = {"thm2_K": K, "thm2_N_fixed": N_fixed, "thm2_n_draws": n_draws, "thm2_N_max": Ns[-1]}
    for b in bases:
        for key, name in zip(fits, ["N", "K", "rho"]):
            values[f"thm2_slope_{name}_{b}"] = fits[key].set_index("basis").loc[b, "fit"].text
        values[f"thm2_atten_{b}"] = at_max.loc[b, "mean"]
        # Lemma 1 in the mean: E[bound] / E[Delta_0] = rho * mean ||psi_k||_1 (Gaussian w: E|psi_k^T w| = mu)
        values[f"thm2_atten_bound_{b}"] = cases.loc[b, "K"] / Ns_rho[-1] * cases.loc[b, "l1_mean"]
    values["thm2_sqrt_rho"] = np.sqrt(cases["K"].iloc[0] / Ns_rho[-1])
    ratio = sweep_N.draws[sweep_N.draws.N == Ns[-1]].groupby("basis").delta_w.mean()
    values["thm2_dct_over_coif1"] = ratio["dct"] / ratio["coif1:1"]
    values["N_max_1d"] = max(norms.Ns[-1], Ns[-1], Ns_rho[-1])
    return Section(
        sweep_N=sweep_N,
        sweep_K=sweep_K,
        sweep_rho=sweep_rho,
        rho_table=rho_sweep.table,
        slopes=slopes,
        attenuation=attenuation,
        bases=list(bases),
        K=K,
        N_fixed=N_fixed,
        Ks=list(Ks),
        eps=eps,
        mu=rho_sweep.mu,
        rho=rho_sweep.rho,
        numbers=numbers(**values),
    )


def lemma1(thm2_section: Section) -> Section:
    """Lemma 1 on every draw of the three 1-D sweeps of :func:`thm2`: violations and tightness per basis."""
    s = thm2_section
    all_draws = pd.concat(
        [
            s.sweep_rho.draws.assign(sweep="K = rho N"),
            s.sweep_N.draws.assign(sweep="K fixed"),
            s.sweep_K.draws.assign(sweep="N fixed"),
        ]
    )
    table = lemma1_summary(all_draws, "basis")
    tight = table.set_index("basis")["mean_tightness"]
    values = {"lemma1_draws": table.draws.sum(), "lemma1_violations": table.violations.sum()}
    values.update({f"lemma1_tight_{b}": tight[b] for b in s.bases})
    return Section(table=table.round(4), numbers=numbers(**values))


@drawn(_images_figure)
def images(
    x: torch.Tensor, wavelets, Ks, dist: str, eps: float, seed: int, rho_ref: float = 0.035
) -> Section:
    r"""Sec. IV's distortions on MNIST digits ``x`` with their own supports, for one-level ``wavelets``, the DCT and the pixel basis.

    ``Ks`` gets the book's :math:`K = \lfloor 0.035 N \rfloor` (``rho_ref``) added.
    """
    H, W = x.shape[-2:]
    K_ref = sparsity_level(rho_ref, H * W)
    Ks = sorted(set(Ks) | {K_ref})
    transforms = {w: WaveletTransform(w, (H, W), 1) for w in wavelets}
    transforms["dct"] = DenseTransform(dct_basis((H, W)), (H, W))
    transforms["pixel"] = DenseTransform(pixel_basis((H, W)), (H, W))
    draws = image_white_box(x, transforms, Ks, dist, eps, seed)
    fits = power_law_fits(draws, "K", "delta_w", by="basis", seed=seed).set_index("basis")
    summary = summarize(draws, ["basis", "K"], "delta_w")
    at_ref = (
        draws[draws.K == K_ref].groupby("basis")[["delta_w", "attenuation_w", "delta_0"]].mean()
    )
    lemma1_table = lemma1_summary(draws, "basis").set_index("basis")
    values = {
        "img_n": len(x),
        "img_K_ref": K_ref,
        "img_delta_0": at_ref["delta_0"].iloc[0],
        "img_violations": lemma1_table.violations.sum(),
        "img_draws": lemma1_table.draws.sum(),
    }
    for b in transforms:
        values[f"img_dw_{b}"] = at_ref.loc[b, "delta_w"]
        values[f"img_atten_{b}"] = at_ref.loc[b, "attenuation_w"]
        values[f"img_slope_{b}"] = fits.loc[b, "fit"].text
        values[f"img_tight_{b}"] = lemma1_table.loc[b, "mean_tightness"]
    return Section(
        draws=draws,
        fits=fits,
        summary=summary,
        table=at_ref.round(4),
        bases=list(transforms),
        K_ref=K_ref,
        n=len(x),
        numbers=numbers(**values),
    )


@drawn(_lemma2_figure)
def lemma2(log2_N, n_qq: int, seed: int, wavelet: str = "coif1", level: int = 1) -> Section:
    r"""Lemma 2: exact KS distances of :math:`\psi_k^Tw` (Laplace and uniform :math:`w`) against :math:`N`, and Q-Q samples.

    Q-Q plots (Laplace weights, ``n_qq`` Monte Carlo samples) at the second
    smallest and the largest :math:`N`.
    """
    Ns = powers_of_two(log2_N)
    ks = lemma2_sweep(Ns, ["laplace", "uniform"], wavelet=wavelet, level=level)
    fits = power_law_fits(ks, "N", "ks", by=["case", "dist"]).set_index(["case", "dist"])
    cases = list(dict.fromkeys(ks.case))  # labels, in the order of LEMMA2_CASES
    qq = {}
    for key, label in zip(LEMMA2_CASES, cases):
        for N in (Ns[1], Ns[-1]):
            _, psi = lemma2_vector(key, N, wavelet, level)
            qq[label, N] = qq_points(
                standardized_projections(psi, "laplace", n_qq, make_rng(seed, "qq", key, N))
            )
    values = {"l2_N_max": Ns[-1]}
    for key, label in zip(LEMMA2_CASES, cases):
        values[f"l2_slope_{key}"] = fits.loc[(label, "laplace"), "fit"].text
        values[f"l2_slope_uniform_{key}"] = fits.loc[(label, "uniform"), "fit"].text
        values[f"l2_ks_max_{key}"] = ks[(ks.case == label) & (ks.dist == "laplace")].ks.iloc[-1]
    table = ks.pivot_table(index="N", columns=["dist", "case"], values="ks")
    return Section(
        ks=ks, fits=fits, cases=cases, qq=qq, Ns=Ns, table=table, numbers=numbers(**values)
    )
