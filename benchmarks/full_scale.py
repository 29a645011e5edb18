"""The multiclass MNIST chapter's heavy work at a profile's scale, timed: what dominates `full`.

    python benchmarks/full_scale.py [--profile full] [--budget-s 420] [--out full_scale.json]
                                    [--gradients bpda,projection,iterated] [--images N]

With the profile's parameters of the multiclass chapter (``book/profiles.toml``)
it trains, or reads from the checkpoint store, the undefended and the
defended CNN; runs Table II's PGD cells through the experiment layer (the
undefended CNN first, then the front end with each gradient) on the
profile's test images, timing each cell and counting the image-steps it
executed against the nominal ``restarts * (steps + 1)`` per image (after a
probe of each victim's evaluations/s: 10 PGD steps on one batch); and
measures the front end's throughput in images/s, on a GPU against the
floor that memory bandwidth sets (each image read and written once).

It starts no new cell once ``--budget-s`` seconds have passed, and writes
what it measured to ``--out`` (JSON, rewritten after every step, so a run
cut short keeps what finished). Runs on the GPU where there is one, else on
the CPU (slowly at ``full``; ``--profile smoke`` proves the script).
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from sparsenb import attacks
from sparsenb.chapters import mnist_multiclass as mnist
from sparsenb.book.layout import chapter_parameters
from sparsenb.cache import atomic_write_json
from sparsenb.lab.grid import Attack, Grid, run
from sparsenb.frontend import GRADIENTS, SparsifyingFrontEnd

#: HBM bandwidth of the GPUs this has run on (bytes/s), for the front end's floor.
BANDWIDTH = {"H200": 4.8e12, "H100": 3.35e12}


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def frontend_throughput(x: torch.Tensor, rho: float, wavelet: str, device, repeats: int = 5) -> dict:
    """Images/s of the front end (no autograd) on ``x`` replicated to a large batch, best of ``repeats``."""
    fe = SparsifyingFrontEnd(rho, wavelet).to(device)
    out = {}
    for n in (10_000, 100_000) if device.type == "cuda" else (10_000,):
        xb = x.repeat((n + len(x) - 1) // len(x), 1, 1, 1)[:n].to(device, torch.float32)
        with torch.no_grad():
            fe(xb)
            best = float("inf")
            for _ in range(repeats):
                sync(device)
                t0 = time.perf_counter()
                fe(xb)
                sync(device)
                best = min(best, time.perf_counter() - t0)
        row = {"images": n, "seconds": best, "images_per_s": n / best}
        if device.type == "cuda":
            name = torch.cuda.get_device_name(device)
            bw = next((v for k, v in BANDWIDTH.items() if k in name), None)
            if bw:
                floor = bw / (2 * xb[0].numel() * 4)  # read and write each float32 image once
                row.update(floor_images_per_s=floor, share_of_floor=(n / best) / floor)
        out[str(n)] = row
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="full")
    p.add_argument("--budget-s", type=float, default=420.0, help="start no new cell after this many seconds")
    p.add_argument("--out", default="full_scale.json")
    p.add_argument("--gradients", default=",".join(GRADIENTS), help="front-end gradients, in order")
    p.add_argument("--images", type=int, default=0, help="attack the first N of the profile's test images (0: all)")
    args = p.parse_args(argv)

    t_start = time.perf_counter()
    prm = chapter_parameters(args.profile, "mnist_multiclass")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    report = {"profile": args.profile, "device": torch.cuda.get_device_name(0) if device.type == "cuda" else
              f"CPU ({torch.get_num_threads()} threads)", "torch": torch.__version__, "steps": []}

    def record(step: str, **values):
        report["steps"].append({"step": step, **values})
        report["elapsed_s"] = time.perf_counter() - t_start
        atomic_write_json(Path(args.out), report)
        print(json.dumps(report["steps"][-1]), flush=True)

    x, y = mnist.test_images(prm["n_images"], prm["seed"])
    if args.images:
        x, y = x[: args.images], y[: args.images]
    record("front end throughput", **frontend_throughput(x, prm["rho"], prm["wavelet"], device))

    t0 = time.perf_counter()
    victims, x_train, _ = mnist.cnn_victims(prm["n_train"], prm["epochs"], prm["seed"], prm["rho"], prm["wavelet"],
                                            prm["refine_steps"], prm["refine_step"], device, progress=False)
    sync(device)
    record("train both CNNs", seconds=time.perf_counter() - t0, images=len(x_train), epochs=prm["epochs"])

    probe = {}
    xb, yb = x[: prm["batch_size"]].to(device), y[: prm["batch_size"]].to(device)
    for victim, gradient in [("no defense", None)] + [("front end", g) for g in GRADIENTS]:
        model = victims[victim].model(gradient)
        attacks.pgd(model, xb[:8], yb[:8], prm["eps"], prm["pgd_step"], 1)  # warm-up
        sync(device)
        t0 = time.perf_counter()
        attacks.pgd(model, xb, yb, prm["eps"], prm["pgd_step"], 10, restarts=1, max_batch=1)  # 10 steps on every image
        sync(device)
        probe[f"{victim} {gradient or ''}".strip()] = len(xb) * 11 / (time.perf_counter() - t0)
    record("PGD evaluations/s, one batch, 10 steps", batch=len(xb), **probe)

    pgd = Attack("pgd", step=prm["pgd_step"], steps=prm["pgd_steps"], restarts=prm["pgd_restarts"], seed=prm["seed"])
    nominal = prm["pgd_restarts"] * (prm["pgd_steps"] + 1)
    x, y = x.to(device), y.to(device)
    cells = [("no defense", None)] + [("front end", g) for g in args.gradients.split(",") if g]
    for victim, gradient in cells:
        if time.perf_counter() - t_start > args.budget_s:
            record(f"PGD {victim} {gradient or ''}".strip(), skipped="budget spent")
            continue
        grid = Grid({victim: victims[victim]}, {"PGD": pgd}, eps=[prm["eps"]], gradients=[gradient or "bpda"])
        t0 = time.perf_counter()
        outcomes = run(grid, x, y, prm["batch_size"], progress=False)
        sync(device)
        seconds = time.perf_counter() - t0
        evals = outcomes.evaluations(victim, "PGD", gradient, prm["eps"])
        acc = outcomes.accuracy(victim, "PGD", gradient, prm["eps"])
        record(f"PGD {victim} {gradient or ''}".strip(), seconds=seconds, images=len(x), accuracy_percent=acc[0],
               evaluations_per_image=evals, nominal_per_image=nominal, share_of_nominal_percent=100 * evals / nominal,
               evaluations_per_s=evals * len(x) / seconds)
    report["done"] = True
    atomic_write_json(Path(args.out), report)


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    main()
