r"""What the chapter "Multiclass MNIST: the four-layer CNN under attack" computes, one function per section.

The paper's multiclass MNIST experiment (Sec. VI-B and App. B), declared
once. The multiclass chapter runs it and the adaptive-evaluation chapter
(:mod:`sparsenb.chapters.adaptive`) reads it back: both call these
functions with the same parameters, so every checkpoint
(:func:`sparsenb.lab.store.trained`) and every per-image outcome
(:func:`sparsenb.lab.grid.run`) is computed once and then read from the
store.

=========================  ======================================================================
:func:`scale`              this profile's sizes and attack settings beside the paper's
:func:`networks`           the two CNNs (trained or read back), the attacked test images
:func:`attack_grid`        the paper's six attacks on both CNNs, each front-end gradient
:func:`audit`              the strong attacks on a seeded subset, the worst case per image
:func:`table2`             Table II: iterative attacks, with and without the front end
:func:`pgd_cost`           the model evaluations PGD spent, beside its nominal count
:func:`table5`             Table V: every attack through each front-end gradient
:func:`table6`             Table VI: I-FGSM step size and number of steps
:func:`fig5`               Fig. 5: test digits, their PGD versions and the front end's output
:func:`fig8b`              Fig. 8b: support overlap between an image and its PGD version
:func:`fig9`               Fig. 9: ReLU switches one attack step flips
:func:`fig10`              Fig. 10: switches flipped along a long I-FGSM run
:func:`fig12`              Fig. 12: Carlini-Wagner :math:`\ell_2` distances
:func:`disagreements`      every compared number, and the ones outside our intervals
=========================  ======================================================================

Each returns a :class:`~sparsenb.chapters.section.Section`: its tables and
figure as attributes and ``numbers``, the values the prose quotes. The
sections that compare with the paper also return ``comparison``, a
:class:`~sparsenb.lab.paper.Comparison` of their rows; :func:`disagreements`
joins them for the scorecard.

The experiment's declarations, which other chapters call too:

- :func:`cnn_victims`: the four-layer CNN trained on clean images ("no
  defense") and retrained with the front end inside its training graph
  ("front end"), as :class:`~sparsenb.lab.grid.Victim`.
- :func:`test_images`: the seeded subset of the test set that is attacked.
- :func:`table2_attacks`: the paper's six attacks (and no attack) with the
  chapter's step sizes and counts.
- :func:`ifgsm_sweep`, :func:`one_step_flips`: the stored computations of
  Table VI and Figs. 9-10.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np
import pandas as pd
import torch

from .. import data
from ..attacks import check_adversarial, ifgsm, iterative_locally_linear
from ..evaluation import accuracy, format_accuracy, predict, wilson_interval
from ..frontend import GRADIENTS, SparsifyingFrontEnd
from ..lab.audit import BUDGETS, network_audit, positions
from ..lab.bundle import write_card
from ..lab.grid import Attack, Grid, Victim, run, run_parts
from ..lab.paper import PAPERS_ATTACKS, WORST_CASE, Comparison
from ..lab.store import stored, trained
from ..models.cnn import CNNConfig, NielsenCNN
from ..theory.switches import flip_share, switch_states
from ..training import CNN_TRAINING
from . import figures
from .section import Section, drawn, numbers

__all__ = [
    "PAPER_ATTACK_SETTINGS",
    "reduced_settings",
    "spread",
    "DEFENSES",
    "cnn_victims",
    "test_images",
    "table2_attacks",
    "run_attack",
    "switch_flips",
    "ifgsm_sweep",
    "one_step_flips",
    "scale",
    "networks",
    "attack_grid",
    "audit",
    "table2",
    "pgd_cost",
    "table5",
    "table6",
    "fig5",
    "fig8b",
    "fig9",
    "fig10",
    "fig12",
    "disagreements",
]

#: The victims' names, as the chapters' tables show them.
DEFENSES = ("no defense", "front end")
#: How the paper's tables name our attacks where the names differ.
PAPER_NAMES = {"PGD": "PGD 100 restarts", "no attack": "none"}
#: How ``paper_numbers.csv`` names our victims in Table II.
PAPER_DEFENSES = {"no defense": "none", "front end": "front end coif1"}
#: Table II's rows (the paper's iterative attacks) and Table V's (all six).
TABLE2_ATTACKS = (
    "no attack",
    "iterative locally linear",
    "iterative FGSM",
    "momentum iterative FGSM",
    "PGD",
)
TABLE5_ATTACKS = (
    "FGSM",
    "locally linear",
    "iterative locally linear",
    "iterative FGSM",
    "momentum iterative FGSM",
    "PGD",
)
#: The step counts at which the paper's Table VI reports I-FGSM.
TABLE6_STEPS = (20, 100, 1000)
#: Tolerance of the l_inf comparisons with eps (float32 images).
_TOL = 1e-6


def cnn_victims(
    n_train: int,
    epochs: int,
    seed: int,
    rho: float,
    wavelet: str,
    refine_steps: int,
    refine_step: float,
    device: torch.device | str | None = None,
    progress: bool = True,
) -> tuple[dict[str, Victim], torch.Tensor, torch.Tensor]:
    r"""The undefended and the defended CNN (trained, or read from the checkpoint store), and the training images.

    ``n_train`` training images (0: all 60,000, a seeded subset otherwise),
    the book's CNN recipe for ``epochs`` epochs; the front end keeps
    :math:`K = \lfloor \rho N \rfloor` coefficients in ``wavelet`` and
    its iterated-projection gradient refines ``refine_steps`` times by
    ``refine_step``. Returns ``({"no defense": ..., "front end": ...}, x_train, y_train)``.
    """
    n_train, epochs, seed = int(n_train), int(epochs), int(seed)
    x_train, y_train = data.subset(*data.load_mnist("train"), n_train or None, seed=seed)
    fe = SparsifyingFrontEnd(rho, wavelet, refine_steps=refine_steps, refine_step=refine_step)
    recipe = dataclasses.replace(CNN_TRAINING, epochs=epochs, seed=seed)
    plain = trained(CNNConfig(), x_train, y_train, recipe, progress=progress, device=device)
    defended = trained(
        CNNConfig(), x_train, y_train, recipe, frontend=fe, progress=progress, device=device
    )
    if device is not None:
        plain, defended, fe = plain.to(device), defended.to(device), fe.to(device)
    return {"no defense": Victim(plain), "front end": Victim(defended, fe)}, x_train, y_train


def test_images(n_images: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The attacked test images: a seeded random subset of ``n_images`` of the 10,000 (0: all)."""
    return data.subset(*data.load_mnist("test"), int(n_images) or None, seed=int(seed))


