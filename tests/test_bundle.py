"""The results bundle (sparsenb.lab.bundle): a card per audited network that agrees with its audit, adversarial
examples that are checked again, and stored work read back at another commit (sparsenb.lab.store.lookup) only
through a bundle. A nearest-class-mean classifier behind the front end on real MNIST digits; the store in tmp_path."""
from __future__ import annotations

import copy
import csv
import json
import os

import pytest
import torch

from sparsenb import distributed
from sparsenb.book import cli
from sparsenb.checks import ArgumentError
from sparsenb.frontend import SparsifyingFrontEnd, defended
from sparsenb.lab import audit, bundle, store
from sparsenb.lab import grid as grid_module
from sparsenb.lab.grid import Attack, Grid, Victim, run

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def _store(tmp_path, monkeypatch):
    monkeypatch.setenv("SPARSENB_CACHE", str(tmp_path / "cache"))
    for env in (store.RESULTS_ENV, store.USED_ENV, bundle.CARDS_ENV, distributed.COMPUTE_ENV):
        monkeypatch.delenv(env, raising=False)


@pytest.fixture(scope="module")
def audited(centroids, mnist_test, tmp_path_factory):
    """The audit of the defended nearest-mean classifier at eps 0.15 on 12 of the first 300 test images."""
    x, y = mnist_test[0][:300], mnist_test[1][:300]
    model = defended(SparsifyingFrontEnd(0.035, "coif1"), copy.deepcopy(centroids).float()).eval()
    wc = audit.network_audit(model, x, y, 0.15, audit.SMOKE, 12, seed=0, folder=tmp_path_factory.mktemp("store"))
    return model, wc, x, y  # the data set the audit drew its images from


def test_a_card_says_what_its_audit_measured(audited):
    model, wc, x, y = audited
    info, rows, made = bundle.card("nearest mean, front end", model, wc, x, y, "MNIST test", audit.SMOKE, examples=4)
    p, lo, hi = wc.accuracy()
    assert (info["audited_accuracy"], info["audited_ci95"]) == (round(p, 4), [round(lo, 4), round(hi, 4)])
    assert info["eps"] == 0.15 and info["threat_model"] == "Linf" and info["budget"] == "smoke" and info["upper_bound"]
    assert info["images"] == [int(i) for i in wc.images] and info["n_images"] == 12
    by_attack = {a["attack"]: a for a in info["attacks"]}
    assert set(by_attack) == set(wc.attacks())
    for a, row in by_attack.items():
        assert row["accuracy"] == round(100 * wc.attack_correct(a).mean(), 4)
    # the per-image rows: one per audited image, its index and label, a column per attack and gradient treatment
    assert len(rows) == 12 and [r["robust"] for r in rows] == wc.robust.astype(int).tolist()
    assert [r["image"] for r in rows] == info["images"] and [r["label"] for r in rows] == y[wc.images].tolist()
    assert rows[0].keys() >= {a if g is None else f"{a} / {g}" for a, g in wc.correct}
    assert [r["first broken by"] for r in rows] == [f or "" for f in wc.first]
    assert info["audited_accuracy"] == round(100 * sum(r["robust"] for r in rows) / len(rows), 4)  # card and rows agree
    assert info["model"]["weights"] and info["code"]["fingerprint"] and info["compute"] == distributed.compute_key(x)
    with pytest.raises(ArgumentError, match="^x "):
        bundle.card("m", model, wc, x[:5], y[:5], "MNIST test", audit.SMOKE)  # not the data set the audit drew from


def test_examples_are_remade_misclassified_and_in_the_ball(audited):
    model, wc, xs, ys = audited
    x, y = xs[wc.images], ys[wc.images]  # the audited images, in the audit's order
    lost = [i for i in range(wc.n) if not wc.robust[i] and wc.first[i] != "clean"]
    assert lost, "the fixture must lose some images to attacks"
    _, _, made = bundle.card("m", model, wc, xs, ys, "MNIST test", audit.SMOKE, examples=3)
    assert 0 < len(made["x"]) <= 3 and set(made["position"]) <= set(lost)
    assert torch.equal(made["x"], x[made["position"]])
    assert float((made["x_adv"] - made["x"]).abs().max()) <= 0.15 + 1e-6
    assert float(made["x_adv"].min()) >= 0 and float(made["x_adv"].max()) <= 1
    victim = audit.victim_of(model)
    for j, i in enumerate(made["position"]):
        m = victim.model(made["gradient"][j])
        assert int(m(made["x_adv"][j : j + 1]).argmax()) == int(made["pred"][j]) != int(y[i])
        assert wc.correct[(made["attack"][j], made["gradient"][j])][i] == 0  # an attack that did break it in the audit


