r"""What the chapter "Binary MNIST: 3 versus 7" computes, one function per section.

==============================  =====================================================================
:func:`data_split`              the 3s and 7s of MNIST: the split and the seeded subsets
:func:`linear_svms`             the undefended SVM and the SVMs retrained behind the front end
:func:`svm_grid`                the paper's three attacks on the SVMs, one grid per budget, merged
:func:`svm_audit`               the audit's strong attacks on the SVMs of Table I
:func:`table1`                  Table I beside the paper's, with the audit's worst cases
:func:`clean_accuracy`          the SVMs' clean accuracy (text of Sec. VI-A)
:func:`svm_sweeps`              Fig. 6: the SVMs' accuracy against :math:`\rho` and against :math:`\epsilon`
:func:`support_overlap`         Fig. 8a: how much of the support survives the white box
:func:`successes_and_failures`  Fig. 11: digits where the defense holds or fails
:func:`two_layer_networks`      the two-layer networks, the front end inside the training graph
:func:`network_grid`            the iterative locally linear attack on them, per front-end gradient
:func:`network_audit`           the audit's strong attacks on the networks
:func:`network_sweep`           Fig. 7: the networks' accuracy against :math:`\epsilon`
:func:`network_clean`           the networks' clean accuracy (App. B-D)
:func:`beside_paper`            every number the paper also reports, with a verdict
==============================  =====================================================================

Each returns a :class:`~sparsenb.chapters.section.Section`: its tables and
figure as attributes, what later sections build on (victims, the grids'
:class:`~sparsenb.lab.grid.Outcomes`, the audits) and ``numbers``, the
values the prose quotes. Training goes through
:func:`sparsenb.lab.store.trained_svms` and :func:`sparsenb.lab.store.trained`,
attacks through :func:`sparsenb.lab.grid.run` and
:func:`sparsenb.lab.audit.audited`, so every result is keyed and stored.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from .. import attacks, data
from ..evaluation import format_accuracy, predict
from ..frontend import SparsifyingFrontEnd
from ..lab import audit
from ..lab.bundle import write_card
from ..lab.grid import Attack, Grid, Victim, merge, run
from ..lab.paper import OTHER_SETTING, OURS, PAPERS_ATTACKS, WORST_CASE, Comparison
from ..lab.store import trained, trained_svms
from ..models import TwoLayerConfig
from ..training import TWO_LAYER_TRAINING, SVMConfig
from . import figures
from .section import Section, drawn, numbers

__all__ = [
    "TABLE1_ATTACKS",
    "SPLITS",
    "PAPER_WAVELET",
    "ILL",
    "iterated_steps",
    "svm_attacks",
    "data_split",
    "linear_svms",
    "svm_grid",
    "svm_audit",
    "table1",
    "clean_accuracy",
    "svm_sweeps",
    "support_overlap",
    "successes_and_failures",
    "two_layer_networks",
    "network_grid",
    "network_audit",
    "network_sweep",
    "network_clean",
    "beside_paper",
]

#: ``"official"``: MNIST's own train/test split; ``"pooled"``: the release's 75/25 split of all 70,000 images.
SPLITS = ("official", "pooled")
#: The front end of the paper's Table I (its "front end db5" rows).
PAPER_WAVELET = "db5"
#: The attack on the two-layer network, by the name its tables use.
ILL = "iterative locally linear"
UNDEFENDED = "no defense"
#: Table I's two attacks and the short names of their glued numbers (``t1_<wavelet>_<short>``).
TABLE1_ATTACKS = {"semi-white box": "semi", "white box": "white"}


def iterated_steps(eps: float, step: float) -> int:
    r"""Steps of the iterated white box at budget ``eps``: :math:`2\lceil\epsilon/\delta\rceil` (reach the budget, then refine)."""
    return 2 * int(np.ceil(eps / step))


def svm_attacks(eps: float, iter_step: float) -> dict[str, Attack]:
    """The paper's three attacks on a linear classifier at budget ``eps``, by the names the page uses."""
    return {
        "semi-white box": Attack("semi_white_box"),
        "white box": Attack("white_box"),
        "iterated white box": Attack(
            "iterated_white_box", step=iter_step, steps=iterated_steps(eps, iter_step)
        ),
    }