def table2_attacks(
    ifgsm_step: float,
    ifgsm_steps: int,
    ill_step: float,
    ill_steps: int,
    pgd_step: float,
    pgd_steps: int,
    pgd_restarts: int,
    seed: int,
) -> dict[str, Attack]:
    """The paper's attacks on the CNN (Tables II and V), by the names its tables use, and "no attack"."""
    return {
        "no attack": Attack("none"),
        "FGSM": Attack("fgsm"),
        "locally linear": Attack("locally_linear"),
        "iterative locally linear": Attack(
            "iterative_locally_linear", step=ill_step, steps=ill_steps
        ),
        "iterative FGSM": Attack("ifgsm", step=ifgsm_step, steps=ifgsm_steps),
        "momentum iterative FGSM": Attack("mifgsm", step=ifgsm_step, steps=ifgsm_steps, decay=1.0),
        "PGD": Attack("pgd", step=pgd_step, steps=pgd_steps, restarts=pgd_restarts, seed=seed),
    }


# --------------------------------------------------------------------------
# Table VI and Figs. 9-10: I-FGSM sweeps and ReLU switch flips
# --------------------------------------------------------------------------
def run_attack(
    attack: Callable,
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int = 500,
    progress: bool = False,
    desc: str = "attack",
    **kwargs,
) -> torch.Tensor:
    """Apply ``attack(x=..., y=..., **kwargs)`` batch by batch; return all adversarial images."""
    from tqdm.auto import tqdm

    out = []
    batches = list(zip(x.split(batch_size), y.split(batch_size)))
    for xb, yb in tqdm(batches, desc=desc, disable=not progress, leave=False):
        out.append(attack(x=xb, y=yb, **kwargs))
    return torch.cat(out)


@torch.no_grad()
def switch_flips(model, x: torch.Tensor, x_adv: torch.Tensor, batch_size: int = 500) -> dict:
    """How many ReLU switches flip between ``x`` and ``x_adv`` (Fig. 9).

    ``model`` is a :class:`~sparsenb.models.cnn.NielsenCNN` or a defended one
    (:func:`sparsenb.theory.switches.switch_states`). Returns ``{"total": [% of all
    units that flip, per image], "layers": {layer: mean % over images}}``.
    """
    if x_adv.shape != x.shape:
        raise ValueError(
            f"x_adv must have the shape of x {tuple(x.shape)}, got {tuple(x_adv.shape)}"
        )
    total, layers = [], {}
    for xb, ab in zip(x.split(batch_size), x_adv.split(batch_size)):
        t, per = flip_share(switch_states(model, xb), switch_states(model, ab))
        total += t.tolist()
        for k, v in per.items():
            layers.setdefault(k, []).extend(v.tolist())
    return {"total": total, "layers": {k: sum(v) / len(v) for k, v in layers.items()}}


def ifgsm_sweep(
    model,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    step: float,
    record_at,
    batch_size: int = 500,
    count_flips: bool = False,
) -> dict:
    """One I-FGSM run of ``max(record_at)`` steps, read out along the way (Table VI, Fig. 10).

    A run of ``k`` steps is the first ``k`` steps of a longer run, so one run
    gives the per-image outcomes after each ``k`` in ``record_at``
    (``{"correct": {str(k): [0/1 per image]}}``, each iterate checked in the
    ball and box). With ``count_flips``, also the mean and standard deviation
    over images of the % of ReLU switches that flip at each step
    (``"flips_mean"``, ``"flips_std"``, one entry per step;
    :func:`sparsenb.theory.switches.switch_states`).
    """
    record_at = sorted({int(k) for k in record_at})
    if not record_at or record_at[0] < 1:
        raise ValueError(f"record_at must hold step counts >= 1, got {record_at!r}")
    steps = record_at[-1]
    correct = {k: [] for k in record_at}
    s1 = torch.zeros(steps, dtype=torch.float64)
    s2 = torch.zeros(steps, dtype=torch.float64)
    for xb, yb in zip(x.split(batch_size), y.split(batch_size)):
        prev = [switch_states(model, xb)] if count_flips else None

        def record(k, x_adv):
            if k in correct:
                check_adversarial(x_adv, xb, eps)
                correct[k] += (predict(model, x_adv) == yb).int().tolist()
            if count_flips:
                with torch.no_grad():
                    cur = switch_states(model, x_adv)
                share = flip_share(prev[0], cur)[0].cpu()
                s1[k - 1] += share.sum()
                s2[k - 1] += share.pow(2).sum()
                prev[0] = cur

        ifgsm(model, xb, yb, eps, step, steps, callback=record)
    out = {"correct": {str(k): v for k, v in correct.items()}}
    if count_flips:
        mean = s1 / len(x)
        out["flips_mean"] = mean.tolist()
        out["flips_std"] = (s2 / len(x) - mean.pow(2)).clamp_min(0).sqrt().tolist()
    return out


