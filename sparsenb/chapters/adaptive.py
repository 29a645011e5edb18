r"""What the chapter "Adaptive evaluation: is the robustness real?" computes, one function per section.

=========================  ======================================================================
:func:`attacks`            the budget of every strong attack of the audit at this profile
:func:`cnn`                the multiclass chapter's CNNs, attack grid and audit, read back
:func:`per_attack`         what each attack leaves on each CNN, and which attacks broke what
:func:`cost`               accuracy each attack leaves against the model evaluations it spent
:func:`convergence`        the defended CNN's worst case against attack effort, then more Square and adaptive
:func:`thresholds`         the adaptive attack with the surrogate's threshold fixed and competing, beside Square
:func:`checklist`          the gradient-masking checklist of each CNN, with a convergence row
=========================  ======================================================================

Each returns a :class:`~sparsenb.chapters.section.Section`: its tables and
figure as attributes and ``numbers``, the values the prose quotes.
:func:`cnn` calls :mod:`sparsenb.chapters.mnist_multiclass` with the
multiclass chapter's parameters, so its checkpoints and per-image outcomes
are read from the store rather than recomputed. The binary models' audit is
the binary chapter's, quoted by the page.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from ..evaluation import accuracy_interval
from ..lab.audit import (
    BUDGETS,
    FAIL,
    PAPER_ATTACKS,
    MoreEffort,
    WorstCase,
    audit_attacks,
    effort,
    masking_checklist,
    more_effort,
    victim_of,
)
from ..lab.grid import Attack, Grid, run
from . import figures
from . import mnist_multiclass as multiclass
from .section import Section, drawn, numbers

__all__ = [
    "STRONG_SETTINGS",
    "attacks",
    "cnn",
    "per_attack",
    "cost",
    "convergence",
    "thresholds",
    "checklist",
]

#: The settings of :class:`~sparsenb.lab.audit.Budget` that the strong attacks use.
STRONG_SETTINGS = (
    "apgd_steps",
    "apgd_restarts",
    "targets",
    "targeted_steps",
    "square_queries",
    "adaptive_steps",
    "adaptive_restarts",
)


def _frames(result: dict[str, WorstCase]) -> dict[str, pd.DataFrame]:
    """Each CNN's audit, one row per attack (:meth:`~sparsenb.lab.audit.WorstCase.frame`)."""
    return {name: wc.frame().set_index("attack") for name, wc in result.items()}


def _cost_figure(s: Section):
    """Accuracy against model evaluations per image, the defended CNN filled, the undefended hollow."""
    return figures.attack_cost(
        s.frames["front end"], s.frames["no defense"], labels=("front end", "no defense")
    )


