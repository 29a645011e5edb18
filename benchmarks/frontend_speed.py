"""Images per second of the sparsifying front end against a per-image PyWavelets round trip.

Both sides do the same work on the same 10,000 MNIST test images, in one run:
wavelet analysis, keep the K = floor(rho*N) largest-magnitude coefficients,
synthesis, clip to [0, 1]. The outputs are compared before timing.

    python benchmarks/frontend_speed.py [--n 10000] [--rho 0.035] [--wavelet coif1] [--repeats 3] [--threads 1]

Prints one line per side and the ratio. Timings are the best of ``--repeats``.
Both sides run on ``--threads`` threads (default 1: PyWavelets is
single-threaded, so one thread each is the equal comparison).
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import pywt
import torch

from sparsenb.data import load_mnist
from sparsenb.frontend import SparsifyingFrontEnd


def pywt_round_trip(images: np.ndarray, K: int, wavelet: str, level: int) -> np.ndarray:
    """The straightforward per-image version, as one would write it with PyWavelets."""
    out = np.empty_like(images)
    for i, img in enumerate(images):
        coeffs = pywt.wavedec2(img, wavelet, mode="periodization", level=level)
        arr, slices = pywt.coeffs_to_array(coeffs)
        flat = arr.ravel()
        drop = np.argpartition(np.abs(flat), -K)[:-K]
        flat[drop] = 0.0
        rec = pywt.waverec2(pywt.array_to_coeffs(arr, slices, output_format="wavedec2"), wavelet, mode="periodization")
        out[i] = np.clip(rec, 0.0, 1.0)
    return out


def best_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--rho", type=float, default=0.035)
    p.add_argument("--wavelet", default="coif1")
    p.add_argument("--level", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batch", type=int, default=10_000, help="front-end batch size")
    p.add_argument("--threads", type=int, default=1, help="torch threads (PyWavelets uses one)")
    p.add_argument("--data", default=None, help="data folder (default: $SPARSENB_DATA)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    x, _ = load_mnist("test", root=args.data, dtype=torch.float64)
    x = x[: args.n]
    fe = SparsifyingFrontEnd(args.rho, args.wavelet, args.level)
    K = fe.K[0]
    images = x[:, 0].numpy().copy()

    def ours():
        with torch.no_grad():
            parts = [fe(b) for b in x.split(args.batch)]
        return parts[0] if len(parts) == 1 else torch.cat(parts)  # no copy of a single batch

    # same result first (float64 on both sides)
    ref = pywt_round_trip(images[:500], K, args.wavelet, args.level)
    err = np.abs(ours()[:500, 0].numpy() - ref).max()
    assert err < 1e-10, f"front end and PyWavelets disagree by {err}"

    t_ref = best_time(lambda: pywt_round_trip(images, K, args.wavelet, args.level), args.repeats)
    t64 = best_time(ours, args.repeats)
    x = x.float()
    t32 = best_time(ours, args.repeats)
    n = len(images)
    print(f"threads: {torch.get_num_threads()}, images: {n}, wavelet: {args.wavelet}, level: {args.level}, K: {K}")
    print(f"pywavelets per image : {n / t_ref:12.0f} images/s")
    print(f"front end float64    : {n / t64:12.0f} images/s   ratio {t_ref / t64:6.1f}x")
    print(f"front end float32    : {n / t32:12.0f} images/s   ratio {t_ref / t32:6.1f}x")


if __name__ == "__main__":
    main()