# --------------------------------------------------------------------------
# figures (each section function draws its own, see drawn)
# --------------------------------------------------------------------------
def _plt():
    import matplotlib.pyplot as plt

    return plt


def _sweeps_figure(s: Section):
    """Fig. 6: top, accuracy against rho at eps_main; bottom, against eps at rho_main; one column per wavelet."""
    plt = _plt()
    n = len(s.wavelets)
    fig, axes = plt.subplots(2, n, figsize=(6 * n, 8.5), squeeze=False)
    for j, w in enumerate(s.wavelets):
        for a, fmt in zip(s.attacks, ["o-", "s-", "^-"]):
            figures.accuracy_errorbar(
                axes[0, j], range(len(s.rhos)), s.by_rho[w][a], fmt=fmt, label=a
            )
            figures.accuracy_errorbar(axes[1, j], s.eps_grid, s.by_eps[w][a], fmt=fmt, label=a)
        figures.accuracy_errorbar(
            axes[1, j], s.eps_grid, s.undefended_by_eps, fmt="k--", label=UNDEFENDED
        )
        figures.accuracy_errorbar(
            axes[1, j], s.audit_eps, s.audited[w], fmt="rX", ms=9, label="worst case, all attacks"
        )
        axes[0, j].axhline(s.undefended_main, color="grey", ls="--", label=UNDEFENDED)
        axes[0, j].set(
            xticks=range(len(s.rhos)),
            xticklabels=[f"{100 * r:g}" for r in s.rhos],
            xlabel=r"sparsity level $\rho$ (%)",
            ylabel="accuracy (%)",
            ylim=(-2, 102),
            title=rf"(a) {w}, $\epsilon$ = {s.eps_main}",
        )
        axes[1, j].set(
            xlabel=r"attack budget $\epsilon$",
            ylabel="accuracy (%)",
            ylim=(-2, 102),
            title=rf"(b) {w}, $\rho$ = {s.rho_main:.0%}",
        )
    axes[0, 0].legend(loc="lower left")
    return fig


def _overlap_figure(s: Section):
    """Fig. 8a: densities of the support overlap, split by whether the defense holds."""
    return figures.histograms_by_outcome(
        s.panels,
        np.arange(-0.5, s.K + 1.5),
        r"$|S_K(x) \cap S_K(x+e)|$",
        labels=("defense succeeds", "defense fails"),
    )


def _examples_figure(s: Section):
    """Fig. 11: the digits, their white-box versions and the front end's output, one column per case."""
    return figures.image_rows(s.rows, titles=s.titles, true_labels=s.labels)


