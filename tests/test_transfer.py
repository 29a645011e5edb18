"""Work in chunks that stop at a deadline, resume, and travel: sparsenb.distributed.before_unit in the attack
grid and the training loop, sparsenb.lab.transfer.pack/unpack, and precompute with a deadline and an export
whose import leaves a book nothing to compute. Tiny models on MNIST digits; the store in ``tmp_path``."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import time

import pytest
import torch
from minibook import grid_chapter, write_book

from sparsenb import distributed, models
from sparsenb.checks import ArgumentError
from sparsenb.frontend import SparsifyingFrontEnd
from sparsenb.lab import grid as grid_module
from sparsenb.lab import transfer
from sparsenb.lab.grid import Attack, Grid, Victim, run
from sparsenb.lab.store import trained
from sparsenb.training import TrainConfig

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def _store(tmp_path, monkeypatch):
    monkeypatch.setenv("SPARSENB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(distributed.DEADLINE_ENV, raising=False)


class _Clock:
    """A perf_counter whose every call is ``step`` seconds after the last."""

    def __init__(self, step: float):
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


# ---- the deadline -----------------------------------------------------------
def test_before_unit_stops_only_what_would_end_late(monkeypatch):
    distributed.before_unit(1e9, "anything")  # no deadline: nothing stops
    monkeypatch.setenv(distributed.DEADLINE_ENV, str(time.time() + 100))
    distributed.before_unit(10, "a short unit")
    with pytest.raises(distributed.DeadlineReached, match="a long unit"):
        distributed.before_unit(1000, "a long unit")
    monkeypatch.setenv(distributed.DEADLINE_ENV, str(time.time() - 1))
    with pytest.raises(distributed.DeadlineReached):
        distributed.before_unit(0, "anything")
    monkeypatch.setenv(distributed.DEADLINE_ENV, "tomorrow")
    with pytest.raises(ArgumentError, match=f"^{distributed.DEADLINE_ENV} "):
        distributed.before_unit(0, "anything")


def _grid(mnist_test):
    x, y = mnist_test
    torch.manual_seed(0)
    cnn = models.CNNConfig().build().eval()
    g = Grid({"fe": Victim(cnn, SparsifyingFrontEnd(0.035, "coif1"))}, {"PGD": Attack("pgd", step=0.1, steps=2)}, eps=[0.2])
    return g, x[:12], y[:12]


def test_an_attack_cell_stops_between_batches_and_resumes_to_the_same_outcomes(mnist_test, monkeypatch, tmp_path):
    g, x, y = _grid(mnist_test)
    monkeypatch.setenv(distributed.DEADLINE_ENV, str(time.time() + 500))
    monkeypatch.setattr(grid_module.time, "perf_counter", _Clock(1000.0))  # every batch seems to take 1000 s
    with pytest.raises(distributed.DeadlineReached, match="batch"):
        run(g, x, y, batch_size=5, progress=False)
    (path,) = (tmp_path / "cache" / "results").rglob("*.json")
    saved = json.loads(path.read_text())
    assert saved["complete"] is False and len(saved["outcomes"]["correct"]) == 5  # the first batch, stored
    monkeypatch.delenv(distributed.DEADLINE_ENV)
    resumed = run(g, x, y, batch_size=5, progress=False)
    monkeypatch.setenv("SPARSENB_CACHE", str(tmp_path / "other"))
    whole = run(g, x, y, batch_size=5, progress=False)
    cell = next(iter(whole.results))
    assert resumed.results[cell]["correct"] == whole.results[cell]["correct"]
    assert resumed.results[cell]["linf"] == whole.results[cell]["linf"]


def test_a_training_stops_between_epochs_and_resumes_to_the_same_weights(mnist_test, monkeypatch, tmp_path):
    from sparsenb import training

    x, y = mnist_test
    x, y = x[:200], y[:200]
    recipe = TrainConfig(lr=0.05, batch_size=50, epochs=3, seed=0)
    monkeypatch.setenv(distributed.DEADLINE_ENV, str(time.time() + 500))
    monkeypatch.setattr(training.time, "perf_counter", _Clock(1000.0))  # every epoch seems to take 1000 s
    with pytest.raises(distributed.DeadlineReached, match="epoch 2"):
        trained(models.CNNConfig(), x, y, recipe)
    assert len(list((tmp_path / "cache" / "checkpoints").glob("*.train.pt"))) == 1  # epoch 1, saved
    monkeypatch.delenv(distributed.DEADLINE_ENV)
    resumed = trained(models.CNNConfig(), x, y, recipe)
    monkeypatch.setenv("SPARSENB_CACHE", str(tmp_path / "other"))
    whole = trained(models.CNNConfig(), x, y, recipe)
    for (k, a), b in zip(resumed.state_dict().items(), whole.state_dict().values()):
        assert torch.equal(a, b), k


# ---- packing the store and merging it elsewhere -------------------------------
def _fill(root, n: int = 30, size: int = 3000) -> dict:
    files = {}
    gen = torch.Generator().manual_seed(0)
    for i in range(n):
        name = f"results/{i:02x}/{i:04d}.json" if i % 3 else f"checkpoints/net-{i}.pt"
        noise = torch.randint(0, 256, (size,), generator=gen, dtype=torch.uint8).numpy().tobytes()  # incompressible
        body = json.dumps({"complete": True, "value": noise.hex()}).encode() if i % 3 else noise
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(body)
        files[name] = body
    (root / "data").mkdir()
    (root / "data" / "mnist.gz").write_bytes(b"not part of the store")
    return files


def test_pack_splits_the_store_into_parts_under_the_limit_and_unpack_restores_it(tmp_path):
    files = _fill(tmp_path / "a")
    parts = transfer.pack(tmp_path / "out", folder=tmp_path / "a", part_bytes=40_000, max_parts=8)
    assert 2 <= len(parts) <= 8
    assert all(p.stat().st_size < 40_000 for p in parts)
    assert [p.name for p in parts] == [f"sparsenb-store-{i}of{len(parts)}.tar.gz" for i in range(1, len(parts) + 1)]
    counts = transfer.unpack(parts, folder=tmp_path / "b")
    assert counts == {"added": len(files), "same": 0, "replaced": 0, "kept": 0, "superseded": 0}
    got = {p.relative_to(tmp_path / "b").as_posix(): p.read_bytes() for p in (tmp_path / "b").rglob("*") if p.is_file()}
    assert got == files  # the data folder stayed behind
    assert transfer.unpack(parts, folder=tmp_path / "b") == {"added": 0, "same": len(files), "replaced": 0, "kept": 0,
                                                              "superseded": 0}


def test_pack_refuses_before_writing_when_the_parts_would_be_too_many(tmp_path):
    _fill(tmp_path / "a")
    with pytest.raises(ArgumentError, match="^max_parts "):
        transfer.pack(tmp_path / "out", folder=tmp_path / "a", part_bytes=40_000, max_parts=1)
    with pytest.raises(ArgumentError, match="^part_bytes "):
        transfer.pack(tmp_path / "out", folder=tmp_path / "a", part_bytes=5_000)
    assert not (tmp_path / "out").exists()


def test_pack_since_takes_only_what_was_written_after(tmp_path):
    _fill(tmp_path / "a", n=6)
    later = time.time() + 10
    new = tmp_path / "a" / "results" / "ff" / "new.json"
    new.parent.mkdir()
    new.write_text(json.dumps({"complete": True, "value": 1}))
    os.utime(new, (later + 1, later + 1))
    (part,) = transfer.pack(tmp_path / "out", since=later, folder=tmp_path / "a")
    with tarfile.open(part) as tar:
        assert tar.getnames() == ["results/ff/new.json"]
    assert transfer.pack(tmp_path / "none", since=later + 5, folder=tmp_path / "a") == []


def test_unpack_prefers_a_finished_result_and_keeps_what_it_cannot_judge(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for root, done in ((a, True), (b, False)):
        (root / "results" / "00").mkdir(parents=True)
        (root / "results" / "00" / "cell.json").write_text(json.dumps({"complete": done, "outcomes": [1] * (3 if done else 1)}))
        (root / "checkpoints").mkdir()
        (root / "checkpoints" / "net.pt").write_bytes(b"weights of " + root.name.encode())
    parts = transfer.pack(tmp_path / "out", folder=a)
    assert transfer.unpack(parts, folder=b) == {"added": 0, "same": 0, "replaced": 1, "kept": 1, "superseded": 0}
    assert json.loads((b / "results" / "00" / "cell.json").read_text())["complete"] is True
    assert (b / "checkpoints" / "net.pt").read_bytes() == b"weights of b"
    # the other way round: a finished result is never replaced by an unfinished one
    parts = transfer.pack(tmp_path / "out2", folder=tmp_path / "b")
    (a / "results" / "00" / "cell.json").write_text(json.dumps({"complete": True, "outcomes": [0]}))
    assert transfer.unpack(parts, folder=a)["kept"] == 2


def test_unpack_checks_every_file_before_writing(tmp_path):
    bad = tmp_path / "bad.tar.gz"
    good = tmp_path / "good.tar.gz"
    for path, name in ((bad, "../escape.json"), (good, "results/00/x.json")):
        src = tmp_path / "x.json"
        src.write_text("{}")
        with tarfile.open(path, "w:gz") as tar:
            tar.add(src, arcname=name)
    with pytest.raises(ArgumentError, match="^paths .*escape"):
        transfer.unpack([good, bad], folder=tmp_path / "store")
    assert not (tmp_path / "store").exists()
    (tmp_path / "junk.tar.gz").write_bytes(b"not a tar file")
    with pytest.raises(ArgumentError, match="^paths .*not a packed store file"):
        transfer.unpack(tmp_path / "junk.tar.gz", folder=tmp_path / "store")
    with pytest.raises(ArgumentError, match="^paths "):
        transfer.unpack([], folder=tmp_path / "store")


# ---- precompute with a deadline and an export; import; the chapter computes nothing -------
CHAPTER = grid_chapter("epochs=2")


def _stored(cache):
    return {p.relative_to(cache): p.stat().st_mtime_ns for p in cache.rglob("*") if p.is_file()}


def test_precompute_exports_what_it_stored_and_the_imported_book_computes_nothing(tmp_path, mnist_root, monkeypatch):
    from sparsenb.book.precompute import precompute

    root = tmp_path / "book"
    book = write_book(root, {"grid": CHAPTER})
    done = precompute("smoke", mnist_root, progress=False, book=book, minutes=60, export=tmp_path / "packed")
    assert done.stopped is None and list(done.times) == ["grid"]
    assert 1 <= len(done.packed) <= transfer.MAX_PARTS
    assert all(p.stat().st_size < transfer.PART_BYTES for p in done.packed)
    # elsewhere: an empty cache, the packed files merged, then the chapter executed
    other = tmp_path / "elsewhere"
    cmd = [sys.executable, "-m", "sparsenb.book", "import", *map(str, done.packed)]
    env = {**os.environ, "SPARSENB_CACHE": str(other), "SPARSENB_DATA": str(mnist_root), "OMP_NUM_THREADS": "1"}
    merged = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=120)
    assert merged.returncode == 0, merged.stderr[-2000:]
    assert "added" in merged.stdout
    before = _stored(other)
    assert before and set(before) == set(_stored(tmp_path / "cache"))
    cmd = [sys.executable, "-m", "sparsenb.book", "execute", "grid", "--profile", "smoke", "--no-progress"]
    ran = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr[-4000:]
    assert _stored(other) == before  # nothing computed, nothing rewritten


def test_precompute_stops_at_the_deadline_and_a_second_run_finishes(tmp_path, mnist_root, monkeypatch):
    from sparsenb import training
    from sparsenb.book.precompute import precompute

    root = tmp_path / "book"
    book = write_book(root, {"grid": CHAPTER})
    monkeypatch.setattr(training.time, "perf_counter", _Clock(1000.0))  # every epoch seems to take 1000 s
    first = precompute("smoke", mnist_root, progress=False, book=book, minutes=1)
    assert first.times == {} and first.stopped.startswith("grid: epoch 2 of training")
    monkeypatch.undo()
    monkeypatch.setenv("SPARSENB_CACHE", str(tmp_path / "cache"))
    second = precompute("smoke", mnist_root, progress=False, book=book, minutes=60)
    assert second.stopped is None and list(second.times) == ["grid"]
    with pytest.raises(ArgumentError, match="^minutes "):
        precompute("smoke", mnist_root, progress=False, book=book, minutes=0)


# ---- device and precision in every key ----------------------------------------
def test_the_precision_policy_and_the_compute_key(monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", True)
    before = torch.get_float32_matmul_precision()
    try:
        distributed.set_precision()
        assert torch.get_float32_matmul_precision() == "highest" and not torch.backends.cudnn.allow_tf32
        assert distributed.compute_key("cpu") == "cpu/fp32"
        assert distributed.compute_key(torch.zeros(1)) == "cpu/fp32"
        assert distributed.compute_key("cuda") == "cuda/fp32"
        torch.backends.cudnn.allow_tf32 = True
        assert distributed.compute_key("cuda") == "cuda/tf32" and distributed.compute_key("cpu") == "cpu/fp32"
        torch.set_float32_matmul_precision("high")
        assert distributed.compute_key("cpu") == "cpu/tf32"
        monkeypatch.setenv(distributed.COMPUTE_ENV, "cuda/fp32")
        assert distributed.compute_key("cpu") == "cuda/fp32"
    finally:
        torch.set_float32_matmul_precision(before)


def test_results_computed_under_another_compute_key_are_not_read_unless_a_run_says_so(mnist_test, monkeypatch, tmp_path):
    g, x, y = _grid(mnist_test)
    first = run(g, x, y, batch_size=6, progress=False)
    files = lambda: sorted((tmp_path / "cache" / "results").rglob("*.json"))
    (path,) = files()
    assert json.loads(path.read_text())["key"]["compute"] == "cpu/fp32"
    monkeypatch.setenv(distributed.COMPUTE_ENV, "cuda/fp32")  # as if it had been computed on a GPU: a new key
    again = run(g, x, y, batch_size=6, progress=False)
    assert len(files()) == 2
    cell = next(iter(first.results))
    assert again.results[cell]["correct"] == first.results[cell]["correct"]


def test_unpack_leaves_out_an_unfinished_training_whose_checkpoint_is_there(tmp_path):
    a = tmp_path / "a" / "checkpoints"
    a.mkdir(parents=True)
    (a / "cnn-1.train.pt").write_bytes(b"epoch 1 of 3")
    (a / "cnn-2.train.pt").write_bytes(b"epoch 2 of 3")
    parts = transfer.pack(tmp_path / "out", folder=tmp_path / "a")
    b = tmp_path / "b" / "checkpoints"
    b.mkdir(parents=True)
    (b / "cnn-1.pt").write_bytes(b"finished")
    assert transfer.unpack(parts, folder=tmp_path / "b") == {"added": 1, "same": 0, "replaced": 0, "kept": 0,
                                                              "superseded": 1}
    assert sorted(p.name for p in b.iterdir()) == ["cnn-1.pt", "cnn-2.train.pt"]