def _convergence_figure(s: Section):
    """The worst case against the running total of model evaluations per image, then more Square and adaptive."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    curve = s.table
    ax.step(
        curve["total evaluations"],
        curve["worst case %"],
        where="post",
        color="C0",
        marker="o",
        label="the audit, attacks added in order",
    )
    for _, r in curve.iterrows():
        if r["points off"] > 0:
            ax.annotate(
                r["attack"],
                (r["total evaluations"], r["worst case %"]),
                fontsize=7,
                xytext=(3, 3),
                textcoords="offset points",
            )
    last = curve["total evaluations"].iloc[-1]
    more = s.more
    ax.plot(
        [last, last + more.evaluations],
        [curve["worst case %"].iloc[-1], 100 * more.robust.mean()],
        color="C3",
        marker="s",
        linestyle="--",
        label=f"then Square, {more.queries} queries, and adaptive, {more.restarts} runs",
    )
    ax.set_xscale("symlog", linthresh=10)
    ax.set_xlabel("model evaluations per image (running total)")
    ax.set_ylabel("worst-case accuracy (%)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def attacks(audit_budget: str) -> Section:
    """The settings of the strong attacks in the audit's budget ``audit_budget`` (:data:`sparsenb.lab.audit.BUDGETS`).

    ``table``: one row per setting, and the gradient treatments the strong
    gradient attacks go through; ``numbers``: ``square_queries``.
    """
    budget = BUDGETS[audit_budget]
    settings = {k: v for k, v in dataclasses.asdict(budget).items() if k in STRONG_SETTINGS}
    settings["strong gradient treatments"] = ", ".join(budget.strong_gradients)
    values = numbers(square_queries=budget.square_queries)
    return Section(
        budget=budget, table=pd.Series(settings, name=audit_budget).to_frame(), numbers=values
    )


def cnn(
    n_train: int,
    epochs: int,
    seed: int,
    rho: float,
    wavelet: str,
    refine_steps: int,
    refine_step: float,
    n_images: int,
    eps: float,
    ifgsm_step: float,
    ifgsm_steps: int,
    ill_step: float,
    ill_steps: int,
    pgd_step: float,
    pgd_steps: int,
    pgd_restarts: int,
    batch_size: int,
    audit_budget: str,
    audit_images: int,
    device=None,
) -> Section:
    """The multiclass chapter's two CNNs, its attack grid and its audit, with its parameters (read from the store).

    :func:`~sparsenb.chapters.mnist_multiclass.cnn_victims`,
    :func:`~sparsenb.chapters.mnist_multiclass.test_images`,
    :func:`~sparsenb.chapters.mnist_multiclass.attack_grid` and
    :func:`~sparsenb.chapters.mnist_multiclass.audit`. ``victims``, ``x``,
    ``y`` (on ``device``), ``outcomes`` (the grid), ``result`` (per CNN, the
    :class:`~sparsenb.lab.audit.WorstCase`); ``numbers``: ``n_audit``.
    """
    victims, _, _ = multiclass.cnn_victims(
        n_train, epochs, seed, rho, wavelet, refine_steps, refine_step, device
    )
    x, y = multiclass.test_images(n_images, seed)
    x, y = x.to(device), y.to(device)
    grid = multiclass.attack_grid(
        victims,
        x,
        y,
        eps,
        ifgsm_step,
        ifgsm_steps,
        ill_step,
        ill_steps,
        pgd_step,
        pgd_steps,
        pgd_restarts,
        seed,
        batch_size,
        audit_images,
    )
    audited = multiclass.audit(victims, eps, audit_budget, audit_images, seed, batch_size)
    result = audited.result
    return Section(
        victims=victims,
        x=x,
        y=y,
        outcomes=grid.outcomes,
        result=result,
        numbers=numbers(n_audit=result["front end"].n),
    )


def per_attack(result: dict[str, WorstCase], eps: float) -> Section:
    """What each attack of the audit leaves on each CNN (``defended``, ``undefended``: one row per attack).

    ``numbers``, for the defended CNN: the worst case over every attack
    (``wc_fe``, ``wc_fe_lo``, ``wc_fe_hi``) and over the paper's attacks
    (``paper_only_fe``), the strongest of the paper's attacks
    (``best_paper``, ``best_paper_acc``; the first in the audit's order
    where several tie), what APGD-CE, Square and the adaptive attack leave
    (``apgd_acc``, ``square_acc``, ``adaptive_acc``), the model evaluations
    per image Square and the adaptive attack spent (``square_evals``,
    ``adaptive_evals``), the images only Square or only the adaptive attack
    broke (``only_square``, ``only_adaptive``) and which attacks broke the
    lost images (``found_fe``); for the undefended CNN ``wc_plain`` and
    ``paper_only_plain``; and ``eps_shown``.
    """
    frames = _frames(result)
    fe, plain = result["front end"], result["no defense"]
    acc = {a: fe.accuracy_of(a) for a in fe.attacks()}
    best_paper = min((a for a in fe.attacks() if a in PAPER_ATTACKS), key=lambda a: acc[a])
    wc_fe = fe.accuracy()
    values = numbers(
        eps_shown=eps,
        wc_fe=wc_fe[0],
        wc_fe_lo=wc_fe[1],
        wc_fe_hi=wc_fe[2],
        paper_only_fe=100 * fe.paper().mean(),
        best_paper=best_paper,
        best_paper_acc=acc[best_paper],
        square_acc=acc["Square"],
        adaptive_acc=acc["adaptive"],
        square_evals=fe.evaluations("Square"),
        adaptive_evals=fe.evaluations("adaptive"),
        apgd_acc=acc["APGD-CE"],
        only_square=int(fe.only("Square").sum()),
        only_adaptive=int(fe.only("adaptive").sum()),
        found_fe=fe.found_by(),
        wc_plain=plain.accuracy()[0],
        paper_only_plain=100 * plain.paper().mean(),
    )
    return Section(defended=frames["front end"], undefended=frames["no defense"], numbers=values)


@drawn(_cost_figure)
def cost(result: dict[str, WorstCase]) -> Section:
    """The accuracy each strong attack leaves against the model evaluations it spent per image, both CNNs.

    Attacks whose outcomes were credited from elsewhere have no count and
    are left out; dashed lines mark each CNN's worst case.
    """
    return Section(frames=_frames(result), numbers={})


@drawn(_convergence_figure)
def convergence(
    victims: dict,
    result: dict[str, WorstCase],
    eps: float,
    audit_budget: str,
    convergence_factor: float,
    seed: int,
    batch_size: int,
) -> Section:
    r"""The defended CNN's worst case against attack effort: the audit's attacks added in order, then more of the two that break it.

    ``table`` (:func:`sparsenb.lab.audit.effort`): per attack, its model
    evaluations per image, the running total and the worst case so far;
    ``more`` (:func:`sparsenb.lab.audit.more_effort`): Square and the
    adaptive attack with ``convergence_factor`` times the audit's queries and
    runs, seeded apart, on the images the audit left standing.
    ``numbers``: ``conv_factor``, ``conv_queries``, ``conv_restarts``,
    ``conv_left`` (images attacked again), ``conv_off`` (points they took
    off), ``conv_off_square`` and ``conv_off_adaptive`` (what each took off
    alone), ``conv_worst`` (the worst case after them), ``conv_last`` and
    ``conv_last_off`` (the audit's last attack to take anything off, and
    how much).
    """
    wc = result["front end"]
    x_test, y_test = multiclass.test_images(0, seed)
    model = victims["front end"].model()
    device = next(model.parameters()).device
    x, y = x_test[wc.images].to(device), y_test[wc.images].to(device)
    more = more_effort(
        model, x, y, wc, BUDGETS[audit_budget], convergence_factor, batch_size, progress=True
    )
    table = effort(wc)
    took = table[table["points off"] > 0]
    values = numbers(
        conv_factor=convergence_factor,
        conv_queries=more.queries,
        conv_restarts=more.restarts,
        conv_left=more.attacked,
        conv_off=more.points_off,
        conv_off_square=more.by_attack["Square"],
        conv_off_adaptive=more.by_attack["adaptive"],
        conv_worst=100 * float(more.robust.mean()),
        conv_last=took["attack"].iloc[-1] if len(took) else "none",
        conv_last_off=float(took["points off"].iloc[-1]) if len(took) else 0.0,
    )
    return Section(table=table, more=more, numbers=values)


def thresholds(
    victims: dict,
    result: dict[str, WorstCase],
    eps: float,
    audit_budget: str,
    seed: int,
    batch_size: int,
) -> Section:
    r"""The adaptive attack with the surrogate's threshold held fixed (its first version) beside the audit's, which competes.

    The fixed-threshold attack runs with the audit's settings on the
    defended CNN's audited images (stored like every grid cell); the
    competing one is the audit's own. ``table``: per attack (Square, the
    adaptive attack with each threshold), its accuracy with the 95%
    interval, the images Square broke that it did not, the images it broke
    that Square did not, and the model evaluations per image; ``numbers``:
    ``adaptive_fixed``, ``adaptive_competing``, ``square_shown``, their
    evaluations per image (``evals_fixed``, ``evals_competing``,
    ``evals_square``), ``square_only_before`` and ``square_only_after``
    (images only Square breaks among all the audit's attacks, with the
    fixed and with the competing adaptive attack among them).
    """
    wc = result["front end"]
    x_test, y_test = multiclass.test_images(0, seed)
    model = victims["front end"].model()
    device = next(model.parameters()).device
    x, y = x_test[wc.images].to(device), y_test[wc.images].to(device)
    audit = audit_attacks(BUDGETS[audit_budget])["adaptive"]
    fixed = Attack("adaptive", **{**dict(audit.kwargs), "threshold": "fixed"})
    grid = Grid({"model": victim_of(model)}, {"adaptive, fixed threshold": fixed}, eps=[eps])
    out = run(grid, x, y, batch_size=batch_size, progress=True)
    cell = next(iter(out.results))
    correct = {
        "Square": wc.attack_correct("Square"),
        "adaptive, fixed threshold": np.asarray(out[cell]["correct"]),
        "adaptive, competing threshold": wc.attack_correct("adaptive"),
    }
    evals = {
        "Square": wc.evaluations("Square"),
        "adaptive, fixed threshold": out.evaluations(
            cell.victim, cell.attack, cell.gradient, cell.eps
        ),
        "adaptive, competing threshold": wc.evaluations("adaptive"),
    }
    square = correct["Square"]
    rows = []
    for name, c in correct.items():
        p, lo, hi = accuracy_interval(c)
        rows.append(
            {
                "attack": name,
                "accuracy %": round(p, 2),
                "95% CI": f"[{lo:.1f}, {hi:.1f}]",
                "Square broke, this did not": int(((square == 0) & (c == 1)).sum()),
                "this broke, Square did not": int(((c == 0) & (square == 1)).sum()),
                "model evaluations / image": None if evals[name] is None else round(evals[name]),
            }
        )
    others = [a for a in wc.attacks() if a not in ("clean", "Square", "adaptive")]
    rest = wc.survived(others) if others else np.ones_like(square)
    values = numbers(
        adaptive_fixed=100 * float(correct["adaptive, fixed threshold"].mean()),
        adaptive_competing=100 * float(correct["adaptive, competing threshold"].mean()),
        square_shown=100 * float(square.mean()),
        evals_fixed=evals["adaptive, fixed threshold"],
        evals_competing=evals["adaptive, competing threshold"],
        evals_square=evals["Square"],
        square_only_before=int(
            ((square == 0) & (rest == 1) & (correct["adaptive, fixed threshold"] == 1)).sum()
        ),
        square_only_after=int(wc.only("Square").sum()),
    )
    return Section(table=pd.DataFrame(rows), numbers=values)


def checklist(
    victims: dict,
    result: dict[str, WorstCase],
    eps: float,
    audit_budget: str,
    seed: int,
    checklist_sweep,
    batch_size: int,
    more: dict[str, MoreEffort] | None = None,
) -> Section:
    """The gradient-masking checklist (:func:`sparsenb.lab.audit.masking_checklist`) of each CNN on the audited images.

    The audited images are those of the networks' audit (:func:`cnn`, their
    indices in the test set in each result's ``images``); the checklist
    adds APGD-CE along ``checklist_sweep`` and at :math:`\\epsilon = 1`,
    and, for a CNN in ``more`` (:func:`convergence`'s), the convergence
    row. ``defended``, ``undefended``: one row per check with its verdict;
    ``numbers``: ``n_checks``, ``n_checks_plain`` and the checks each CNN
    fails (``fails_fe``, ``fails_plain``).
    """
    budget = BUDGETS[audit_budget]
    x_test, y_test = multiclass.test_images(0, seed)
    more = more or {}
    tables = {}
    for name, wc in result.items():
        model = victims[name].model()
        device = next(model.parameters()).device
        tables[name] = masking_checklist(
            model,
            x_test[wc.images].to(device),
            y_test[wc.images].to(device),
            eps,
            budget,
            result=wc,
            sweep=checklist_sweep,
            batch_size=batch_size,
            progress=True,
            more=more.get(name),
        )
    fails = {name: int((t["verdict"] == FAIL).sum()) for name, t in tables.items()}
    values = numbers(
        fails_fe=fails["front end"],
        fails_plain=fails["no defense"],
        n_checks=len(tables["front end"]),
        n_checks_plain=len(tables["no defense"]),
    )
    return Section(defended=tables["front end"], undefended=tables["no defense"], numbers=values)
