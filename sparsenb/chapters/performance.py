r"""What the chapter "Performance" measures, one function per section.

=============================  ==================================================================
:func:`frontend_speed`         the front end against a per-image PyWavelets round trip, one thread each
:func:`pgd_step_cost`          a PGD step with the front end in the loop against the same step without it
:func:`gpu_measurements`       the GPU figures of a dated results file (``results/gpu/*.csv``)
=============================  ==================================================================

The measurements run at the build's profile on the machine that builds the
book, so the page states what it measured where. ``benchmarks/`` holds the
same measurements as command-line scripts (``benchmarks/frontend_speed.py``
and ``benchmarks/pgd_speed.py`` call these functions) and the GPU script
(``benchmarks/full_scale.py``) whose output the results files keep.
"""

from __future__ import annotations

import csv
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .. import attacks, data
from ..frontend import SparsifyingFrontEnd, defended
from ..models import NielsenCNN
from .section import Section, numbers

__all__ = ["pywt_round_trip", "frontend_speed", "pgd_step_cost", "gpu_measurements", "GPU_COLUMNS"]

#: The columns of a GPU results file: one measured quantity per row.
GPU_COLUMNS = ("date", "commit", "device", "measurement", "value", "unit", "note")


def pywt_round_trip(images: np.ndarray, K: int, wavelet: str, level: int = 1) -> np.ndarray:
    """The front end written the straightforward way with PyWavelets, one image at a time (float64)."""
    import pywt

    out = np.empty_like(images)
    for i, img in enumerate(images):
        coeffs = pywt.wavedec2(img, wavelet, mode="periodization", level=level)
        arr, slices = pywt.coeffs_to_array(coeffs)
        flat = arr.ravel()
        flat[np.argpartition(np.abs(flat), -K)[:-K]] = 0.0
        rec = pywt.waverec2(
            pywt.array_to_coeffs(arr, slices, output_format="wavedec2"),
            wavelet,
            mode="periodization",
        )
        out[i] = np.clip(rec, 0.0, 1.0)
    return out


def _best_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def frontend_speed(
    n_images: int, rho: float = 0.035, wavelet: str = "coif1", repeats: int = 3, threads: int = 1
) -> Section:
    """Images per second of :class:`~sparsenb.frontend.SparsifyingFrontEnd` and of :func:`pywt_round_trip`.

    The same ``n_images`` MNIST test images on both sides, best of
    ``repeats``, each side on ``threads`` torch threads (PyWavelets uses
    one, so one each is the equal comparison). The outputs are checked to
    agree (float64, to 1e-10) before anything is timed. ``numbers``:
    ``speed_ratio_32`` and ``speed_ratio_64`` (ours over PyWavelets'
    time), ``speed_images`` and ``speed_threads``.
    """
    x, _ = data.load_mnist("test", dtype=torch.float64)
    x = x[:n_images]
    fe = SparsifyingFrontEnd(rho, wavelet)
    images = x[:, 0].numpy().copy()
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.no_grad():
            err = np.abs(
                fe(x[:200])[:, 0].numpy() - pywt_round_trip(images[:200], fe.K[0], wavelet)
            ).max()
            if err > 1e-10:
                raise AssertionError(f"the front end and PyWavelets disagree by {err}")
            t_ref = _best_time(lambda: pywt_round_trip(images, fe.K[0], wavelet), repeats)
            t64 = _best_time(lambda: fe(x), repeats)
            x32 = x.float()
            t32 = _best_time(lambda: fe(x32), repeats)
    finally:
        torch.set_num_threads(before)
    n = len(images)
    table = pd.DataFrame(
        {
            "images/s": [n / t_ref, n / t64, n / t32],
            "ratio": [1.0, t_ref / t64, t_ref / t32],
        },
        index=pd.Index(
            ["PyWavelets, per image (float64)", "front end, float64", "front end, float32"]
        ),
    )
    values = {"speed_ratio_32": t_ref / t32, "speed_ratio_64": t_ref / t64}
    values |= {"speed_images": n, "speed_threads": threads, "speed_K": fe.K[0]}
    return Section(table=table.round(1), numbers=numbers(**values))


