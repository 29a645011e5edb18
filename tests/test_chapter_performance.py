"""sparsenb.chapters.performance: the measurements of the Performance page, on small inputs."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sparsenb.chapters import performance as chapter
from sparsenb.frontend import SparsifyingFrontEnd


def test_pywt_round_trip_is_the_front_end(mnist_test):
    x = mnist_test[0][:20].double()
    fe = SparsifyingFrontEnd(0.035, "coif1")
    ours = fe(x)[:, 0].numpy()
    assert np.abs(chapter.pywt_round_trip(x[:, 0].numpy().copy(), fe.K[0], "coif1") - ours).max() < 1e-10


def test_frontend_speed_reports_both_sides_and_restores_threads(mnist_root, monkeypatch):
    monkeypatch.setenv("SPARSENB_DATA", str(mnist_root))
    threads = torch.get_num_threads()
    s = chapter.frontend_speed(60, repeats=1, threads=1)
    assert torch.get_num_threads() == threads
    t = s.table
    assert t.loc["PyWavelets, per image (float64)", "ratio"] == 1.0
    # the ratio is the other side's time over ours: images/s over PyWavelets' images/s
    ratio = t.loc["front end, float32", "images/s"] / t.loc["PyWavelets, per image (float64)", "images/s"]
    assert s.numbers["speed_ratio_32"] == pytest.approx(ratio, rel=0.01)
    assert s.numbers["speed_images"] == 60.0 and s.numbers["speed_K"] == 27.0


def test_pgd_step_cost_times_each_gradient_against_no_front_end(mnist_root, monkeypatch):
    monkeypatch.setenv("SPARSENB_DATA", str(mnist_root))
    s = chapter.pgd_step_cost(4, 1, 2, gradients=("bpda", "projection"))
    assert list(s.table.index) == ["no front end", "front end, bpda", "front end, projection"]
    assert s.table.loc["no front end", "time per step vs no front end"] == 1.0
    assert all(len(ts) == 2 for ts in s.times.values())  # one timing per round
    rel = s.table.loc["front end, bpda", "time per step vs no front end"]
    assert s.numbers["pgd_extra_bpda"] == pytest.approx(100 * (rel - 1), abs=0.1)
    assert s.numbers["pgd_refine_steps"] == 20.0


def test_gpu_measurements_read_every_file_and_want_the_columns(tmp_path):
    assert chapter.gpu_measurements(tmp_path / "none").numbers == {"gpu_rows": 0.0, "gpu_files": 0.0}
    header = ",".join(chapter.GPU_COLUMNS)
    (tmp_path / "a.csv").write_text(f"{header}\n2026-01-01,abc,GPU X,train,78,s,note\n2026-01-01,abc,GPU X,PGD,1e5,1/s,\n")
    (tmp_path / "b.csv").write_text(f"{header}\n2026-02-01,def,GPU Y,train,60,s,\n")
    s = chapter.gpu_measurements(tmp_path)
    assert s.numbers == {"gpu_rows": 3.0, "gpu_files": 2.0}
    assert s.table["value"].tolist() == [78.0, 1e5, 60.0] and list(s.table.columns) == list(chapter.GPU_COLUMNS)
    (tmp_path / "c.csv").write_text("date,value\n2026-01-01,1\n")
    with pytest.raises(ValueError, match="lacks the column"):
        chapter.gpu_measurements(tmp_path)


def test_the_projects_gpu_results_files_are_readable():
    from sparsenb.cache import PROJECT_ROOT

    s = chapter.gpu_measurements(PROJECT_ROOT / "results" / "gpu")
    assert s.numbers["gpu_rows"] > 0 and s.table["date"].str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()
