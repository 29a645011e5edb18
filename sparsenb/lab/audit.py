r"""Is the robustness real? The worst case per image over every attack, and a gradient-masking checklist.

:func:`worst_case` attacks a model with the paper's attacks (FGSM, locally
linear, iterative locally linear, I-FGSM, MI-FGSM, PGD with restarts, and
for a linear classifier the semi-white, white and iterated white box), each
through every gradient treatment of the front end when there is one, and
with the strong ones (:mod:`sparsenb.attacks.autoattack`: APGD-CE, APGD-T, FAB-T,
Square; :func:`sparsenb.attacks.adaptive.adaptive_attack`), named in the grid as
``Attack("square", ...)``. An image is robust only
if it survived every attack. Budgets are a :class:`Budget`
(:data:`SMOKE`, :data:`LAPTOP`, :data:`FULL`).

Everything runs on the experiment grid (:func:`sparsenb.lab.grid.run`):
per-image outcomes are stored and a killed run resumes, and cells shared with
a chapter's grid (same victim, attack settings, :math:`\epsilon` and images)
are read back rather than recomputed.

:func:`masking_checklist` turns a :class:`WorstCase` (and two more small
runs: an :math:`\epsilon` sweep and an unbounded attack) into the checklist
of Carlini et al. (2019, "On evaluating adversarial robustness") with a
verdict per row.

:func:`robust_accuracy` gives one number per (defense, :math:`\epsilon`), as
Table III does: PGD with random restarts on all images through the most
damaging of the front end's gradient treatments (one grid per budget, since
PGD's step is a fraction of :math:`\epsilon`), and beside it the audited
worst case on a seeded subset (:func:`subset`), crediting PGD's outcomes
there as known.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn

from .. import checks
from ..evaluation import accuracy_interval, format_accuracy
from ..frontend import GRADIENTS, split_defended
from ..models.linear import LinearClassifier
from .grid import Attack, Grid, Outcomes, Victim, run

__all__ = [
    "Budget",
    "SMOKE",
    "LAPTOP",
    "FULL",
    "BUDGETS",
    "audit_attacks",
    "strong_attacks",
    "subset",
    "audit_images",
    "positions",
    "network_audit",
    "audited",
    "victim_of",
    "WorstCase",
    "worst_case",
    "masking_checklist",
    "effort",
    "MoreEffort",
    "more_effort",
    "PASS",
    "FAIL",
    "PAPER_ATTACKS",
    "STRONG",
    "AttackSettings",
    "RobustAccuracy",
    "robust_accuracy",
]

PASS, FAIL = "pass", "FAIL"
#: The strong attacks (registered names): AutoAttack's components and the adaptive attack.
STRONG = ("apgd_ce", "apgd_t", "fab_t", "square", "adaptive")


@dataclass(frozen=True)
class Budget:
    """Settings of every attack of the audit (steps, restarts, queries) and the gradient treatments they go through.

    The paper's attacks go through ``gradients``; the strong gradient-based
    ones (APGD-CE, APGD-T, FAB-T) through ``strong_gradients``. Square and
    the adaptive attack ignore the front end's gradient setting.
    """

    ifgsm_step: float = 0.01
    ifgsm_steps: int = 100
    ill_step: float = 0.05
    ill_steps: int = 20
    pgd_step: float = 0.05
    pgd_steps: int = 20
    pgd_restarts: int = 5
    apgd_steps: int = 100
    apgd_restarts: int = 1
    targets: int = 3
    targeted_steps: int = 50
    square_queries: int = 5000
    adaptive_steps: int = 100
    adaptive_restarts: int = 4
    linear_step: float = 0.01
    linear_steps: int = 50
    gradients: tuple = GRADIENTS
    strong_gradients: tuple = ("bpda",)
    seed: int = 0

    def __post_init__(self):
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name.endswith("_step"):
                checks.real(v, f.name, 0.0, 1.0, low_open=True)
            elif f.name.endswith("gradients"):
                if isinstance(v, str) or not isinstance(v, tuple) or not v:
                    raise checks.fail(f.name, f"a non-empty tuple drawn from {GRADIENTS}", v)
                for i, g in enumerate(v):
                    checks.choice(g, f"{f.name}[{i}]", GRADIENTS)
            elif f.name == "seed":
                checks.seed(v)
            else:
                checks.integer(v, f.name, 1)


#: A few steps of everything (CI).
SMOKE = Budget(ifgsm_steps=3, ill_steps=2, pgd_steps=2, pgd_restarts=2, apgd_steps=3, targets=2, targeted_steps=3,
               square_queries=20, adaptive_steps=3, adaptive_restarts=2, linear_steps=3)
#: The laptop book: the paper's attacks at the multiclass chapter's laptop settings, strong ones through BPDA.
LAPTOP = Budget()
#: AutoAttack's standard budgets, every gradient treatment, the paper's PGD (100 restarts of 100 steps).
FULL = Budget(ifgsm_steps=1000, ill_steps=100, pgd_steps=100, pgd_restarts=100, targets=9, targeted_steps=100,
              adaptive_restarts=8, linear_steps=200, strong_gradients=GRADIENTS)
#: The budgets by profile name, for the chapters' ``audit_budget`` parameter.
BUDGETS = {"smoke": SMOKE, "laptop": LAPTOP, "full": FULL}


def audit_attacks(budget: Budget = LAPTOP, linear: bool = False, frontend: bool = True) -> dict[str, Attack]:
    """The audit's attacks, by name, in the order :func:`worst_case` credits them.

    The paper's attacks first (cheapest first), then the strong ones;
    ``linear`` adds the attacks on a linear classifier's weights (the
    semi-white box, and with a ``frontend`` the white and iterated white box).
    """
    if not isinstance(budget, Budget):
        raise checks.fail("budget", "a Budget", budget)
    b, s = budget, budget.seed
    out = {
        "FGSM": Attack("fgsm"),
        "locally linear": Attack("locally_linear"),
        "iterative locally linear": Attack("iterative_locally_linear", step=b.ill_step, steps=b.ill_steps),
        "I-FGSM": Attack("ifgsm", step=b.ifgsm_step, steps=b.ifgsm_steps),
        "MI-FGSM": Attack("mifgsm", step=b.ifgsm_step, steps=b.ifgsm_steps, decay=1.0),
        "PGD": Attack("pgd", step=b.pgd_step, steps=b.pgd_steps, restarts=b.pgd_restarts, seed=s),
    }
    if linear:
        first = {"semi-white box": Attack("semi_white_box")}
        if frontend:
            first["white box"] = Attack("white_box")
            first["iterated white box"] = Attack("iterated_white_box", step=b.linear_step, steps=b.linear_steps)
        out = {**first, **out}
    out.update({
        "APGD-CE": Attack("apgd_ce", steps=b.apgd_steps, restarts=b.apgd_restarts, seed=s),
        "APGD-T": Attack("apgd_t", steps=b.targeted_steps, targets=b.targets, seed=s),
        "FAB-T": Attack("fab_t", steps=b.targeted_steps, targets=b.targets, seed=s),
        "Square": Attack("square", queries=b.square_queries, seed=s),
        "adaptive": Attack("adaptive", steps=b.adaptive_steps, restarts=b.adaptive_restarts, seed=s),
    })
    return out


def strong_attacks(budget: Budget = LAPTOP) -> dict[str, Attack]:
    """Only the audit's strong attacks (APGD-CE, APGD-T, FAB-T, Square, adaptive), for images a chapter's grid already attacked with the paper's ones."""
    return {n: a for n, a in audit_attacks(budget).items() if a.name in STRONG}


