r"""Experiments as data: attack grids declared once, run in batches, stored per image.

An attack grid is *victims* × *attacks* × *gradient treatments* × :math:`\epsilon`.
A victim is a classifier and, if defended, its front end; each cell picks how
gradients pass the front end (``bpda``, ``projection``, ``iterated``) for
the attacks that take gradients. :func:`run` attacks every cell in batches
(with progress), checks every adversarial image in the
:math:`\epsilon`-ball and the [0, 1] box, and stores *per-image* outcomes
under a key derived from what computed them: the victim's weights and front
end, the attack and its settings, :math:`\epsilon`, the images, and the code
(:func:`~sparsenb.cache.code_of`). A killed run resumes: finished
cells are read back, and a cell that was interrupted continues from its last
finished batch. Most attacks give each image the result it gets alone, so
batches may be regrouped; an attack marked ``batch_invariant = False``
(Square draws one square per step for the whole batch) has its batch size
in the key, so its batches are always the same.

:class:`Outcomes` answers questions about the finished grid (accuracy with
its Wilson interval, the worst case per image over any set of cells, which
gradient hurt most); :mod:`sparsenb.lab.paper` sets them beside the
paper's numbers. The keys are the result store's (:mod:`sparsenb.lab.store`):
a cell's code is that of the grid, of its attack's module and of the
victim's model and front end.
"""
from __future__ import annotations

import dataclasses
import inspect
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
from torch import nn

from .. import checks, distributed
from ..attacks.base import check_adversarial
from ..attacks.registry import get as get_attack
from ..cache import atomic_write_json, code_of, data_fingerprint, model_fingerprint, modules_of
from ..evaluation import accuracy_interval, predict
from ..frontend import GRADIENTS, SparsifyingFrontEnd, defended, support_overlap, with_gradient
from .store import jsonable, library_versions, log_use, lookup, model_key, read, result_path

__all__ = ["Attack", "Victim", "Cell", "Grid", "Outcomes", "run", "run_parts", "merge"]


@dataclass(frozen=True)
class Attack:
    """One attack with its settings: ``Attack("pgd", step=0.05, steps=20)``.

    ``name`` is a registered attack's name (:mod:`sparsenb.attacks.registry`:
    ``"pgd"``, ``"square"``, ``"adaptive"``...), or ``"none"``: no attack (the
    clean images), so that clean accuracy is a cell like any other. The
    function's signature says how to call it: a first argument ``w`` marks an
    attack on a linear classifier's weights (it gets the victim's ``w`` and
    front end); an ``eps`` argument marks an :math:`\\ell_\\infty` budget
    (without one, as for ``carlini_wagner_l2``, cells carry ``eps=None`` and
    are checked in the box only). An attack registered with
    ``uses_gradient=False`` (a black-box attack) gets no gradient-treatment
    cells. The settings must be JSON-able values: they are part of the key.
    """

    name: str
    kwargs: tuple = ()

    def __init__(self, name: str, **kwargs):
        _resolve(name)
        for k, v in kwargs.items():
            if not isinstance(v, (str, int, float, bool, type(None), np.integer, np.floating)):
                raise checks.fail(k, "a number, string, bool or None (attack settings are part of the result key)", v)
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "kwargs", tuple(sorted(kwargs.items())))

    @property
    def function(self):
        return _resolve(self.name)

    @property
    def linear(self) -> bool:
        """An attack on a linear classifier's weights ``w`` (Sec. IV)."""
        return next(iter(inspect.signature(self.function).parameters)) == "w"

    @property
    def bounded(self) -> bool:
        """Whether the attack has an :math:`\\ell_\\infty` budget."""
        return "eps" in inspect.signature(self.function).parameters

    @property
    def uses_gradient(self) -> bool:
        """Whether the attack differentiates the victim (so the front end's gradient treatment matters)."""
        return not self.linear and getattr(self.function, "uses_gradient", True)

    @property
    def batch_invariant(self) -> bool:
        """Whether an image gets the same result in any batch (else the batch size is part of the key)."""
        return getattr(self.function, "batch_invariant", True)

    def code_modules(self) -> tuple[str, ...]:
        """The ``sparsenb`` modules of the attack's code (:func:`sparsenb.cache.code_of` follows them)."""
        return modules_of(self.function)

    def __call__(self, victim: "Victim", model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps) -> torch.Tensor:
        kwargs = dict(self.kwargs)
        fn = self.function
        if self.linear:
            w = victim.classifier.w
            if "frontend" in inspect.signature(fn).parameters:
                return fn(w, x, y, eps, victim.frontend, **kwargs)
            return fn(w, x, y, eps, **kwargs)
        if not self.bounded:
            return fn(model, x, y, **kwargs)
        return fn(model, x, y, eps, **kwargs)

    def spec(self) -> dict:
        return {"attack": self.name, **{k: jsonable(v) for k, v in self.kwargs}}


