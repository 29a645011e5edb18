r"""What the chapter "Adversarial training: against and with the front end" computes, one function per section.

=========================  ====================================================================
:func:`conventions`        this page's settings beside the paper's, and the numbers the conventions quote
:func:`networks`           the front end alone, adversarial training and both (trained, or read back);
                           their natural accuracy and training log
:func:`attacks`            every (defense, :math:`\epsilon`) cell under PGD and the audit
:func:`table3`             Table III: the front end alone against adversarial training, beside the paper
:func:`combined`           front end + adversarial training, and a training budget below the test budget
:func:`cost`               what training costs: measured slowdowns, and each network's training CPU hours
:func:`disagreements`      the numbers compared with the paper's, and how many disagree
:func:`summary`            every cell of the page in one table
=========================  ====================================================================

Each returns a :class:`~sparsenb.chapters.section.Section`: its tables and
figure as attributes and ``numbers``, the values the prose quotes. Later
sections take earlier ones (``table3(nets, att, at_eps)`` reads the
networks of :func:`networks` and the outcomes of :func:`attacks`). The
networks come from :func:`sparsenb.lab.store.trained` (the front end alone
is :func:`sparsenb.chapters.mnist_multiclass.cnn_victims`'s, so its
checkpoint is the multiclass chapter's), the attacks from
:func:`sparsenb.lab.audit.robust_accuracy` and the training cost from
:func:`sparsenb.lab.timing.measured_cost`: all keyed and stored, so the page
reads them back.

The worst case of the audit is an upper bound on robust accuracy, as PGD's
accuracy is: an image that survives every attack tried may still have an
adversarial example in the ball. PGD is among the audit's attacks, so the
worst case is never above PGD's accuracy on the same images.
"""

from __future__ import annotations

import dataclasses

import pandas as pd

from .. import checks, data
from ..evaluation import accuracy_interval, format_accuracy, predict, wilson_interval
from ..frontend import SparsifyingFrontEnd
from ..lab import audit
from ..lab.audit import AttackSettings, network_audit, robust_accuracy
from ..lab.bundle import write_card
from ..lab.grid import Victim
from ..lab.paper import SCREENING, WORST_CASE, Comparison, paper_number, paper_rows
from ..lab.store import trained
from ..lab.timing import cost_frame, measured_cost, per_step_seconds
from ..models import CNNConfig
from ..training import Adversary, TrainConfig
from . import figures
from . import mnist_multiclass as mnist
from .section import Section, drawn, numbers

__all__ = [
    "MADRY",
    "PAPER_PGD_SETTINGS",
    "reduced_settings",
    "conventions",
    "networks",
    "training_log",
    "epochs_at",
    "attacks",
    "shown_worst",
    "table3",
    "combined",
    "cost",
    "disagreements",
    "summary",
    "FRONT_END_ALONE",
]

#: The defended CNN of the multiclass chapter, trained on clean images with the front end in its graph.
FRONT_END_ALONE = "front end alone"
#: The paper's evaluation PGD, as ``paper_numbers.csv`` names it.
PAPER_PGD = {"attack": "PGD 100 steps 100 restarts"}
#: Table III's rows of ``paper_numbers.csv`` for each defense.
TABLE3_DEFENSES = {
    "front end": "front end coif1",
    "adversarial training": "Madry adversarial training",
}
#: Madry et al.'s schedule, the paper's Table III: 100,000 steps of 50 images, each against PGD-40.
MADRY = {"steps": 100_000, "batch": 50, "inner_steps": 40}
#: Images Madry et al.'s schedule trains on, in all.
MADRY_IMAGES = MADRY["steps"] * MADRY["batch"]
#: The paper's evaluation PGD: 100 restarts of 100 steps.
PAPER_PGD_SETTINGS = {"restarts": 100, "steps": 100}
#: Images in an epoch of the full MNIST training set.
MNIST_TRAIN = 60000


def epochs_at(at_eps, at_epochs) -> dict:
    r""":math:`\epsilon` to the epochs of adversarial training at it: ``at_epochs`` is one count for every
    budget of ``at_eps`` or a list of counts, one per budget, in order."""
    counts = list(at_epochs) if isinstance(at_epochs, (list, tuple)) else [at_epochs] * len(at_eps)
    if len(counts) != len(at_eps) or not all(
        isinstance(c, int) and not isinstance(c, bool) and c >= 1 for c in counts
    ):
        raise checks.ArgumentError(
            "at_epochs",
            f"must be a positive int or one per budget of at_eps {list(at_eps)}, got {at_epochs!r}",
        )
    return dict(zip(at_eps, counts))


def _front_end_budgets(at_eps, combined_eps: float, mismatch) -> list:
    """The budgets the front end + adversarial training trains at (``combined_eps``, ``mismatch[0]``), which
    must be budgets of ``at_eps``: each is set beside adversarial training alone at the same budget."""
    budgets = sorted({mismatch[0], combined_eps})
    if not set(budgets) <= set(at_eps):
        raise checks.ArgumentError(
            "combined_eps",
            f"and mismatch[0] must be budgets of at_eps {list(at_eps)}, got {budgets}",
        )
    return budgets


def _madry(eps: float) -> str:
    """The name of the network adversarially trained at ``eps`` (no front end)."""
    return f"adversarial training at eps = {eps}"


