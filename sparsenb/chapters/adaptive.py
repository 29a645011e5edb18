r"""What the chapter "Adaptive evaluation: is the robustness real?" computes, one function per section.

=========================  ======================================================================
:func:`attacks`            the budget of every strong attack of the audit at this profile
:func:`cnn`                the multiclass chapter's CNNs, attack grid and audit, read back
:func:`per_attack`         what each attack leaves on each CNN, and which attacks broke what
:func:`cost`               accuracy each attack leaves against the model evaluations it spent
:func:`checklist`          the gradient-masking checklist of each CNN
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

import pandas as pd
import torch

from ..lab.audit import BUDGETS, FAIL, WorstCase, masking_checklist, subset
from . import figures
from . import mnist_multiclass as multiclass
from .section import Section, drawn, numbers

__all__ = ["STRONG_SETTINGS", "attacks", "cnn", "per_attack", "cost", "checklist"]

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
    )
    audited = multiclass.audit(
        victims, grid.outcomes, x, y, eps, audit_budget, audit_images, seed, batch_size
    )
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
    best_paper = min((a for a in fe.attacks() if a in fe.known), key=lambda a: acc[a])
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

    Attacks credited from the multiclass chapter's grid have no count here
    and are left out; dashed lines mark each CNN's worst case.
    """
    return Section(frames=_frames(result), numbers={})


def checklist(
    victims: dict,
    x: torch.Tensor,
    y: torch.Tensor,
    result: dict[str, WorstCase],
    eps: float,
    audit_budget: str,
    audit_images: int,
    seed: int,
    checklist_sweep,
    batch_size: int,
) -> Section:
    """The gradient-masking checklist (:func:`sparsenb.lab.audit.masking_checklist`) of each CNN on the audited images.

    The audited images are :func:`sparsenb.lab.audit.subset` of ``x``, as in
    :func:`cnn`; the checklist adds APGD-CE along ``checklist_sweep`` and at
    :math:`\\epsilon = 1`. ``defended``, ``undefended``: one row per check
    with its verdict; ``numbers``: ``n_checks`` and the checks each CNN
    fails (``fails_fe``, ``fails_plain``).
    """
    budget = BUDGETS[audit_budget]
    idx = subset(len(x), audit_images, seed)
    tables = {
        name: masking_checklist(
            victims[name].model(),
            x[idx],
            y[idx],
            eps,
            budget,
            result=wc,
            sweep=checklist_sweep,
            batch_size=batch_size,
            progress=True,
        )
        for name, wc in result.items()
    }
    fails = {name: int((t["verdict"] == FAIL).sum()) for name, t in tables.items()}
    values = numbers(
        fails_fe=fails["front end"],
        fails_plain=fails["no defense"],
        n_checks=len(tables["front end"]),
    )
    return Section(defended=tables["front end"], undefended=tables["no defense"], numbers=values)