def _no_attack(model, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``Attack("none")``: the clean images (no budget, no gradient), so clean accuracy is a cell like any other."""
    return x.clone()


_no_attack.uses_gradient = False


def _resolve(name: str):
    """The attack function registered as ``name``, or the clean images for ``"none"``."""
    if name == "none":
        return _no_attack
    return get_attack(name)


@dataclass
class Victim:
    """A classifier, behind ``frontend`` if given (the defended model is ``frontend`` then ``classifier``)."""

    classifier: nn.Module
    frontend: SparsifyingFrontEnd | None = None

    def __post_init__(self):
        if not isinstance(self.classifier, nn.Module):
            raise checks.fail("classifier", "a torch.nn.Module", self.classifier)
        if self.frontend is not None and not isinstance(self.frontend, SparsifyingFrontEnd):
            raise checks.fail("frontend", "a SparsifyingFrontEnd or None", self.frontend)

    def model(self, gradient: str | None = None) -> nn.Module:
        """The model the attack sees: the classifier, or the front end (with ``gradient``) then the classifier."""
        if self.frontend is None:
            return self.classifier.eval()
        return defended(with_gradient(self.frontend, gradient or self.frontend.gradient), self.classifier).eval()


@dataclass(frozen=True)
class Cell:
    """One run of the grid: ``attack`` against ``victim`` (through ``gradient``) at budget ``eps``."""

    victim: str
    attack: str
    gradient: str | None
    eps: float | None


class Grid:
    """Victims × attacks × gradient treatments × :math:`\\epsilon`, declared as data.

    ``gradients`` apply to victims with a front end and attacks that take
    gradients; other cells have ``gradient=None``. ``eps`` is a list of
    budgets (unbounded attacks get one cell with ``eps=None``). ``exclude``
    drops cells for which it returns True (e.g. to run PGD at one
    :math:`\\epsilon` only).
    """

    def __init__(
        self,
        victims: dict[str, Victim],
        attacks: dict[str, Attack],
        eps: Sequence[float],
        gradients: Sequence[str] = ("bpda",),
        exclude: Callable[[Cell], bool] | None = None,
    ):
        if not isinstance(victims, dict) or not victims or not all(isinstance(v, Victim) for v in victims.values()):
            raise checks.fail("victims", "a non-empty dict of name -> Victim", victims)
        if not isinstance(attacks, dict) or not attacks or not all(isinstance(a, Attack) for a in attacks.values()):
            raise checks.fail("attacks", "a non-empty dict of name -> Attack", attacks)
        if isinstance(eps, (str, bytes)) or not isinstance(eps, Sequence) or not eps:
            raise checks.fail("eps", "a non-empty list of budgets", eps)
        self.eps = tuple(checks.real(e, f"eps[{i}]", 0, 1) for i, e in enumerate(eps))
        if isinstance(gradients, str) or not gradients:
            raise checks.fail("gradients", f"a non-empty list drawn from {GRADIENTS}", gradients)
        self.gradients = tuple(checks.choice(g, f"gradients[{i}]", GRADIENTS) for i, g in enumerate(gradients))
        self.victims, self.attacks = dict(victims), dict(attacks)
        self.exclude = checks.function(exclude, "exclude", optional=True)

    def cells(self) -> list[Cell]:
        out = []
        for v, victim in self.victims.items():
            for a, attack in self.attacks.items():
                grads = self.gradients if victim.frontend is not None and attack.uses_gradient else (None,)
                budgets = self.eps if attack.bounded else (None,)
                for g in grads:
                    for e in budgets:
                        cell = Cell(v, a, g, e)
                        if self.exclude is None or not self.exclude(cell):
                            out.append(cell)
        return out


# --------------------------------------------------------------------------
# running a grid
# --------------------------------------------------------------------------
def run(
    grid: Grid,
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int = 500,
    progress: bool = True,
    folder: str | Path | None = None,
) -> "Outcomes":
    """Attack every cell of ``grid`` on ``(x, y)``; return the per-image :class:`Outcomes`.

    Each cell's outcomes are ``correct`` (0/1: still classified correctly),
    ``linf`` and ``l2`` (the perturbation's norms) and, for a defended
    victim, ``overlap`` (:math:`|\\mathcal{S}_K(x) \\cap \\mathcal{S}_K(x + e)|`),
    one entry per image. Finished cells are read from the store; an
    interrupted cell resumes after its last finished batch.
    """
    if not isinstance(grid, Grid):
        raise checks.fail("grid", "a Grid", grid)
    checks.images(x, "x")
    checks.labels(y, "y", n=len(x))
    if len(x) == 0:  # an empty cell would be stored as finished, with no outcomes to ask about
        raise checks.ArgumentError("x", "must hold at least one image to attack")
    checks.integer(batch_size, "batch_size", 1)
    cells = grid.cells()
    images = data_fingerprint(x, y)
    weights = {name: model_fingerprint(v.classifier) for name, v in grid.victims.items()}
    results = {}
    bar = _bar(len(cells), "attack grid", progress)
    for cell in cells:
        bar.set_postfix_str(f"{cell.victim} / {cell.attack} / {cell.gradient} / eps={cell.eps}", refresh=False)
        victim, attack = grid.victims[cell.victim], grid.attacks[cell.attack]
        code = code_of(run, attack, victim.classifier, victim.frontend)
        common = {"images": images, "code": code, "weights": weights[cell.victim]}
        results[cell] = _run_cell(grid, cell, x, y, common, batch_size, progress, folder)
        bar.update(1)
    bar.close()
    return Outcomes(grid, results, len(x))


def run_parts(
    grid: Grid,
    x: torch.Tensor,
    y: torch.Tensor,
    first,
    batch_size: int = 500,
    progress: bool = True,
    folder: str | Path | None = None,
) -> "Outcomes":
    """:func:`run` on the images at positions ``first`` and then on the others, stored apart, outcomes in ``x``'s order.

    The images at ``first`` (increasing positions in ``x``) are attacked as a
    set of their own, so their cells are the ones another run on exactly
    those images (in that order) reads back: a page's grid that holds an
    audit's images computes their outcomes for the audit too. The grid's
    attacks must give an image the result it gets alone
    (``batch_invariant``); the outcomes are then those of :func:`run` on
    ``x``.
    """
    checks.images(x, "x")
    checks.labels(y, "y", n=len(x))
    first = np.asarray(first, dtype=np.int64)
    if first.ndim != 1 or len(first) == 0 or (np.diff(first) <= 0).any() or first[0] < 0 or first[-1] >= len(x):
        raise checks.ArgumentError("first", f"must be increasing positions in x (0 to {len(x) - 1}), got {first!r}")
    if not isinstance(grid, Grid):
        raise checks.fail("grid", "a Grid", grid)
    varying = [name for name, a in grid.attacks.items() if not a.batch_invariant]
    if varying:
        raise checks.ArgumentError("grid", f"holds attacks whose result depends on the batch ({varying}): run it whole")
    rest = np.setdiff1d(np.arange(len(x)), first)
    parts = []
    for where in (first, rest) if len(rest) else (first,):
        on = torch.as_tensor(where, device=x.device)
        parts.append((where, run(grid, x[on], y[on], batch_size, progress, folder)))
    results = {}
    for cell in parts[0][1].results:
        whole: dict = {}
        for where, out in parts:
            for name, values in out.results[cell].items():
                if name == "evaluations":  # per batch: the whole run's are all of them
                    whole.setdefault(name, []).extend(values)
                else:
                    column = whole.setdefault(name, [None] * len(x))
                    for i, v in zip(where.tolist(), values):
                        column[i] = v
        results[cell] = whole
    return Outcomes(grid, results, len(x))


def _run_cell(grid, cell, x, y, common, batch_size, progress, folder) -> dict:
    victim, attack = grid.victims[cell.victim], grid.attacks[cell.attack]
    model = victim.model(cell.gradient)
    key = {
        "kind": "attack cell",
        "victim": model_key(model, common["weights"]),
        "attack": attack.spec(),
        "eps": cell.eps,
        "images": common["images"],
        "code": common["code"],
        "libraries": library_versions(attack),
        "compute": distributed.compute_key(x),
    }
    if not attack.batch_invariant:
        key["batch_size"] = batch_size  # the attack's result for an image depends on its batch
    path = result_path(key, folder)
    done = distributed.decide(lambda: read(lookup(path, key)))
    if done is not None and done.get("complete"):
        return done["outcomes"]
    what = f"attack cell {cell.victim} / {cell.attack} / {cell.gradient} / eps={cell.eps}"
    if distributed.active():
        distributed.before_unit(0.0, what)  # the processes' batches differ: they agree once per cell
        return _run_cell_sharded(victim, model, attack, cell, x, y, key, path, batch_size, progress)
    outcomes = done["outcomes"] if done else {}
    start = len(outcomes.get("correct", []))
    chunks = list(range(start, len(x), batch_size))
    last = 0.0  # seconds the last batch took: what the next one is expected to take
    for i in _bar_iter(chunks, f"{cell.attack} ({cell.gradient or 'no front end'})", progress):
        distributed.before_unit(last, f"a batch of the {what}")
        started = time.perf_counter()
        _extend(outcomes, _attack_batch(victim, model, attack, cell, x[i : i + batch_size], y[i : i + batch_size]))
        atomic_write_json(path, {"key": key, "complete": False, "outcomes": outcomes})
        last = time.perf_counter() - started
    atomic_write_json(path, {"key": key, "complete": True, "outcomes": outcomes})
    log_use(path)
    return outcomes


def _extend(outcomes: dict, batch: dict) -> None:
    """Append a batch's per-image outcomes (and its evaluations) to a cell's."""
    for name, values in batch.items():
        outcomes.setdefault(name, []).extend(values)


def _attack_batch(victim, model, attack, cell, xb, yb) -> dict:
    """One batch of one cell: attack, check every adversarial image, and its per-image outcomes (with the batch's evaluations)."""
    with _EvaluationCounter(victim.classifier) as counter, checks.trusted():  # x was checked by run(): no scan per step
        x_adv = attack(victim, model, xb, yb, cell.eps)
    check_adversarial(x_adv, xb, cell.eps)
    return {**_outcomes(victim, model, xb, yb, x_adv), "evaluations": [counter.images]}


def _run_cell_sharded(victim, model, attack, cell, x, y, key, path, batch_size, progress) -> dict:
    """:func:`_run_cell` in a process group: batch ``b`` is attacked by process ``b mod N``, the outcomes gathered in image order.

    The batches are the one-process run's batches, so every image meets the
    same computation and gets the same outcome. A process keeps its finished
    batches in its own file beside the result (``<key>.rank<r>of<N>.json``),
    so a killed run with the same number of processes resumes; process 0
    writes the finished cell.
    """
    starts = list(range(0, len(x), batch_size))
    r, size = distributed.rank(), distributed.world_size()
    mine_path = path.with_name(f"{path.stem}.rank{r}of{size}.json")
    saved = read(mine_path)
    mine = saved["batches"] if saved and saved.get("key") == key else {}
    todo = [starts[b] for b in distributed.shard(len(starts)) if str(starts[b]) not in mine]
    for i in _bar_iter(todo, f"{cell.attack} ({cell.gradient or 'no front end'}), process {r} of {size}", progress):
        mine[str(i)] = _attack_batch(victim, model, attack, cell, x[i : i + batch_size], y[i : i + batch_size])
        atomic_write_json(mine_path, {"key": key, "batches": mine})
    batches = {}
    for part in distributed.gather(mine):
        batches.update(part)
    outcomes = {}
    for i in starts:
        _extend(outcomes, batches[str(i)])
    if distributed.is_writer():
        atomic_write_json(path, {"key": key, "complete": True, "outcomes": outcomes})
        log_use(path)
    distributed.barrier()  # the cell is stored before any process forgets its share
    mine_path.unlink(missing_ok=True)
    return outcomes


class _EvaluationCounter:
    """Counts the images a classifier is evaluated on (its forward calls, summed over their batch sizes) while active.

    The hook sits on the classifier, not on the front end, so attacks that
    assemble their own defended model around the same classifier (the
    adaptive attack's surrogate) are counted the same way.

    An attack that takes a gradient runs one backward pass per forward pass
    it differentiates, so this counts "model evaluations" the way the
    attack literature does (a forward pass, with its backward pass if any).
    Attacks on a linear classifier's weights (``semi_white_box`` and
    friends) compute in closed form and count 0.
    """

    def __init__(self, model: nn.Module):
        self.model, self.images, self._hook = model, 0, None

    def __enter__(self):
        def count(module, inputs):
            self.images += int(inputs[0].shape[0]) if inputs and torch.is_tensor(inputs[0]) and inputs[0].dim() else 1

        self._hook = self.model.register_forward_pre_hook(count)
        return self

    def __exit__(self, *exc):
        self._hook.remove()
        return False


def _outcomes(victim: Victim, model: nn.Module, x: torch.Tensor, y: torch.Tensor, x_adv: torch.Tensor) -> dict:
    e = (x_adv - x).flatten(1)
    out = {
        "correct": (predict(model, x_adv) == y).int().tolist(),
        "linf": e.abs().max(1).values.tolist() if len(x) else [],
        "l2": e.norm(dim=1).tolist(),
    }
    if victim.frontend is not None:
        fe = victim.frontend
        out["overlap"] = support_overlap(x, x_adv, fe.K, fe.transform).tolist()
    return out


class Outcomes:
    """Per-image outcomes of a grid's cells, and the questions the chapters ask of them."""

    def __init__(self, grid: Grid, results: dict[Cell, dict], n: int):
        self.grid, self.results, self.n = grid, results, n

    def cell(self, victim: str, attack: str, gradient: str | None = None, eps: float | None = None) -> Cell:
        """The one cell matching the arguments (``eps`` may be omitted when the grid has one budget)."""
        matches = [
            c for c in self.results
            if c.victim == victim and c.attack == attack and c.gradient == gradient and (eps is None or c.eps == eps)
        ]
        if len(matches) != 1:
            raise LookupError(f"{len(matches)} cells match victim={victim!r}, attack={attack!r}, gradient={gradient!r}, eps={eps!r}")
        return matches[0]

    def __getitem__(self, cell: Cell) -> dict:
        return self.results[cell]

    def correct(self, victim: str, attack: str, gradient: str | None = None, eps: float | None = None) -> np.ndarray:
        """0/1 per image: still correctly classified after the attack."""
        return np.asarray(self.results[self.cell(victim, attack, gradient, eps)]["correct"], dtype=np.int64)

    def values(self, name: str, victim: str, attack: str, gradient: str | None = None, eps: float | None = None) -> np.ndarray:
        """Another per-image outcome of a cell: ``"linf"``, ``"l2"`` or ``"overlap"`` (``"evaluations"`` is per batch: see :meth:`evaluations`)."""
        return np.asarray(self.results[self.cell(victim, attack, gradient, eps)][name])

    def evaluations(self, victim: str, attack: str, gradient: str | None = None, eps: float | None = None) -> float:
        """Model evaluations the attack spent per image (forward passes, each with its backward if it took a gradient).

        Counted per batch while the attack ran (so it excludes the final
        check of the result) and averaged over the cell's images.
        """
        res = self.results[self.cell(victim, attack, gradient, eps)]
        return float(sum(res.get("evaluations", [])) / max(len(res["correct"]), 1))

    def accuracy(self, victim: str, attack: str, gradient: str | None = None, eps: float | None = None) -> tuple[float, float, float]:
        """Accuracy (%) and its 95% Wilson interval ``(p, lo, hi)``."""
        return accuracy_interval(self.correct(victim, attack, gradient, eps))

    def worst_gradient(self, victim: str, attack: str, eps: float | None = None) -> str:
        """The gradient treatment under which ``attack`` leaves the lowest accuracy (the paper reports that one)."""
        grads = [c.gradient for c in self.results if c.victim == victim and c.attack == attack and (eps is None or c.eps == eps)]
        return min(grads, key=lambda g: (self.correct(victim, attack, g, eps).mean(), str(g)))

    def by_attack(self, victim: str, eps: float | None = None, images=None, skip: Sequence[str] = ()) -> dict:
        """``{(attack, gradient): 0/1 per image}`` of every cell of ``victim`` (at ``eps``), on some of its images.

        ``images``: None (all), an int ``n`` (the first ``n``) or a sequence of image indices.

        The form :func:`sparsenb.lab.audit.worst_case` takes as ``known``, to add
        the strong attacks to a grid that already ran on these images;
        ``skip`` leaves attacks out (the grid's "no attack" cell).
        """
        cells = [c for c in self.results if c.victim == victim and (eps is None or c.eps == eps) and c.attack not in skip]
        if not cells:
            raise LookupError(f"no cells of victim {victim!r} at eps={eps!r}")
        pick = slice(None) if images is None else slice(images) if isinstance(images, int) else np.asarray(images, dtype=np.int64)
        return {(c.attack, c.gradient): self.correct(c.victim, c.attack, c.gradient, c.eps)[pick] for c in cells}

    def worst(self, cells: Iterable[Cell] | None = None, **match) -> np.ndarray:
        """Per image, robust (1) only if it survived every cell given (or every cell matching ``match``)."""
        if cells is None:
            cells = [c for c in self.results if all(getattr(c, k) == v for k, v in match.items())]
        cells = list(cells)
        if not cells:
            raise LookupError(f"no cells match {match}")
        return np.min([self.results[c]["correct"] for c in cells], axis=0).astype(np.int64)

    def frame(self):
        """Every cell as a row: victim, attack, gradient, eps, images, accuracy % and its interval."""
        import pandas as pd

        rows = []
        for c, res in self.results.items():
            p, lo, hi = accuracy_interval(res["correct"]) if res["correct"] else (float("nan"),) * 3
            rows.append({**dataclasses.asdict(c), "images": len(res["correct"]), "accuracy %": p, "lo": lo, "hi": hi})
        return pd.DataFrame(rows)


def _bar(total: int, desc: str, show: bool):
    with warnings.catch_warnings():  # no ipywidgets in a notebook kernel: plain text bars
        warnings.simplefilter("ignore")
        from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, disable=not show, leave=False, mininterval=5)


def _bar_iter(items, desc: str, show: bool):
    bar = _bar(len(items), desc, show and len(items) > 1)
    for item in items:
        yield item
        bar.update(1)
    bar.close()


def merge(*outcomes: Outcomes) -> Outcomes:
    """The cells of several runs on the same images as one :class:`Outcomes`.

    For experiments that one :class:`Grid` cannot declare: an attack whose
    settings depend on :math:`\\epsilon` (one grid per budget, e.g. a number
    of steps that grows with it), or victims that face different attacks. A
    cell found in several runs must hold the same outcomes in each (so one
    name cannot stand for two computations). The result's ``grid`` is the
    list of the grids merged.
    """
    if not outcomes or not all(isinstance(o, Outcomes) for o in outcomes):
        raise checks.fail("outcomes", "one or more Outcomes", outcomes)
    sizes = sorted({o.n for o in outcomes})
    if len(sizes) > 1:
        raise checks.ArgumentError("outcomes", f"must come from runs on the same images, got {sizes} images")
    results: dict[Cell, dict] = {}
    for o in outcomes:
        for cell, result in o.results.items():
            if cell in results and results[cell] != result:
                raise checks.ArgumentError("outcomes", f"hold different results for one cell {cell}: name the attacks apart")
            results[cell] = result
    return Outcomes([o.grid for o in outcomes], results, sizes[0])
