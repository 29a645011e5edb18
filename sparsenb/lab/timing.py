r"""What training costs: seconds per batch of the one training loop, plain and adversarial, measured in one run.

The paper (Sec. VI-B) says that adversarial training with an :math:`M`-step
attack costs an :math:`M`-fold slowdown (Madry et al.: every training step
first runs the attack, :math:`M` forward and backward passes, then the
training pass). :func:`training_cost` measures it instead of assuming it:
it times :func:`sparsenb.training.fit` itself, so what is timed is exactly
the loop that trains the book's networks, with every variant (no front end,
front end, adversaries of any number of steps) timed in the same process on
the same images.

The variants are interleaved: each of ``repeats`` rounds times every
variant once, in a rotated order, and the reported figure is the median over
rounds. On a shared machine a burst of load then hits one round of every
variant rather than all rounds of one, and the median discards it. Each
timing subtracts a run of the same variant with no training step (building
the model, checking the labels, sparsifying the images once), so what is
left is the cost of the steps themselves. Wall-clock and CPU time (all
threads of the process, ``time.process_time``) are both recorded; on a busy
machine the CPU time is the steadier of the two. On CUDA the device is
synchronised before each clock is read, and only wall-clock time means
anything.

:func:`measured_cost` stores the measurement (:func:`sparsenb.lab.store.stored`)
under a key that holds its arguments, the device, the number of threads and
the training code's fingerprint, so a page re-executed on the same machine
reads it back; :func:`cost_frame` turns it into seconds per epoch and
slowdowns.
"""
from __future__ import annotations

import dataclasses
import statistics
import time

import torch

from .. import checks
from ..training import TrainConfig, fit
from .store import stored

__all__ = ["training_cost", "measured_cost", "cost_frame", "per_step_seconds"]


def _check_runs(runs) -> dict:
    if not isinstance(runs, dict) or not runs:
        raise checks.fail("runs", "a non-empty dict of name -> (frontend, adversary), either may be None", runs)
    for name, pair in runs.items():
        if not isinstance(name, str) or not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise checks.fail("runs", "a non-empty dict of name -> (frontend, adversary), either may be None", runs)
        frontend, adversary = pair
        if frontend is not None and not isinstance(frontend, torch.nn.Module):
            raise checks.fail(f"runs[{name!r}][0]", "a front end module or None", frontend)
        checks.function(adversary, f"runs[{name!r}][1]", optional=True)
    return dict(runs)


def _clock(device: torch.device) -> tuple[float, float]:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter(), time.process_time()


def training_cost(
    model_config,
    x: torch.Tensor,
    y: torch.Tensor,
    config: TrainConfig,
    runs: dict,
    batches: int = 4,
    repeats: int = 3,
    device=None,
    augment=None,
) -> dict:
    """Seconds per training batch of each variant in ``runs``, timed in one run.

    ``runs`` maps a name to ``(frontend, adversary)`` (either may be
    ``None``): the arguments :func:`~sparsenb.training.fit` trains with;
    ``augment`` (e.g. :class:`~sparsenb.training.CropFlip`) applies to every variant.
    Each variant trains ``batches`` batches of ``config.batch_size`` images
    from ``x`` (which must hold that many), once per round, for ``repeats``
    rounds after one untimed warm-up batch. Returns JSON-able data:
    ``{"batch_size", "batches", "repeats", "device", "threads", "variants",
    "runs": {name: {"wall": [...], "cpu": [...]}}}`` with one entry per round,
    in seconds per batch; ``"variants"`` lists the names in the order of
    ``runs`` (a stored copy's ``"runs"`` comes back with its keys sorted).
    """
    runs = _check_runs(runs)
    if not isinstance(config, TrainConfig):
        raise checks.fail("config", "a TrainConfig", config)
    batches = checks.integer(batches, "batches", 1)
    repeats = checks.integer(repeats, "repeats", 1)
    checks.images(x, "x", channels=None, box=True)
    checks.labels(y, "y", n=len(x))
    n = batches * config.batch_size
    if len(x) < n:
        raise checks.ArgumentError("x", f"must hold batches * batch_size = {n} images, got {len(x)}")
    x, y = x[:n], y[:n]
    device = torch.device(device) if device is not None else x.device
    config = dataclasses.replace(config, guard=0)  # the steps are timed, not the per-epoch check
    timed = dataclasses.replace(config, steps=batches, epochs=1)
    empty = dataclasses.replace(config, steps=0, epochs=0)  # everything fit does but the steps
    warm = dataclasses.replace(config, steps=1, epochs=1)
    names = list(runs)
    for name in names:
        frontend, adversary = runs[name]
        fit(model_config, x, y, warm, frontend, augment, adversary, device=device)
    out = {name: {"wall": [], "cpu": [], "setup_wall": [], "setup_cpu": []} for name in names}
    for r in range(repeats):
        for name in names[r % len(names):] + names[: r % len(names)]:
            frontend, adversary = runs[name]
            w0, c0 = _clock(device)
            fit(model_config, x, y, empty, frontend, augment, adversary, device=device)
            w1, c1 = _clock(device)
            fit(model_config, x, y, timed, frontend, augment, adversary, device=device)
            w2, c2 = _clock(device)
            out[name]["wall"].append(max((w2 - w1) - (w1 - w0), 0.0) / batches)
            out[name]["cpu"].append(max((c2 - c1) - (c1 - c0), 0.0) / batches)
            out[name]["setup_wall"].append(w1 - w0)
            out[name]["setup_cpu"].append(c1 - c0)
    return {"batch_size": config.batch_size, "batches": batches, "repeats": repeats, "device": str(device),
            "threads": torch.get_num_threads(), "variants": names, "runs": out}


