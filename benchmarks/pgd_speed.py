"""PGD steps per second with the sparsifying front end in the loop against the same PGD without it.

Same model (the paper's four-layer CNN, float32, eval mode), same batch of
MNIST test images, same attack (``sparsenb.attacks.pgd``: eps 0.2, step 0.05,
one restart), in one run. The variants are timed in interleaved rounds and
each reports its median time per step, so that a slow moment of the machine
hits all of them alike.

    python benchmarks/pgd_speed.py [--batch 500] [--steps 20] [--rounds 7] [--iterated]

Prints steps per second (and images x steps per second) per variant and the
ratio of the time per step with the front end to the time without it: the
front end's overhead. ``--iterated`` adds the iterated projection (20 support
refinements inside every backward pass), which is expected to cost more.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from sparsenb import attacks
from sparsenb.data import load_mnist
from sparsenb.frontend import SparsifyingFrontEnd
from sparsenb.frontend import defended
from sparsenb.models import NielsenCNN


def seconds_per_step(model, x, y, steps: int, eps: float, step: float) -> float:
    t0 = time.perf_counter()
    attacks.pgd(model, x, y, eps, step, steps, restarts=1, seed=0)
    return (time.perf_counter() - t0) / steps


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=500, help="images per PGD batch")
    p.add_argument("--steps", type=int, default=20, help="PGD steps per timed run")
    p.add_argument("--rounds", type=int, default=7, help="interleaved timing rounds (median reported)")
    p.add_argument("--rho", type=float, default=0.035)
    p.add_argument("--wavelet", default="coif1")
    p.add_argument("--iterated", action="store_true", help="also time the iterated projection")
    p.add_argument("--device", default="cpu")
    p.add_argument("--data", default=None, help="data folder (default: $SPARSENB_DATA)")
    args = p.parse_args(argv)

    device = torch.device(args.device)
    x, y = load_mnist("test", root=args.data)
    x, y = x[: args.batch].to(device), y[: args.batch].to(device)
    torch.manual_seed(0)
    cnn = NielsenCNN().to(device).eval()  # the weights do not change the cost of a step
    variants = {"no front end": cnn}
    gradients = ["bpda", "projection"] + (["iterated"] if args.iterated else [])
    for g in gradients:
        variants[f"front end, {g}"] = defended(SparsifyingFrontEnd(args.rho, args.wavelet, gradient=g), cnn).to(device).eval()

    for model in variants.values():  # warm up (allocations, operator caches)
        seconds_per_step(model, x, y, 2, 0.2, 0.05)
    times = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, model in variants.items():
            times[name].append(seconds_per_step(model, x, y, args.steps, 0.2, 0.05))

    base = statistics.median(times["no front end"])
    print(
        f"device: {device}, threads: {torch.get_num_threads()}, batch: {args.batch}, "
        f"steps per run: {args.steps}, rounds: {args.rounds} (median), K: {variants['front end, bpda'][0].K[0]}"
    )
    for name, ts in times.items():
        t = statistics.median(ts)
        spread = (max(ts) - min(ts)) / t
        print(
            f"{name:24s} {1 / t:8.2f} steps/s  {args.batch / t:10.0f} image-steps/s  "
            f"time ratio {t / base:5.3f}  (front end adds {100 * (t / base - 1):+5.1f}%, run-to-run spread {100 * spread:.0f}%)"
        )


if __name__ == "__main__":
    main()
