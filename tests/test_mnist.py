"""sparsenb.mnist: the multiclass experiment's declarations (the Table II attacks, argument checks).
The trainings are exercised by the chapters' smoke execution."""
from __future__ import annotations

import pytest
import torch

from sparsenb import mnist
from sparsenb.checks import ArgumentError


def test_table2_attacks_are_the_papers_six_and_no_attack():
    attacks = mnist.table2_attacks(0.01, 100, 0.05, 20, 0.05, 20, 5, seed=3)
    assert list(attacks) == ["no attack", "FGSM", "locally linear", "iterative locally linear", "iterative FGSM",
                             "momentum iterative FGSM", "PGD"]
    assert dict(attacks["PGD"].kwargs) == {"step": 0.05, "steps": 20, "restarts": 5, "seed": 3}


def test_cnn_victims_checks_its_arguments():
    with pytest.raises(ArgumentError, match="^n_train "):
        mnist.cnn_victims(-1, 1, 0, 0.035, "coif1", 2, 0.01)