def _both(eps: float) -> str:
    """The name of the network adversarially trained at ``eps`` with the front end in its graph."""
    return f"front end + adversarial training at eps = {eps}"


def _table3_defense(name: str) -> str:
    """The defense of Table III's paper row for one of the page's victims."""
    return TABLE3_DEFENSES["front end" if name == FRONT_END_ALONE else "adversarial training"]


# --------------------------------------------------------------------------
# figures (each section function draws its own, see drawn)
# --------------------------------------------------------------------------
def _plt():
    import matplotlib.pyplot as plt

    return plt


def _table3_figure(s: Section):
    """Accuracy against eps of the front end alone and of adversarial training: PGD, worst case, the paper."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for name, color in (("front end alone", "tab:blue"), ("adversarial training", "tab:orange")):
        curve = s.curves[name]
        figures.accuracy_errorbar(
            ax, curve["eps"], curve["pgd"], fmt="o-", color=color, label=f"{name}, PGD"
        )
        figures.accuracy_errorbar(
            ax,
            [e + 0.006 for e in curve["eps"]],
            curve["worst"],
            fmt="s--",
            color=color,
            mfc="none",
            label=f"{name}, worst case",
        )
        ax.plot(s.at_eps, curve["paper"], "x:", color=color, ms=9, label=f"{name}, paper")
    ax.set(
        xlabel=r"$\epsilon$",
        ylabel="accuracy under attack (%)",
        ylim=(-2, 102),
        xticks=s.at_eps,
    )
    ax.legend(fontsize=8, loc="lower left")
    return fig


def _cost_figure(s: Section):
    """(a) measured slowdown against the inner attack's steps, beside M + 1; (b) accuracy against training hours."""
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.0))
    ms = s.ms
    ax1.plot(
        ms, [s.slowdown[f"adversarial, PGD-{m}"] for m in ms], "o-", label="measured (CPU time)"
    )
    ax1.plot(ms, [m + 1 for m in ms], "k:", label="M + 1 (M attack passes + the training pass)")
    ax1.set(
        xlabel="inner attack steps M",
        ylabel="slowdown against plain training",
        xscale="log",
        yscale="log",
        title="(a) cost of one step",
    )
    ax1.legend(fontsize=8)
    for name, (h, pgd, worst) in s.points.items():
        figures.accuracy_errorbar(ax2, [h], [pgd], fmt="o", label=f"{name.split(' at ')[0]}, PGD")
        figures.accuracy_errorbar(
            ax2,
            [h],
            [worst],
            fmt="s",
            mfc="none",
            color=ax2.lines[-1].get_color(),
            label="... worst case",
        )
    ax2.set(
        xlabel="training CPU hours (this machine)",
        ylabel=f"accuracy at eps = {s.combined_eps} (%)",
        xscale="log",
        ylim=(-2, 102),
        title="(b) robustness bought",
    )
    ax2.legend(fontsize=7)
    return fig