def one_step_flips(
    model, x: torch.Tensor, y: torch.Tensor, eps: float, step: float, batch_size: int = 500
) -> dict:
    """Switch flips caused by one step of size ``step`` of the iterative locally linear attack (Fig. 9).

    The step is checked to stay within ``step`` of ``x``; returns :func:`switch_flips`.
    """
    x1 = run_attack(
        iterative_locally_linear, x, y, batch_size, model=model, eps=eps, step=step, steps=1
    )
    check_adversarial(x1, x, step)
    return switch_flips(model, x, x1, batch_size)


# --------------------------------------------------------------------------
# figures (each section function draws its own, see drawn)
# --------------------------------------------------------------------------
def _fig5_figure(s: Section):
    """Test digits, PGD against each CNN, and what the front end hands to its classifier."""
    return figures.image_rows(
        [
            ("input $x$", s.images, None),
            ("PGD vs. no defense", s.adv_plain, s.pred_plain),
            ("PGD vs. front end", s.adv_fe, None),
            ("front end's output", s.frontend_output, s.pred_fe),
        ],
        titles=[f"label {int(v)}" for v in s.labels],
        true_labels=s.labels,
    )


def _fig8b_figure(s: Section):
    """Support overlap under PGD, one panel per gradient, split by whether the defense held."""
    return figures.histograms_by_outcome(
        s.panels, np.arange(-0.5, s.K + 1.5), r"$|S_K(x) \cap S_K(x+e)|$"
    )


def _fig9_figure(s: Section):
    """Share of ReLU units that one step flips, without and with the front end."""
    return figures.histograms(
        {
            "(a) no defense": s.flips["none"]["total"],
            r"(b) front end, $\rho$ = 3.5%": s.flips["front end"]["total"],
        },
        "ReLU units that flip (%)",
    )


def _fig10_figure(s: Section):
    """Mean share of units that flip per I-FGSM step, one standard deviation shaded."""
    title = (
        rf"I-FGSM, $\delta$ = {s.flip_step}, $\epsilon$ = {s.eps}, front end (BPDA), "
        f"{s.n_images} images"
    )
    return figures.band_over_steps(
        s.mean, s.std, "I-FGSM step", "ReLU units that flip (%)", title, s.eps / s.flip_step
    )


def _fig12_figure(s: Section):
    """l_inf (top) and l_2 (bottom) distances of the C&W examples that fooled each CNN."""
    panels = {rf"$\ell_\infty$, {v}": s.linf[v][s.found[v]] for v in s.linf}
    panels |= {rf"$\ell_2$, {v}": s.l2[v][s.found[v]] for v in s.l2}
    return figures.histograms(panels, "distance", marker=None, rows=2)


