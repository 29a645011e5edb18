"""Robust accuracy at several budgets (sparsenb.lab.audit): PGD per budget through the most damaging
gradient treatment, the audited worst case on a seeded subset crediting PGD's outcomes (PGD runs once
per image), and settings that name their bad argument. A nearest-class-mean classifier (float32), a few MNIST test
digits, the SMOKE audit budget."""
from __future__ import annotations

import copy
import functools
import dataclasses

import numpy as np
import pytest
import torch

from sparsenb import attacks, cache
from sparsenb.attacks.registry import REGISTRY
from sparsenb.lab import audit
from sparsenb.lab import audit as robustness
from sparsenb.checks import ArgumentError
from sparsenb.lab.grid import Victim
from sparsenb.frontend import SparsifyingFrontEnd

pytestmark = pytest.mark.usefixtures("one_thread")

SETTINGS = robustness.AttackSettings(pgd_steps=3, pgd_restarts=2, pgd_step_per_eps=0.5, gradients=("bpda", "projection"),
                                     audit_images=6, audit_attacks=("APGD-CE", "Square"), budget=audit.SMOKE)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def victims(centroids):
    net = copy.deepcopy(centroids).float()
    return {"plain": Victim(net), "front end": Victim(net, SparsifyingFrontEnd(0.035, "coif1"))}


@pytest.fixture(scope="module")
def images(mnist_test):
    x, y = mnist_test
    return x[:10].clone(), y[:10].clone()


CELLS = [("plain", 0.1), ("plain", 0.2), ("front end", 0.2)]


@pytest.fixture(scope="module")
def result(victims, images, tmp_path_factory):
    return robustness.robust_accuracy(victims, CELLS, *images, SETTINGS, batch_size=4, folder=tmp_path_factory.mktemp("results"))


def test_pgd_is_the_most_damaging_gradient_treatment(result, victims, images):
    x, y = images
    for victim, eps in CELLS:
        grads = SETTINGS.gradients if victims[victim].frontend is not None else (None,)
        assert set(result.pgd_cells[(victim, eps)]) == set(grads)
        accs = {g: result.pgd(victim, eps, g).mean() for g in grads}
        assert result.pgd_gradient(victim, eps) == min(grads, key=lambda g: (accs[g], str(g)))
        assert result.pgd(victim, eps).mean() == min(accs.values())
    # a cell is PGD itself on all images, with this budget's step
    for victim, gradient in (("plain", None), ("front end", "projection")):
        model = victims[victim].model(gradient)
        adv = attacks.pgd(model, x, y, 0.2, step=0.1, steps=3, restarts=2, seed=0)
        with torch.no_grad():
            direct = (model(adv).argmax(1) == y).int().numpy()
        assert np.array_equal(result.pgd(victim, 0.2, gradient), direct)
    with pytest.raises(ArgumentError):
        result.pgd("plain", 0.2, "bpda")


def test_the_audit_runs_on_a_seeded_subset_and_credits_pgd(result, victims, images):
    x, y = images
    assert np.array_equal(result.audited, audit.subset(len(x), SETTINGS.audit_images, SETTINGS.seed).numpy())
    for victim, eps in CELLS:
        wc = result.worst(victim, eps)
        assert wc.n == SETTINGS.audit_images and wc.eps == eps and wc.known == ("PGD",)
        assert set(a for a, _ in wc.correct) == {"clean", "PGD", "APGD-CE", "Square"}
        grads = SETTINGS.gradients if victims[victim].frontend is not None else (None,)
        for g in grads:  # the audit's PGD is the page's PGD, per audited image
            assert np.array_equal(wc.correct[("PGD", g)], result.pgd(victim, eps, g)[result.audited])
        assert np.all(wc.robust <= result.pgd(victim, eps)[result.audited])  # the worst case is never above PGD
        with torch.no_grad():  # clean outcomes are the audited images' own
            clean = (victims[victim].model()(x[result.audited]).argmax(1) == y[result.audited]).int().numpy()
        assert np.array_equal(wc.correct[("clean", None)], clean)
        p, lo, hi = result.worst_interval(victim, eps)
        assert lo <= p <= hi and p == pytest.approx(100 * wc.robust.mean())


