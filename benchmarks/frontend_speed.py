"""Images per second of the sparsifying front end against a per-image PyWavelets round trip.

The measurement of the book's Performance page (:func:`sparsenb.chapters.performance.frontend_speed`),
from the command line: both sides do the same work on the same MNIST test images (wavelet
analysis, keep the K = floor(rho*N) largest-magnitude coefficients, synthesis, clip to [0, 1]),
their outputs are compared before timing, and each side runs on ``--threads`` threads (default 1:
PyWavelets is single-threaded, so one thread each is the equal comparison).

    python benchmarks/frontend_speed.py [--n 10000] [--rho 0.035] [--wavelet coif1] [--repeats 3] [--threads 1]
"""
from __future__ import annotations

import argparse
import os

from sparsenb.chapters.performance import frontend_speed


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=10_000, help="MNIST test images")
    p.add_argument("--rho", type=float, default=0.035)
    p.add_argument("--wavelet", default="coif1")
    p.add_argument("--repeats", type=int, default=3, help="timings per side (the best is kept)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (PyWavelets uses one)")
    p.add_argument("--data", default=None, help="data folder (default: $SPARSENB_DATA)")
    args = p.parse_args(argv)
    if args.data:
        os.environ["SPARSENB_DATA"] = args.data
    s = frontend_speed(args.n, args.rho, args.wavelet, args.repeats, args.threads)
    n = s.numbers
    print(f"threads: {int(n['speed_threads'])}, images: {int(n['speed_images'])}, wavelet: {args.wavelet}, K: {int(n['speed_K'])}")
    print(s.table.to_string())


if __name__ == "__main__":
    main()