#: Which attacks are which, for the checklist and for "the paper's attacks" beside the worst case.
PAPER_ATTACKS = ("semi-white box", "white box", "iterated white box", "FGSM", "locally linear",
                 "iterative locally linear", "I-FGSM", "MI-FGSM", "PGD")
ONE_STEP = ("FGSM", "locally linear", "semi-white box", "white box")
GRADIENT_FREE = ("Square",)


def victim_of(model: nn.Module) -> Victim:
    """The :class:`~sparsenb.lab.grid.Victim` of a model: ``nn.Sequential(frontend, classifier)`` or a classifier."""
    if not isinstance(model, nn.Module):
        raise checks.fail("model", "a torch.nn.Module (a classifier, or nn.Sequential(frontend, classifier))", model)
    frontend, classifier = split_defended(model)
    return Victim(classifier, frontend)


@dataclass
class WorstCase:
    """Per-image outcomes of every attack of an audit, and the worst case over them.

    ``robust[i]`` is True when image ``i`` is correctly classified after
    every attack (and clean); ``first[i]`` names the first attack, in the
    audit's order, that broke it (``"clean"`` for an image misclassified
    without attack; ``None`` when robust), with its gradient treatment in
    ``first_gradient[i]``. ``correct`` maps ``(attack, gradient)`` to per-image
    0/1 outcomes (``gradient`` None for attacks that ignore it); ``known``
    names the attacks whose outcomes were measured elsewhere and passed in;
    ``images`` the indices of the audited images in the data set they were
    drawn from (:func:`network_audit`; None when not known).
    """

    robust: np.ndarray
    first: list
    first_gradient: list
    correct: dict
    eps: float
    outcomes: object = None
    known: tuple = ()
    images: np.ndarray | None = None

    @property
    def n(self) -> int:
        return len(self.robust)

    def accuracy(self) -> tuple[float, float, float]:
        """Worst-case accuracy (%) with its 95% Wilson interval."""
        return accuracy_interval(self.robust.astype(np.int64))

    def attack_correct(self, attack: str) -> np.ndarray:
        """0/1 per image: survived ``attack`` under every gradient treatment it ran through."""
        cells = [v for (a, _), v in self.correct.items() if a == attack]
        if not cells:
            raise LookupError(f"no attack named {attack!r}; have {sorted({a for a, _ in self.correct})}")
        return np.min(cells, axis=0)

    def accuracy_of(self, attack: str) -> float:
        """Accuracy (%) ``attack`` leaves (worst over its gradient treatments)."""
        return 100.0 * float(self.attack_correct(attack).mean())

    def attacks(self) -> list[str]:
        return list(dict.fromkeys(a for a, _ in self.correct))

    def evaluations(self, attack: str) -> float | None:
        """Model evaluations per image ``attack`` spent, summed over its gradient treatments (None when it ran elsewhere, as a ``known`` outcome)."""
        if self.outcomes is None:
            return None
        cells = [c for c in self.outcomes.results if c.attack == attack]
        if not cells:
            return None
        return float(sum(self.outcomes.evaluations(c.victim, c.attack, c.gradient, c.eps) for c in cells))

    def survived(self, attacks: Sequence[str]) -> np.ndarray:
        """0/1 per image: survived every attack named (worst over their gradient treatments)."""
        return np.min([self.attack_correct(a) for a in attacks], axis=0)

    def paper(self) -> np.ndarray:
        """0/1 per image: survived every one of the paper's attacks that ran (the worst case the paper could see).

        Attacks credited as ``known`` (a chapter's grid of the paper's attacks) count as the paper's.
        """
        names = [a for a in self.attacks() if a in PAPER_ATTACKS or a in self.known or a == "clean"]
        return self.survived(names)

    def only(self, attack: str) -> np.ndarray:
        """Boolean per image: broken by ``attack`` and by no other attack (clean-correct images only)."""
        others = [a for a in self.attacks() if a != attack and a != "clean"]
        return (self.attack_correct(attack) == 0) & (self.survived(others) == 1) if others else self.attack_correct(attack) == 0

    def frame(self):
        """One row per attack: accuracy with its interval, the images it broke first, the images only it broke."""
        import pandas as pd

        rows = []
        for a in self.attacks():
            c = self.attack_correct(a)
            p, lo, hi = accuracy_interval(c)
            ev = self.evaluations(a)
            rows.append({"attack": a, "accuracy %": round(p, 2), "95% CI": f"[{lo:.1f}, {hi:.1f}]",
                         "broke first": sum(f == a for f in self.first),
                         "only this attack": int(self.only(a).sum()) if a != "clean" else 0,
                         "model evaluations / image": None if ev is None else round(ev)})
        p, lo, hi = self.accuracy()
        rows.append({"attack": "worst case, all attacks", "accuracy %": round(p, 2), "95% CI": f"[{lo:.1f}, {hi:.1f}]",
                     "broke first": int((~self.robust).sum()), "only this attack": 0, "model evaluations / image": None})
        return pd.DataFrame(rows)

    def found_by(self) -> str:
        """Which attacks found the images that are not robust: ``"PGD 120, Square 23, ..."`` (each image credited to the first attack, in the audit's order, that broke it; clean errors left out)."""
        counts: dict[str, int] = {}
        for f, r in zip(self.first, self.robust):
            if not r and f != "clean":
                counts[f] = counts.get(f, 0) + 1
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        return ", ".join(f"{a} {c}" for a, c in ranked) if ranked else "no attack broke a correctly classified image"

    def to_json(self) -> dict:
        return {"robust": self.robust.astype(int).tolist(), "first": self.first, "first_gradient": self.first_gradient,
                "eps": self.eps, "correct": [[a, g, np.asarray(v).astype(int).tolist()] for (a, g), v in self.correct.items()]}


