r"""The figures of "Theory I: linear classifiers", one function per figure.

Each takes the :class:`~sparsenb.theory.chapter_linear.Section` its section
computed, draws it and returns the matplotlib ``Figure``; the chapter
finishes it with :func:`sparsenb.page.figure`. Shaded bands come from
:func:`~sparsenb.theory.stats.summarize` (95% confidence intervals of the
mean, or the central 95% of the draws where a caption says so).
"""
from __future__ import annotations

import numpy as np

from .stats import plot_band, summarize
from .weights import weight_model

__all__ = ["prop2", "thm1", "psi_norms", "thm2", "images", "lemma2"]


def _subplots(*args, **kw):
    import matplotlib.pyplot as plt

    return plt.subplots(*args, **kw)


def prop2(s):
    r"""Left: :math:`\Delta_0/N` against :math:`N` per law, limit dashed, two single paths. Right: RMS distance to the limit with its fit."""
    fig, axes = _subplots(1, 2, figsize=(12, 4.3))
    paths, fits = s.paths, s.fits.set_index("dist")
    for d in s.dists:
        line = plot_band(axes[0], s.summary[s.summary.dist == d], "N", label=d, band="quantile")
        axes[0].axhline(s.eps * weight_model(d).mu, color=line.get_color(), ls="--", lw=1)
        for k in range(2):
            p = paths[(paths.dist == d) & (paths.path == k)]
            axes[0].plot(p.N, p.delta_0_over_N, color=line.get_color(), lw=0.6, alpha=0.7)
        dev = paths[paths.dist == d].groupby("N").deviation.apply(lambda v: float(np.sqrt(np.mean(v**2))))
        axes[1].plot(dev.index, dev.values, "o", ms=4, color=line.get_color(), label=d)
        fit = fits.loc[d, "fit"]
        axes[1].plot(dev.index, fit.predict(dev.index), color=line.get_color(), lw=1, label=f"slope {fit.slope:.2f}")
    axes[0].set(xscale="log", xlabel="$N$", ylabel=r"$\Delta_0 / N$", title=r"$\Delta_0/N \to \epsilon\mu$ (dashed)")
    axes[1].set(xscale="log", yscale="log", xlabel="$N$", ylabel=r"RMS of $\Delta_0/N - \epsilon\mu$", title="distance to the limit")
    axes[0].legend(title="weights")
    axes[1].legend(ncol=2, fontsize=9)
    return fig


def thm1(s):
    r"""(a) :math:`\Delta_\mathrm{SW}/K`, (b) attenuation against :math:`K/N`, (c) :math:`\mathrm{var}(Z_K)/K`, (d) concentration and Eq. (6)."""
    fig, axes = _subplots(2, 2, figsize=(12, 8.2))
    draws, t1 = s.sweep.draws, s.table
    sw = summarize(draws[draws.basis.isin(s.shown)], ["basis", "K"], "delta_sw_over_K")
    for b in s.shown:
        line = plot_band(axes[0, 0], sw[sw.basis == b], "K", label=b, band="quantile")
        c = line.get_color()
        t = t1[t1.basis == b]
        axes[0, 1].plot(t.N, t.attenuation, "o-", ms=4, color=c, label=rf"$\Delta_{{SW}}/\Delta_0$, {b}")
        axes[1, 0].plot(t.K, t.var_mc / t.K, "o", ms=4, color=c, label=f"Monte Carlo, {b}")
        axes[1, 0].fill_between(t.K, t.var_low / t.K, t.var_high / t.K, color=c, alpha=0.2, lw=0)
        axes[1, 0].plot(t.K, t.var_exact / t.K, "-", color=c, lw=1, label=f"exact (Lemma 4's terms), {b}")
        axes[1, 1].plot(t.K, t.prob, "o-", ms=4, color=c, label=f"empirical, {b}")
        axes[1, 1].fill_between(t.K, t.prob_low, t.prob_high, color=c, alpha=0.2, lw=0)
        axes[1, 1].plot(t.K, t.normal, ":", color=c, lw=1.2, label=f"Gaussian approx., {b}")
    t = t1[t1.basis == s.shown[0]]
    axes[0, 0].axhline(s.eps * s.mu, color="k", ls="--", lw=1, label=r"$\epsilon\mu$")
    axes[0, 1].plot(t.N, t.K_over_N, "k--", lw=1, label="$K/N$")
    axes[1, 0].axhline(1 + s.mu**2, color="k", ls="--", lw=1, label=r"bound $\sigma^2+\mu^2$")
    axes[1, 1].plot(t.K, t.chebyshev, "k--", lw=1, label="Chebyshev, Eq. (6)")
    axes[0, 0].set(xscale="log", xlabel="$K$", ylabel=r"$\Delta_{SW}/K$", title=r"(a) $\Delta_{SW}/K \to \epsilon\mu$")
    axes[0, 1].set(xscale="log", yscale="log", xlabel="$N$", ylabel="attenuation", title=r"(b) $\Delta_{SW}/\Delta_0$ against $K/N$")
    axes[0, 1].set_ylim(0.3 * t.K_over_N.min(), 3 * t.K_over_N.max())
    axes[1, 0].set(xscale="log", xlabel="$K$", ylabel=r"var$(Z_K)/K$", title="(c) spread of $Z_K$")
    prob = rf"Pr$(|Y_K-\mu| \leq {s.delta:g})$"
    axes[1, 1].set(xscale="log", xlabel="$K$", ylabel=prob, title="(d) concentration, Eq. (6)")
    for ax in axes.flat:
        ax.legend(fontsize=8)
    return fig


