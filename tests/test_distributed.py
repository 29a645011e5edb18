"""Two CPU processes (torchrun, gloo) against one: attack outcomes equal exactly, trainings within a stated tolerance.

The worker (``tests/distributed_worker.py``) runs once under ``torchrun
--nproc_per_node 2`` and once as one plain process, each on one thread per
process, with the same CNN weights. Per-image outcomes (correct, norms,
support overlap, evaluations per batch) must be *equal*: each batch is
attacked by one process exactly as the one process attacks it. Trained
weights may differ by the order of floating-point sums (the gradient
all-reduce), so they must agree within ``TRAINING_TOLERANCE``.

Also: the helpers of :mod:`sparsenb.distributed` with one process, and
``sparsenb-book precompute`` under torchrun on a small book, after which
executing the chapter computes nothing new.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sparsenb import distributed, models

from minibook import grid_chapter, write_book

WORKER = Path(__file__).with_name("distributed_worker.py")
#: Largest |difference| allowed between a parameter trained in 2 processes and in 1 (6 SGD steps, lr 0.05, no dropout; measured 1.5e-8).
TRAINING_TOLERANCE = 1e-5


def _env(tmp: Path, data: Path) -> dict:
    env = {**os.environ, "SPARSENB_DATA": str(data), "SPARSENB_CACHE": str(tmp / "cache"), "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    return env


def _torchrun(n: int, *args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(n), *args]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, mnist_root):
    """``{processes: output folder}`` of the worker run in 1 and in 2 processes, from the same CNN."""
    from sparsenb.data import load_mnist
    from sparsenb.training import TrainConfig, fit

    base = tmp_path_factory.mktemp("distributed")
    x, y = load_mnist("train", root=mnist_root)
    cnn = fit(models.CNNConfig(), x[:600], y[:600], TrainConfig(lr=0.05, momentum=0.5, batch_size=50, steps=12, seed=0))
    out = {}
    for n in (1, 2):
        folder = base / f"n{n}"
        folder.mkdir()
        torch.save(cnn.state_dict(), folder / "cnn.pt")
        cmd = [sys.executable, str(WORKER), str(folder)] if n == 1 else _torchrun(2, str(WORKER), str(folder))
        done = subprocess.run(cmd, env=_env(folder, mnist_root), capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-4000:]
        out[n] = folder
    return out


def test_every_per_image_outcome_equals_the_one_process_run(runs):
    one, two = (json.loads((runs[n] / "outcomes.json").read_text()) for n in (1, 2))
    assert one.keys() == two.keys() and len(one) == 18  # plain: 1 clean + 3 attacks x 2 eps; defended: 1 + 2 x 2 x 2 + 2
    for cell in one:
        assert one[cell] == two[cell], cell  # exactly: 0/1, norms, overlaps, evaluations per batch
    n_images = len(next(iter(one.values()))["correct"])
    assert n_images == 45 and all(len(r["correct"]) == n_images for r in two.values())
    assert all(len(r["evaluations"]) == 6 for r in two.values())  # the one-process batches, no padding
    attacked = [r for c, r in two.items() if json.loads(c)[1] == "PGD"]
    assert any(0 < sum(r["correct"]) < n_images for r in attacked)  # not a degenerate comparison


def test_the_result_files_are_the_same_and_no_share_is_left_behind(runs):
    files = {n: sorted(p.relative_to(runs[n] / "results") for p in (runs[n] / "results").rglob("*.json")) for n in (1, 2)}
    assert files[1] == files[2] and len(files[1]) == 18
    assert not list((runs[2] / "results").rglob("*rank*"))
    for rel in files[1]:
        a, b = (json.loads((runs[n] / "results" / rel).read_text()) for n in (1, 2))
        assert a == b


@pytest.mark.parametrize("name", ["frontend", "augmented-adversarial"])
def test_two_process_training_reaches_the_one_process_checkpoint(runs, name):
    one, two = (torch.load(runs[n] / f"trained-{name}.pt", weights_only=True) for n in (1, 2))
    assert one.keys() == two.keys()
    init = models.CNNConfig(dropout=0.0).build().state_dict()
    moved = max((one[k] - init[k]).abs().max().item() for k in one)
    gap = max((one[k] - two[k]).abs().max().item() for k in one)
    assert moved > 1e-3  # training did something
    assert gap <= TRAINING_TOLERANCE, gap


# ---- the helpers with one process ----------------------------------------
def test_one_process_helpers_are_the_identity():
    assert not distributed.active() and distributed.rank() == 0 and distributed.world_size() == 1
    assert distributed.is_writer()
    assert distributed.agree({"a": 1}) == {"a": 1} and distributed.gather(3) == [3]
    assert distributed.shard(5) == [0, 1, 2, 3, 4] and distributed.part(7) == slice(0, 7)
    m = torch.nn.Linear(2, 2)
    assert distributed.data_parallel(m, torch.device("cpu")) is m
    distributed.barrier()


def test_shares_cover_every_item_once(monkeypatch):
    for size in (2, 3, 5):
        monkeypatch.setattr(distributed, "world_size", lambda size=size: size)
        for n in (0, 1, 7, 64):
            shards, parts = [], []
            for r in range(size):
                monkeypatch.setattr(distributed, "rank", lambda r=r: r)
                shards += distributed.shard(n)
                parts += list(range(n))[distributed.part(n)]
            assert sorted(shards) == list(range(n)) and parts == list(range(n))


def test_bad_arguments_name_themselves():
    from sparsenb.checks import ArgumentError

    with pytest.raises(ArgumentError, match="n"):
        distributed.shard(-1)
    with pytest.raises(ArgumentError, match="backend"):
        distributed.init("mpi")


# ---- precompute under torchrun, then the chapter computes nothing -----------
CHAPTER = grid_chapter("steps=8")


def test_precompute_under_torchrun_leaves_only_the_narrative(tmp_path, mnist_root):
    root = tmp_path / "book"
    write_book(root, {"grid": CHAPTER})
    env = _env(tmp_path, mnist_root)
    cmd = _torchrun(2, "-m", "sparsenb.book", "precompute", "--profile", "smoke", "--no-progress")
    done = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    assert "precomputed 1 chapters" in done.stdout and "2 process(es)" in done.stdout
    cache = tmp_path / "cache"
    stored = {p: p.stat().st_mtime_ns for p in cache.rglob("*") if p.is_file()}
    assert any(p.suffix == ".pt" for p in stored) and any("results" in p.parts for p in stored)
    assert not (root / "_build").exists()  # no page, no record
    cmd = [sys.executable, "-m", "sparsenb.book", "execute", "grid", "--profile", "smoke", "--no-progress"]
    done = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    assert {p: p.stat().st_mtime_ns for p in cache.rglob("*") if p.is_file()} == stored  # nothing recomputed or rewritten