def worst_case(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    budget: Budget = LAPTOP,
    attacks: dict[str, Attack] | None = None,
    known: dict | None = None,
    batch_size: int = 500,
    progress: bool = False,
    folder=None,
) -> WorstCase:
    r"""Per image, whether ``model`` survives every attack of the audit at :math:`\epsilon` = ``eps``.

    ``model`` is a classifier or ``nn.Sequential(frontend, classifier)``;
    ``attacks`` defaults to :func:`audit_attacks` for ``budget`` (any dict of
    :class:`~sparsenb.lab.grid.Attack`, in the order to credit them). The
    result's ``robust`` is the AND over every attack and gradient treatment
    (and the clean prediction); ``first`` says which attack broke each image
    first. Outcomes are stored per image and resumed (see the module docstring).

    ``known`` credits outcomes measured elsewhere on the same images (a
    chapter's grid of the paper's attacks), before the attacks run here:
    a dict ``{(attack name, gradient or None): 0/1 per image}``, e.g.
    :meth:`sparsenb.lab.grid.Outcomes.by_attack` of that grid; pass
    :func:`strong_attacks` as ``attacks`` to add only what it lacks.
    """
    victim = victim_of(model)
    eps = checks.real(eps, "eps", 0.0, 1.0)
    if attacks is None:
        attacks = audit_attacks(budget, isinstance(victim.classifier, LinearClassifier), victim.frontend is not None)
    if not isinstance(attacks, dict) or not attacks or not all(isinstance(a, Attack) for a in attacks.values()):
        raise checks.fail("attacks", "a non-empty dict of name -> Attack", attacks)
    known = _known(known, len(x))
    strong_grads = tuple(budget.strong_gradients)
    grads = tuple(dict.fromkeys(tuple(budget.gradients) + strong_grads))
    strong_names = {n for n, a in attacks.items() if a.name in STRONG}

    def exclude(cell):  # the strong gradient attacks go through strong_gradients only
        if cell.gradient is None:
            return False
        allowed = strong_grads if cell.attack in strong_names else budget.gradients
        return cell.gradient not in allowed

    all_attacks = {"clean": Attack("none"), **attacks}
    clash = sorted({a for a, _ in known} & set(all_attacks))
    if clash:
        raise checks.ArgumentError("known", f"names attacks that also run here ({clash}): name them apart")
    grid = Grid({"model": victim}, all_attacks, eps=[eps], gradients=grads, exclude=exclude)
    outcomes = run(grid, x, y, batch_size=batch_size, progress=progress, folder=folder)
    correct: dict = {}
    for name in all_attacks:  # clean first, then what is known, then the attacks run here, in order
        for cell in outcomes.results:
            if cell.attack == name:
                correct[(name, cell.gradient)] = np.asarray(outcomes[cell]["correct"], dtype=np.int64)
        if name == "clean":
            correct.update(known)
    n = len(x)
    robust = np.ones(n, dtype=bool)
    first: list = [None] * n
    first_gradient: list = [None] * n
    for (name, gradient), c in correct.items():
        newly = robust & (c == 0)
        for i in np.flatnonzero(newly):
            first[i], first_gradient[i] = name, gradient
        robust &= c == 1
    return WorstCase(robust, first, first_gradient, correct, eps, outcomes, tuple(dict.fromkeys(a for a, _ in known)))


