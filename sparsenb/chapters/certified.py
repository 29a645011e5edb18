r"""What the chapter "Beyond the paper: certified accuracy, and which basis" computes, by section.

==========================  ====================================================================
:func:`setting`             the 3s and 7s of MNIST: training, test and certified images
:func:`soundness`           each certificate against the worst case of small problems
:func:`certified_accuracy`  certified accuracy of the defended SVMs beside the audit's attacks
:func:`exact`               the exact robust accuracy (MILP) between the certificate and the attacks
:func:`which_basis`         the basis sweep: clean and worst-case accuracy, gamma, energy
:func:`closing_note`        certified and attacked accuracy per front end and budget
==========================  ====================================================================

Each returns a :class:`~sparsenb.chapters.section.Section`: its tables and
figure as attributes and ``numbers``, the values the prose quotes. The
helpers below them are the page's building blocks.

**Certified accuracy.** :func:`certificate_table` certifies every image of
a defended linear SVM at every budget with each method of
:mod:`sparsenb.certify` (stored per image); :func:`versus_attacks` sets the
certified accuracy beside the attacks' and counts certified images that some
attack broke (there must be none); :func:`soundness_table` holds each
method against the exact worst case on small problems;
:func:`certified_figure` draws certified accuracy against :math:`\epsilon`.

**Which basis to sparsify in.** The paper sparsifies in one level of a
Daubechies/Coiflet wavelet and asks in its conclusion for better and
learned bases. :func:`sweep` runs one experiment per (model, basis,
:math:`\rho`): train the model behind that front end
(:func:`sparsenb.frontend.frontend_for`: wavelets at 1 to 3 levels, the
whole-image DCT, JPEG's block DCT, the pixel basis, a PCA basis learned from
the training images), measure its clean accuracy and its audited worst-case
accuracy (:func:`sparsenb.lab.audit.worst_case`), and set beside them the
two quantities the theory says should matter: :math:`\gamma =
2\max_k\|\psi_k\|_1` (Prop. 1; small is good) and the energy the :math:`K`
kept coefficients capture (large is good). :func:`pareto`,
:func:`best_per_basis`, :func:`rank_agreement` and :func:`verdict` read
the sweep; :func:`pareto_figure` draws it.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from typing import Sequence

import pandas as pd
import torch
from torch import nn

from .. import data
from ..checks import ArgumentError
from ..basis import DENSE_BASES, dense_basis, gamma
from ..certify import METHODS, certify, exact_robustness, soundness_check, toy_problem
from ..evaluation import accuracy_interval, predict
from ..frontend import SparsifyingFrontEnd, defended, energy_captured, frontend_for
from ..lab.audit import BUDGETS, audit_attacks, strong_attacks, subset, worst_case
from ..lab.store import stored, trained, trained_svm, trained_svms
from ..models import CNNConfig, TwoLayerConfig
from ..training import CNN_TRAINING, TWO_LAYER_TRAINING, SVMConfig
from .figures import accuracy_errorbar
from .section import Section, drawn, numbers

__all__ = [
    "CORNER_PROBLEMS",
    "EXACT_PROBLEMS",
    "setting",
    "soundness",
    "certified_accuracy",
    "exact",
    "exact_table",
    "which_basis",
    "closing_note",
    "certificate_table",
    "soundness_table",
    "versus_attacks",
    "certified_figure",
    "basis_specs",
    "MODELS",
    "audit_budget",
    "sweep",
    "pareto",
    "best_per_basis",
    "rank_agreement",
    "verdict",
    "pareto_figure",
]


# --------------------------------------------------------------------------
# the basis comparison: which basis to sparsify in
# --------------------------------------------------------------------------
def basis_specs(
    wavelets: Sequence[str], levels: Sequence[int], dense: Sequence[str] = DENSE_BASES
) -> list[str]:
    """Every ``wavelet:level`` and then the dense bases, as specs."""
    return [f"{w}:{lev}" for w in wavelets for lev in levels] + list(dense)


MODELS = ("svm", "two-layer", "cnn")


def audit_budget(name: str, **overrides):
    """:data:`sparsenb.lab.audit.BUDGETS` ``[name]`` with fields replaced (lists become tuples, as TOML gives them)."""
    base = BUDGETS[name]
    return dataclasses.replace(
        base, **{k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
    )


@dataclass(frozen=True)
class _Setting:
    model: str
    spec: str
    rho: float


def _train(
    model: str,
    fe,
    x_train,
    y_train,
    seed: int,
    svm_max_iter: int,
    nn_steps: int,
    cnn_epochs: int,
    device,
):
    if model == "svm":
        return trained_svm(
            x_train, y_train, SVMConfig(max_iter=svm_max_iter, seed=seed), frontend=fe
        ).to(device)
    if model == "two-layer":
        recipe = dataclasses.replace(TWO_LAYER_TRAINING, steps=nn_steps, seed=seed)
        return trained(TwoLayerConfig(), x_train, y_train, recipe, frontend=fe, device=device).to(
            device
        )
    recipe = dataclasses.replace(CNN_TRAINING, epochs=cnn_epochs, seed=seed)
    return trained(CNNConfig(classes=2), x_train, y_train, recipe, frontend=fe, device=device).to(
        device
    )


def sweep(
    models: Sequence[str],
    specs: Sequence[str],
    rhos: Sequence[float],
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    eps: float,
    budget,
    audit_images: int,
    seed: int = 0,
    svm_max_iter: int = 10_000,
    nn_steps: int = 20_000,
    cnn_epochs: int = 2,
    attacks: Sequence[str] | None = None,
    device=None,
    progress: bool = False,
) -> pd.DataFrame:
    r"""One row per (model, basis, :math:`\rho`): clean and audited worst-case accuracy, :math:`\gamma`, energy captured.

    Each model is trained behind each front end on ``(x_train, y_train)``
    (checkpoints keyed by the basis; the two-layer net and the CNN with the
    book's recipes, ``nn_steps`` Adam steps and ``cnn_epochs`` epochs);
    clean accuracy is measured on all of ``(x_test, y_test)``, the audited
    worst case (:func:`sparsenb.lab.audit.worst_case` with ``budget``) at
    ``eps`` on a seeded subset of ``audit_images`` of them
    (:func:`sparsenb.lab.audit.subset`), over the audit's attacks named in
    ``attacks`` (None: all of :func:`sparsenb.lab.audit.audit_attacks`; the
    linear-classifier attacks only where the model is the SVM). The CNN is
    :class:`~sparsenb.models.cnn.NielsenCNN` with two logits. Columns: ``model, spec, basis, level, rho, K, clean,
    clean_lo, clean_hi, worst, worst_lo, worst_hi, gamma, energy,
    n_clean, n_audit``; accuracies in percent with 95% Wilson intervals,
    ``energy`` the mean share over the test images.
    """
    from tqdm.auto import tqdm

    eps = float(eps)
    device = torch.device(device or "cpu")
    idx = subset(len(x_test), audit_images, seed)
    xa, ya = x_test[idx].to(device), y_test[idx].to(device)
    settings = [_Setting(m, s, r) for m in models for s in specs for r in rhos]
    dense = {
        spec: dense_basis(spec, x_train) for spec in dict.fromkeys(specs) if spec in DENSE_BASES
    }
    gammas, energy, rows = {}, {}, []
    for s in tqdm(settings, desc="bases", disable=not progress, leave=False, mininterval=5):
        fe = frontend_for(s.spec, s.rho, basis=dense.get(s.spec))
        if s.spec not in gammas:
            gammas[s.spec] = gamma(fe.transform.dense())
        if (s.spec, s.rho) not in energy:
            energy[s.spec, s.rho] = float(
                energy_captured(x_test.double(), fe.transform, [fe.K[0]]).mean()
            )
        classifier = _train(
            s.model, fe, x_train, y_train, seed, svm_max_iter, nn_steps, cnn_epochs, device
        )
        model = defended(fe.to(device), classifier).eval()
        clean = (predict(model, x_test.to(device)) == y_test.to(device)).int().cpu().numpy()
        chosen = audit_attacks(budget, linear=s.model == "svm")
        if attacks is not None:
            chosen = {n: a for n, a in chosen.items() if n in attacks}
        wc = worst_case(model, xa, ya, eps, budget, attacks=chosen, batch_size=len(xa))
        name, _, level = s.spec.partition(":")
        rows.append(
            {
                "model": s.model,
                "spec": s.spec,
                "basis": name,
                "level": int(level) if level else None,
                "rho": s.rho,
                "K": fe.K[0],
                **dict(zip(("clean", "clean_lo", "clean_hi"), accuracy_interval(clean))),
                **dict(zip(("worst", "worst_lo", "worst_hi"), wc.accuracy())),
                "gamma": gammas[s.spec],
                "energy": energy[s.spec, s.rho],
                "n_clean": len(clean),
                "n_audit": wc.n,
            }
        )
    return pd.DataFrame(rows)


def pareto(frame: pd.DataFrame, x: str = "clean", y: str = "worst") -> pd.Series:
    """True for the rows on the Pareto front of ``(x, y)`` within each model (no other row at least as good in both and better in one)."""
    front = pd.Series(False, index=frame.index)
    for _, g in frame.groupby("model"):
        a, b = g[x].to_numpy(), g[y].to_numpy()
        for i, j in zip(g.index, range(len(g))):
            dominated = ((a >= a[j]) & (b >= b[j]) & ((a > a[j]) | (b > b[j]))).any()
            front[i] = not dominated
    return front


def best_per_basis(frame: pd.DataFrame, by: str = "worst") -> pd.DataFrame:
    """Per model and basis (spec), the :math:`\\rho` with the highest ``by`` (ties: higher clean accuracy)."""
    order = frame.sort_values([by, "clean"], ascending=False)
    best = order.groupby(["model", "spec"], sort=False).head(1)
    return best.sort_values(["model", by], ascending=[True, False]).reset_index(drop=True)


def rank_agreement(frame: pd.DataFrame, by: str = "worst") -> pd.DataFrame:
    r"""Per model: Spearman correlations of ``by`` (best setting per basis) with :math:`-\gamma` and with the energy captured."""
    from scipy.stats import spearmanr

    best = best_per_basis(frame, by)
    rows = []
    for model, g in best.groupby("model", sort=False):
        ok = len(g) > 2
        rows.append(
            {
                "model": model,
                "bases": len(g),
                "rho(worst, -gamma)": float(spearmanr(g[by], -g["gamma"]).statistic)
                if ok
                else float("nan"),
                "rho(worst, energy)": float(spearmanr(g[by], g["energy"]).statistic)
                if ok
                else float("nan"),
            }
        )
    return pd.DataFrame(rows)


def verdict(frame: pd.DataFrame, reference: str = "coif1:1") -> pd.DataFrame:
    """Per model: the best setting by worst-case accuracy beside the best of ``reference``, and whether it is clearly better.

    ``clearly better`` when the best setting's 95% interval lies above the
    reference's (disjoint intervals); ``better on both`` when it also has the
    higher clean accuracy.
    """
    rows = []
    best = best_per_basis(frame)
    for model, g in best.groupby("model", sort=False):
        top, ref = g.iloc[0], g[g.spec == reference]
        if ref.empty:
            raise LookupError(f"the sweep has no rows of {reference!r} for model {model!r}")
        ref = ref.iloc[0]
        rows.append(
            {
                "model": model,
                "best": top.spec,
                "best rho": top.rho,
                "best worst %": top.worst,
                "best CI": f"[{top.worst_lo:.1f}, {top.worst_hi:.1f}]",
                "best clean %": top.clean,
                "reference": reference,
                "reference rho": ref.rho,
                "reference worst %": ref.worst,
                "reference CI": f"[{ref.worst_lo:.1f}, {ref.worst_hi:.1f}]",
                "reference clean %": ref.clean,
                "clearly better": bool(top.spec != reference and top.worst_lo > ref.worst_hi),
                "better on both": bool(
                    top.spec != reference and top.worst > ref.worst and top.clean > ref.clean
                ),
            }
        )
    return pd.DataFrame(rows)


def pareto_figure(frame: pd.DataFrame, model: str, reference: str = "coif1:1", ax=None):
    """Clean against audited worst-case accuracy for one model: a point per (basis, :math:`\\rho`), the Pareto front joined.

    Wavelets are coloured by family (marker by level), the dense bases get
    their own markers; ``reference`` (the paper's basis) is ringed.
    """
    import matplotlib.pyplot as plt

    g = frame[frame.model == model].copy()
    if g.empty:
        raise LookupError(f"the sweep has no rows for model {model!r}")
    g["front"] = pareto(g)
    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 5.5))
    colours = dict(
        zip(sorted(g.basis.unique()), plt.get_cmap("tab10").colors + plt.get_cmap("Dark2").colors)
    )
    markers = {1: "o", 2: "s", 3: "^"}
    for spec, h in g.groupby("spec", sort=False):
        b, lev = h.basis.iloc[0], h.level.iloc[0]
        marker = markers.get(int(lev), "o") if pd.notna(lev) else "D"
        ax.scatter(
            h.clean,
            h.worst,
            color=colours[b],
            marker=marker,
            s=22 + 160 * h.rho,
            alpha=0.8,
            label=spec,
        )
    ref = g[g.spec == reference]
    ax.scatter(
        ref.clean,
        ref.worst,
        s=260,
        facecolors="none",
        edgecolors="k",
        lw=1.2,
        label=f"{reference} (paper)",
    )
    f = g[g.front].sort_values("clean")
    ax.plot(f.clean, f.worst, "k--", lw=1, label="Pareto front")
    ax.set(xlabel="clean accuracy (%)", ylabel="audited worst-case accuracy (%)", title=model)
    ax.legend(fontsize=7, ncol=2, loc="best")
    return ax


# --------------------------------------------------------------------------
# the certificate on MNIST and on small problems
# --------------------------------------------------------------------------
def _certificate_rows(model, x, y, epsilons, methods, batch_size):
    out = {
        k: [] for k in ("method", "eps", "image", "margin", "certified", "n_sure", "n_uncertain")
    }
    for method in methods:
        for eps in epsilons:
            cert = certify(model, x, y, eps, method, batch_size)
            out["method"] += [method] * cert.n
            out["eps"] += [float(eps)] * cert.n
            out["image"] += list(range(cert.n))
            out["margin"] += [float(m) for m in cert.margin]
            out["certified"] += [bool(c) for c in cert.certified]
            out["n_sure"] += [int(k) for k in cert.n_sure]
            out["n_uncertain"] += [int(k) for k in cert.n_uncertain]
    return out


def certificate_table(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    epsilons,
    methods=tuple(METHODS),
    batch_size: int = 64,
):
    """One row per (method, eps, image): the certified margin, the verdict and the support counts (stored, then read back).

    Computed once per model, images, budgets and code, then read from the
    result store (:func:`sparsenb.lab.store.stored`).
    """
    epsilons, methods = [float(e) for e in epsilons], list(methods)
    rows = stored(_certificate_rows, model, x, y, epsilons, methods, batch_size)
    return pd.DataFrame(rows)


def _soundness_rows(specs, N, K, seeds, epsilons, exact, samples):
    problems = []
    for spec, seed in itertools.product(specs, seeds):
        x, w, b, psi = toy_problem(N, spec, K, seed)
        problems.append((f"{spec}/{seed}", x, w, b, psi))
    return soundness_check(problems, epsilons, K, exact=exact, samples=samples).to_dict("list")


def soundness_table(specs, N: int, K: int, seeds, epsilons, exact: bool, samples: int = 4000):
    """:func:`~sparsenb.certify.exact.soundness_check` on :func:`~sparsenb.certify.exact.toy_problem` ``(N, spec, K, seed)`` for every spec and seed (stored, then read back)."""
    rows = stored(_soundness_rows, list(specs), N, K, list(seeds), list(epsilons), exact, samples)
    return pd.DataFrame(rows)


def versus_attacks(table, worst_cases: dict, method: str = "tight"):
    r"""Certified accuracy beside the attacks' at each budget, and the certified images any attack broke.

    ``table`` is a :func:`certificate_table`, ``worst_cases`` maps
    :math:`\epsilon` to the :class:`~sparsenb.lab.audit.WorstCase` of the same
    model on the same images. One row per budget: certified accuracy per
    method, the accuracy left by the white box, by the iterated white box and
    by the worst case over every attack (with 95% Wilson intervals where
    noted), and ``broken certified``, the certified images (``method``) that
    some attack fooled, which must be 0. Percentages are rounded to 0.1.
    """
    rows = []
    for eps, wc in worst_cases.items():
        at = table[table.eps == float(eps)]
        row = {"eps": float(eps)}
        for m, g in at.groupby("method", sort=False):
            row[f"certified ({m}) %"] = round(
                100.0 * float(g.sort_values("image").certified.mean()), 1
            )
        for attack in ("white box", "iterated white box"):
            if attack in wc.attacks():
                row[f"{attack} %"] = round(100.0 * float(wc.attack_correct(attack).mean()), 1)
        p, lo, hi = wc.accuracy()
        row["worst case %"], row["worst case 95% CI"] = round(p, 1), f"[{lo:.1f}, {hi:.1f}]"
        certified = at[at.method == method].sort_values("image").certified.to_numpy(dtype=bool)
        row["broken certified"] = int((certified & ~wc.robust).sum())
        rows.append(row)
    return pd.DataFrame(rows)


def certified_figure(tables: dict, worst_cases: dict):
    r"""Certified accuracy against :math:`\epsilon` (one line per method) beside the attacks, one panel per model.

    ``tables`` maps a model's name to its :func:`certificate_table`,
    ``worst_cases`` the same names to ``{eps: WorstCase}``: the white box
    (squares) and the worst case over every attack (crosses, with 95%
    Wilson intervals) are drawn at the audited budgets.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(tables), figsize=(6.2 * len(tables), 4.4), squeeze=False)
    styles = {"prop1": "o:", "interval": "s--", "tight": "D-"}
    for ax, (name, table) in zip(axes[0], tables.items()):
        for method, g in table.groupby("method", sort=False):
            acc = g.groupby("eps").certified.mean() * 100
            ax.plot(
                acc.index, acc.to_numpy(), styles.get(method, "o-"), label=f"certified ({method})"
            )
        wcs = worst_cases[name]
        eps = sorted(wcs)
        accuracy_errorbar(
            ax,
            eps,
            [accuracy_interval(wcs[e].attack_correct("white box")) for e in eps],
            fmt="ks",
            label="white box",
        )
        accuracy_errorbar(
            ax,
            eps,
            [wcs[e].accuracy() for e in eps],
            fmt="rX",
            ms=9,
            label="worst case, all attacks",
        )
        ax.set(
            xscale="log",
            xlabel=r"attack budget $\epsilon$",
            ylabel="accuracy (%)",
            ylim=(-2, 102),
            title=name,
        )
        ax.legend(loc="lower left", fontsize=8)
    return fig


# --------------------------------------------------------------------------
# figures (each section function draws its own, see drawn)
# --------------------------------------------------------------------------
def _certified_accuracy_figure(s: Section):
    """Certified accuracy against the budget, one panel per front end, beside the white box and the worst case."""
    return certified_figure(s.tables, s.worst)


def _which_basis_figure(s: Section):
    """Clean against worst-case accuracy (the basis audit), one panel per model (:func:`pareto_figure`)."""
    import matplotlib.pyplot as plt

    shown = list(dict.fromkeys(s.sweep.model))
    fig, axes = plt.subplots(1, len(shown), figsize=(7.5 * len(shown), 5.8), squeeze=False)
    for ax, model in zip(axes[0], shown):
        pareto_figure(s.sweep, model, ax=ax)
        ax.set_ylabel("worst-case accuracy, basis audit (%)")
    return fig


# --------------------------------------------------------------------------
# sections
# --------------------------------------------------------------------------
#: (N, K) of the small problems checked at every corner.
CORNER_PROBLEMS = (16, 3)
#: (N, K) of the small problems solved exactly (MILP).
EXACT_PROBLEMS = (8, 2)
#: The attacks on a linear classifier's weights that join the strong attacks on the certified SVMs.
LINEAR_ATTACKS = ("semi-white box", "white box", "iterated white box")


def setting(n_train: int, cert_images: int, seed: int) -> Section:
    """The 3s (label 0) and 7s (label 1) of MNIST: ``train_all``, ``train`` (a seeded subset of ``n_train``,
    all if 0), ``test`` and ``certified`` (a seeded subset of ``cert_images`` test images), each ``(x, y)``.

    Also runs torch on one thread for the rest of the page: its tensors are
    small, so one thread is as fast, and immune to a busy machine.
    """
    torch.set_num_threads(1)
    x_train_all, y_train_all = data.digit_pair(*data.load_mnist("train"), negative=3, positive=7)
    x_test, y_test = data.digit_pair(*data.load_mnist("test"), negative=3, positive=7)
    x_train, y_train = data.subset(x_train_all, y_train_all, n_train or None, seed=seed)
    idx = subset(len(x_test), cert_images, seed)
    return Section(
        train_all=(x_train_all, y_train_all),
        train=(x_train, y_train),
        test=(x_test, y_test),
        certified=(x_test[idx], y_test[idx]),
        numbers=numbers(n_train=len(x_train), n_cert=len(idx)),
    )


def soundness(toy_specs, toy_seeds, toy_eps, exact_specs, exact_eps, seed: int) -> Section:
    """Every certificate against the worst case of small problems (:func:`soundness_table`).

    At :data:`CORNER_PROBLEMS` the worst case found at every corner and at
    samples, for each of ``toy_specs`` and ``toy_seeds``; at
    :data:`EXACT_PROBLEMS` the exact one (MILP), for ``exact_specs`` and
    ``seed``. ``cases`` holds every row, ``table`` a summary per test and
    method; ``numbers``: the number of cases, the largest violation (positive
    would be unsound) and the median slack of ``tight`` and ``interval``.
    """
    corners = soundness_table(toy_specs, *CORNER_PROBLEMS, toy_seeds, toy_eps, exact=False)
    exact = soundness_table(exact_specs, *EXACT_PROBLEMS, [seed], exact_eps, exact=True)
    exact_test = f"exact MILP, N = {EXACT_PROBLEMS[0]}"
    small = pd.concat(
        [
            corners.assign(test=f"corners and samples, N = {CORNER_PROBLEMS[0]}"),
            exact.assign(test=exact_test),
        ]
    )
    small["vacuous"] = ~(small.lower > -1e6)
    summary = small.groupby(["test", "method"], sort=False).agg(
        cases=("violation", "size"),
        worst_violation=("violation", "max"),
        median_slack=("slack", "median"),
        vacuous=("vacuous", "sum"),
        mean_uncertain=("uncertain", "mean"),
    )
    values = numbers(
        small_cases=len(small),
        small_max_violation=float(small.violation.max()),
        exact_cases=int((small.test == exact_test).sum()),
        slack_tight=float(small[small.method == "tight"].slack.median()),
        slack_interval=float(small[small.method == "interval"].slack.median()),
    )
    return Section(cases=small, table=summary, numbers=values)


@drawn(_certified_accuracy_figure)
def certified_accuracy(
    images: Section, wavelets, rho: float, cert_eps, audit_eps, audit_budget: str, seed: int
) -> Section:
    r"""The defended SVMs of the binary chapter, certified and attacked on ``images.certified``.

    One SVM per wavelet of ``wavelets`` at ``rho``, trained on
    ``images.train`` (:func:`~sparsenb.lab.store.trained_svm`, the binary
    chapter's checkpoints); every image certified by each method at every
    budget of ``cert_eps`` and ``audit_eps`` (``tables``, per wavelet) and
    attacked at every budget of ``audit_eps`` by the linear-classifier
    attacks and the strong ones (``worst``: ``{wavelet: {eps: WorstCase}}``,
    budget ``sparsenb.lab.audit.BUDGETS[audit_budget]``). ``table`` is
    :func:`versus_attacks` per wavelet. ``numbers`` reads the last wavelet at
    the smallest, the largest and the audited budget closest to 0.05
    (``first``, ``last``, ``mid``): certified accuracy per method, the white
    box's and the worst case's accuracy, the gaps ``worst - tight``; with the
    broken certificates over all audits and, for ``tight``, the mean numbers
    of surely kept and uncertain coefficients and the share of images whose
    support cannot move.
    """
    x_train, y_train = images.train
    xa, ya = images.certified
    svm_config = SVMConfig(seed=seed)
    front_ends = {w: SparsifyingFrontEnd(rho, w) for w in wavelets}
    svms = trained_svms(x_train, y_train, svm_config, front_ends)
    models = {w: defended(fe, svms[w]) for w, fe in front_ends.items()}
    epsilons = sorted({*cert_eps, *audit_eps})
    tables = {w: certificate_table(m, xa, ya, epsilons) for w, m in models.items()}
    budget = BUDGETS[audit_budget]
    linear = {n: a for n, a in audit_attacks(budget, linear=True).items() if n in LINEAR_ATTACKS}
    attacks = linear | strong_attacks(budget)
    worst = {
        w: {e: worst_case(m, xa, ya, e, budget, attacks=attacks) for e in audit_eps}
        for w, m in models.items()
    }
    versus = pd.concat(
        {w: versus_attacks(tables[w], worst[w]) for w in wavelets}, names=["front end"]
    )
    main_wavelet = wavelets[-1]
    main = versus.loc[main_wavelet].set_index("eps")
    first, last = min(audit_eps), max(audit_eps)
    mid = min(audit_eps, key=lambda e: abs(e - 0.05))
    columns = {
        "tight": "certified (tight) %",
        "worst": "worst case %",
        "prop1": "certified (prop1) %",
        "interval": "certified (interval) %",
        "white": "white box %",
    }
    at = {"first": first, "mid": mid, "last": last}
    values = {f"{k}_{n}": main.loc[e, col] for n, e in at.items() for k, col in columns.items()}
    values |= {f"gap_{n}": values[f"worst_{n}"] - values[f"tight_{n}"] for n in ("first", "last")}
    tight = tables[main_wavelet][tables[main_wavelet].method == "tight"]
    moved = tight.groupby("eps").agg(
        uncertain=("n_uncertain", "mean"),
        sure=("n_sure", "mean"),
        fixed=("n_uncertain", lambda u: (u == 0).mean()),
    )
    values |= {
        "unc_last": float(moved.loc[last, "uncertain"]),
        "sure_last": float(moved.loc[last, "sure"]),
        "fixed_first": float(moved.loc[first, "fixed"]),
        "fixed_last": float(moved.loc[last, "fixed"]),
    }
    return Section(
        models=models,
        tables=tables,
        worst=worst,
        table=versus,
        numbers=numbers(
            rho=rho,
            wavelets_shown=" and ".join(wavelets),
            broken=int(versus["broken certified"].sum()),
            n_audits=len(versus),
            eps_first=first,
            eps_last=last,
            eps_mid=mid,
            main_wavelet=main_wavelet,
            **values,
        ),
    )


def _exact_rows(model, x, y, eps, seconds, only):
    return exact_robustness(model, x, y, eps, seconds, only)


def exact_table(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, seconds: float, only
):
    """:func:`~sparsenb.certify.exact.exact_robustness` of ``model`` on ``(x, y)`` at ``eps``, one row per image (stored, then read back)."""
    only = [bool(o) for o in only]
    return pd.DataFrame(stored(_exact_rows, model, x, y, float(eps), float(seconds), only))


def exact(
    accuracy: Section, images: Section, milp_eps, milp_images: int, milp_seconds: float
) -> Section:
    r"""The exact robust accuracy of the main defended SVM, between its certificate and its attacks.

    On the first ``milp_images`` of the certified images, at each budget
    of ``milp_eps`` (audited ones, so the attacks' outcomes exist): images
    an attack broke are broken; every other image is solved exactly
    (:func:`exact_table`, at most ``milp_seconds`` each): robust (a proof),
    broken (an adversarial example the model itself misclassifies) or
    undecided. ``table``: per budget, the certified (``tight``), exactly
    robust, undecided and broken shares and what the attacks leave; the
    truth lies in [exactly robust, exactly robust + undecided], inside
    [certified, attacked]. ``checks`` counts, per budget, certified images
    the MILP broke or whose certified margin exceeds the margin of a point
    the MILP found (both would make the certificate unsound; they must be
    0), and images the attacks left that the MILP broke. ``numbers``:
    ``n_exact``, ``exact_seconds``, ``exact_unsound`` (the sum of the
    first two checks), ``exact_found`` (the third), ``median_seconds``, and
    at the largest budget (``eps_exact``) ``cert_x``, ``robust_x``,
    ``undecided_x``, ``broken_x``, ``attacked_x`` (percent).
    """
    main = accuracy.numbers["main_wavelet"]
    missing = sorted(set(map(float, milp_eps)) - set(map(float, accuracy.worst[main])))
    if missing:
        raise ArgumentError("milp_eps", f"must be audited budgets (audit_eps), not {missing}")
    model = accuracy.models[main]
    xa, ya = images.certified
    n = min(int(milp_images), len(xa))
    x, y = xa[:n], ya[:n]
    cert = accuracy.tables[main]
    rows, checks_rows, seconds = [], [], []
    for eps in milp_eps:
        survived = accuracy.worst[main][eps].robust[:n]
        t = exact_table(model, x, y, eps, milp_seconds, survived)
        tight = cert[(cert.method == "tight") & (cert.eps == float(eps))].sort_values("image")
        certified = tight.certified.to_numpy(dtype=bool)[:n]
        margin = tight.margin.to_numpy()[:n]
        status = t.status.to_numpy()
        status = pd.Series(status).where(survived, "broken (attack)").to_numpy()
        upper = pd.to_numeric(t.upper).to_numpy()
        share = lambda mask: 100.0 * float(mask.mean())  # noqa: E731
        robust, undecided = status == "robust", status == "undecided"
        rows.append(
            {
                "eps": float(eps),
                "certified (tight) %": share(certified),
                "exactly robust %": share(robust),
                "undecided %": share(undecided),
                "exactly broken %": share((status == "broken") | (status == "broken (attack)")),
                "attacks leave %": share(survived),
            }
        )
        checks_rows.append(
            {
                "eps": float(eps),
                "certified, MILP broke": int((certified & (status == "broken")).sum()),
                "certified margin above a MILP point": int(
                    (certified & (margin > upper + 1e-9)).sum()
                ),
                "attacks left, MILP broke": int((status == "broken").sum()),
            }
        )
        seconds += list(t.seconds[t.status != "skipped"])
    table, chk = pd.DataFrame(rows).set_index("eps"), pd.DataFrame(checks_rows).set_index("eps")
    last = max(milp_eps)
    values = numbers(
        n_exact=n,
        exact_seconds=milp_seconds,
        eps_exact=last,
        exact_unsound=int(chk.iloc[:, :2].to_numpy().sum()),
        exact_found=int(chk["attacks left, MILP broke"].sum()),
        median_seconds=float(pd.Series(seconds).median()) if seconds else 0.0,
        cert_x=table.loc[last, "certified (tight) %"],
        robust_x=table.loc[last, "exactly robust %"],
        undecided_x=table.loc[last, "undecided %"],
        broken_x=table.loc[last, "exactly broken %"],
        attacked_x=table.loc[last, "attacks leave %"],
    )
    return Section(table=table.round(1), checks=chk, numbers=values)


@drawn(_which_basis_figure)
def which_basis(
    images: Section,
    models,
    wavelets,
    levels,
    dense,
    rhos,
    eps: float,
    n_train: int,
    n_images: int,
    nn_steps: int,
    budget: str,
    overrides: dict,
    attacks,
    cnn_specs,
    cnn_epochs: int,
    seed: int,
    device=None,
    reference: str = "coif1:1",
) -> Section:
    r"""The basis sweep (:func:`sweep`) and what it says, with ``reference`` (the paper's basis) as the yardstick.

    ``models`` behind every ``wavelet:level`` and dense basis at every
    ``rhos``, trained on a seeded subset of ``n_train`` of
    ``images.train_all`` (all if 0), their clean accuracy on all of
    ``images.test`` and their worst case at ``eps`` on ``n_images`` of them,
    over the audit's ``attacks`` at the budget :func:`audit_budget`
    ``(budget, **overrides)``: a screening pass, an upper bound on the robust
    accuracy. With ``cnn_specs``, the CNN too (``cnn_epochs`` epochs).
    ``sweep`` holds every setting (with ``Pareto``); ``best`` the best
    :math:`\rho` per basis, ``agreement`` :func:`rank_agreement` and
    ``verdict`` :func:`verdict`, rounded for the page. ``numbers``: the
    subsets, the verdict's first row, the mean worst case of the best
    wavelet settings per level, the best dense basis, the median width of the
    worst case's 95% intervals, the :math:`\rho` the one-level wavelets did
    best at (most often) and the mean Spearman correlations.
    """
    x_train_all, y_train_all = images.train_all
    x_test, y_test = images.test
    specs = basis_specs(wavelets, levels, dense)
    x_b, y_b = data.subset(x_train_all, y_train_all, n_train or None, seed=seed)
    common = {
        "eps": eps,
        "budget": audit_budget(budget, **overrides),
        "audit_images": n_images,
        "seed": seed,
        "nn_steps": nn_steps,
        "cnn_epochs": cnn_epochs,
        "attacks": attacks,
        "device": device,
    }
    frames = [sweep(models, specs, rhos, x_b, y_b, x_test, y_test, **common)]
    if cnn_specs:
        frames.append(sweep(["cnn"], cnn_specs, rhos, x_b, y_b, x_test, y_test, **common))
    bases = pd.concat(frames, ignore_index=True)
    bases["Pareto"] = pareto(bases)
    best = best_per_basis(bases)
    agreement = rank_agreement(bases)
    ruling = verdict(bases, reference)
    top = ruling.iloc[0]
    wav = best[best.level.notna()]
    by_level = wav.groupby("level").worst.mean().reindex([1.0, 2.0])
    rho_level1 = wav[wav.level == 1].rho.mode()
    values = numbers(
        levels_shown=", ".join(map(str, levels)),
        basis_train=len(x_b),
        basis_eps=eps,
        basis_images=int(bases.n_audit.iloc[0]),
        n_settings=len(bases),
        n_rhos=len(rhos),
        ci_width=float((bases.worst_hi - bases.worst_lo).median()),
        verdict_model=top.model,
        verdict_best=top.best,
        verdict_best_worst=top["best worst %"],
        verdict_ref_worst=top["reference worst %"],
        n_clearly=int(ruling["clearly better"].sum()),
        n_models=len(ruling),
        models_shown=", ".join(ruling.model),
        level1_mean=by_level.loc[1.0],
        level2_mean=by_level.loc[2.0],
        level1_min=float(wav[wav.level == 1].worst.min()),
        dense_best=float(best[best.level.isna()].worst.max()),
        rho_level1=float(rho_level1.iloc[0]) if len(rho_level1) else float("nan"),
        spearman_gamma=float(agreement["rho(worst, -gamma)"].mean()),
        spearman_energy=float(agreement["rho(worst, energy)"].mean()),
    )
    shown = ["model", "spec", "rho", "K", "clean", "worst", "worst_lo", "worst_hi"]
    return Section(
        sweep=bases,
        best=best[[*shown, "gamma", "energy", "Pareto"]].round(3),
        agreement=agreement.round(2),
        verdict=ruling.round(2),
        numbers=values,
    )


def closing_note(accuracy: Section) -> Section:
    """The table of :func:`certified_accuracy` (``accuracy``) flattened, without the worst case's intervals."""
    columns = [
        "front end",
        "eps",
        "certified (prop1) %",
        "certified (interval) %",
        "certified (tight) %",
        "white box %",
        "iterated white box %",
        "worst case %",
        "broken certified",
    ]
    return Section(table=accuracy.table.reset_index()[columns], numbers={})
