"""Where a GPU's time goes, in about six minutes: warm rates, precision, CUDA graphs, the iterated gradient, training.

    python benchmarks/gpu_profile.py [--out results/gpu/<date>-<device>.csv] [--budget-s 360]
                                     [--batches 500,2000,10000] [--quick]

Rows, each written as soon as it is measured (the Performance page's GPU
file format: date, commit, device, measurement, value, unit, note):

* **attack steps/s** (forward and backward of the input gradient, as one PGD
  step) of the four-layer CNN without defense and behind the front end with
  each gradient treatment, per batch size, warm (after a warm-up call), with
  the share of the FP32 floor that the CNN's 17.6 MFLOP per step set;
* **TF32 on and off** (a GPU only): the CNN's step rate either way and the
  largest change of a logit;
* **CUDA graph against eager** (a GPU only): one PGD step of the CNN
  captured as a graph and replayed, whether the result equals eager's bit
  for bit, and the speed-up;
* **the iterated projection's backward alone**, per batch size;
* **training steps/s** of the CNN (batches of 64 and 512) and of ResNet-32
  (batches of 128), with SGD.

No measurement starts once ``--budget-s`` seconds have passed (the rest are
written as skipped). On a CPU the GPU-only rows are written as skipped, and
``--quick`` (small batches, one repeat) proves the script in seconds; the
test suite runs it so.
"""
from __future__ import annotations

import argparse
import csv
import datetime
import io
import subprocess
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from sparsenb import models
from sparsenb.cache import atomic_write_text
from sparsenb.frontend import GRADIENTS, SparsifyingFrontEnd, defended

COLUMNS = ("date", "commit", "device", "measurement", "value", "unit", "note")
#: FP32 peak of the GPUs this has run on (FLOP/s; dense, no TF32).
FP32_PEAK = {"H200": 67e12, "H100": 67e12}
#: The CNN's cost of one attack step (forward and input backward), FLOP per image.
CNN_STEP_FLOP = 17.6e6


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _best_seconds(fn, device, repeats: int) -> float:
    fn()  # warm
    _sync(device)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return best


def _input_gradient(model, x, y):
    xr = x.detach().requires_grad_(True)
    with torch.enable_grad():
        loss = F.cross_entropy(model(xr), y)
        (g,) = torch.autograd.grad(loss, xr)
    return g


def _pgd_step(model, x0, x, y, eps: float, step: float):
    g = _input_gradient(model, x, y)
    return torch.minimum(torch.maximum(x + step * g.sign(), x0 - eps), x0 + eps).clamp(0.0, 1.0)


def attack_step_rates(cnn, device, batches, repeats):
    """Warm attack steps/s per victim and batch."""
    peak = next((v for k, v in FP32_PEAK.items() if device.type == "cuda" and k in torch.cuda.get_device_name(device)), None)
    for batch in batches:
        x = torch.rand(batch, 1, 28, 28, device=device)
        y = torch.randint(0, 10, (batch,), device=device)
        victims = [("no defense", cnn)] + [(f"front end, {g}", defended(SparsifyingFrontEnd(0.035, "coif1", gradient=g).to(device), cnn))
                                           for g in GRADIENTS]
        for name, model in victims:
            rate = batch / _best_seconds(lambda m=model: _input_gradient(m, x, y), device, repeats)
            note = f"warm; batch {batch}"
            if peak and name == "no defense":
                note += f"; {100 * rate * CNN_STEP_FLOP / peak:.1f}% of the FP32 floor ({peak / CNN_STEP_FLOP / 1e6:.1f} M/s)"
            yield f"attack steps/s, CNN, {name}, batch {batch}", rate, "1/s", note


