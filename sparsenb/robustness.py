r"""Robust accuracy of defenses at several :math:`\ell_\infty` budgets: PGD as the paper ran it, and the audited worst case beside it.

Table III of the paper and the paragraphs after it give one number per
(defense, :math:`\epsilon`): the accuracy PGD with random restarts leaves,
through the most damaging of the front end's gradient treatments. Per
``(victim, eps)`` cell, :func:`robust_accuracy` computes

* **PGD as the paper ran it**, on all images: one
  :class:`~sparsenb.experiments.Grid` per budget (PGD's step is a fixed
  fraction of :math:`\epsilon`, so its settings differ between budgets); the
  reported treatment is the one with the lowest accuracy
  (:meth:`RobustAccuracy.pgd`), as in the paper. A cell another chapter
  ran with the same settings on the same images is read back;
* **the audited worst case**: :func:`sparsenb.audit.worst_case` on a seeded
  subset of the images (:func:`sparsenb.audit.subset`), crediting PGD's
  outcomes there as known and adding the audit's other attacks.

Everything is stored per image and resumed (:func:`sparsenb.experiments.run`).
:meth:`RobustAccuracy.frame` tabulates the cells.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from . import audit, checks
from .evaluation import accuracy_interval, format_accuracy
from .experiments import Attack, Grid, Victim, run
from .frontend import GRADIENTS

__all__ = ["AttackSettings", "RobustAccuracy", "robust_accuracy"]


@dataclass(frozen=True)
class AttackSettings:
    """How every cell is attacked.

    PGD takes ``pgd_steps`` steps of ``pgd_step_per_eps * eps`` from a
    uniform random start, ``pgd_restarts`` times, through each of
    ``gradients`` (for a victim with a front end). The audit adds the
    attacks named in ``audit_attacks`` (names of
    :func:`sparsenb.audit.audit_attacks` other than PGD, which is credited
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
    budget: audit.Budget = audit.LAPTOP
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
        known = tuple(a for a in audit.audit_attacks(audit.SMOKE) if a != "PGD")
        if isinstance(self.audit_attacks, str) or not isinstance(self.audit_attacks, tuple) or not self.audit_attacks:
            raise checks.fail("audit_attacks", f"a non-empty tuple drawn from {known}", self.audit_attacks)
        for i, a in enumerate(self.audit_attacks):
            checks.choice(a, f"audit_attacks[{i}]", known)
        if not isinstance(self.budget, audit.Budget):
            raise checks.fail("budget", "a sparsenb.audit.Budget", self.budget)
        checks.seed(self.seed)

    def pgd(self, eps: float) -> Attack:
        """The PGD of budget ``eps``."""
        return Attack("pgd", step=self.pgd_step_per_eps * eps, steps=self.pgd_steps, restarts=self.pgd_restarts, seed=self.seed)

    def audit_budget(self, eps: float) -> audit.Budget:
        """The audit's budget at ``eps``: ``budget`` with this PGD and these gradient treatments."""
        strong = tuple(g for g in self.budget.strong_gradients if g in self.gradients) or self.gradients[:1]
        return dataclasses.replace(self.budget, pgd_step=self.pgd_step_per_eps * eps, pgd_steps=self.pgd_steps,
                                   pgd_restarts=self.pgd_restarts, gradients=self.gradients, strong_gradients=strong,
                                   seed=self.seed)

    def audit_attacks_at(self, eps: float) -> dict[str, Attack]:
        """The audit's attacks besides PGD at ``eps``, in :func:`~sparsenb.audit.audit_attacks`' order."""
        every = audit.audit_attacks(self.audit_budget(eps))
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

    def worst(self, victim: str, eps: float) -> audit.WorstCase:
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
    (:func:`sparsenb.experiments.run`).
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
    chosen = audit.subset(len(x), settings.audit_images, settings.seed)
    idx, xa, ya = chosen.numpy(), x[chosen.to(x.device)], y[chosen.to(y.device)]
    audits = {
        (v, e): audit.worst_case(victims[v].model(), xa, ya, e, settings.audit_budget(e),
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
