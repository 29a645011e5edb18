r"""What the chapter "Theory II: high SNR and neural networks" computes, one function per section.

As in :mod:`sparsenb.theory.chapter_linear`, each function returns a
:class:`~sparsenb.theory.chapter_linear.Section`: tables as attributes (shown
by the chapter, drawn by :mod:`sparsenb.theory.figures_networks`) and
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
from .chapter_linear import Section, numbers
from .gaussianity import lemma3_table, normalized_digits, qq_points, standardized_projections
from .multiclass import fgsm_comparison
from .networks import eq5_sweep, relu_mlp, thm3_prediction, thm3_sweep
from .prop1 import PROP1_KINDS, prop1_summary, prop1_sweep
from .stats import power_law_fits, summarize
from .weights import make_rng

__all__ = ["prop1", "overlap_hist", "lemma3", "thm3", "eq5", "fgsm"]


def _kind(kind: str) -> str:
    return kind.replace(" ", "_")


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
        sweep=sweep, summary=summary, table=table, K=K, wavelets=list(wavelets), transforms=transforms, gammas=gammas,
        eps_ref=eps_ref, numbers=numbers(**values),
    )


def overlap_hist(x: torch.Tensor, prop1_section: Section, rho: float, eps: float, seed: int, wavelet: str = "coif1") -> Section:
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


def lemma3(x: torch.Tensor, sides, n_qq: int, seed: int) -> Section:
    r"""Lemma 3: exact KS distances of :math:`w^Tx` for digits ``x`` resized to ``sides``; Q-Q samples of the first digit."""
    table = lemma3_table(x, sides, ["laplace", "uniform"])
    fits = power_law_fits(table, "N", "ks", by="dist", seed=seed).set_index("dist")
    linf_fit = power_law_fits(table[table.dist == "laplace"], "N", "x_linf", seed=seed)["fit"].iloc[0]
    summary = summarize(table, ["dist", "N"], "ks")
    digit = x[:1]
    qq = {}
    for side in (sides[0], sides[-1]):
        v = normalized_digits(digit, side)[0]
        qq[side] = qq_points(standardized_projections(v, "laplace", n_qq, make_rng(seed, "qq3", side)))
    values = {"l3_linf_slope": linf_fit.text, "l3_N_first": sides[0] ** 2, "l3_N_last": sides[-1] ** 2, "l3_n": len(x)}
    for d in ("laplace", "uniform"):
        means = summary[summary.dist == d]["mean"]
        values[f"l3_slope_{d}"] = fits.loc[d, "fit"].text
        values[f"l3_ks_first_{d}"] = means.iloc[0]
        values[f"l3_ks_last_{d}"] = means.iloc[-1]
    return Section(
        table=table, fits=fits, summary=summary, digit=digit, qq=qq, n=len(x),
        means=summary.pivot(index="N", columns="dist", values="mean"), numbers=numbers(**values),
    )


def thm3(x: torch.Tensor, sides, M: int, delta: float, C: float, n_networks: int, fit_max_N: int, seed: int) -> Section:
    r"""Thm 3 on random two-layer networks (Gaussian weights) over digits ``x`` resized to ``sides``.

    Shares of neurons per ``(bias, kind, N)``; the unit-bias random-sign
    flips are fitted up to :math:`N` = ``fit_max_N``, before they saturate.
    """
    sweep = thm3_sweep(x, sides, M, "gaussian", delta, C, n_networks, seed=seed)
    long = sweep.melt(id_vars=["bias", "side", "N", "network", "kind", "image"], var_name="share", value_name="value")
    summary = summarize(long, ["bias", "kind", "share", "N"], "value")
    flips_unit = sweep[(sweep.bias == "unit") & (sweep.kind == "random sign")]
    fit_unit = power_law_fits(flips_unit[flips_unit.N <= fit_max_N], "N", "flipped", seed=seed)["fit"].iloc[0]
    by = sweep.groupby(["bias", "kind", "N"])[["flipped", "outside_S", "worst_case"]].mean()
    Ns = sorted(sweep.N.unique())
    zero = [n for n in Ns if by.loc[("scaled", "attack", n), "worst_case"] == 0]
    no_flips = [n for n in Ns if max(by.loc[("scaled", k, n), "flipped"] for k in ("attack", "random sign")) == 0]
    values = {
        "t3_M": M, "t3_delta": delta, "t3_C": C, "t3_N_first": Ns[0], "t3_N_last": Ns[-1], "t3_fit_max_N": fit_max_N,
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
    return Section(sweep=sweep, summary=summary, table=by.unstack("kind").round(4), Ns=Ns, delta=delta, C=C, numbers=numbers(**values))


def eq5(x: torch.Tensor, hidden, epsilons, seed: int) -> Section:
    r"""Eq. (5) on a random ReLU network ``N -> hidden -> 1`` over digits ``x`` (flattened), for the budgets ``epsilons``."""
    X = x.flatten(1)
    sizes = [X.shape[1], *hidden, 1]
    sweep = eq5_sweep(relu_mlp(sizes, seed=seed), X, epsilons, seed=seed)
    sweep = sweep.assign(abs_linear=sweep.linear.abs(), abs_switching=sweep.switching.abs())
    attack = sweep[sweep.kind == "attack"]
    fits = {col: power_law_fits(attack, "eps", col, seed=seed)["fit"].iloc[0] for col in ("abs_linear", "abs_switching")}
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


def fgsm(x: torch.Tensor, hidden, eps: float, logit_scale: float, seed: int, classes: int = 10) -> Section:
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
    columns = ["p_t", "sign_agreement", "grad_rel_err", "gain_fgsm", "gain_ll", "gain_ratio", "margin_fgsm", "margin_ll"]
    return Section(comparison=fc, eps=eps, table=fc[columns].describe().round(4), numbers=numbers(**values))
