"""sparsenb.mnist: the multiclass experiment's declarations (the audit subset, the Table II attacks, argument checks).
The trainings and the audit itself are exercised by the chapters' smoke execution and tests/test_audit.py."""
from __future__ import annotations

import pytest
import torch

from sparsenb import audit, mnist
from sparsenb.checks import ArgumentError
from sparsenb.experiments import Grid, Victim, run


def test_audit_subset_is_a_seeded_sorted_sample():
    a = mnist.audit_subset(1000, 200, seed=0)
    assert len(a) == 200 and len(set(a.tolist())) == 200 and torch.equal(a, a.sort().values)
    assert torch.equal(a, mnist.audit_subset(1000, 200, seed=0)) and not torch.equal(a, mnist.audit_subset(1000, 200, seed=1))
    assert a.max() > 800  # spread over the attacked images, not their first 200
    assert torch.equal(mnist.audit_subset(20, 50, seed=0), torch.arange(20))


def test_table2_attacks_are_the_papers_six_and_no_attack():
    attacks = mnist.table2_attacks(0.01, 100, 0.05, 20, 0.05, 20, 5, seed=3)
    assert list(attacks) == ["no attack", "FGSM", "locally linear", "iterative locally linear", "iterative FGSM",
                             "momentum iterative FGSM", "PGD"]
    assert dict(attacks["PGD"].kwargs) == {"step": 0.05, "steps": 20, "restarts": 5, "seed": 3}


def test_audited_checks_its_arguments(centroids, mnist_test, tmp_path):
    x, y = mnist_test[0][:6], mnist_test[1][:6]
    victims = {"no defense": Victim(centroids.float())}
    out = run(Grid(victims, {"FGSM": audit.Attack("fgsm")}, eps=[0.1]), x, y, progress=False, folder=tmp_path)
    with pytest.raises(ArgumentError, match="^outcomes "):
        mnist.audited(victims, out, x[:5], y[:5], 0.1, audit.SMOKE, 3)
    with pytest.raises(ArgumentError, match="^budget "):
        mnist.audited(victims, out, x, y, 0.1, "smoke", 3)
    with pytest.raises(ArgumentError, match="^n "):
        mnist.audited(victims, out, x, y, 0.1, audit.SMOKE, 0)
    with pytest.raises(ArgumentError, match="^n_train "):
        mnist.cnn_victims(-1, 1, 0, 0.035, "coif1", 2, 0.01)