def measured_cost(model_config, x, y, config, runs, batches: int = 4, repeats: int = 3, device=None, folder=None,
                  augment=None) -> dict:
    """:func:`training_cost`, measured once per key and then read back from the cache.

    The key holds the arguments (models and front ends by their settings,
    adversaries by their fields, images by a fingerprint), the device, the
    number of torch threads and the code of the training loop and of what it
    is given (:func:`sparsenb.cache.code_of`), so new code or another machine
    setting measures afresh.
    """
    device = str(torch.device(device) if device is not None else x.device)
    return stored(_measure, model_config, x, y, config, runs, batches, repeats, device, torch.get_num_threads(), augment,
                  folder=folder)


def _measure(model_config, x, y, config, runs, batches, repeats, device, threads, augment=None) -> dict:
    return training_cost(model_config, x, y, config, runs, batches, repeats, device, augment)


def per_step_seconds(cost: dict, name: str, clock: str = "cpu") -> float:
    """The median over rounds of one variant's seconds per training batch (``clock``: ``"cpu"`` or ``"wall"``).

    ``"setup_cpu"`` and ``"setup_wall"`` give the seconds of its run with no step instead.
    """
    checks.choice(clock, "clock", ("cpu", "wall", "setup_cpu", "setup_wall"))
    if not isinstance(cost, dict) or name not in cost.get("runs", {}):
        raise checks.fail("name", f"one of the measured variants {sorted(cost.get('runs', {}))}", name)
    return float(statistics.median(cost["runs"][name][clock]))


def cost_frame(cost: dict, epoch_images: int = 60000, reference: str | None = None):
    """One row per variant: median seconds per batch and per epoch (wall and CPU), and the slowdown.

    An epoch is ``epoch_images // batch_size`` batches. The slowdown is each
    variant's CPU time per batch over ``reference``'s (default: the first
    variant); ``"spread"`` is the range of the per-round wall-clock times
    relative to their median, a gauge of how steady the machine was.
    """
    import pandas as pd

    epoch_images = checks.integer(epoch_images, "epoch_images", 1)
    names = cost.get("variants") or list(cost["runs"])  # in the order measured, also when read back from the store
    reference = names[0] if reference is None else reference
    per_epoch = epoch_images // cost["batch_size"]
    base = {c: per_step_seconds(cost, reference, c) for c in ("cpu", "wall")}
    rows = {}
    for name in names:
        wall, cpu = per_step_seconds(cost, name, "wall"), per_step_seconds(cost, name, "cpu")
        samples = cost["runs"][name]["wall"]
        rows[name] = {
            "s per batch (wall)": wall,
            "s per epoch (wall)": wall * per_epoch,
            "CPU s per epoch": cpu * per_epoch,
            "slowdown (CPU)": cpu / base["cpu"] if base["cpu"] > 0 else float("nan"),
            "slowdown (wall)": wall / base["wall"] if base["wall"] > 0 else float("nan"),
            "spread": (max(samples) - min(samples)) / wall if wall > 0 else float("nan"),
        }
    return pd.DataFrame(rows).T