def _known(known, n: int) -> dict:
    if known is None:
        return {}
    if not isinstance(known, dict):
        raise checks.fail("known", "a dict {(attack, gradient): 0/1 per image}", known)
    out = {}
    for k, v in known.items():
        if not (isinstance(k, tuple) and len(k) == 2 and isinstance(k[0], str) and (k[1] is None or k[1] in GRADIENTS)):
            raise checks.fail("known", "keys (attack name, gradient treatment or None)", k)
        v = np.asarray(v)
        if v.shape != (n,) or not np.isin(v, (0, 1)).all():
            raise checks.ArgumentError("known", f"must hold 0/1 outcomes for each of the {n} images, got {v.shape} for {k}")
        out[k] = v.astype(np.int64)
    return out


def subset(n_images: int, n: int, seed: int) -> torch.Tensor:
    """Indices (sorted) of a seeded random ``n`` of ``n_images`` attacked images: the ones the audit attacks (all when ``n >= n_images``)."""
    n_images, n = checks.integer(n_images, "n_images", 1), checks.integer(n, "n", 1)
    g = torch.Generator().manual_seed(checks.seed(seed))
    return torch.randperm(n_images, generator=g)[: min(n, n_images)].sort().values


def audit_images(n_test: int, n: int, seed: int) -> torch.Tensor:
    """Indices (sorted) of the images a network's audit runs on: the first ``n`` of the seeded permutation of ``n_test``.

    They are the images :func:`sparsenb.data.subset` picks with the same
    ``seed``, so they lie inside every page's attacked images drawn with that
    seed (:func:`positions`), whatever their number.
    """
    n_test, n = checks.integer(n_test, "n_test", 1), checks.integer(n, "n", 1)
    g = torch.Generator().manual_seed(checks.seed(seed))
    return torch.randperm(n_test, generator=g)[: min(n, n_test)].sort().values


def positions(n_test: int, n_attacked: int, n: int, seed: int) -> np.ndarray:
    """Where :func:`audit_images` ``(n_test, n, seed)`` sit among a page's attacked images (``data.subset`` of ``n_attacked``, same seed)."""
    if n > n_attacked:
        raise checks.ArgumentError("n", f"the audited images ({n}) must be among the {n_attacked} attacked ones")
    attacked = audit_images(n_test, n_attacked, seed).numpy()
    return np.searchsorted(attacked, audit_images(n_test, n, seed).numpy())


def network_audit(
    model: nn.Module,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    eps: float,
    budget: Budget,
    n: int,
    seed: int,
    batch_size: int = 500,
    progress: bool = False,
    folder=None,
) -> WorstCase:
    r"""The audit of one network at :math:`\epsilon` = ``eps``: its one audited worst case, the same on every page.

    Every attack of :func:`audit_attacks` at ``budget`` (the profile's) runs
    on :func:`audit_images` ``(len(x_test), n, seed)`` of the test set, with
    nothing credited from a page's own grid, so the result depends only on
    the network, ``eps``, the budget and the images: a page that reports the
    network calls this with the profile's ``budget``, ``n`` and ``seed`` and
    shows the same number as every other page (each attack's outcomes are
    stored per image, so the second page reads them back). The result's
    ``images`` are the audited images' indices in ``(x_test, y_test)``.
    """
    checks.images(x_test, "x_test")
    checks.labels(y_test, "y_test", n=len(x_test))
    if not isinstance(budget, Budget):
        raise checks.fail("budget", "a Budget", budget)
    idx = audit_images(len(x_test), n, seed)
    on = idx.to(x_test.device)
    wc = worst_case(model, x_test[on], y_test[on], eps, budget, batch_size=batch_size, progress=progress, folder=folder)
    wc.images = idx.numpy()
    return wc


def audited(
    victims: dict[str, Victim],
    outcomes: Outcomes,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    budget: Budget,
    n: int,
    seed: int = 0,
    batch_size: int = 500,
    progress: bool = True,
) -> dict[str, WorstCase]:
    """Per victim, the worst case per image over a grid's attacks and the audit's strong ones, on :func:`subset` of the images.

    ``victims`` are the grid's (by the names it used), ``outcomes`` the grid
    a chapter ran on ``(x, y)`` at ``eps`` (its "no attack" cells are
    left out: the audit measures clean accuracy itself); its
    cells on the audited images are credited as known (no recomputation),
    so only :func:`strong_attacks` of ``budget`` run here. Each result's
    ``images`` are the audited images' positions in ``(x, y)``.
    """
    if not isinstance(outcomes, Outcomes) or outcomes.n != len(x):
        raise checks.fail("outcomes", f"the Outcomes of the grid run on these {len(x)} images", outcomes)
    if not isinstance(budget, Budget):
        raise checks.fail("budget", "a Budget", budget)
    idx = subset(len(x), n, seed)
    strong = strong_attacks(budget)
    out = {
        name: worst_case(v.model(), x[idx], y[idx], eps, budget, attacks=strong, batch_size=batch_size, progress=progress,
                         known=outcomes.by_attack(name, eps=eps, images=idx.tolist(), skip=["no attack"]))
        for name, v in victims.items()
    }
    for wc in out.values():
        wc.images = idx.numpy()  # positions in (x, y)
    return out


