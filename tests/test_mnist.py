"""sparsenb.chapters.mnist_multiclass: the multiclass experiment's declarations (the Table II attacks, PGD's cost).
The trainings are exercised by the chapters' smoke execution."""
from __future__ import annotations

import pytest

from sparsenb.chapters import mnist_multiclass as mnist
from sparsenb.book.layout import Book, chapter_parameters
from sparsenb.cache import PROJECT_ROOT


def test_table2_attacks_are_the_papers_six_and_no_attack():
    attacks = mnist.table2_attacks(0.01, 100, 0.05, 20, 0.05, 20, 5, seed=3)
    assert list(attacks) == ["no attack", "FGSM", "locally linear", "iterative locally linear", "iterative FGSM",
                             "momentum iterative FGSM", "PGD"]
    assert dict(attacks["PGD"].kwargs) == {"step": 0.05, "steps": 20, "restarts": 5, "seed": 3}


def test_the_audit_chapter_reads_the_multiclass_chapters_results():
    """book/adaptive.md re-declares the multiclass chapter's CNNs, grid and audit to read their stored results back:
    every parameter the two chapters share must be equal in every profile, or the audit chapter would recompute
    (and report) a different experiment."""
    for name in ("smoke", "laptop", "full"):
        adaptive, multiclass = chapter_parameters(name, "adaptive", Book(PROJECT_ROOT)), chapter_parameters(name, "mnist_multiclass", Book(PROJECT_ROOT))
        shared = set(adaptive) & set(multiclass)
        assert {"n_train", "epochs", "n_images", "pgd_restarts", "audit_images", "audit_budget"} <= shared
        assert {k: adaptive[k] for k in shared} == {k: multiclass[k] for k in shared}, name


def test_pgd_cost_sets_the_counted_evaluations_beside_the_nominal_count():
    from sparsenb.lab.grid import Cell

    class Counted:  # the three things pgd_cost reads from an Outcomes
        results = {Cell("no defense", "PGD", None, 0.2): None, Cell("front end", "PGD", "bpda", 0.2): None,
                   Cell("front end", "FGSM", "bpda", 0.2): None}

        def evaluations(self, victim, attack, gradient, eps):
            assert attack == "PGD" and eps == 0.2
            return {"no defense": 29.0, "front end": 84.0}[victim]

        def worst_gradient(self, victim, attack):
            assert (victim, attack) == ("front end", "PGD")
            return "bpda"

    s = mnist.pgd_cost(Counted(), restarts=5, steps=20)
    frame = s.frame
    assert list(frame.index) == [("no defense", "-"), ("front end", "bpda")]
    assert (frame["nominal / image"] == 105).all()
    assert frame.loc[("no defense", "-"), "share of nominal %"] == pytest.approx(100 * 29 / 105)
    assert frame.loc[("front end", "bpda"), "share of nominal %"] == pytest.approx(80.0)
    assert s.numbers == pytest.approx({"pgd_cost_plain": 100 * 29 / 105, "pgd_nominal": 105, "pgd_cost_fe": 80.0})
    assert s.table.loc[("no defense", "-"), "share of nominal %"] == 27.6  # rounded to one decimal for the page
    Counted.results = {Cell("front end", "FGSM", "bpda", 0.2): None}
    with pytest.raises(LookupError, match="no PGD cell"):
        mnist.pgd_cost(Counted(), restarts=5, steps=20)