def psi_norms(s):
    r""":math:`\max_k\|\psi_k\|_1` (left, with :math:`\log N`) and :math:`\max_k\|\psi_k\|_\infty` (right) against :math:`N`."""
    fig, axes = _subplots(1, 2, figsize=(12, 4.2))
    for b in s.bases:
        part = s.norms[s.norms.basis == b]
        axes[0].plot(part.N, part.l1_max, "o-", ms=4, label=f"{b} (slope {s.fits.loc[b, 'slope']:.2f})")
        axes[1].plot(part.N, part.linf_max, "o-", ms=4, label=b)
    axes[0].plot(s.Ns, np.log(s.Ns), "k:", lw=1, label=r"$\log N$")
    axes[0].set(xscale="log", yscale="log", xlabel="$N$", ylabel=r"$\max_k \|\psi_k\|_1$", title="Theorem 2 asks for $O(\\log N)$")
    axes[1].set(xscale="log", yscale="log", xlabel="$N$", ylabel=r"$\max_k \|\psi_k\|_\infty$", title="and $O(1)$")
    axes[0].legend(fontsize=8)
    axes[1].legend(fontsize=8)
    return fig


def thm2(s):
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
        plot_band(axes[2], s.attenuation[s.attenuation.basis == b], "N", label=b, color=line.get_color())
    Ks = np.array(s.Ks, dtype=float)
    axes[1].plot(Ks, s.eps * s.mu * Ks, "k:", lw=1, label=r"$\epsilon\mu K$")
    t = s.rho_table[s.rho_table.basis == s.bases[0]]
    axes[2].plot(t.N, t.K_over_N, "k:", lw=1, label=r"$K/N$ (semi-white box)")
    title_a = f"(a) $K$ = {s.K}: $N$ grows (dashed: Lemma 1)"
    axes[0].set(xscale="log", yscale="log", xlabel="$N$", ylabel=r"$\Delta_W / K$", title=title_a)
    axes[1].set(xscale="log", yscale="log", xlabel="$K$", ylabel=r"$\Delta_W$", title=f"(b) $N$ = {s.N_fixed}: $K$ grows")
    title_c = rf"(c) $K = \lfloor {s.rho:g} N \rfloor$: attenuation"
    axes[2].set(xscale="log", yscale="log", xlabel="$N$", ylabel=r"$\Delta_W / \Delta_0$", title=title_c)
    for ax in axes:
        ax.legend(fontsize=8)
    return fig


def images(s):
    r""":math:`\Delta_\mathrm{W}` on MNIST digits against :math:`K` per basis, with :math:`\Delta_0` and the book's :math:`K`."""
    fig, ax = _subplots(figsize=(7.5, 4.6))
    for b in s.bases:
        plot_band(ax, s.summary[s.summary.basis == b], "K", label=f"{b} (slope {s.fits.loc[b, 'slope']:.2f})")
    ax.axhline(s.draws.delta_0.mean(), color="k", ls="--", lw=1, label=r"$\Delta_0$ (no defense)")
    ax.axvline(s.K_ref, color="grey", ls=":", lw=1)
    title = f"white box on {s.n} MNIST digits ($N$ = 784)"
    ax.set(xscale="log", yscale="log", xlabel="$K$", ylabel=r"$\Delta_W$", title=title)
    ax.legend(fontsize=8)
    return fig


def lemma2(s):
    r"""Three normal Q-Q plots of :math:`\psi_k^Tw` (Laplace), and the exact KS distance against :math:`N` with Edgeworth dotted."""
    fig, axes = _subplots(1, 4, figsize=(17, 4.2))
    ks, Ns = s.ks, s.Ns
    for ax, label in zip(axes, s.cases):
        for N, marker in ((Ns[1], "."), (Ns[-1], "x")):
            q_theory, q_sample = s.qq[label, N]
            ax.plot(q_theory, q_sample, marker, ms=3, label=f"$N$ = {N}")
        ax.plot([-4, 4], [-4, 4], "k-", lw=0.8)
        ax.set(xlim=[-4, 4], ylim=[-5.5, 5.5], xlabel="normal quantile", ylabel=r"quantile of $\psi_k^T w$", title=label)
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