def _seconds_per_step(model, x, y, steps: int, eps: float, step: float) -> float:
    t0 = time.perf_counter()
    attacks.pgd(model, x, y, eps, step, steps, restarts=1, seed=0)
    return (time.perf_counter() - t0) / steps


def pgd_step_cost(
    batch: int,
    steps: int,
    rounds: int,
    gradients=("bpda", "projection", "iterated"),
    rho: float = 0.035,
    wavelet: str = "coif1",
    eps: float = 0.2,
    step: float = 0.05,
    device=None,
) -> Section:
    """Seconds per PGD step on the paper's CNN with the front end (each gradient) and without it.

    Same model (untrained weights: they do not change the cost), batch of
    ``batch`` MNIST test images and attack, float32; the variants are timed
    in ``rounds`` interleaved rounds of ``steps`` steps and each reports its
    median, so that a slow moment of the machine hits all of them alike.
    ``table``: steps/s, image-steps/s and the time per step against no front
    end; ``numbers``: ``pgd_extra_<gradient>`` (percent added per step).
    """
    device = torch.device(device or "cpu")
    x, y = data.load_mnist("test")
    x, y = x[:batch].to(device), y[:batch].to(device)
    torch.manual_seed(0)
    cnn = NielsenCNN().to(device).eval()
    variants = {"no front end": cnn}
    for g in gradients:
        fe = SparsifyingFrontEnd(rho, wavelet, gradient=g)
        variants[f"front end, {g}"] = defended(fe, cnn).to(device).eval()
    for model in variants.values():  # warm up (allocations, operator caches)
        _seconds_per_step(model, x, y, 1, eps, step)
    times = {name: [] for name in variants}
    for _ in range(rounds):
        for name, model in variants.items():
            times[name].append(_seconds_per_step(model, x, y, steps, eps, step))
    median = {name: statistics.median(ts) for name, ts in times.items()}
    base = median["no front end"]
    table = pd.DataFrame(
        {
            "steps/s": {n: 1 / t for n, t in median.items()},
            "image-steps/s": {n: batch / t for n, t in median.items()},
            "time per step vs no front end": {n: t / base for n, t in median.items()},
            "spread between rounds %": {
                n: 100 * (max(ts) - min(ts)) / median[n] for n, ts in times.items()
            },
        }
    )
    values = {f"pgd_extra_{g}": 100 * (median[f"front end, {g}"] / base - 1) for g in gradients}
    values |= {"pgd_batch": batch, "pgd_steps": steps, "pgd_rounds": rounds}
    values |= {"pgd_refine_steps": SparsifyingFrontEnd(rho, wavelet).refine_steps}
    return Section(table=table.round(3), times=times, numbers=numbers(**values))


def gpu_measurements(folder: str | Path) -> Section:
    """Every GPU results file of ``folder`` (``*.csv`` with :data:`GPU_COLUMNS`), as one table.

    These are measurements of earlier runs on a lent GPU, read as they were
    recorded (date, commit, device); the page shows them as such. An empty
    or missing folder gives an empty table.
    """
    rows = []
    for path in sorted(Path(folder).glob("*.csv")) if Path(folder).is_dir() else []:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            missing = set(GPU_COLUMNS) - set(reader.fieldnames or ())
            if missing:
                raise ValueError(
                    f"{path} lacks the column(s) {sorted(missing)}; expected {list(GPU_COLUMNS)}"
                )
            rows += [{**r, "value": float(r["value"]), "file": path.name} for r in reader]
    table = pd.DataFrame(rows, columns=[*GPU_COLUMNS, "file"])
    values = {"gpu_rows": len(table), "gpu_files": table["file"].nunique() if len(table) else 0}
    return Section(table=table.drop(columns=["file"]), numbers=numbers(**values))