# --------------------------------------------------------------------------
# sections
# --------------------------------------------------------------------------
def scale(
    n_images: int,
    n_train: int,
    epochs: int,
    ifgsm_step: float,
    ifgsm_steps: int,
    ill_step: float,
    ill_steps: int,
    pgd_step: float,
    pgd_steps: int,
    pgd_restarts: int,
    refine_steps: int,
    refine_step: float,
    sweep_images: int,
    sweep_steps,
    cw_images: int,
    cw_iterations: int,
    cw_search_steps: int,
) -> Section:
    """This profile's sizes and attack settings beside the paper's (``table``).

    ``numbers``: the settings the prose quotes, and ``ci_half_width``, the
    half-width in points of the 95% Wilson interval of an accuracy near 50%
    measured on ``n_images`` images.
    """
    lo, hi = wilson_interval(n_images // 2, n_images)
    table = pd.DataFrame(
        {
            "this page": [
                n_images,
                n_train or 60000,
                epochs,
                f"{ifgsm_steps} x {ifgsm_step}",
                f"{ill_steps} x {ill_step}",
                f"{pgd_restarts} x {pgd_steps} x {pgd_step}",
                refine_steps,
                sweep_images,
                " / ".join(map(str, sweep_steps)),
                f"{cw_images} ({cw_search_steps} x {cw_iterations})",
            ],
            "paper": [
                10000,
                60000,
                "not stated",
                "1000 x 0.01",
                "100 x 0.05 (Table II); 1000 x 0.01 (Table V)",
                "100 x 100 x 0.05",
                20,
                10000,
                "20 / 100 / 1000",
                "not stated (CleverHans: 5 x 1000)",
            ],
        },
        index=[
            "test images attacked",
            "training images",
            "training epochs",
            "I-FGSM, MI-FGSM: steps x delta",
            "iterative locally linear: steps x delta",
            "PGD: restarts x steps x delta",
            "iterated projection: refinements per step",
            "Table VI, Fig. 10: test images",
            "Table VI: steps",
            "Fig. 12, C&W: test images (search x iterations)",
        ],
    )
    values = numbers(
        ci_half_width=100 * (hi - lo) / 2,
        ifgsm_steps=ifgsm_steps,
        ifgsm_step=ifgsm_step,
        ill_steps=ill_steps,
        ill_step=ill_step,
        pgd_steps=pgd_steps,
        pgd_step=pgd_step,
        pgd_restarts=pgd_restarts,
        refine_steps=refine_steps,
        refine_step=refine_step,
        epochs=epochs,
        n_images=n_images,
        sweep_images=sweep_images,
        cw_images=cw_images,
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
    n_images: int,
    device=None,
) -> Section:
    """The two CNNs (:func:`cnn_victims`), their accuracy on all 10,000 test images, and the attacked ones.

    ``victims``, ``frontend`` (the defended CNN's), ``x``, ``y`` (the
    attacked test images, :func:`test_images`, on ``device``); ``table``:
    the clean accuracy (%) of each CNN on the whole test set; ``numbers``:
    ``K``, ``n_train`` (training images used), ``clean_all_plain`` and
    ``clean_all_fe``.
    """
    victims, x_train, _ = cnn_victims(
        n_train, epochs, seed, rho, wavelet, refine_steps, refine_step, device
    )
    fe = victims["front end"].frontend
    x_all, y_all = data.load_mnist("test")
    x, y = test_images(n_images, seed)
    clean_all = {
        name: 100 * accuracy(v.model(), x_all.to(device), y_all.to(device))
        for name, v in victims.items()
    }
    table = pd.DataFrame({"accuracy on all 10,000 test images (%)": clean_all}).round(2)
    values = numbers(
        K=fe.K[0],
        n_train=len(x_train),
        clean_all_plain=clean_all["no defense"],
        clean_all_fe=clean_all["front end"],
    )
    return Section(
        victims=victims, frontend=fe, x=x.to(device), y=y.to(device), table=table, numbers=values
    )


def attack_grid(
    victims: dict[str, Victim],
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    ifgsm_step: float,
    ifgsm_steps: int,
    ill_step: float,
    ill_steps: int,
    pgd_step: float,
    pgd_steps: int,
    pgd_restarts: int,
    seed: int,
    batch_size: int,
    audit_images: int = 0,
) -> Section:
    """Every attack of :func:`table2_attacks` on both CNNs, through each front-end gradient (:func:`sparsenb.lab.grid.run`).

    ``x`` are :func:`test_images` ``(len(x), seed)``. With ``audit_images``
    > 0, the images of the networks' audit among them (:func:`audit`, the
    same ``seed``) are attacked as a set of their own first
    (:func:`sparsenb.lab.grid.run_parts`), so the audit reads the paper's
    attacks on them back instead of running them again; the outcomes are the
    same. ``outcomes`` (per image, stored), ``attacks``, ``worst`` (the most
    damaging gradient treatment per attack, the one the paper reports);
    ``table``: each cell's accuracy and 95% interval; ``numbers``: ``n_cells``.
    """
    attacks = table2_attacks(
        ifgsm_step, ifgsm_steps, ill_step, ill_steps, pgd_step, pgd_steps, pgd_restarts, seed
    )
    grid = Grid(victims, attacks, eps=[eps], gradients=GRADIENTS)
    if audit_images:
        n_test = len(data.load_mnist("test")[1])
        first = positions(n_test, len(x), min(audit_images, len(x)), seed)
        outcomes = run_parts(grid, x, y, first, batch_size)
    else:
        outcomes = run(grid, x, y, batch_size)
    worst = {a: outcomes.worst_gradient("front end", a) for a in attacks}
    return Section(
        attacks=attacks,
        outcomes=outcomes,
        worst=worst,
        table=outcomes.frame().round(2),
        numbers=numbers(n_cells=len(grid.cells())),
    )


def audit(
    victims: dict[str, Victim],
    eps: float,
    audit_budget: str,
    audit_images: int,
    seed: int,
    batch_size: int,
) -> Section:
    """Each CNN's audit (:func:`sparsenb.lab.audit.network_audit`): every attack at the profile's budget, one number per CNN.

    The audited images are the first ``audit_images`` of the seeded test
    permutation, so they lie among the attacked ones; every page that
    reports these CNNs at ``eps`` calls the same audit and shows the same
    worst case. Inside a build each CNN's card goes to the results bundle
    (:func:`sparsenb.lab.bundle.write_card`). ``result``: per CNN, its
    :class:`~sparsenb.lab.audit.WorstCase`; ``table``: the accuracy (%)
    each attack leaves per CNN, the worst case per image last; ``numbers``:
    ``n_audit``, ``wc_fe`` (with ``wc_fe_lo``, ``wc_fe_hi``), ``wc_plain``,
    and which attacks found the lost images (``found_fe``, ``found_plain``).
    """
    x_test, y_test = test_images(0, seed)
    result = {}
    for name, victim in victims.items():
        model = victim.model()
        device = next(model.parameters()).device
        result[name] = network_audit(
            model,
            x_test.to(device),
            y_test.to(device),
            eps,
            BUDGETS[audit_budget],
            audit_images,
            seed,
            batch_size,
            progress=True,
        )
        write_card(
            f"MNIST CNN, {name}",
            model,
            result[name],
            x_test,
            y_test,
            "MNIST test set",
            BUDGETS[audit_budget],
        )
    return _audit_section(result)


def _audit_section(result: dict) -> Section:
    wc_fe, wc_plain = result["front end"].accuracy(), result["no defense"].accuracy()
    table = pd.DataFrame(
        {name: wc.frame().set_index("attack")["accuracy %"] for name, wc in result.items()}
    )
    values = numbers(
        n_audit=result["front end"].n,
        found_fe=result["front end"].found_by(),
        found_plain=result["no defense"].found_by(),
        wc_fe=wc_fe[0],
        wc_fe_lo=wc_fe[1],
        wc_fe_hi=wc_fe[2],
        wc_plain=wc_plain[0],
    )
    return Section(result=result, table=table, numbers=values)


def _worst(outcomes) -> dict:
    """The most damaging gradient treatment of the front end, per attack of the grid."""
    return {a: outcomes.worst_gradient("front end", a) for a in outcomes.grid.attacks}


def table2(outcomes, result: dict) -> Section:
    """Table II: the iterative attacks on both CNNs beside the paper's, and the audit's worst cases.

    ``outcomes``: :func:`attack_grid`'s; ``result``: :func:`audit`'s. The
    front-end column is the most damaging gradient (named in the last
    column). ``comparison`` holds the rows compared with the paper (the
    audited rows as worst cases, beside the paper's PGD); ``numbers``:
    ``pgd_plain``, ``pgd_fe`` (with ``pgd_fe_lo``, ``pgd_fe_hi``).
    """
    worst = _worst(outcomes)
    victims = list(outcomes.grid.victims)
    entries = [
        (
            a,
            d,
            outcomes.correct(d, a, worst[a] if d == "front end" else None),
            {
                "artifact": "Table II",
                "defense": PAPER_DEFENSES[d],
                "attack": PAPER_NAMES.get(a, a),
            },
        )
        for a in TABLE2_ATTACKS
        for d in victims
    ]
    pgd_row = {"artifact": "Table II", "attack": "PGD 100 restarts"}
    for d, wc in result.items():
        entries += [
            (
                f"paper's attacks, worst case ({wc.n} images)",
                d,
                wc.paper(),
                {**pgd_row, "defense": PAPER_DEFENSES[d]},
                PAPERS_ATTACKS,
            ),
            (
                f"all attacks, worst case ({wc.n} images)",
                d,
                wc.robust.astype(int),
                {**pgd_row, "defense": PAPER_DEFENSES[d]},
                WORST_CASE,
            ),
        ]
    comparison = Comparison()
    table = comparison.table("Table II", entries)
    table["front-end gradient"] = [worst.get(a, "all") or "-" for a in table.index]
    pgd_fe = outcomes.accuracy("front end", "PGD", worst["PGD"])
    values = numbers(
        pgd_plain=outcomes.accuracy("no defense", "PGD")[0],
        pgd_fe=pgd_fe[0],
        pgd_fe_lo=pgd_fe[1],
        pgd_fe_hi=pgd_fe[2],
    )
    return Section(table=table, comparison=comparison, numbers=values)


def _pgd_cost_frame(outcomes, restarts: int, steps: int) -> pd.DataFrame:
    restarts, steps = int(restarts), int(steps)
    nominal = restarts * (steps + 1)
    cells = [c for c in outcomes.results if c.attack == "PGD"]
    if not cells:
        raise LookupError("outcomes holds no PGD cell")
    frame = pd.DataFrame(
        {
            (c.victim, c.gradient or "-"): {
                "evaluations / image": outcomes.evaluations(c.victim, "PGD", c.gradient, c.eps),
                "nominal / image": nominal,
            }
            for c in cells
        }
    ).T
    frame["share of nominal %"] = 100 * frame["evaluations / image"] / nominal
    return frame


def pgd_cost(outcomes, restarts: int, steps: int) -> Section:
    """PGD's model evaluations per image in each cell of ``outcomes``, beside the nominal ``restarts * (steps + 1)``.

    PGD stops restarting an image once it is fooled
    (:func:`sparsenb.attacks.gradient.pgd`), so the evaluations the grid counted
    (:meth:`sparsenb.lab.grid.Outcomes.evaluations`: forward passes, each
    with its backward pass) fall short of the nominal count, which has one
    check per restart besides the steps. ``frame`` is indexed by
    ``(victim, gradient)`` ("-" without a front end) with the columns
    "evaluations / image", "nominal / image" and "share of nominal %"
    (``table``: rounded); ``numbers``: ``pgd_nominal``, and the share of
    nominal for the undefended CNN (``pgd_cost_plain``) and for the defended
    one through its most damaging gradient (``pgd_cost_fe``).
    """
    frame = _pgd_cost_frame(outcomes, restarts, steps)
    gradient = outcomes.worst_gradient("front end", "PGD")
    values = numbers(
        pgd_cost_plain=frame.loc[("no defense", "-"), "share of nominal %"],
        pgd_nominal=int(frame["nominal / image"].iloc[0]),
        pgd_cost_fe=frame.loc[("front end", gradient), "share of nominal %"],
    )
    return Section(frame=frame, table=frame.round(1), numbers=values)


def table5(outcomes, result: dict) -> Section:
    """Table V: the defended CNN under each attack through each front-end gradient, beside the paper's.

    Columns added: "all three" (an image robust only if it survives the
    attack through every gradient), "no defense" (the same attack on the
    undefended CNN) and the audited worst case of the defended CNN over
    every attack (one number, on the audited images). ``comparison``: the
    rows compared with the paper (which has no number for momentum I-FGSM
    with the iterated projection); ``numbers``: ``fgsm_plain``,
    ``ll_plain``, and ``fgsm_fe``, ``ll_fe`` (most damaging gradient).
    """
    worst = _worst(outcomes)
    entries = []
    for a in TABLE5_ATTACKS:
        for g in GRADIENTS:
            paper = {"artifact": "Table V", "attack": PAPER_NAMES.get(a, a), "gradient": g}
            no_number = (a, g) == ("momentum iterative FGSM", "iterated")
            entries.append(
                (a, g, outcomes.correct("front end", a, g), None if no_number else paper)
            )
    comparison = Comparison()
    table = comparison.table("Table V", entries)
    table["all three"] = [
        format_accuracy(outcomes.worst(victim="front end", attack=a)) for a in TABLE5_ATTACKS
    ]
    table["no defense"] = [
        format_accuracy(outcomes.correct("no defense", a)) for a in TABLE5_ATTACKS
    ]
    wc = result["front end"]
    table[f"worst case, all attacks ({wc.n} images)"] = format_accuracy(wc.robust.astype(int))
    values = numbers(
        fgsm_plain=outcomes.accuracy("no defense", "FGSM")[0],
        ll_plain=outcomes.accuracy("no defense", "locally linear")[0],
        fgsm_fe=outcomes.accuracy("front end", "FGSM", worst["FGSM"])[0],
        ll_fe=outcomes.accuracy("front end", "locally linear", worst["locally linear"])[0],
    )
    return Section(table=table, comparison=comparison, numbers=values)


def table6(
    victims: dict[str, Victim],
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    seed: int,
    sweep_images: int,
    sweep_deltas,
    sweep_steps,
    flip_step: float,
    batch_size: int,
) -> Section:
    """Table VI: one stored I-FGSM run (:func:`ifgsm_sweep`) per step size, through BPDA, read at ``sweep_steps``.

    On a seeded ``sweep_images`` of ``(x, y)`` (``x_sweep``); the run with
    step ``flip_step`` also counts the ReLU switches that flip per step
    (Fig. 10). ``sweep``: the runs by step size; ``comparison``: the cells
    the paper reports (20, 100 and 1000 steps); ``numbers``: ``sweep_max``.
    """
    x_sweep, y_sweep = data.subset(x, y, min(sweep_images, len(x)), seed=seed + 1)
    model_bpda = victims["front end"].model("bpda")
    sweep = {
        d: stored(
            ifgsm_sweep,
            model_bpda,
            x_sweep,
            y_sweep,
            eps,
            d,
            sweep_steps,
            batch_size,
            d == flip_step,
        )
        for d in sweep_deltas
    }
    entries = []
    for n in sweep_steps:
        for d in sweep_deltas:
            paper = {"artifact": "Table VI", "attack": f"iterative FGSM {n} steps of {d}"}
            paper = paper if n in TABLE6_STEPS else None
            entries.append((f"{n} steps", f"delta = {d}", sweep[d]["correct"][str(n)], paper))
    comparison = Comparison()
    table = comparison.table("Table VI", entries)
    return Section(
        table=table,
        comparison=comparison,
        sweep=sweep,
        x_sweep=x_sweep,
        numbers=numbers(sweep_max=max(sweep_steps)),
    )


@drawn(_fig5_figure)
def fig5(outcomes, x: torch.Tensor, y: torch.Tensor, eps: float, n_shown: int = 5) -> Section:
    """Fig. 5: ``n_shown`` attacked digits, their PGD versions against each CNN and the front end's output.

    The digits are the first attacked images that PGD (the grid's, through
    BPDA) fools without the front end and not with it, then those it fools
    without it, then the others, in the order of ``x``; PGD runs again on
    them (seeded, so the same examples as the grid's).
    """
    victims, pgd = outcomes.grid.victims, outcomes.grid.attacks["PGD"]
    fooled_plain = 1 - outcomes.correct("no defense", "PGD")
    held_fe = outcomes.correct("front end", "PGD", "bpda")
    order = np.argsort(-(2 * fooled_plain + held_fe), kind="stable")
    show = torch.as_tensor(order[: min(n_shown, len(x))].copy(), device=x.device)
    xs, ys = x[show], y[show]
    plain, model_bpda = victims["no defense"].classifier, victims["front end"].model("bpda")
    adv_plain = pgd(victims["no defense"], plain, xs, ys, eps)
    adv_fe = pgd(victims["front end"], model_bpda, xs, ys, eps)
    return Section(
        images=xs,
        labels=ys,
        adv_plain=adv_plain,
        pred_plain=predict(plain, adv_plain),
        adv_fe=adv_fe,
        frontend_output=victims["front end"].frontend(adv_fe),
        pred_fe=predict(model_bpda, adv_fe),
        numbers={},
    )


@drawn(_fig8b_figure)
def fig8b(outcomes) -> Section:
    r"""Fig. 8b: :math:`|\mathcal{S}_K(x) \cap \mathcal{S}_K(x + e)|` for the grid's PGD examples against the defended CNN.

    ``panels``: per gradient, the overlaps and whether the defense held;
    ``numbers`` (PGD through BPDA): ``overlap_median_bpda``,
    ``overlap_full_bpda`` (% of images whose support is unchanged) and
    ``overlap_min_bpda``.
    """
    K = outcomes.grid.victims["front end"].frontend.K[0]
    panels = {
        f"PGD, {g}": (
            outcomes.values("overlap", "front end", "PGD", g),
            outcomes.correct("front end", "PGD", g),
        )
        for g in GRADIENTS
    }
    overlap = outcomes.values("overlap", "front end", "PGD", "bpda")
    values = numbers(
        overlap_median_bpda=float(np.median(overlap)),
        overlap_full_bpda=100 * float(np.mean(overlap == K)),
        overlap_min_bpda=int(np.min(overlap)),
    )
    return Section(K=K, panels=panels, numbers=values)


@drawn(_fig9_figure)
def fig9(
    victims: dict[str, Victim],
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    flip_step: float,
    batch_size: int,
) -> Section:
    """Fig. 9: the ReLU switches one step of the iterative locally linear attack flips (stored, :func:`one_step_flips`).

    Without the front end, and with it on the front end's outputs (BPDA).
    ``flips``: per defense, per image and per layer; ``table``: the mean %
    of units that flip per layer and in all; ``numbers``: ``n_relu``,
    ``flip_step``, and the mean and 99th percentile of the % that flip
    (``flips_mean_plain``, ``flips_p99_plain``, ``flips_mean_fe``,
    ``flips_p99_fe``).
    """
    plain, model_bpda = victims["no defense"].classifier, victims["front end"].model("bpda")
    flips = {
        "none": stored(one_step_flips, plain, x, y, eps, flip_step, batch_size),
        "front end": stored(one_step_flips, model_bpda, x, y, eps, flip_step, batch_size),
    }
    feats = plain.features(x[:1])
    table = (
        pd.DataFrame(
            {d: flips[d]["layers"] | {"all": float(np.mean(flips[d]["total"]))} for d in flips}
        )
        .rename_axis("mean % of units that flip")
        .round(3)
    )
    values = numbers(
        n_relu=sum(feats[k][0].numel() for k in NielsenCNN.RELU_LAYERS),
        flip_step=flip_step,
        flips_mean_plain=float(np.mean(flips["none"]["total"])),
        flips_p99_plain=float(np.percentile(flips["none"]["total"], 99)),
        flips_mean_fe=float(np.mean(flips["front end"]["total"])),
        flips_p99_fe=float(np.percentile(flips["front end"]["total"], 99)),
    )
    return Section(flips=flips, table=table, numbers=values)


@drawn(_fig10_figure)
def fig10(table6: Section, eps: float, flip_step: float) -> Section:
    r"""Fig. 10: the switches that flip at each step of :func:`table6`'s run with step ``flip_step``.

    ``mean``, ``std``: per step, over images; ``numbers``: ``flip_reach``,
    the steps before an iterate can reach the edge of the ball
    (:math:`\epsilon/\delta`, at most the run's length less one), and the
    mean % that flip per step before (``flips_first_steps``; NaN when
    ``flip_reach`` is 0) and from then on (``flips_late_steps``).
    """
    run_ = table6.sweep[flip_step]
    mean, std = np.array(run_["flips_mean"]), np.array(run_["flips_std"])
    reach = min(int(round(eps / flip_step)), len(mean) - 1)
    values = numbers(
        flips_first_steps=float(mean[:reach].mean()) if reach else float("nan"),
        flips_late_steps=float(mean[reach:].mean()),
        flip_reach=reach,
    )
    return Section(
        mean=mean,
        std=std,
        eps=eps,
        flip_step=flip_step,
        n_images=len(table6.x_sweep),
        numbers=values,
    )


@drawn(_fig12_figure)
def fig12(
    victims: dict[str, Victim],
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    seed: int,
    cw_images: int,
    cw_iterations: int,
    cw_search_steps: int,
    batch_size: int,
) -> Section:
    r"""Fig. 12: Carlini-Wagner :math:`\ell_2` on a seeded ``cw_images`` of ``(x, y)``, through BPDA, on the grid.

    ``found``: per CNN, the images classified correctly before the attack
    and not after it; ``linf``, ``l2``: per CNN, the distances of every
    example; ``table``: accuracy, the share of images beyond ``eps`` in
    :math:`\ell_\infty`, the fooled images, their median :math:`\ell_\infty`;
    ``comparison``: the defended CNN's accuracy and (where C&W fooled some)
    the share of fooled images beyond the ball, beside App. B-E's;
    ``numbers``: ``cw_acc_plain``, ``cw_acc_fe``, ``cw_beyond_plain``,
    ``cw_beyond_fe`` (% of all the images attacked beyond ``eps``).
    """
    x_cw, y_cw = data.subset(x, y, min(cw_images, len(x)), seed=seed + 2)
    cw_attack = {
        "C&W": Attack(
            "carlini_wagner_l2", max_iterations=cw_iterations, binary_search_steps=cw_search_steps
        )
    }
    cw = run(
        Grid(victims, cw_attack | {"no attack": Attack("none")}, eps=[eps]), x_cw, y_cw, batch_size
    )
    gradient = {v: "bpda" if v == "front end" else None for v in victims}
    found = {
        v: (cw.correct(v, "no attack") == 1) & (cw.correct(v, "C&W", gradient[v]) == 0)
        for v in victims
    }
    linf = {v: cw.values("linf", v, "C&W", gradient[v]) for v in victims}
    l2 = {v: cw.values("l2", v, "C&W", gradient[v]) for v in victims}
    table = pd.DataFrame(
        {
            v: {
                "accuracy %": format_accuracy(cw.correct(v, "C&W", gradient[v])),
                f"beyond eps = {eps} (% of images)": format_accuracy(linf[v] > eps + _TOL),
                "fooled (of correct before)": f"{found[v].sum()} of {cw.correct(v, 'no attack').sum()}",
                "median l_inf (fooled)": float(np.median(linf[v][found[v]]))
                if found[v].any()
                else float("nan"),
            }
            for v in victims
        }
    ).T
    comparison = Comparison()
    comparison.add(
        "Fig. 12",
        "C&W",
        "accuracy, front end",
        cw.correct("front end", "C&W", "bpda"),
        artifact="App. B-E",
        metric="accuracy %",
    )
    if found["front end"].any():  # the paper's share is over its adversarial examples
        comparison.add(
            "Fig. 12",
            "C&W, fooled images",
            f"beyond eps = {eps}, front end",
            linf["front end"][found["front end"]] > eps + _TOL,
            artifact="App. B-E",
            metric="share of examples beyond the Linf ball of 0.2 %",
        )
    values = numbers(
        cw_acc_plain=cw.accuracy("no defense", "C&W", None)[0],
        cw_acc_fe=cw.accuracy("front end", "C&W", "bpda")[0],
        cw_beyond_plain=100 * float(np.mean(linf["no defense"] > eps + _TOL)),
        cw_beyond_fe=100 * float(np.mean(linf["front end"] > eps + _TOL)),
    )
    return Section(
        outcomes=cw,
        found=found,
        linf=linf,
        l2=l2,
        table=table,
        comparison=comparison,
        numbers=values,
    )


#: The paper's settings of its attacks (App. B): what a profile's settings are set beside to say whether it
#: reduced them. I-FGSM and MI-FGSM: 1000 steps; the iterative locally linear attack: 100 steps; PGD: 100
#: restarts of 100 steps.
PAPER_ATTACK_SETTINGS = {
    "ifgsm_steps": 1000,
    "ill_steps": 100,
    "pgd_restarts": 100,
    "pgd_steps": 100,
}


def reduced_settings(ifgsm_steps: int, ill_steps: int, pgd_restarts: int, pgd_steps: int) -> dict:
    """Which compared rows this profile measured with a weaker attack than the paper's (for the scorecard).

    ``{"Table II / PGD": ("attack", "PGD 5 restarts x 20 steps (paper 100 x 100)"), ...}`` for each
    iterative attack of Tables II and V whose steps or restarts are fewer than the paper's
    (:data:`PAPER_ATTACK_SETTINGS`); one-step attacks, Table VI's sweeps (the paper's numbers of steps) and C&W
    (CleverHans' settings) are like for like. Empty when every attack runs at the paper's scale.
    """
    p = PAPER_ATTACK_SETTINGS
    weaker = {}
    if ill_steps < p["ill_steps"]:
        weaker["iterative locally linear"] = f"{ill_steps} steps (paper {p['ill_steps']})"
    if ifgsm_steps < p["ifgsm_steps"]:
        weaker["iterative FGSM"] = f"{ifgsm_steps} steps (paper {p['ifgsm_steps']})"
        weaker["momentum iterative FGSM"] = f"{ifgsm_steps} steps (paper {p['ifgsm_steps']})"
    if pgd_restarts < p["pgd_restarts"] or pgd_steps < p["pgd_steps"]:
        weaker["PGD"] = (
            f"{pgd_restarts} restart(s) x {pgd_steps} steps (paper {p['pgd_restarts']} x {p['pgd_steps']})"
        )
    return {
        f"{table} / {row}": ("attack", f"{row}: {how}")
        for table in ("Table II", "Table V")
        for row, how in weaker.items()
    }


def spread(
    n_train: int,
    epochs: int,
    seeds,
    rho: float,
    wavelet: str,
    refine_steps: int,
    refine_step: float,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    pgd_step: float,
    pgd_steps: int,
    pgd_restarts: int,
    seed: int,
    batch_size: int,
    device=None,
) -> Section:
    """The spread between networks: both CNNs trained once per seed of ``seeds``, clean and under PGD.

    Each seed trains the two CNNs of :func:`cnn_victims` by the same recipe
    (the seed sets the initial weights, the batch order and dropout, and the
    training subset when ``n_train`` is not 0); every network is measured on
    the same attacked images ``(x, y)``: clean, and under Table II's PGD
    (its settings and start seed ``seed``; through BPDA behind the front
    end). The networks of the page's own seed are the tables' (read back
    from the store). ``table``: accuracy (%) per seed and network;
    ``by_network``: the mean and the standard deviation over seeds;
    ``numbers``: ``spread_networks``, ``spread_clean`` and ``spread_pgd``
    (the larger standard deviation of the two CNNs, in points), and the
    range of PGD accuracy of the defended CNN (``spread_pgd_fe_min``,
    ``spread_pgd_fe_max``); ``record``: the spread for the scorecard, by the
    paper's name of the model.
    """
    pgd = {"PGD": Attack("pgd", step=pgd_step, steps=pgd_steps, restarts=pgd_restarts, seed=seed)}
    none = {"no attack": Attack("none")}
    rows = {}
    for s in seeds:
        victims, _, _ = cnn_victims(
            n_train, epochs, s, rho, wavelet, refine_steps, refine_step, device
        )
        outcomes = run(
            Grid(victims, {**none, **pgd}, eps=[eps], gradients=["bpda"]), x, y, batch_size
        )
        for name in victims:
            gradient = "bpda" if victims[name].frontend is not None else None
            rows[(int(s), name)] = {
                "clean %": outcomes.accuracy(name, "no attack")[0],
                "PGD %": outcomes.accuracy(name, "PGD", gradient)[0],
            }
    table = pd.DataFrame(rows).T.rename_axis(["seed", "network"])
    by_network = table.groupby(level="network", sort=False).agg(["mean", "std"])
    sd_clean = float(by_network[("clean %", "std")].max())
    sd_pgd = float(by_network[("PGD %", "std")].max())
    fe_pgd = table.xs("front end", level="network")["PGD %"]
    values = numbers(
        spread_networks=len(list(seeds)),
        spread_clean=sd_clean,
        spread_pgd=sd_pgd,
        spread_pgd_fe_min=float(fe_pgd.min()),
        spread_pgd_fe_max=float(fe_pgd.max()),
    )
    record = {
        "4-layer CNN": {
            "clean": sd_clean,
            "attacked": sd_pgd,
            "networks": len(list(seeds)),
            "images": len(x),
        }
    }
    return Section(
        table=table.round(2), by_network=by_network.round(2), record=record, numbers=values
    )


def disagreements(*comparisons: Comparison) -> Section:
    """Every row of ``comparisons`` in one :class:`~sparsenb.lab.paper.Comparison` (for the scorecard), and its disagreements.

    ``table``: the rows whose verdict is not "agrees"; ``numbers``:
    ``n_compared``, ``n_disagree``, and of those ``n_disagree_above`` (ours
    higher) and ``n_disagree_below`` (ours lower).
    """
    comparison = Comparison()
    for c in comparisons:
        comparison.rows.extend(c.rows)
    counts = comparison.counts()
    values = numbers(
        n_compared=counts["compared"],
        n_disagree=counts["compared"] - counts["agrees"],
        n_disagree_above=counts["ours higher"],
        n_disagree_below=counts["ours lower"],
    )
    return Section(
        comparison=comparison, table=comparison.frame(disagreements_only=True), numbers=values
    )