# --------------------------------------------------------------------------
# the gradient-masking checklist
# --------------------------------------------------------------------------
def masking_checklist(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    budget: Budget = LAPTOP,
    result: WorstCase | None = None,
    sweep: Sequence[float] = (0.1, 0.2, 0.3, 0.4, 0.5),
    large_eps_accuracy: float = 2.0,
    tolerance: float = 1.0,
    batch_size: int = 500,
    progress: bool = False,
    folder=None,
    more: MoreEffort | None = None,
    converged_points: float = 2.0,
):
    r"""The gradient-masking checklist of one model at :math:`\epsilon` = ``eps``: a table with a verdict per row.

    Rows (Carlini et al. 2019, Athalye et al. 2018):

    1. *iterative attacks beat one-step ones*: the best iterative white-box
       attack leaves no more accuracy than the best one-step attack;
    2. *accuracy falls monotonically with* :math:`\epsilon`: APGD-CE's
       accuracy (worst over ``budget.strong_gradients``) never rises along
       ``sweep``;
    3. *and reaches about 0 at a large* :math:`\epsilon`: at most
       ``large_eps_accuracy`` % at ``max(sweep)``;
    4. *an unbounded attack reaches 100% success*: APGD-CE at
       :math:`\epsilon = 1` (anything in the box) leaves 0%;
    5. *white-box attacks beat black-box ones*: the best white-box attack
       leaves no more accuracy than Square (gradient-free, black box);
    6. *gradient-free vs gradient gap*: images that only the gradient-free
       attack breaks, at most ``tolerance`` % of the images;
    7. *worst case per image over all attacks*: the worst case against the
       best single attack (informative: a worst case far below every single
       attack means no single attack is reliable; the verdict fails when the
       gap exceeds ``tolerance`` points);
    8. *more effort takes little off* (with ``more``, a :class:`MoreEffort`
       of this audit): Square and the adaptive attack with several times the
       audit's effort take at most ``converged_points`` more points off the
       worst case.

    Comparisons allow ``tolerance`` percentage points (sampling noise: one
    image is 0.2 points of 500).

    ``result`` is a :class:`WorstCase` of the same model, images and
    ``eps`` (computed with ``budget`` if not given). Returns a
    ``pandas.DataFrame`` with columns check, measured, verdict, meaning.
    """
    import pandas as pd

    victim = victim_of(model)
    eps = checks.real(eps, "eps", 0.0, 1.0)
    large_eps_accuracy = checks.real(large_eps_accuracy, "large_eps_accuracy", 0.0, 100.0)
    tolerance = checks.real(tolerance, "tolerance", 0.0, 100.0)
    if isinstance(sweep, (str, bytes)) or not isinstance(sweep, Sequence) or len(sweep) < 2:
        raise checks.fail("sweep", "a list of at least two budgets", sweep)
    sweep = sorted(checks.real(e, f"sweep[{i}]", 0.0, 1.0) for i, e in enumerate(sweep))
    if result is None:
        result = worst_case(model, x, y, eps, budget, batch_size=batch_size, progress=progress, folder=folder)
    if not isinstance(result, WorstCase) or result.n != len(x) or result.eps != eps:
        raise checks.fail("result", f"a WorstCase of these {len(x)} images at eps={eps}", result)

    n = result.n
    pct = lambda c: 100.0 * float(np.mean(c))  # noqa: E731
    names = [a for a in result.attacks() if a != "clean"]
    one_step = [a for a in names if a in ONE_STEP]
    free = [a for a in names if a in GRADIENT_FREE]
    white = [a for a in names if a not in GRADIENT_FREE]
    iterative = [a for a in white if a not in ONE_STEP]
    acc = {a: pct(result.attack_correct(a)) for a in names}
    best = lambda group: min(group, key=lambda a: acc[a]) if group else None  # noqa: E731
    rows = []

    def row(check, measured, ok, meaning):
        rows.append({"check": check, "measured": measured, "verdict": "-" if ok is None else (PASS if ok else FAIL),
                     "meaning": meaning})

    # 1. iterative vs one-step
    bi, bo = best(iterative), best(one_step)
    if bi and bo:
        row("iterative attacks beat one-step ones", f"{bi}: {acc[bi]:.1f}% vs {bo}: {acc[bo]:.1f}%", acc[bi] <= acc[bo] + tolerance,
            "a one-step attack that does better than many steps of the same gradient means the gradient misleads")
    # 2-4. the eps sweep and the unbounded attack: APGD-CE (its step size follows eps) through the strong gradients
    apgd = {"APGD-CE": Attack("apgd_ce", steps=budget.apgd_steps, restarts=budget.apgd_restarts, seed=budget.seed)}
    grads = budget.strong_gradients
    sweep_out = run(Grid({"model": victim}, apgd, eps=list(sweep) + [1.0], gradients=grads), x, y,
                    batch_size=batch_size, progress=progress, folder=folder)
    curve = [min(pct(sweep_out.correct("model", "APGD-CE", g if victim.frontend is not None else None, e)) for g in grads)
             for e in sweep + [1.0]]
    rising = [(sweep[i], sweep[i + 1]) for i in range(len(sweep) - 1) if curve[i + 1] > curve[i] + tolerance]
    row("accuracy falls monotonically with eps",
        ", ".join(f"{e:g}: {c:.1f}%" for e, c in zip(sweep, curve)), not rising,
        "accuracy that rises with a larger budget means the attack, not the model, is failing")
    row("accuracy reaches about 0 at a large eps", f"{curve[len(sweep) - 1]:.1f}% at eps = {sweep[-1]:g}",
        curve[len(sweep) - 1] <= large_eps_accuracy, "at a large budget any image can be turned into another digit")
    row("an unbounded attack reaches 100% success", f"{100 - curve[-1]:.1f}% success at eps = 1",
        curve[-1] == 0.0, "with the whole box allowed, an attack that still fails is not finding the gradient")
    # 5-6. white box vs black box
    bw, bf = best(white), best(free)
    if bw and bf:
        row("white-box attacks beat black-box ones", f"{bw}: {acc[bw]:.1f}% vs {bf}: {acc[bf]:.1f}%", acc[bw] <= acc[bf] + tolerance,
            "a black-box attack that knows less but does better means the gradients are masked")
        only_free = (result.survived(white) == 1) & (result.survived(free) == 0)
        share = 100.0 * only_free.sum() / n
        row("gradient-free vs gradient gap", f"{int(only_free.sum())} of {n} images ({share:.1f}%) fall only to {', '.join(free)}",
            share <= tolerance, "images that no gradient attack breaks but a random search does")
    # 7. worst case over all attacks
    wc = pct(result.robust)
    ba = best(names)
    row("worst case per image over all attacks", f"{wc:.1f}% (best single attack, {ba}: {acc[ba]:.1f}%)",
        acc[ba] - wc <= tolerance, "the upper bound to report; far below every single attack: no single attack suffices")
    # 8. convergence: what more effort took off
    if more is not None:
        if not isinstance(more, MoreEffort) or more.n != n:
            raise checks.fail("more", f"the MoreEffort of this audit ({n} images)", more)
        row("more effort takes little off",
            f"{more.describe()} on the {more.attacked} images left: {more.points_off:.1f} points off",
            more.points_off <= converged_points,
            f"the worst case is called converged only when {more.factor:g} times the audit's effort of Square and of "
            f"the adaptive attack takes at most {converged_points:g} points more off")
    return pd.DataFrame(rows, columns=["check", "measured", "verdict", "meaning"])