def _network_figure(s: Section):
    """Fig. 7: accuracy of each network against eps (worst gradient per eps), the audit's worst cases as crosses."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for v, intervals in s.by_eps.items():
        label = v if v == UNDEFENDED else rf"{v}, $\rho$ = {s.rho:.0%}"
        fmt = "ko--" if v == UNDEFENDED else "o-"
        figures.accuracy_errorbar(ax, s.eps_grid, intervals, fmt=fmt, label=label)
    ax.set(
        xlabel=r"attack budget $\epsilon$",
        ylabel="accuracy (%)",
        ylim=(-2, 102),
        title=f"2-layer network, {ILL} attack ({s.attack_steps} steps of {s.attack_step})",
    )
    for v, intervals in s.audited.items():
        figures.accuracy_errorbar(
            ax, s.audit_eps, intervals, fmt="X", ms=9, label=f"{v}: worst case, all attacks"
        )
    ax.legend()
    return fig


# --------------------------------------------------------------------------
# the data
# --------------------------------------------------------------------------
def data_split(split: str, n_train: int, n_test: int, seed: int) -> Section:
    """The 3s (label 0) and 7s (label 1) of MNIST, split as ``split`` says, and seeded subsets of them.

    ``split`` is one of :data:`SPLITS` (``"pooled"``: 25% of all the 3s and 7s
    held out, seeded by ``seed``); ``n_train`` and ``n_test`` images are drawn
    (0: all of them). ``table``: the number of images and the share of 7s on
    each side; ``numbers``: ``n_train`` and ``n_test``.
    """
    x_train_all, y_train_all = data.digit_pair(*data.load_mnist("train"), negative=3, positive=7)
    x_test_all, y_test_all = data.digit_pair(*data.load_mnist("test"), negative=3, positive=7)
    if split == "pooled":
        x_train_all, y_train_all, x_test_all, y_test_all = data.pooled_split(
            x_train_all, y_train_all, x_test_all, y_test_all, test_fraction=0.25, seed=seed
        )
    x_train, y_train = data.subset(x_train_all, y_train_all, n_train or None, seed=seed)
    x_test, y_test = data.subset(x_test_all, y_test_all, n_test or None, seed=seed)
    table = pd.DataFrame(
        {
            "images": [len(x_train), len(x_test)],
            "share of 7s": [float(y_train.double().mean()), float(y_test.double().mean())],
        },
        index=["train", "test"],
    ).round(3)
    return Section(
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        table=table,
        numbers=numbers(n_train=len(x_train), n_test=len(x_test)),
    )


# --------------------------------------------------------------------------
# the linear SVM
# --------------------------------------------------------------------------
def linear_svms(
    d: Section, wavelets, rho_grid, rho_main: float, svm_max_iter: int, seed: int
) -> Section:
    """The undefended SVM and one SVM retrained behind the front end per wavelet and :math:`\\rho`.

    ``d`` is :func:`data_split`'s section. The defended SVMs are named
    ``"<wavelet> rho=<rho>"`` for every ``rho`` of ``rho_grid`` and ``rho_main``;
    ``main`` maps each wavelet to its SVM at ``rho_main`` (Table I and
    Fig. 6b). Attributes: ``plain`` and ``defended`` (name -> Victim),
    ``main_victims`` (the SVMs at ``rho_main``), ``frontends``, ``rhos``;
    ``numbers``: ``K`` at ``rho_main``.
    """
    config = SVMConfig(max_iter=svm_max_iter, seed=seed)
    rhos = sorted({*rho_grid, rho_main})
    frontends = {f"{w} rho={r}": SparsifyingFrontEnd(r, w) for w in wavelets for r in rhos}
    svms = trained_svms(d.x_train, d.y_train, config, {UNDEFENDED: None, **frontends})
    plain = {UNDEFENDED: Victim(svms[UNDEFENDED])}
    defended = {name: Victim(svms[name], fe) for name, fe in frontends.items()}
    main = {w: f"{w} rho={rho_main}" for w in wavelets}
    return Section(
        plain=plain,
        defended=defended,
        frontends=frontends,
        main=main,
        main_victims={main[w]: defended[main[w]] for w in wavelets},
        wavelets=list(wavelets),
        rhos=rhos,
        rho_main=rho_main,
        numbers=numbers(K=frontends[main[wavelets[0]]].K[0]),
    )


def svm_grid(d: Section, svms: Section, eps_main: float, eps_grid, iter_step: float) -> Section:
    """The paper's attacks on the SVMs, declared once per budget and merged (``outcomes``).

    The clean images for the undefended SVM and the SVMs at ``rho_main``;
    the semi-white box against the undefended SVM at every budget; the three
    attacks of :func:`svm_attacks` against every defended SVM at
    ``eps_main`` (Table I, Fig. 6a) and against the SVMs at ``rho_main`` at
    every budget of ``eps_grid`` (Fig. 6b). ``numbers``: ``n_svm_cells`` and
    ``iter_step``.
    """
    grids = [
        Grid(svms.plain | svms.main_victims, {"no attack": Attack("none")}, eps=[0.0]),
        Grid(
            svms.plain,
            {"semi-white box": Attack("semi_white_box")},
            eps=sorted({*eps_grid, eps_main}),
        ),
        Grid(svms.defended, svm_attacks(eps_main, iter_step), eps=[eps_main]),
        *[Grid(svms.main_victims, svm_attacks(e, iter_step), eps=[e]) for e in eps_grid],
    ]
    outcomes = merge(*[run(g, d.x_test, d.y_test) for g in grids])
    return Section(
        outcomes=outcomes,
        attacks=list(svm_attacks(eps_main, iter_step)),
        eps_main=eps_main,
        eps_grid=list(eps_grid),
        numbers=numbers(n_svm_cells=len(outcomes.results), iter_step=iter_step),
    )


def svm_audit(
    d: Section,
    svms: Section,
    grid: Section,
    audit_eps,
    audit_budget: str,
    audit_images: int,
    seed: int,
) -> Section:
    """The audit (:func:`sparsenb.lab.audit.audited`) of the undefended SVM and the SVMs at ``rho_main``.

    At each budget of ``audit_eps`` (which must hold the grid's ``eps_main``),
    on a seeded subset of ``audit_images`` test images, crediting the grid's
    outcomes. ``audits``: ``{eps: {victim: WorstCase}}``; ``numbers``, per
    wavelet at ``eps_main``: ``wc_svm_<w>`` (worst case over all attacks, %),
    ``wc_paper_svm_<w>`` (over the paper's attacks, %) and ``found_svm_<w>``
    (which attacks found the images lost), with ``n_audit``,
    ``audit_eps_shown`` and ``eps_main``.
    """
    budget = audit.BUDGETS[audit_budget]
    victims = svms.plain | svms.main_victims
    audits = {
        e: audit.audited(victims, grid.outcomes, d.x_test, d.y_test, e, budget, audit_images, seed)
        for e in audit_eps
    }
    _cards("linear SVM", audits, victims, d.x_test, d.y_test, budget)
    eps_main = grid.eps_main
    main = {w: audits[eps_main][svms.main[w]] for w in svms.wavelets}
    values = {
        "n_audit": main[svms.wavelets[0]].n,
        "audit_eps_shown": " and ".join(map(str, audit_eps)),
        "eps_main": eps_main,
    }
    values |= {f"wc_svm_{w}": wc.accuracy()[0] for w, wc in main.items()}
    values |= {f"found_svm_{w}": wc.found_by() for w, wc in main.items()}
    values |= {f"wc_paper_svm_{w}": 100 * wc.paper().mean() for w, wc in main.items()}
    return Section(audits=audits, audit_eps=list(audit_eps), numbers=numbers(**values))


def _cards(model: str, audits: dict, victims: dict, x, y, budget) -> None:
    """Inside a build, each audited network's card for the results bundle (:func:`sparsenb.lab.bundle.write_card`)."""
    for e, result in audits.items():
        for name, wc in result.items():
            write_card(
                f"MNIST 3 vs 7, {model}, {name}",
                victims[name].model(),
                wc,
                x,
                y,
                "MNIST test 3s and 7s (the page's attacked images)",
                budget,
            )


def table1(svms: Section, grid: Section, audited: Section) -> Section:
    """Table I at ``eps_main`` and ``rho_main``: ours with 95% intervals beside the paper's.

    Rows: the two attacks of :data:`TABLE1_ATTACKS` (the undefended SVM faces
    the semi-white box in both, the white box being the same attack without
    a front end), then the audit's worst cases over the paper's attacks and
    over all attacks. The front end of :data:`PAPER_WAVELET` is compared as
    ours, the others as another setting. ``comparison``: the rows compared;
    ``least_defended``: the lowest accuracy (%) a defended SVM keeps under
    the two attacks; ``numbers``: ``t1_none``, ``t1_<w>_<semi|white>``, and
    ``closest_wavelet`` with ``closest_gap``, the front end whose rows lie
    closest to the paper's on average (mean absolute gap, points).
    """
    out, eps = grid.outcomes, grid.eps_main
    entries = [
        (
            a,
            UNDEFENDED,
            out.correct(UNDEFENDED, "semi-white box", eps=eps),
            {"artifact": "Table I", "defense": "none", "attack": a},
        )
        for a in TABLE1_ATTACKS
    ]
    entries += [
        (
            a,
            f"front end {w}",
            out.correct(svms.main[w], a, eps=eps),
            {"artifact": "Table I", "defense": f"front end {PAPER_WAVELET}", "attack": a},
            OURS if w == PAPER_WAVELET else OTHER_SETTING,
        )
        for w in svms.wavelets
        for a in TABLE1_ATTACKS
    ]
    entries += _audit_entries(audited.audits[eps])
    comparison = Comparison()
    table = comparison.table("Table I", entries)
    values = {"t1_none": out.accuracy(UNDEFENDED, "semi-white box", eps=eps)[0]}
    values |= {
        f"t1_{w}_{s}": out.accuracy(svms.main[w], a, eps=eps)[0]
        for w in svms.wavelets
        for a, s in TABLE1_ATTACKS.items()
    }
    rows = comparison.frame()
    gaps = rows["ours - paper"].abs().groupby(rows["column"]).mean().drop(UNDEFENDED)
    values |= {
        "closest_wavelet": gaps.idxmin().removeprefix("front end "),
        "closest_gap": float(gaps.min()),
    }
    defended = [values[f"t1_{w}_{s}"] for w in svms.wavelets for s in TABLE1_ATTACKS.values()]
    return Section(
        table=table,
        comparison=comparison,
        least_defended=min(defended),
        numbers=numbers(**values),
    )


def _audit_entries(worst: dict) -> list[tuple]:
    """Table I's audit rows: per victim, the worst case over the paper's attacks and over all attacks."""
    entries = []
    for d, wc in worst.items():
        column = UNDEFENDED if d == UNDEFENDED else f"front end {d.split()[0]}"
        defense = "none" if d == UNDEFENDED else f"front end {PAPER_WAVELET}"
        paper = {"artifact": "Table I", "defense": defense, "attack": "white box"}
        for kind, correct in ((PAPERS_ATTACKS, wc.paper()), (WORST_CASE, wc.robust.astype(int))):
            ours = d == UNDEFENDED or d.split()[0] == PAPER_WAVELET
            entries.append(
                (f"{kind} ({wc.n} images)", column, correct, paper, kind if ours else OTHER_SETTING)
            )
    return entries


def clean_accuracy(svms: Section, grid: Section) -> Section:
    """The SVMs' accuracy on the clean test images, the undefended one beside the paper's (Sec. VI-A).

    ``comparison``: the row compared; ``numbers``: ``svm_clean`` (%).
    """
    out = grid.outcomes
    entries = [
        (
            "no attack",
            UNDEFENDED,
            out.correct(UNDEFENDED, "no attack"),
            {"artifact": "text VI-A", "defense": "none", "attack": "none"},
        )
    ]
    entries += [
        ("no attack", f"front end {w}", out.correct(svms.main[w], "no attack"), None)
        for w in svms.wavelets
    ]
    comparison = Comparison()
    table = comparison.table("text VI-A", entries)
    return Section(
        table=table,
        comparison=comparison,
        numbers=numbers(svm_clean=out.accuracy(UNDEFENDED, "no attack")[0]),
    )


@drawn(_sweeps_figure)
def svm_sweeps(svms: Section, grid: Section, audited: Section) -> Section:
    r"""Fig. 6: each attack's accuracy against :math:`\rho` at ``eps_main`` and against :math:`\epsilon` at ``rho_main``.

    Attributes (per wavelet and attack, one ``(p, lo, hi)`` per point):
    ``by_rho``, ``by_eps``, with ``undefended_by_eps`` (the semi-white box on
    the undefended SVM), ``undefended_main`` (its accuracy at ``eps_main``)
    and ``audited`` (the audit's worst case at each of its budgets).
    ``numbers``: ``best_rho``, the :math:`\rho` of the grid where the white box
    leaves the most images right, per wavelet (as text).
    """
    out, eps_main, eps_grid = grid.outcomes, grid.eps_main, grid.eps_grid
    rhos, wavelets = svms.rhos, svms.wavelets
    by_rho = {
        w: {a: [out.accuracy(f"{w} rho={r}", a, eps=eps_main) for r in rhos] for a in grid.attacks}
        for w in wavelets
    }
    by_eps = {
        w: {a: [out.accuracy(svms.main[w], a, eps=e) for e in eps_grid] for a in grid.attacks}
        for w in wavelets
    }
    audited_main = {
        w: [audited.audits[e][svms.main[w]].accuracy() for e in audited.audit_eps] for w in wavelets
    }
    white = {w: [p for p, _, _ in by_rho[w]["white box"]] for w in wavelets}
    best = {w: rhos[int(np.argmax(white[w]))] for w in wavelets}
    return Section(
        wavelets=wavelets,
        attacks=grid.attacks,
        rhos=rhos,
        rho_main=svms.rho_main,
        eps_main=eps_main,
        eps_grid=eps_grid,
        audit_eps=audited.audit_eps,
        by_rho=by_rho,
        by_eps=by_eps,
        undefended_by_eps=[out.accuracy(UNDEFENDED, "semi-white box", eps=e) for e in eps_grid],
        undefended_main=out.accuracy(UNDEFENDED, "semi-white box", eps=eps_main)[0],
        audited=audited_main,
        best_rho=best,
        numbers=numbers(best_rho=", ".join(f"{best[w]:.1%} ({w})" for w in wavelets)),
    )


@drawn(_overlap_figure)
def support_overlap(svms: Section, grid: Section) -> Section:
    r"""Fig. 8a: :math:`|\mathcal{S}_K(x) \cap \mathcal{S}_K(x + e)|` under the white box at ``eps_main``, per wavelet.

    ``overlaps``: per wavelet, one overlap per test image (the grid stores
    it); ``panels``: the figure's overlaps beside whether the defense held.
    ``numbers``: ``overlap_full_<w>`` (share of images whose whole support
    survives) and ``overlap_mean_<w>``.
    """
    out, eps = grid.outcomes, grid.eps_main
    K = svms.frontends[svms.main[svms.wavelets[0]]].K[0]
    overlaps = {w: out.values("overlap", svms.main[w], "white box", eps=eps) for w in svms.wavelets}
    panels = {
        rf"{w}, white box, $\epsilon$ = {eps}, K = {K}": (
            overlaps[w],
            out.correct(svms.main[w], "white box", eps=eps),
        )
        for w in svms.wavelets
    }
    values = {f"overlap_full_{w}": float(np.mean(overlaps[w] == K)) for w in svms.wavelets}
    values |= {f"overlap_mean_{w}": float(np.mean(overlaps[w])) for w in svms.wavelets}
    return Section(K=K, overlaps=overlaps, panels=panels, numbers=numbers(**values))


@drawn(_examples_figure)
def successes_and_failures(d: Section, svms: Section, grid: Section) -> Section:
    """Fig. 11 with the last wavelet: the first test image of each case, its white-box version, the front end's output.

    The cases cross whether the defended SVM at ``rho_main`` holds under the
    white box at ``eps_main`` with high (top quartile) or low (bottom
    quartile) support overlap; a case without an image is left out.
    ``picks``: case -> index of its test image; ``rows``: the figure's
    images and predictions. ``numbers``: ``fig11_wavelet``.
    """
    w, eps = svms.wavelets[-1], grid.eps_main
    name = svms.main[w]
    fe, victim = svms.frontends[name], svms.defended[name]
    K = svms.frontends[svms.main[svms.wavelets[0]]].K[0]
    ov = grid.outcomes.values("overlap", name, "white box", eps=eps)
    held = grid.outcomes.correct(name, "white box", eps=eps).astype(bool)
    high, low = ov >= np.quantile(ov, 0.75), ov <= np.quantile(ov, 0.25)
    cases = {
        "holds, high overlap": held & high,
        "holds, low overlap": held & low,
        "fails, high overlap": ~held & high,
        "fails, low overlap": ~held & low,
    }
    picks = {case: int(np.flatnonzero(mask)[0]) for case, mask in cases.items() if mask.any()}
    xs, ys = d.x_test[list(picks.values())], d.y_test[list(picks.values())]
    x_adv = attacks.white_box(victim.classifier.w, xs, ys, eps, fe)  # the grid's white box
    rows = [
        ("$x$", xs, None),
        ("$x + e$", x_adv, None),
        ("front end output", fe(x_adv), predict(victim.model(), x_adv)),
    ]
    return Section(
        picks=picks,
        rows=rows,
        titles=[f"{case}\n{ov[i]} of {K} kept" for case, i in picks.items()],
        labels=ys,
        numbers=numbers(fig11_wavelet=w),
    )


# --------------------------------------------------------------------------
# the two-layer network
# --------------------------------------------------------------------------
def two_layer_networks(
    d: Section, wavelets, nn_rho: float, nn_steps: int, seed: int, device=None
) -> Section:
    """The two-layer network (the release's recipe, ``nn_steps`` Adam steps) clean, and behind each wavelet's front end.

    The defended networks are trained with the front end at ``nn_rho``
    inside their training graph. ``victims``: ``"no defense"`` and
    ``"front end <w>"`` (name -> Victim, on ``device``).
    """
    recipe = dataclasses.replace(TWO_LAYER_TRAINING, steps=nn_steps, seed=seed)
    frontends = {f"front end {w}": SparsifyingFrontEnd(nn_rho, w) for w in wavelets}
    plain = trained(TwoLayerConfig(), d.x_train, d.y_train, recipe, device=device).to(device)
    victims = {UNDEFENDED: Victim(plain)}
    victims |= {
        name: Victim(
            trained(TwoLayerConfig(), d.x_train, d.y_train, recipe, frontend=fe, device=device).to(
                device
            ),
            fe.to(device),
        )
        for name, fe in frontends.items()
    }
    return Section(victims=victims, wavelets=list(wavelets), rho=nn_rho, device=device, numbers={})


def network_grid(
    d: Section,
    nets: Section,
    nn_eps_grid,
    nn_gradients,
    nn_attack_step: float,
    nn_attack_steps: int,
) -> Section:
    """The iterative locally linear attack on the networks at every budget, once per front-end gradient.

    ``outcomes``: the grid's (with the clean images, ``"no attack"``);
    ``table``: accuracy with its 95% interval per victim and gradient (rows)
    and budget (columns). ``numbers``: ``nn_attack_steps`` and ``nn_attack_step``.
    """
    grid_attacks = {
        "no attack": Attack("none"),
        ILL: Attack("iterative_locally_linear", step=nn_attack_step, steps=nn_attack_steps),
    }
    x, y = d.x_test.to(nets.device), d.y_test.to(nets.device)
    outcomes = run(Grid(nets.victims, grid_attacks, eps=nn_eps_grid, gradients=nn_gradients), x, y)
    table = pd.Series(
        {
            (c.victim, c.gradient or "-", c.eps): format_accuracy(outcomes[c]["correct"])
            for c in outcomes.results
            if c.attack == ILL
        }
    ).unstack()
    return Section(
        outcomes=outcomes,
        eps_grid=list(nn_eps_grid),
        attack_step=nn_attack_step,
        attack_steps=nn_attack_steps,
        table=table,
        numbers=numbers(nn_attack_steps=nn_attack_steps, nn_attack_step=nn_attack_step),
    )


def network_audit(
    d: Section,
    nets: Section,
    grid: Section,
    audit_eps,
    eps_main: float,
    audit_budget: str,
    audit_images: int,
    seed: int,
) -> Section:
    """The audit of every network at each budget of ``audit_eps`` (which must hold ``eps_main``).

    ``audits``: ``{eps: {victim: WorstCase}}``; ``table``: per victim and
    budget, the worst case over the grid's attack and over all attacks, and
    which attacks found the images lost. ``numbers``, behind the last
    wavelet's front end at ``eps_main``: ``wc_nn``, ``wc_paper_nn`` (%),
    ``found_nn``, and ``nn_wavelet``.
    """
    budget = audit.BUDGETS[audit_budget]
    x, y = d.x_test.to(nets.device), d.y_test.to(nets.device)
    audits = {
        e: audit.audited(nets.victims, grid.outcomes, x, y, e, budget, audit_images, seed)
        for e in audit_eps
    }
    _cards("two-layer network", audits, nets.victims, x, y, budget)
    last = f"front end {nets.wavelets[-1]}"
    wc = audits[eps_main][last]
    table = pd.DataFrame(
        {
            (v, e): {
                "paper's attacks": format_accuracy(worst.paper()),
                "all attacks": format_accuracy(worst.robust.astype(int)),
                "found by": worst.found_by(),
            }
            for e, r in audits.items()
            for v, worst in r.items()
        }
    ).T
    values = {
        "wc_nn": wc.accuracy()[0],
        "wc_paper_nn": 100 * wc.paper().mean(),
        "found_nn": wc.found_by(),
        "nn_wavelet": nets.wavelets[-1],
    }
    return Section(audits=audits, audit_eps=list(audit_eps), table=table, numbers=numbers(**values))


@drawn(_network_figure)
def network_sweep(nets: Section, grid: Section, audited: Section) -> Section:
    r"""Fig. 7: each network's accuracy against :math:`\epsilon`, behind a front end the worst over its gradients.

    ``by_eps``: per victim, one ``(p, lo, hi)`` per budget of the grid;
    ``audited``: per defended victim, the audit's worst case at each of its
    budgets. ``numbers``: at the grid's budget nearest 0.2 (``nn_eps_mid``),
    the accuracy the attack leaves to the undefended network
    (``nn_mid_plain``) and behind the last wavelet's front end (``nn_mid_def``).
    """
    out, eps_grid = grid.outcomes, grid.eps_grid
    by_eps = {
        v: [out.accuracy(v, ILL, out.worst_gradient(v, ILL, e), e) for e in eps_grid]
        for v in nets.victims
    }
    audited_by_victim = {
        v: [audited.audits[e][v].accuracy() for e in audited.audit_eps]
        for v in nets.victims
        if v != UNDEFENDED
    }
    last = f"front end {nets.wavelets[-1]}"
    mid = eps_grid[int(np.argmin(np.abs(np.array(eps_grid) - 0.2)))]
    values = {
        "nn_eps_mid": mid,
        "nn_mid_plain": out.accuracy(UNDEFENDED, ILL, None, mid)[0],
        "nn_mid_def": out.accuracy(last, ILL, out.worst_gradient(last, ILL, mid), mid)[0],
    }
    return Section(
        by_eps=by_eps,
        audited=audited_by_victim,
        eps_grid=eps_grid,
        audit_eps=audited.audit_eps,
        rho=nets.rho,
        attack_step=grid.attack_step,
        attack_steps=grid.attack_steps,
        numbers=numbers(**values),
    )


def network_clean(nets: Section, grid: Section) -> Section:
    """The networks' clean accuracy, the undefended one and the one behind db5 beside the paper's (App. B-D).

    ``comparison``: the rows compared; ``numbers``: ``nn_clean`` (undefended)
    and ``nn_clean_def`` (behind the last wavelet's front end), in %.
    """
    out = grid.outcomes
    compared = (UNDEFENDED, f"front end {PAPER_WAVELET}")
    entries = [
        (
            "no attack",
            v,
            out.correct(v, "no attack"),
            {"artifact": "App. B-D", "defense": "none" if v == UNDEFENDED else v}
            if v in compared
            else None,
        )
        for v in nets.victims
    ]
    comparison = Comparison()
    table = comparison.table("App. B-D", entries)
    last = f"front end {nets.wavelets[-1]}"
    values = {
        "nn_clean": out.accuracy(UNDEFENDED, "no attack")[0],
        "nn_clean_def": out.accuracy(last, "no attack")[0],
    }
    return Section(table=table, comparison=comparison, numbers=numbers(**values))


# --------------------------------------------------------------------------
# beside the paper
# --------------------------------------------------------------------------
def beside_paper(*sections: Section) -> Section:
    """Every row that ``sections`` compared with the paper, in their order, as one comparison.

    ``comparison``: a :class:`~sparsenb.lab.paper.Comparison` holding them
    (for the scorecard); ``table``: its rows; ``numbers``: ``n_compared``,
    ``n_agree``, ``n_higher`` and ``n_lower``.
    """
    comparison = Comparison()
    comparison.rows = [row for s in sections for row in s.comparison.rows]
    counts = comparison.counts()
    values = {
        "n_compared": counts["compared"],
        "n_agree": counts["agrees"],
        "n_higher": counts["ours higher"],
        "n_lower": counts["ours lower"],
    }
    return Section(table=comparison.frame(), comparison=comparison, numbers=numbers(**values))