@pytest.mark.parametrize("audited", [6, 10])
def test_pgd_runs_once_per_image(victims, images, monkeypatch, audited):
    calls = []
    real = attacks.pgd

    @functools.wraps(real)  # the same signature: the experiment layer reads it
    def counting(model, x, *args, **kwargs):
        calls.append(len(x))
        return real(model, x, *args, **kwargs)

    monkeypatch.setitem(REGISTRY, "pgd", counting)
    settings = dataclasses.replace(SETTINGS, audit_images=audited, audit_attacks=("FGSM",))
    robustness.robust_accuracy(victims, CELLS, *images, settings, batch_size=len(images[0]))
    # one call per cell and gradient treatment (plain: 2 cells, front end: 1 cell x 2 treatments); the audit runs none
    assert calls == [len(images[0])] * 4


def test_frame_has_a_row_per_cell(result):
    frame = result.frame({"plain": "no defense"})
    assert list(frame["defense"]) == ["no defense", "no defense", "front end"]
    assert list(frame["eps"]) == [0.1, 0.2, 0.2]
    assert {"PGD %", "PGD gradient", "worst case %", "audited images", "broken by"} <= set(frame.columns)
    assert frame.loc[2, "broken by"] == result.worst("front end", 0.2).found_by()
    assert frame.loc[2, "PGD gradient"] in SETTINGS.gradients and frame.loc[0, "PGD gradient"] == "-"


def test_settings_build_the_budget_and_the_attacks():
    assert dict(SETTINGS.pgd(0.2).kwargs) == {"step": 0.1, "steps": 3, "restarts": 2, "seed": 0}
    budget = SETTINGS.audit_budget(0.2)
    assert (budget.pgd_step, budget.pgd_steps, budget.pgd_restarts) == (0.1, 3, 2)
    assert budget.gradients == ("bpda", "projection") and budget.strong_gradients == ("bpda",)
    assert list(SETTINGS.audit_attacks_at(0.2)) == ["APGD-CE", "Square"]
    assert audit.audit_attacks(budget)["PGD"] == SETTINGS.pgd(0.2)  # the audit's PGD is the page's
    # strong gradient attacks go through a treatment that PGD also uses
    only_projection = dataclasses.replace(SETTINGS, gradients=("projection",))
    assert only_projection.audit_budget(0.1).strong_gradients == ("projection",)


@pytest.mark.parametrize(
    "field, value",
    [("pgd_steps", 0), ("pgd_restarts", 0), ("pgd_step_per_eps", 0.0), ("gradients", "bpda"), ("gradients", ("exact",)),
     ("audit_images", 0), ("audit_attacks", ("Square", "Carlini")), ("audit_attacks", ()),
     ("audit_attacks", ("PGD",)), ("budget", "LAPTOP"), ("seed", -1)],
)
def test_settings_name_their_bad_field(field, value):
    with pytest.raises(ArgumentError) as err:
        dataclasses.replace(SETTINGS, **{field: value})
    assert err.value.argument.startswith(field)


def test_robust_accuracy_names_its_bad_argument(victims, images):
    x, y = images
    bad = [({"victims": {}}, "victims"), ({"cells": []}, "cells"), ({"cells": [("other", 0.1)]}, "cells[0]"),
           ({"cells": [("plain", 0.0)]}, "cells[0][1]"), ({"cells": [("plain", 0.1), ("plain", 0.1)]}, "cells"),
           ({"settings": "smoke"}, "settings")]
    for kwargs, name in bad:
        args = {"victims": victims, "cells": CELLS, "settings": SETTINGS} | kwargs
        with pytest.raises(ArgumentError) as err:
            robustness.robust_accuracy(args["victims"], args["cells"], x, y, args["settings"])
        assert err.value.argument == name


def test_unknown_cells_raise(result):
    with pytest.raises(LookupError):
        result.worst("plain", 0.3)
