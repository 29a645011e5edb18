"""The paper's numbers read at run time (sparsenb.reference): where they are looked
up, the error when they are missing, and the rows the multiclass chapter uses."""
from __future__ import annotations

import math

import pytest

from sparsenb import reference
from sparsenb.reference import paper_results, paper_value


def test_missing_reference_fails_clearly(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="paper_results.csv") as err:
        paper_results(tmp_path)
    assert str(tmp_path) in str(err.value) and reference.REFERENCE_ENV in str(err.value)
    monkeypatch.setenv(reference.REFERENCE_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="nowhere"):
        paper_results()


def test_environment_variable_points_elsewhere(tmp_path, monkeypatch):
    (tmp_path / "paper_results.csv").write_text(
        "artifact,dataset,model,defense,attack,eps,rho,metric,value,note\n"
        "Table X,MNIST,m,none,a,0.2,,accuracy %,1.5 / - / 3*,\n"
    )
    monkeypatch.setenv(reference.REFERENCE_ENV, str(tmp_path))
    assert reference.reference_dir() == tmp_path.resolve()
    values = paper_value("Table X", attack="a")
    assert values[0] == 1.5 and math.isnan(values[1]) and values[2] == 3.0


def test_multiclass_rows():
    """Every lookup book/mnist_multiclass.md makes finds one row with the expected count of numbers."""
    assert paper_value("Table II", defense="none", attack="none") == [99.31]
    assert paper_value("Table II", defense="front end coif1", attack="none") == [98.97]
    for attack in ("iterative locally linear", "iterative FGSM", "momentum iterative FGSM", "PGD 100 restarts"):
        assert len(paper_value("Table II", defense="none", attack=attack)) == 1
        assert len(paper_value("Table II", defense="front end coif1", attack=attack)) == 1
    assert paper_value("Table II", defense="front end coif1", attack="PGD 100 restarts") == [61.04]
    for attack in ("locally linear", "FGSM", "iterative locally linear", "iterative FGSM", "momentum iterative FGSM", "PGD 100 restarts"):
        assert len(paper_value("Table V", attack=attack)) == 3
    assert paper_value("Table V", attack="PGD 100 restarts") == [64.62, 65.48, 61.04]  # stars dropped
    for n in (20, 100, 1000):
        assert len(paper_value("Table VI", attack=f"iterative FGSM BPDA delta 0.01/0.05/0.1 {n} steps")) == 3
    assert paper_value("App. B-E", attack="Carlini-Wagner L2 (conf 0)") == [0.92]
    note = paper_results().query("artifact == 'App. B-E'")["note"].iloc[0]
    assert "94.18% of examples lie outside" in note