def effort(result: WorstCase):
    """The worst case as the audit's attacks are added, in its order: the convergence curve's first part.

    One row per attack after ``clean``: its model evaluations per image
    (``evaluations``; None where its outcomes were credited from elsewhere),
    the running total (``total evaluations``), the worst case over it and
    every attack before it (``worst case %``), and the points it took off
    (``points off``).
    """
    import pandas as pd

    if not isinstance(result, WorstCase):
        raise checks.fail("result", "a WorstCase", result)
    rows, total = [], 0.0
    before = 100.0 * float(np.mean(result.attack_correct("clean")))
    names = [a for a in result.attacks() if a != "clean"]
    for i, a in enumerate(names):
        ev = result.evaluations(a)
        total += ev or 0.0
        now = 100.0 * float(np.mean(result.survived(["clean", *names[: i + 1]])))
        rows.append({"attack": a, "evaluations": ev, "total evaluations": total, "worst case %": now,
                     "points off": before - now})
        before = now
    return pd.DataFrame(rows, columns=["attack", "evaluations", "total evaluations", "worst case %", "points off"])


@dataclass
class MoreEffort:
    """Square with ``factor`` times the audit's queries (``queries``) and the adaptive attack with ``factor`` times its runs
    (``restarts``), fresh seeds, on the ``attacked`` images the audit left standing.

    ``robust`` is the worst case per image after them (all ``n`` audited
    images), ``evaluations`` the model evaluations per attacked image they
    spent, ``points_off`` what they took off the audit's worst case, and
    ``by_attack`` what each took off alone (points).
    """

    factor: float
    queries: int
    attacked: int
    robust: np.ndarray
    evaluations: float
    points_off: float
    restarts: int = 0
    by_attack: dict = dataclasses.field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.robust)

    def describe(self) -> str:
        """``"Square with 20000 queries and the adaptive attack with 16 runs"``."""
        return f"Square with {self.queries} queries and the adaptive attack with {self.restarts} runs"


