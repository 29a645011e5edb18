"""The benchmark scripts run end to end on small inputs and report what they measured."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def _script(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_frontend_speed_checks_equality_and_prints_ratios(mnist_root, capsys):
    threads = torch.get_num_threads()
    try:
        _script("frontend_speed").main(["--n", "300", "--repeats", "1", "--data", str(mnist_root)])
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert "threads: 1, images: 300" in out  # one thread by default, as PyWavelets
    assert out.count("front end, float") == 2 and "PyWavelets, per image" in out


def test_pgd_speed_times_every_variant(mnist_root, capsys):
    _script("pgd_speed").main(["--batch", "8", "--steps", "1", "--rounds", "1", "--no-iterated", "--data", str(mnist_root)])
    out = capsys.readouterr().out
    assert "front end, bpda" in out and "front end, projection" in out and "iterated" not in out


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    """One cache for both runs of full_scale: the second reads the CNNs the first trained."""
    return tmp_path_factory.mktemp("full_scale_cache")


def test_full_scale_smoke_records_every_step(tmp_path, monkeypatch, mnist_root, shared_cache):
    monkeypatch.setenv("SPARSENB_DATA", str(mnist_root))
    monkeypatch.setenv("SPARSENB_CACHE", str(shared_cache))
    out = tmp_path / "report.json"
    _script("full_scale").main(["--profile", "smoke", "--out", str(out), "--gradients", "bpda"])
    report = json.loads(out.read_text())
    assert report["done"] and report["profile"] == "smoke"
    steps = {s["step"]: s for s in report["steps"]}
    assert set(steps) == {"front end throughput", "train both CNNs", "PGD evaluations/s, one batch, 10 steps",
                          "PGD no defense", "PGD front end bpda"}
    for name in ("PGD no defense", "PGD front end bpda"):
        cell = steps[name]
        assert cell["nominal_per_image"] == 2 * (2 + 1)  # smoke: 2 restarts of 2 steps
        assert 0 < cell["evaluations_per_image"] < cell["nominal_per_image"] + 1  # + the shape probe
        assert 0 <= cell["accuracy_percent"] <= 100


def test_full_scale_budget_skips_cells(tmp_path, monkeypatch, mnist_root, shared_cache):
    monkeypatch.setenv("SPARSENB_DATA", str(mnist_root))
    monkeypatch.setenv("SPARSENB_CACHE", str(shared_cache))
    out = tmp_path / "report.json"
    _script("full_scale").main(["--profile", "smoke", "--out", str(out), "--budget-s", "0", "--gradients", "bpda"])
    steps = json.loads(out.read_text())["steps"]
    assert [s.get("skipped") for s in steps if s["step"].startswith("PGD ") and "evaluations/s" not in s["step"]] == \
        ["budget spent", "budget spent"]


def test_gpu_profile_writes_the_performance_pages_rows_and_says_what_it_skipped(tmp_path, capsys):
    import csv
    import math

    from sparsenb.chapters.performance import GPU_COLUMNS, gpu_measurements

    out = tmp_path / "gpu" / "profile.csv"
    _script("gpu_profile").main(["--quick", "--out", str(out)])
    with open(out, newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == GPU_COLUMNS
        rows = list(reader)
    measured = {r["measurement"]: float(r["value"]) for r in rows}
    for g in ("no defense", "front end, bpda", "front end, projection", "front end, iterated"):
        assert measured[f"attack steps/s, CNN, {g}, batch 32"] > 0
    assert measured["training steps/s, ResNet-32, batch 8"] > 0
    assert measured["iterated projection backward, batch 8"] > 0
    skipped = [r for r in rows if r["note"].startswith("skipped")]
    if not torch.cuda.is_available():
        assert {r["measurement"] for r in skipped} == {"TF32 on/off", "CUDA graph PGD step equals eager"}
        assert all(math.isnan(float(r["value"])) for r in skipped)
    assert len(gpu_measurements(out.parent).table) == len(rows)  # the Performance page reads the file as it is
    assert f"wrote {len(rows)} rows" in capsys.readouterr().out


def test_gpu_profile_stops_starting_measurements_when_the_budget_is_spent(tmp_path):
    import csv

    out = tmp_path / "profile.csv"
    _script("gpu_profile").main(["--quick", "--budget-s", "0", "--out", str(out)])
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["measurement"] for r in rows] == ["attack step rates", "TF32", "CUDA graph", "iterated backward", "training"]
    assert all("budget" in r["note"] for r in rows)
