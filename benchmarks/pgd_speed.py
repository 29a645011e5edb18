"""PGD steps per second with the sparsifying front end in the loop against the same PGD without it.

The measurement of the book's Performance page (:func:`sparsenb.chapters.performance.pgd_step_cost`),
from the command line: the paper's four-layer CNN (float32, eval mode), the same batch of MNIST test
images and the same attack (``sparsenb.attacks.pgd``: eps 0.2, step 0.05, one restart), the variants
timed in interleaved rounds, each reporting its median time per step.

    python benchmarks/pgd_speed.py [--batch 500] [--steps 20] [--rounds 7] [--no-iterated] [--device cpu]
"""
from __future__ import annotations

import argparse
import os

import torch

from sparsenb.chapters.performance import pgd_step_cost


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=500, help="images per PGD batch")
    p.add_argument("--steps", type=int, default=20, help="PGD steps per timed run")
    p.add_argument("--rounds", type=int, default=7, help="interleaved timing rounds (median reported)")
    p.add_argument("--rho", type=float, default=0.035)
    p.add_argument("--wavelet", default="coif1")
    p.add_argument("--no-iterated", action="store_true", help="leave out the iterated projection")
    p.add_argument("--device", default="cpu")
    p.add_argument("--data", default=None, help="data folder (default: $SPARSENB_DATA)")
    args = p.parse_args(argv)
    if args.data:
        os.environ["SPARSENB_DATA"] = args.data
    gradients = ("bpda", "projection") + (() if args.no_iterated else ("iterated",))
    s = pgd_step_cost(args.batch, args.steps, args.rounds, gradients, args.rho, args.wavelet, device=args.device)
    print(f"device: {args.device}, threads: {torch.get_num_threads()}, batch: {args.batch}, steps per run: "
          f"{args.steps}, rounds: {args.rounds} (median)")
    print(s.table.to_string())


if __name__ == "__main__":
    main()