def more_effort(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    result: WorstCase,
    budget: Budget,
    factor: float = 4.0,
    batch_size: int = 500,
    progress: bool = False,
    folder=None,
) -> MoreEffort:
    """The two attacks that break the front end, each with ``factor`` times the audit's effort and seeded apart, on the images ``result`` left standing.

    Square with ``factor`` times ``budget.square_queries`` queries and the
    adaptive attack with ``factor`` times ``budget.adaptive_restarts`` runs.
    ``(x, y)`` are the audited images (``result``'s, in its order). One is
    the gradient-free control that masking cannot fool, the other the
    white-box attack built for this defense: if more of both takes little
    off, the audit has converged as far as this test can tell (an upper
    bound still). Stored and resumed like every grid cell.
    """
    if not isinstance(result, WorstCase) or result.n != len(x):
        raise checks.fail("result", f"a WorstCase of these {len(x)} images", result)
    if not isinstance(budget, Budget):
        raise checks.fail("budget", "a Budget", budget)
    factor = checks.real(factor, "factor", 1.0)
    queries = int(round(factor * budget.square_queries))
    restarts = int(round(factor * budget.adaptive_restarts))
    left = np.flatnonzero(result.robust)
    robust = result.robust.copy()
    evaluations, by_attack = 0.0, {"Square": 0.0, "adaptive": 0.0}
    if len(left):
        on = torch.as_tensor(left, device=x.device)
        attacks = {
            "Square": Attack("square", queries=queries, seed=budget.seed + 1),
            "adaptive": Attack("adaptive", steps=budget.adaptive_steps, restarts=restarts, seed=budget.seed + 1),
        }
        out = run(Grid({"model": victim_of(model)}, attacks, eps=[result.eps]), x[on], y[on], batch_size=batch_size,
                  progress=progress, folder=folder)
        for cell in out.results:
            correct = np.asarray(out[cell]["correct"]) == 1
            by_attack[cell.attack] = 100.0 * float((~correct).sum()) / result.n
            robust[left] &= correct
            evaluations += float(out.evaluations(cell.victim, cell.attack, cell.gradient, cell.eps))
    off = 100.0 * (int(result.robust.sum()) - int(robust.sum())) / result.n  # from counts: 4 of 200 is 2.0, not 2.0000000000000018
    return MoreEffort(factor, queries, len(left), robust, evaluations, off, restarts, by_attack)


# --------------------------------------------------------------------------
# robust accuracy at several budgets: PGD as the paper ran it, and the audit beside it
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class AttackSettings:
    """How every cell is attacked.

    PGD takes ``pgd_steps`` steps of ``pgd_step_per_eps * eps`` from a
    uniform random start, ``pgd_restarts`` times, through each of
    ``gradients`` (for a victim with a front end). The audit adds the
    attacks named in ``audit_attacks`` (names of
    :func:`audit_attacks` other than PGD, which is credited
    from the PGD run) with ``budget``, on a seeded ``audit_images`` of the
    images; the paper's attacks among them go through ``gradients``, the
    strong gradient attacks through ``budget.strong_gradients`` (those of
    them that are in ``gradients``).
    """

    pgd_steps: int = 20
    pgd_restarts: int = 5
    pgd_step_per_eps: float = 0.25
    gradients: tuple = GRADIENTS
    audit_images: int = 100
    audit_attacks: tuple = ("APGD-CE", "APGD-T", "FAB-T", "Square", "adaptive")
    budget: Budget = LAPTOP
    seed: int = 0

    def __post_init__(self):
        checks.integer(self.pgd_steps, "pgd_steps", 1)
        checks.integer(self.pgd_restarts, "pgd_restarts", 1)
        checks.real(self.pgd_step_per_eps, "pgd_step_per_eps", 0.0, low_open=True)
        if isinstance(self.gradients, str) or not isinstance(self.gradients, tuple) or not self.gradients:
            raise checks.fail("gradients", f"a non-empty tuple drawn from {GRADIENTS}", self.gradients)
        for i, g in enumerate(self.gradients):
            checks.choice(g, f"gradients[{i}]", GRADIENTS)
        checks.integer(self.audit_images, "audit_images", 1)
        known = tuple(a for a in audit_attacks(SMOKE) if a != "PGD")
        if isinstance(self.audit_attacks, str) or not isinstance(self.audit_attacks, tuple) or not self.audit_attacks:
            raise checks.fail("audit_attacks", f"a non-empty tuple drawn from {known}", self.audit_attacks)
        for i, a in enumerate(self.audit_attacks):
            checks.choice(a, f"audit_attacks[{i}]", known)
        if not isinstance(self.budget, Budget):
            raise checks.fail("budget", "a sparsenb.Budget", self.budget)
        checks.seed(self.seed)

    def pgd(self, eps: float) -> Attack:
        """The PGD of budget ``eps``."""
        return Attack("pgd", step=self.pgd_step_per_eps * eps, steps=self.pgd_steps, restarts=self.pgd_restarts, seed=self.seed)

    def audit_budget(self, eps: float) -> Budget:
        """The audit's budget at ``eps``: ``budget`` with this PGD and these gradient treatments."""
        strong = tuple(g for g in self.budget.strong_gradients if g in self.gradients) or self.gradients[:1]
        return dataclasses.replace(self.budget, pgd_step=self.pgd_step_per_eps * eps, pgd_steps=self.pgd_steps,
                                   pgd_restarts=self.pgd_restarts, gradients=self.gradients, strong_gradients=strong,
                                   seed=self.seed)

    def audit_attacks_at(self, eps: float) -> dict[str, Attack]:
        """The audit's attacks besides PGD at ``eps``, in :func:`audit_attacks`' order."""
        every = audit_attacks(self.audit_budget(eps))
        return {name: a for name, a in every.items() if name in self.audit_attacks}