def test_write_card_needs_a_folder_and_verify_catches_a_tampered_example(audited, tmp_path, monkeypatch):
    model, wc, x, y = audited
    assert bundle.write_card("m", model, wc, x, y, "MNIST test", audit.SMOKE) is None  # outside a build: nothing
    assert not any(tmp_path.rglob("*.pt"))
    monkeypatch.setenv(bundle.CARDS_ENV, str(tmp_path / "cards"))
    info = bundle.write_card("Nearest mean, front end!", model, wc, x, y, "MNIST test", audit.SMOKE, examples=3)
    stem = "nearest-mean-front-end-eps0.15"
    assert sorted(p.name for p in (tmp_path / "cards").iterdir()) == [f"{stem}.csv", f"{stem}.json", f"{stem}.pt"]
    with open(tmp_path / "cards" / f"{stem}.csv") as f:
        assert len(list(csv.DictReader(f))) == wc.n
    assert bundle.verify(tmp_path / "cards") == {f"{stem}.json": info["examples"]["made"]}
    assert bundle.verify(tmp_path / "cards", models={"Nearest mean, front end!": model})
    other = copy.deepcopy(model)
    with torch.no_grad():
        next(other.parameters()).add_(1.0)
    with pytest.raises(bundle.CardCheckError, match="not the card's network"):
        bundle.verify(tmp_path / "cards", models={"Nearest mean, front end!": other})
    pt = tmp_path / "cards" / f"{stem}.pt"
    made = torch.load(pt, weights_only=True)
    made["x_adv"][0] = (made["x"][0] + 0.3).clamp(0, 1)  # out of the 0.15-ball
    torch.save(made, pt)
    with pytest.raises(bundle.CardCheckError, match="eps-ball"):
        bundle.verify(tmp_path / "cards")
    with pytest.raises(ArgumentError, match="folder"):
        bundle.verify(tmp_path / "nothing")
    (tmp_path / "stray").mkdir()
    (tmp_path / "stray" / "other.json").write_text('{"key": 1}')  # a JSON file that is not a card
    with pytest.raises(ArgumentError, match="no cards"):
        bundle.verify(tmp_path / "stray")


def _counted(calls):
    def total(values):
        calls.append(1)
        return float(sum(values))

    return total