# --------------------------------------------------------------------------
# sections
# --------------------------------------------------------------------------
def conventions(
    at_eps,
    at_train: int,
    at_epochs,
    at_optimizer: str,
    at_lr: float,
    at_batch_size: int,
    at_schedule: str,
    at_ramp: float,
    at_guard: int,
    inner_steps: int,
    inner_step_per_eps: float,
    inner_gradient: str,
    n_images: int,
    pgd_steps: int,
    pgd_restarts: int,
    pgd_step_per_eps: float,
    gradients,
    screening_images: int,
    screening_attacks,
) -> Section:
    """This page's training and evaluation settings beside the paper's (``table``).

    ``numbers``: the settings the conventions quote (``at_train_shown`` is
    ``at_train`` with 0 read as all 60,000 images, ``gradients_shown`` and
    ``screening_shown`` the lists as text, ``at_recipe`` the inner attack and
    the schedule in words), and the half-widths in points of
    the 95% Wilson interval of an accuracy of 90% on ``n_images`` images
    (``ci_90``) and of 50% on ``screening_images`` (``ci_screening``).
    """
    at_train_shown = at_train or MNIST_TRAIN
    epochs_shown = ", ".join(f"{n} at eps = {e}" for e, n in epochs_at(at_eps, at_epochs).items())
    inner = (
        f"FGSM from a random start (one step of {inner_step_per_eps} eps)"
        if inner_steps == 1
        else f"PGD-{inner_steps} from a random start (steps of {inner_step_per_eps:.3g} eps)"
    )
    schedule = (
        "a one-cycle learning rate" if at_schedule == "cyclic" else "a constant learning rate"
    )
    extras = [f"eps ramped up over {at_ramp:g} epoch(s)"] if at_ramp else []
    extras += [f"a PGD check of {at_guard} training images after each epoch"] if at_guard else []
    at_recipe = f"{inner}, {schedule}" + "".join(f", {x}" for x in extras)
    lo, hi = wilson_interval(0.9 * n_images, n_images)
    lo_a, hi_a = wilson_interval(screening_images // 2, screening_images)
    screening_shown = ", ".join(screening_attacks)
    table = pd.DataFrame(
        {
            "this page": [
                f"{inner_steps} x {inner_step_per_eps} eps ({inner_gradient})",
                f"{at_train_shown} x epochs: {epochs_shown}",
                f"{at_optimizer} {at_lr}, batch {at_batch_size}, {at_schedule} schedule",
                (f"ramp over {at_ramp:g} epoch(s); " if at_ramp else "no ramp; ")
                + (f"PGD check of {at_guard} images per epoch" if at_guard else "no check"),
                n_images,
                f"{pgd_restarts} x {pgd_steps} x {pgd_step_per_eps} eps",
                ", ".join(gradients),
                f"{screening_images}: {screening_shown}",
            ],
            "paper": [
                "40 steps (Madry et al.: 40 x 0.01 at eps = 0.3)",
                "not stated (Madry et al.: 100,000 steps of 50)",
                "not stated (Madry et al.: Adam 1e-4, batch 50, constant)",
                "not stated (Madry et al.: neither)",
                10000,
                "100 x 100 (step not stated; Table II: 0.05)",
                "worst of bpda, projection, iterated",
                "none",
            ],
        },
        index=[
            "inner attack: steps x step",
            "training images x epochs",
            "optimizer, learning rate, schedule",
            "eps ramp; overfitting check",
            "test images attacked",
            "evaluation PGD: restarts x steps x step",
            "front-end gradients attacked",
            "screening audit: images, attacks",
        ],
    )
    values = numbers(
        inner_steps=inner_steps,
        inner_step_per_eps=inner_step_per_eps,
        at_optimizer_name=at_optimizer.capitalize() if at_optimizer == "adam" else "SGD",
        at_lr=at_lr,
        at_batch_size=at_batch_size,
        at_train_shown=at_train_shown,
        at_epochs_shown=epochs_shown,
        at_recipe=at_recipe,
        inner_gradient=inner_gradient,
        pgd_restarts=pgd_restarts,
        pgd_steps=pgd_steps,
        pgd_step_per_eps=pgd_step_per_eps,
        gradients_shown=", ".join(gradients),
        screening_shown=screening_shown,
        screening_images=screening_images,
        n_images=n_images,
        ci_90=100 * (hi - lo) / 2,
        ci_screening=100 * (hi_a - lo_a) / 2,
    )
    return Section(table=table, numbers=values)


def networks(
    n_train: int,
    epochs: int,
    seed: int,
    rho: float,
    wavelet: str,
    refine_steps: int,
    refine_step: float,
    at_train: int,
    at_epochs: int,
    at_optimizer: str,
    at_lr: float,
    at_batch_size: int,
    at_eps,
    at_schedule: str,
    at_ramp: float,
    at_guard: int,
    inner_steps: int,
    inner_step_per_eps: float,
    inner_gradient: str,
    combined_eps: float,
    mismatch,
    natural_images: int,
    device="cpu",
) -> Section:
    r"""The page's networks, trained or read back, and their natural accuracy.

    The front end alone is the multiclass chapter's defended CNN
    (:func:`~sparsenb.chapters.mnist_multiclass.cnn_victims` with the same
    arguments). Adversarial training trains the four-layer CNN on a seeded
    ``at_train`` of the training images (0: all) with ``at_optimizer``,
    ``at_lr``, ``at_batch_size`` for ``at_epochs`` epochs (:func:`epochs_at`:
    one count, or one per budget of ``at_eps``; a network with the front end
    trains as long as the one without at its budget) against PGD from a
    random start, ``inner_steps`` steps of ``inner_step_per_eps`` times
    :math:`\epsilon`: once per :math:`\epsilon` of ``at_eps`` without the
    front end (``madry_name``), and at ``combined_eps`` and
    ``mismatch[0]`` with the front end in the graph, its gradient
    ``inner_gradient`` (``both_name``). The learning rate follows
    ``at_schedule`` (:data:`sparsenb.training.SCHEDULES`), :math:`\epsilon`
    rises from 0 over the first ``at_ramp`` epochs, and ``at_guard`` > 0
    training images are attacked after every epoch to stop at catastrophic
    overfitting (:class:`sparsenb.training.TrainConfig`).

    Attributes: ``victims`` (name to :class:`~sparsenb.lab.grid.Victim`),
    ``fe`` (the front end of the defended victims), ``fe_inner`` (the one
    adversarial training attacks through), ``x_at``, ``y_at``, ``recipe``,
    ``inner`` (:math:`\epsilon` to :class:`~sparsenb.training.Adversary`),
    ``natural`` (name to 0/1 per test image, on a seeded ``natural_images``
    of them, 0: all), ``table`` and ``log`` (per adversarially trained
    network: epochs run, the guard's accuracy per epoch, the epoch kept, and
    the minutes its training took when it ran); ``numbers``: ``n_natural``,
    ``at_minutes`` (the adversarially trained networks' training, in all)
    and ``n_stopped`` (how many the guard stopped).
    """
    mc, _, _ = mnist.cnn_victims(
        n_train, epochs, seed, rho, wavelet, refine_steps, refine_step, device
    )
    fe = mc["front end"].frontend
    fe_at_eps = _front_end_budgets(at_eps, combined_eps, mismatch)
    epochs_of = epochs_at(at_eps, at_epochs)
    x_at, y_at = data.subset(*data.load_mnist("train"), at_train or None, seed=seed)
    recipe = TrainConfig(
        optimizer=at_optimizer,
        lr=at_lr,
        batch_size=at_batch_size,
        epochs=max(epochs_of.values()),
        seed=seed,
        schedule=at_schedule,
        guard=at_guard,
    )
    fe_inner = SparsifyingFrontEnd(
        rho, wavelet, gradient=inner_gradient, refine_steps=refine_steps, refine_step=refine_step
    )
    inner = {
        e: Adversary("pgd", e, {"step": inner_step_per_eps * e, "steps": inner_steps}, ramp=at_ramp)
        for e in sorted({*at_eps, *fe_at_eps})
    }
    madry = {
        e: trained(
            CNNConfig(),
            x_at,
            y_at,
            dataclasses.replace(recipe, epochs=epochs_of[e]),
            adversary=inner[e],
            progress=True,
            device=device,
        )
        for e in at_eps
    }
    both = {
        e: trained(
            CNNConfig(),
            x_at,
            y_at,
            dataclasses.replace(recipe, epochs=epochs_of[e]),
            frontend=fe_inner,
            adversary=inner[e],
            progress=True,
            device=device,
        )
        for e in fe_at_eps
    }
    victims = {
        FRONT_END_ALONE: mc["front end"],
        **{_madry(e): Victim(m.to(device)) for e, m in madry.items()},
        **{_both(e): Victim(m.to(device), fe) for e, m in both.items()},
    }
    x_nat, y_nat = (t.to(device) for t in mnist.test_images(natural_images, seed))
    natural = {
        name: (predict(v.model(), x_nat) == y_nat).int().cpu().numpy()
        for name, v in victims.items()
    }
    table = pd.DataFrame(
        {
            f"natural accuracy, {len(x_nat)} test images (%)": {
                n: format_accuracy(c, 2) for n, c in natural.items()
            }
        }
    )
    logs = {_madry(e): m.fit_log for e, m in madry.items()} | {
        _both(e): m.fit_log for e, m in both.items()
    }
    log = training_log(logs)
    return Section(
        victims=victims,
        fe=fe,
        fe_inner=fe_inner,
        x_at=x_at,
        y_at=y_at,
        recipe=recipe,
        inner=inner,
        natural=natural,
        table=table,
        log=log,
        numbers=numbers(
            n_natural=len(x_nat),
            at_minutes=float(log["minutes"].sum()),
            n_stopped=int((log["stopped at epoch"] != "").sum()),
        ),
    )


def training_log(logs: dict) -> pd.DataFrame:
    """One row per network from its ``fit_log`` (:func:`sparsenb.training.fit`): epochs run, the guard's accuracy
    after each (%), the epoch whose weights were kept, where the guard stopped it, and its training minutes."""
    rows = {}
    for name, log in logs.items():
        epochs = log["epochs"]
        guard = [e["guard accuracy"] for e in epochs if "guard accuracy" in e]
        rows[name] = {
            "epochs run": len(epochs),
            "guard accuracy per epoch (%)": ", ".join(f"{100 * a:.1f}" for a in guard)
            or "no guard",
            "epoch kept": log["best"] or len(epochs),
            "stopped at epoch": log["stopped"] or "",
            "minutes": round(sum(e["seconds"] for e in epochs) / 60, 2),
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def attacks(
    nets: Section,
    at_eps,
    combined_eps: float,
    mismatch,
    n_images: int,
    seed: int,
    pgd_steps: int,
    pgd_restarts: int,
    pgd_step_per_eps: float,
    gradients,
    screening_images: int,
    screening_attacks,
    audit_budget: str,
    screening_overrides: dict,
    audit_eps,
    audit_images: int,
    batch_size: int,
    device="cpu",
) -> Section:
    r"""Every cell under PGD and a screening audit (:func:`~sparsenb.lab.audit.robust_accuracy`); the front end alone's audit.

    The cells, in order: the front end alone at each of ``at_eps``,
    adversarial training at each (its own training budget), the combination
    at ``combined_eps``, and both trained at ``mismatch[0]`` and tested at
    ``mismatch[1]`` (a cell named twice is attacked once). PGD runs on a
    seeded ``n_images`` of the test images; the screening audit, with the
    budget ``audit_budget`` of :data:`sparsenb.lab.audit.BUDGETS` with
    ``screening_overrides`` replaced, on a seeded ``screening_images`` of
    those: a cheaper pass over many networks, an upper bound that is never
    set beside the paper's as the worst case. The front end alone (the
    multiclass chapter's defended CNN) at each budget of ``audit_eps`` gets
    its audit (:func:`~sparsenb.lab.audit.network_audit` at ``audit_budget``
    on ``audit_images``, as on that chapter's page): the same worst case
    there and here.

    Attributes: ``result`` (a :class:`~sparsenb.lab.audit.RobustAccuracy`),
    ``audits`` (cell -> :class:`~sparsenb.lab.audit.WorstCase`),
    ``cells``, ``table3_cells`` (the first ``2 * len(at_eps)``: Table III's)
    and ``table``; ``numbers``: ``mismatch_train``, ``mismatch_test``,
    ``n_cells``, ``n_audit``.
    """
    x, y = (t.to(device) for t in mnist.test_images(n_images, seed))
    cells = [(FRONT_END_ALONE, e) for e in at_eps] + [(_madry(e), e) for e in at_eps]
    cells += [
        (_both(combined_eps), combined_eps),
        (_madry(mismatch[0]), mismatch[1]),
        (_both(mismatch[0]), mismatch[1]),
    ]
    cells = list(dict.fromkeys(cells))
    budget = dataclasses.replace(audit.BUDGETS[audit_budget], **screening_overrides)
    settings = AttackSettings(
        pgd_steps,
        pgd_restarts,
        pgd_step_per_eps,
        tuple(gradients),
        screening_images,
        tuple(screening_attacks),
        budget,
        seed,
    )
    result = robust_accuracy(nets.victims, cells, x, y, settings, batch_size, progress=True)
    x_test, y_test = mnist.test_images(0, seed)
    audits = {
        (FRONT_END_ALONE, e): network_audit(
            nets.victims[FRONT_END_ALONE].model(),
            x_test.to(device),
            y_test.to(device),
            e,
            audit.BUDGETS[audit_budget],
            audit_images,
            seed,
            batch_size,
            progress=True,
        )
        for e in audit_eps
    }
    for (
        name,
        e,
    ), wc in audits.items():  # the multiclass page's defended CNN: its card, named as there
        write_card(
            "MNIST CNN, front end",
            nets.victims[name].model(),
            wc,
            x_test,
            y_test,
            "MNIST test set",
            audit.BUDGETS[audit_budget],
        )
    table = result.frame()
    table["audit"] = "screening"
    for (name, e), wc in audits.items():
        table.loc[len(table)] = {
            "defense": name,
            "eps": e,
            "audited images": wc.n,
            "worst case %": format_accuracy(wc.robust),
            "broken by": wc.found_by(),
            "audit": "the network's audit",
        }
    return Section(
        result=result,
        audits=audits,
        cells=cells,
        table3_cells=cells[: 2 * len(at_eps)],
        table=table,
        numbers=numbers(
            mismatch_train=mismatch[0],
            mismatch_test=mismatch[1],
            n_cells=len(cells),
            n_audit=audit_images,
        ),
    )


#: The column a cell's worst case goes in, by its kind.
_WORST_COLUMN = {WORST_CASE: "worst case (audit)", SCREENING: "worst case (screening)"}


def shown_worst(att: Section, name: str, eps: float):
    """The worst case a page shows for a cell: ``(0/1 per image, kind)``.

    The network's audit where the page has it (kind ``WORST_CASE`` of
    :mod:`sparsenb.lab.paper`), else the screening audit (kind ``SCREENING``).
    """
    if (name, eps) in att.audits:
        return att.audits[(name, eps)].robust.astype(int), WORST_CASE
    return att.result.worst(name, eps).robust.astype(int), SCREENING


@drawn(_table3_figure)
def table3(nets: Section, att: Section, at_eps) -> Section:
    r"""Table III: PGD, natural accuracy and the audited worst case beside the paper's numbers.

    ``comparison`` (a :class:`~sparsenb.lab.paper.Comparison`) holds the
    rows compared with the paper; later sections add theirs. ``table`` is
    the side-by-side table, sorted by :math:`\epsilon`; ``provable`` the
    paper's provable defenses (pretrained models, quoted only). ``numbers``
    per :math:`\epsilon` (tag ``01`` for 0.1): ``fe_pgd_``, ``madry_pgd_``,
    ``fe_worst_``, ``madry_worst_`` (percent), ``paper_fe_``,
    ``paper_madry_`` (the paper's PGD), ``madry_nat_`` at the smallest and
    largest :math:`\epsilon`; ``fe_nat``, ``e_lo``, ``e_hi``, and
    ``fe_drop``, ``madry_drop``: the points the worst case takes off PGD's
    accuracy on the audited images, on average over the budgets.
    """
    comparison = Comparison()
    result, natural = att.result, nets.natural
    entries = []
    for name, e in att.table3_cells:
        row = f"eps = {e}, {name.split(' at ')[0]}"
        match = {"artifact": "Table III", "defense": _table3_defense(name), "eps": e}
        entries.append((row, "adversarial", result.pgd(name, e), match | PAPER_PGD))
        entries.append((row, "natural", natural[name], match | {"attack": "none"}))
        worst, kind = shown_worst(att, name, e)
        entries.append((row, _WORST_COLUMN[kind], worst, match | PAPER_PGD, kind))
    table = comparison.table("Table III", entries)
    table = table.sort_index(key=lambda idx: idx.str.slice(0, 9), kind="stable")

    values = {}
    for e in at_eps:
        tag = str(e).replace(".", "")
        values |= {
            f"fe_pgd_{tag}": accuracy_interval(result.pgd(FRONT_END_ALONE, e))[0],
            f"madry_pgd_{tag}": accuracy_interval(result.pgd(_madry(e), e))[0],
            f"fe_worst_{tag}": accuracy_interval(shown_worst(att, FRONT_END_ALONE, e)[0])[0],
            f"madry_worst_{tag}": accuracy_interval(shown_worst(att, _madry(e), e)[0])[0],
            f"paper_fe_{tag}": paper_number(
                artifact="Table III", defense=TABLE3_DEFENSES["front end"], eps=e, **PAPER_PGD
            ),
            f"paper_madry_{tag}": paper_number(
                artifact="Table III",
                defense=TABLE3_DEFENSES["adversarial training"],
                eps=e,
                **PAPER_PGD,
            ),
        }
        if e in (min(at_eps), max(at_eps)):
            values[f"madry_nat_{tag}"] = 100 * natural[_madry(e)].mean()
    drop = {
        k: pd.Series(
            [
                100 * result.pgd(n, e)[result.audited].mean() - result.worst_interval(n, e)[0]
                for n, e in att.table3_cells
                if n.startswith(k)
            ]
        ).mean()
        for k in ("front end", "adversarial")
    }
    values |= {
        "fe_nat": 100 * natural[FRONT_END_ALONE].mean(),
        "e_lo": min(at_eps),
        "e_hi": max(at_eps),
        "fe_drop": drop["front end"],
        "madry_drop": drop["adversarial"],
    }

    curves = {}
    for name in ("front end alone", "adversarial training"):
        mine = [(n, e) for n, e in att.table3_cells if n.startswith(name)]
        curves[name] = {
            "eps": [e for _, e in mine],
            "pgd": [accuracy_interval(result.pgd(*c)) for c in mine],
            "worst": [accuracy_interval(shown_worst(att, *c)[0]) for c in mine],
            "paper": [
                paper_number(defense=_table3_defense(n), artifact="Table III", eps=e, **PAPER_PGD)
                for n, e in mine
            ],
        }
    columns = ["defense", "eps", "attack", "metric", "value", "note"]
    provable = paper_rows(artifact="Table III", model="pretrained")[columns].reset_index(drop=True)
    return Section(
        comparison=comparison,
        table=table,
        provable=provable,
        curves=curves,
        at_eps=list(at_eps),
        numbers=numbers(**values),
    )


def combined(
    nets: Section, att: Section, comparison: Comparison, combined_eps: float, mismatch
) -> Section:
    r"""Front end + adversarial training at ``combined_eps``, and both trained at ``mismatch[0]``, tested at ``mismatch[1]``.

    Five rows (the front end alone, adversarial training and the two
    combined at ``combined_eps``; adversarial training and the combination
    in the mismatch): PGD and the audited worst case, beside the paper's
    numbers (Sec. VI-B) where the budgets are the paper's (``on_paper``:
    0.2, and 0.1 against 0.2), and natural accuracy. Those rows are added
    to ``comparison``. ``rows`` maps each row's label to ``(victim, eps,
    paper row)``. ``numbers``: ``comb_<k>`` (PGD) and ``comb_worst_<k>``
    (the worst case) for ``k`` in ``fe``, ``madry``, ``both``,
    ``mm_madry``, ``mm_both``, in percent; the paper's ``paper_both``,
    ``paper_mm_madry``, ``paper_mm_both``, ``paper_fe_alone``; and
    ``combined_eps``.
    """
    result, natural = att.result, nets.natural
    c, (tr, te) = combined_eps, mismatch
    on_paper = c == 0.2 and list(mismatch) == [0.1, 0.2]  # the budgets of the paper's numbers
    rows = {
        "front end alone": (
            FRONT_END_ALONE,
            c,
            {"artifact": "Table III", "defense": "front end coif1", "eps": c},
        ),
        "adversarial training": (
            _madry(c),
            c,
            {"artifact": "Table III", "defense": "Madry adversarial training", "eps": c},
        ),
        "front end + adversarial training": (
            _both(c),
            c,
            {"artifact": "text VI-B", "defense": "front end + adversarial training"},
        ),
        f"adversarial training, trained at {tr}": (
            _madry(tr),
            te,
            {"artifact": "text VI-B", "defense": "adversarial training eps 0.1"},
        ),
        f"front end + adversarial training, trained at {tr}": (
            _both(tr),
            te,
            {"artifact": "text VI-B", "defense": "front end + adversarial training eps 0.1"},
        ),
    }
    pgd_match = {label: m | PAPER_PGD if on_paper else None for label, (n, e, m) in rows.items()}
    entries = []
    for label, (n, e, m) in rows.items():
        entries.append((f"{label} (tested at {e})", "PGD", result.pgd(n, e), pgd_match[label]))
        worst, kind = shown_worst(att, n, e)
        entries.append(
            (f"{label} (tested at {e})", _WORST_COLUMN[kind], worst, pgd_match[label], kind)
        )
    table = comparison.table("Sec. VI-B", entries)
    table["natural"] = [format_accuracy(natural[n], 2) for n, _, _ in rows.values()]

    keys = dict(zip(("fe", "madry", "both", "mm_madry", "mm_both"), rows.values()))
    values = {f"comb_{k}": accuracy_interval(result.pgd(n, e))[0] for k, (n, e, _) in keys.items()}
    values |= {
        f"comb_worst_{k}": accuracy_interval(shown_worst(att, n, e)[0])[0]
        for k, (n, e, _) in keys.items()
    }
    values |= {
        "paper_both": paper_number(
            artifact="text VI-B", defense="front end + adversarial training"
        ),
        "paper_mm_madry": paper_number(
            artifact="text VI-B", defense="adversarial training eps 0.1"
        ),
        "paper_mm_both": paper_number(
            artifact="text VI-B", defense="front end + adversarial training eps 0.1"
        ),
        "paper_fe_alone": paper_number(
            artifact="Table III", defense="front end coif1", eps=0.2, **PAPER_PGD
        ),
        "combined_eps": combined_eps,
    }
    return Section(table=table, rows=rows, on_paper=on_paper, numbers=numbers(**values))


@drawn(_cost_figure)
def cost(
    nets: Section,
    att: Section,
    at_eps,
    at_train: int,
    at_epochs: int,
    n_train: int,
    epochs: int,
    inner_steps: int,
    combined_eps: float,
    cost_inner_steps,
    cost_batches: int,
    cost_repeats: int,
    device="cpu",
) -> Section:
    r"""The book's training loop timed plain and with each adversary, and the CPU hours each network took.

    Variants (:func:`sparsenb.lab.timing.measured_cost`, ``cost_batches``
    batches per round, ``cost_repeats`` rounds): plain; the front end;
    adversarial training at the largest of ``at_eps`` with PGD of each of
    ``inner_steps`` and ``cost_inner_steps`` steps of 0.01; the front end
    with the page's inner attack at ``combined_eps``. ``table``: seconds per
    batch and epoch, slowdowns (:func:`~sparsenb.lab.timing.cost_frame`);
    ``hours``: the training CPU hours of the networks at ``combined_eps``
    (time per image times the images trained on, plus sparsifying its
    training images once for the front end alone). Also ``measured`` (the
    raw timings), ``slowdown``, ``variant`` (victim name to its timed
    variant), ``ms``. ``numbers``: ``slowdown_max`` (PGD with the most
    steps, ``cost_max_m``), ``slowdown_inner``, ``slowdown_fe``,
    ``slowdown_both``, ``cost_spread``, ``cost_batches``, ``cost_repeats``,
    ``cost_threads``, ``cost_device``; ``paper_hours`` (Madry et al.'s
    schedule with PGD-``cost_max_m`` at the measured rate) and ``fe_hours``.
    """
    fe, fe_inner, inner, victims = nets.fe, nets.fe_inner, nets.inner, nets.victims
    runs = {"plain": (None, None), "front end": (fe, None)}
    ms = sorted({inner_steps, *cost_inner_steps})
    runs |= {
        f"adversarial, PGD-{m}": (None, Adversary("pgd", max(at_eps), {"step": 0.01, "steps": m}))
        for m in ms
    }
    runs |= {"front end + adversarial": (fe_inner, inner[combined_eps])}
    measured = measured_cost(
        CNNConfig(), nets.x_at, nets.y_at, nets.recipe, runs, cost_batches, cost_repeats, device
    )
    frame = cost_frame(measured, MNIST_TRAIN)
    slowdown = frame["slowdown (CPU)"]

    at_train_shown = at_train or MNIST_TRAIN
    variant = {FRONT_END_ALONE: "front end"}
    variant |= {
        n: f"adversarial, PGD-{inner_steps}" for n in victims if n.startswith("adversarial")
    }
    variant |= {n: "front end + adversarial" for n in victims if n.startswith("front end +")}
    epochs_of = epochs_at(at_eps, at_epochs)
    images_seen = {_madry(e): epochs_of[e] * at_train_shown for e in at_eps}
    images_seen |= {
        _both(e): epochs_of[e] * at_train_shown for e in epochs_of if _both(e) in victims
    }
    images_seen |= {FRONT_END_ALONE: epochs * (n_train or MNIST_TRAIN)}
    batch = measured["batch_size"]
    hours = {
        n: per_step_seconds(measured, variant[n], "cpu") / batch * images_seen[n] / 3600
        for n in victims
    }
    sparsify = per_step_seconds(measured, "front end", "setup_cpu") - per_step_seconds(
        measured, "plain", "setup_cpu"
    )  # once per image
    hours[FRONT_END_ALONE] += (
        max(sparsify, 0.0) / (cost_batches * batch) * (n_train or MNIST_TRAIN) / 3600
    )
    hours = {n: hours[n] for n in (FRONT_END_ALONE, _madry(combined_eps), _both(combined_eps))}
    paper_hours = (
        per_step_seconds(measured, f"adversarial, PGD-{max(ms)}", "cpu")
        / batch
        * MADRY_IMAGES
        / 3600
    )
    result = att.result
    points = {
        n: (
            h,
            accuracy_interval(result.pgd(n, combined_eps)),
            accuracy_interval(shown_worst(att, n, combined_eps)[0]),
        )
        for n, h in hours.items()
    }
    values = numbers(
        cost_batches=cost_batches,
        cost_repeats=cost_repeats,
        cost_threads=measured["threads"],
        cost_device=measured["device"],
        slowdown_max=slowdown[f"adversarial, PGD-{max(ms)}"],
        slowdown_inner=slowdown[f"adversarial, PGD-{inner_steps}"],
        slowdown_both=slowdown["front end + adversarial"],
        slowdown_fe=slowdown["front end"],
        cost_max_m=max(ms),
        cost_spread=float(frame["spread"].max()),
        paper_hours=paper_hours,
        fe_hours=hours[FRONT_END_ALONE],
    )
    return Section(
        measured=measured,
        table=frame.round(3),
        hours=pd.Series(hours, name="training CPU hours").round(4).to_frame(),
        slowdown=slowdown,
        variant=variant,
        ms=ms,
        points=points,
        combined_eps=combined_eps,
        numbers=values,
    )


def reduced_settings(
    at_train: int,
    at_epochs,
    inner_steps: int,
    pgd_restarts: int,
    pgd_steps: int,
    at_eps,
    combined_eps,
    mismatch,
) -> dict:
    """Which compared numbers this profile measured with less training or a weaker attack than the paper's.

    Keys name a cell (``"section / row / column"``) or a row, as the
    scorecard reads them (:func:`sparsenb.book.scorecard.record`); values are
    ``("training" or "attack", what and how much)``. Adversarially trained
    networks are reduced in training when they saw fewer images than
    Madry et al.'s 100,000 steps of 50 (:data:`MADRY`) or an inner attack of
    fewer than 40 steps; every PGD accuracy is reduced in attack when the
    evaluation PGD has fewer restarts or steps than the paper's 100 of 100.
    Natural accuracy of the front end alone is like for like.
    """
    _front_end_budgets(at_eps, combined_eps, mismatch)
    images = {e: n * (at_train or MNIST_TRAIN) for e, n in epochs_at(at_eps, at_epochs).items()}
    less = {e: n < MADRY_IMAGES or inner_steps < MADRY["inner_steps"] for e, n in images.items()}
    weaker = (
        pgd_restarts < PAPER_PGD_SETTINGS["restarts"] or pgd_steps < PAPER_PGD_SETTINGS["steps"]
    )
    trained = {
        e: f"{n:,} training images in all against PGD-{inner_steps} "
        f"(Madry et al.: {MADRY_IMAGES:,} against PGD-{MADRY['inner_steps']})"
        for e, n in images.items()
    }
    paper = PAPER_PGD_SETTINGS
    attack = f"PGD, {pgd_restarts} restart(s) x {pgd_steps} steps (paper {paper['restarts']} x {paper['steps']})"
    out = {}
    for e in at_eps:
        if less[e]:
            out[f"Table III / eps = {e}, adversarial training"] = ("training", trained[e])
        elif weaker:
            out[f"Table III / eps = {e}, adversarial training / adversarial"] = ("attack", attack)
        if weaker:
            out[f"Table III / eps = {e}, front end alone / adversarial"] = ("attack", attack)
    tr, te = mismatch
    for label, e, trained_at in (
        ("front end alone", combined_eps, None),
        ("adversarial training", combined_eps, combined_eps),
        ("front end + adversarial training", combined_eps, combined_eps),
        (f"adversarial training, trained at {tr}", te, tr),
        (f"front end + adversarial training, trained at {tr}", te, tr),
    ):
        row = f"Sec. VI-B / {label} (tested at {e})"
        if trained_at is not None and less[trained_at]:
            out[row] = ("training", trained[trained_at])
        elif weaker:
            out[row] = ("attack", attack)
    return out


def disagreements(comparison: Comparison) -> Section:
    """Every number compared with the paper's (``table``), and how many fall outside our 95% intervals.

    ``sections``: the scorecard sections the comparison has rows of, in
    order (Table III, and Sec. VI-B where :func:`combined` compared its rows
    with the paper). ``numbers``: ``n_compared``, ``n_disagree`` and of
    those ``n_disagree_above`` (ours higher) and ``n_disagree_below``.
    """
    counts = comparison.counts()
    values = numbers(
        n_compared=counts["compared"],
        n_disagree=counts["compared"] - counts["agrees"],
        n_disagree_above=counts["ours higher"],
        n_disagree_below=counts["ours lower"],
    )
    sections = list(dict.fromkeys(r["table"] for r in comparison.rows))
    return Section(table=comparison.frame(), sections=sections, numbers=values)


def summary(nets: Section, att: Section, comb: Section, cst: Section) -> Section:
    """Every cell of :func:`attacks`: PGD, the worst case, the paper's PGD where it has one, natural accuracy
    and the training slowdown of the network's variant (``table``)."""
    result, natural = att.result, nets.natural
    paper_pgd = {
        (n, e): paper_number(artifact="Table III", defense=_table3_defense(n), eps=e, **PAPER_PGD)
        for n, e in att.table3_cells
    }
    paper_pgd |= {
        (n, e): paper_number(**m, **PAPER_PGD) for n, e, m in comb.rows.values() if comb.on_paper
    }
    table = pd.DataFrame(
        {
            "ours, PGD": [format_accuracy(result.pgd(n, e)) for n, e in att.cells],
            "ours, worst case": [format_accuracy(shown_worst(att, n, e)[0]) for n, e in att.cells],
            "audit": [
                "screening" if shown_worst(att, n, e)[1] == SCREENING else "the network's"
                for n, e in att.cells
            ],
            "paper, PGD": [paper_pgd.get(c, "-") for c in att.cells],
            "ours, natural": [format_accuracy(natural[n], 2) for n, _ in att.cells],
            "training slowdown (CPU)": [
                round(cst.slowdown[cst.variant[n]], 2) for n, _ in att.cells
            ],
        },
        index=[f"{n} (tested at {e})" for n, e in att.cells],
    )
    return Section(table=table, numbers={})