@dataclass
class RobustAccuracy:
    """Per cell: PGD's per-image outcomes through each gradient treatment (all images) and the audit (the images ``audited``)."""

    cells: list
    pgd_cells: dict
    audits: dict
    audited: np.ndarray
    settings: AttackSettings

    def _check(self, victim: str, eps: float) -> tuple:
        key = (victim, eps)
        if key not in self.audits:
            raise LookupError(f"no cell ({victim!r}, {eps!r}); cells: {self.cells}")
        return key

    def pgd_gradient(self, victim: str, eps: float) -> str | None:
        """The gradient treatment under which PGD leaves the lowest accuracy (``None`` without a front end)."""
        by_gradient = self.pgd_cells[self._check(victim, eps)]
        return min(by_gradient, key=lambda g: (by_gradient[g].mean(), str(g)))

    def pgd(self, victim: str, eps: float, gradient: str | None = "worst") -> np.ndarray:
        """0/1 per image after PGD through ``gradient`` (default: the most damaging one, the paper's number)."""
        by_gradient = self.pgd_cells[self._check(victim, eps)]
        if gradient == "worst":
            gradient = self.pgd_gradient(victim, eps)
        if gradient not in by_gradient:
            raise checks.fail("gradient", f"'worst' or one of {list(by_gradient)}", gradient)
        return by_gradient[gradient]

    def worst(self, victim: str, eps: float) -> WorstCase:
        """The audit of the cell (on the images ``audited``, in their order)."""
        return self.audits[self._check(victim, eps)]

    def frame(self, names: dict | None = None):
        """One row per cell: PGD's accuracy and treatment, PGD and the worst case on the audited images, and what broke them.

        ``names`` maps a victim to the name to show (default: the victim's).
        "broken by" credits each audited image that is not robust to the
        first attack that broke it, PGD first (so the other attacks' counts
        are the images PGD missed).
        """
        import pandas as pd

        rows = []
        for victim, eps in self.cells:
            wc = self.worst(victim, eps)
            rows.append({
                "defense": (names or {}).get(victim, victim), "eps": eps,
                "PGD %": format_accuracy(self.pgd(victim, eps)), "PGD gradient": self.pgd_gradient(victim, eps) or "-",
                "audited images": wc.n, "PGD on them %": format_accuracy(self.pgd(victim, eps)[self.audited]),
                "worst case %": format_accuracy(wc.robust), "broken by": wc.found_by(),
            })
        return pd.DataFrame(rows)

    def worst_interval(self, victim: str, eps: float) -> tuple[float, float, float]:
        """The worst-case accuracy (%) of a cell with its 95% Wilson interval."""
        return accuracy_interval(self.worst(victim, eps).robust.astype(np.int64))


def robust_accuracy(
    victims: dict[str, Victim],
    cells,
    x: torch.Tensor,
    y: torch.Tensor,
    settings: AttackSettings = AttackSettings(),
    batch_size: int = 500,
    progress: bool = False,
    folder=None,
) -> RobustAccuracy:
    """PGD on ``(x, y)`` and the audit on a seeded ``settings.audit_images`` of them, for every ``(victim, eps)`` in ``cells``.

    The audit credits PGD's outcomes on its images as known (PGD runs once
    per image). Results are stored per image and resumed
    (:func:`sparsenb.lab.grid.run`).
    """
    if not isinstance(victims, dict) or not victims or not all(isinstance(v, Victim) for v in victims.values()):
        raise checks.fail("victims", "a non-empty dict of name -> Victim", victims)
    if not isinstance(settings, AttackSettings):
        raise checks.fail("settings", "an AttackSettings", settings)
    cells = _check_cells(cells, victims)
    checks.images(x, "x")
    checks.labels(y, "y", n=len(x))
    pgd_cells = {}
    for eps in dict.fromkeys(e for _, e in cells):
        chosen = {v: victims[v] for v, e in cells if e == eps}
        out = run(Grid(chosen, {"PGD": settings.pgd(eps)}, eps=[eps], gradients=settings.gradients), x, y, batch_size,
                  progress, folder)
        for v in chosen:
            grads = settings.gradients if victims[v].frontend is not None else (None,)
            pgd_cells[(v, eps)] = {g: out.correct(v, "PGD", g, eps) for g in grads}
    chosen = subset(len(x), settings.audit_images, settings.seed)
    idx, xa, ya = chosen.numpy(), x[chosen.to(x.device)], y[chosen.to(y.device)]
    audits = {
        (v, e): worst_case(victims[v].model(), xa, ya, e, settings.audit_budget(e),
                                 attacks=settings.audit_attacks_at(e), batch_size=batch_size, progress=progress, folder=folder,
                                 known={("PGD", g): c[idx] for g, c in pgd_cells[(v, e)].items()})
        for v, e in cells
    }
    return RobustAccuracy(cells, pgd_cells, audits, idx, settings)


def _check_cells(cells, victims) -> list:
    if isinstance(cells, (str, bytes)) or not isinstance(cells, (list, tuple)) or not cells:
        raise checks.fail("cells", "a non-empty list of (victim name, eps) pairs", cells)
    out = []
    for i, cell in enumerate(cells):
        if not isinstance(cell, (list, tuple)) or len(cell) != 2 or cell[0] not in victims:
            raise checks.fail(f"cells[{i}]", f"a (victim name, eps) pair with a victim of {sorted(victims)}", cell)
        out.append((cell[0], checks.real(cell[1], f"cells[{i}][1]", 0.0, 1.0, low_open=True)))
    if len(set(out)) != len(out):
        raise checks.ArgumentError("cells", f"name each (victim, eps) once, got {out}")
    return out