def test_a_bundle_is_read_at_another_commit_only_through_the_bundle(tmp_path, monkeypatch, mnist_test, centroids):
    """Work stored under code A, bundled, is found under code B by its key without the code; not without the bundle."""
    calls: list = []
    total = _counted(calls)
    total.__module__ = "sparsenb.lab.stats"  # code the key can fingerprint
    log = tmp_path / "used.txt"
    monkeypatch.setenv(store.USED_ENV, str(log))
    assert store.stored(total, [1, 2, 3]) == 6.0 and len(calls) == 1
    x, y = mnist_test[0][:6], mnist_test[1][:6]
    g = Grid({"m": Victim(copy.deepcopy(centroids).float().eval())}, {"PGD": Attack("pgd", step=0.05, steps=2)}, eps=[0.1])
    first = run(g, x, y, batch_size=3, progress=False)
    assert len(log.read_text().splitlines()) == 1 + len(first.results)  # the computation and the grid's cells
    out = tmp_path / "bundle"
    info = bundle.write_bundle(out, [log], None, "smoke")
    assert info["entries"] == 1 + len(first.results) and (out / "MANIFEST.json").is_file() and (out / "README.md").is_file()
    with pytest.raises(ArgumentError, match="out"):
        bundle.write_bundle(out, [log], None, "smoke")  # never over an existing bundle
    monkeypatch.delenv(store.USED_ENV)

    # another commit: every key's code differs, in a fresh cache
    monkeypatch.setenv("SPARSENB_CACHE", str(tmp_path / "elsewhere"))
    monkeypatch.setattr(store, "code_of", lambda *objects: "other code")
    monkeypatch.setattr(grid_module, "code_of", lambda *objects: "other code")
    monkeypatch.setenv(store.RESULTS_ENV, str(out))
    assert store.stored(total, [1, 2, 3]) == 6.0 and len(calls) == 1  # read from the bundle
    assert store.stored(total, [1, 2]) == 3.0 and len(calls) == 2  # not in it: computed here

    def boom(*args, **kwargs):
        raise AssertionError("recomputed a bundled cell")

    monkeypatch.setattr(grid_module, "_attack_batch", boom)
    again = run(g, x, y, batch_size=3, progress=False)
    for cell in first.results:
        assert again[cell]["correct"] == first[cell]["correct"]
    monkeypatch.delenv(store.RESULTS_ENV)
    assert store.stored(total, [1, 2, 3]) == 6.0 and len(calls) == 3  # without the bundle: other code recomputes
    with pytest.raises(AssertionError, match="recomputed"):
        run(g, x, y, batch_size=3, progress=False)


def test_cards_of_one_network_from_two_pages_must_agree(audited, tmp_path):
    model, wc, x, y = audited
    for page in ("one", "two"):
        bundle.write_card("m", model, wc, x, y, "MNIST test", audit.SMOKE, examples=1, folder=tmp_path / "cards" / page)
    (tmp_path / "used.txt").write_text("")
    info = bundle.write_bundle(tmp_path / "b", [tmp_path / "used.txt"], tmp_path / "cards", "smoke")
    assert info["cards"] == 1  # one network at one eps: one card
    card_two = tmp_path / "cards" / "two" / "m-eps0.15.json"
    changed = json.loads(card_two.read_text())
    changed["audited_accuracy"] += 5
    card_two.write_text(json.dumps(changed))
    with pytest.raises(bundle.CardCheckError, match="two different cards"):
        bundle.write_bundle(tmp_path / "c", [tmp_path / "used.txt"], tmp_path / "cards", "smoke")
    assert not (tmp_path / "c").exists() and not any(p.name.startswith(".c") for p in tmp_path.iterdir())


def test_the_cli_builds_from_a_bundle_only_when_it_is_one(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(store.RESULTS_ENV, "")  # set here so that the test's end restores them
    monkeypatch.setenv(distributed.COMPUTE_ENV, "")
    assert cli.main(["execute", "frontend", "--results", str(tmp_path)]) == 1
    assert "not a results bundle" in capsys.readouterr().err
    (tmp_path / "MANIFEST.json").write_text(json.dumps({"commit": "abc", "compute": "cuda/fp32", "created": "2026-12-07"}))
    (tmp_path / "index.json").write_text("{}")
    assert cli._use_results(str(tmp_path)) is None
    assert os.environ[store.RESULTS_ENV] == str(tmp_path.resolve())
    assert os.environ[distributed.COMPUTE_ENV] == "cuda/fp32"  # the bundle's entries are keyed by where they were computed
    assert "commit `abc`" in bundle.describe(tmp_path) and "where this build's cache lacks them" in bundle.describe(tmp_path)


def test_every_page_says_at_the_top_that_its_results_came_from_a_bundle(tmp_path, monkeypatch):
    from sparsenb.book.page import provenance

    assert "results read from" not in provenance("smoke").data
    (tmp_path / "MANIFEST.json").write_text(json.dumps({"commit": "0123456789abcdef", "dirty": True, "compute": "cuda/fp32",
                                                        "created": "2026-12-07T10:00:00Z"}))
    monkeypatch.setenv(store.RESULTS_ENV, str(tmp_path))
    note = provenance("smoke").data
    assert "results read from** the bundle" in note and "`0123456789ab` with uncommitted changes" in note
    assert "this build's code is" in note  # the bundle's commit is not this checkout's: said so