def tf32(cnn, device, batch, repeats):
    """The CNN's step rate with TF32 off and on, and the largest change of a logit."""
    if device.type != "cuda":
        yield "TF32 on/off", float("nan"), "", "skipped: no GPU"
        return
    x = torch.rand(batch, 1, 28, 28, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    logits, rates = {}, {}
    try:
        for on in (False, True):
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = on
            with torch.no_grad():
                logits[on] = cnn(x).float()
            rates[on] = batch / _best_seconds(lambda: _input_gradient(cnn, x, y), device, repeats)
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before
    yield f"attack steps/s, CNN, TF32 off, batch {batch}", rates[False], "1/s", "warm"
    yield f"attack steps/s, CNN, TF32 on, batch {batch}", rates[True], "1/s", "warm"
    yield "largest logit change, TF32 on against off", float((logits[True] - logits[False]).abs().max()), "", f"batch {batch}"


def cuda_graph(cnn, device, batch, repeats):
    """One PGD step of the CNN captured as a CUDA graph: equal to eager bit for bit, and how much faster."""
    if device.type != "cuda":
        yield "CUDA graph PGD step equals eager", float("nan"), "", "skipped: no GPU"
        return
    x0 = torch.rand(batch, 1, 28, 28, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    eager = _pgd_step(cnn, x0, x0, y, 0.2, 0.05)
    static_x = x0.clone()
    stream = torch.cuda.Stream(device)
    stream.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(stream):
        for _ in range(3):
            _pgd_step(cnn, x0, static_x, y, 0.2, 0.05)  # warm on a side stream, as capture requires
    torch.cuda.current_stream(device).wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_out = _pgd_step(cnn, x0, static_x, y, 0.2, 0.05)
    graph.replay()
    _sync(device)
    yield "CUDA graph PGD step equals eager", float(torch.equal(static_out, eager)), "", f"batch {batch}; 1 = bit for bit"
    t_eager = _best_seconds(lambda: _pgd_step(cnn, x0, x0, y, 0.2, 0.05), device, repeats)
    t_graph = _best_seconds(graph.replay, device, repeats)
    yield "CUDA graph speed-up of a PGD step", t_eager / t_graph, "x", f"batch {batch}"


def iterated_backward(device, batches, repeats):
    """The iterated projection's backward alone (21 projections), images/s per batch."""
    fe = SparsifyingFrontEnd(0.035, "coif1", gradient="iterated").to(device)
    for batch in batches:
        x = torch.rand(batch, 1, 28, 28, device=device)
        g = torch.randn_like(x)
        rate = batch / _best_seconds(lambda: fe.iterated_gradient(x, g), device, repeats)
        yield f"iterated projection backward, batch {batch}", rate, "images/s", f"{fe.refine_steps} refinements"


def training_steps(device, repeats, quick: bool):
    """SGD steps/s of the CNN and of ResNet-32."""
    setups = [("CNN", models.CNNConfig(), (1, 28, 28), 10, b) for b in ((8,) if quick else (64, 512))]
    setups.append(("ResNet-32", models.ResNetConfig(), (3, 32, 32), 10, 8 if quick else 128))
    for name, config, shape, classes, batch in setups:
        model = config.build().to(device).train()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        x = torch.rand(batch, *shape, device=device)
        y = torch.randint(0, classes, (batch,), device=device)

        def step():
            with torch.enable_grad():
                loss = F.cross_entropy(model(x), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()

        yield f"training steps/s, {name}, batch {batch}", 1 / _best_seconds(step, device, repeats), "1/s", "SGD, warm"


def _commit() -> str:
    try:
        root = Path(__file__).resolve().parent.parent
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                              timeout=10).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=None, help="CSV file (default: gpu_profile-<date>.csv here)")
    p.add_argument("--budget-s", type=float, default=360.0, help="start no measurement after this many seconds")
    p.add_argument("--batches", default=None, help="batch sizes, comma-separated (default: 500,2000,10000 on a GPU, 100,500 on a CPU)")
    p.add_argument("--quick", action="store_true", help="tiny batches, one repeat: proves the script")
    args = p.parse_args(argv)
    t_start = time.perf_counter()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if args.batches:
        batches = [int(b) for b in args.batches.split(",")]
    else:
        batches = [8, 32] if args.quick else [500, 2000, 10000] if device.type == "cuda" else [100, 500]
    repeats = 1 if args.quick else 5
    date = datetime.date.today().isoformat()
    name = (f"{torch.cuda.get_device_name(device)} (torch {torch.__version__}; CUDA {torch.version.cuda})"
            if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads (torch {torch.__version__})")
    out = Path(args.out or f"gpu_profile-{date}.csv")
    commit = _commit()
    rows = []

    def write():
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(COLUMNS)
        w.writerows(rows)
        atomic_write_text(out, buf.getvalue())

    torch.manual_seed(0)
    cnn = models.CNNConfig().build().to(device).eval()
    parts = [
        ("attack step rates", lambda: attack_step_rates(cnn, device, batches, repeats)),
        ("TF32", lambda: tf32(cnn, device, batches[-1], repeats)),
        ("CUDA graph", lambda: cuda_graph(cnn, device, batches[0], repeats)),
        ("iterated backward", lambda: iterated_backward(device, batches, repeats)),
        ("training", lambda: training_steps(device, repeats, args.quick)),
    ]
    for part, measure in parts:
        if time.perf_counter() - t_start > args.budget_s:
            rows.append([date, commit, name, part, "nan", "", f"skipped: the budget of {args.budget_s:.0f} s was spent"])
            write()
            continue
        for measurement, value, unit, note in measure():
            rows.append([date, commit, name, measurement, f"{value:.6g}", unit, note])
            write()
            print(f"{measurement}: {value:.4g} {unit} ({note})", flush=True)
    print(f"wrote {len(rows)} rows to {out} in {time.perf_counter() - t_start:.0f} s")
    return out


if __name__ == "__main__":
    main()
