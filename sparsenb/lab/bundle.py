r"""A results bundle: what a build computed, in a folder a user can publish and a reader can check.

A bundle holds, for each audited network, a **card** in the spirit of
RobustBench's ``model_info`` (threat model, :math:`\epsilon`, clean accuracy,
each attack's accuracy and the audited worst case with their images, what it
cost, the code version and device that computed it), its **per-image
outcomes** (one row per audited image, one column per attack and gradient
treatment) and **adversarial examples** of its worst case (images it lost,
each re-made by the attack that broke it first and checked again); and the
**stored work** the pages read (the result store's entries a build logged,
:data:`sparsenb.lab.store.USED_ENV`) with an index that finds each entry by
its key without the code (:func:`sparsenb.lab.store.loose_digest`).

Layout of a bundle folder::

    MANIFEST.json            commit, profile, date, device and precision, versions, counts
    README.md                what is inside, how to check it, how to build pages from it
    cards/<network>.json     one card per network and eps
    cards/<network>.csv      its per-image outcomes
    cards/<network>.pt       its adversarial examples (x, x_adv, y, the prediction, the attack)
    store/...                the result store's entries the pages rest on
    index.json               loose key digest -> path of the entry under store/

The book's pages can be built from a bundle computed at another commit:
``SPARSENB_RESULTS=<bundle>`` (``sparsenb-book build --results <bundle>``)
makes every store lookup fall back on the bundle's entries where this
code's cache lacks them, and each page says so at the top
(:func:`sparsenb.book.page.provenance`). Every attacked accuracy on a card is
an upper bound on the robust accuracy; the audited worst case is the
tightest of them.
"""
from __future__ import annotations

import csv
import datetime
import io
import json
import os
import platform
import re
import shutil
import subprocess
from pathlib import Path

import torch
from torch import nn

from .. import checks, distributed
from ..attacks.base import check_adversarial
from ..cache import PROJECT_ROOT, atomic_write_bytes, atomic_write_json, atomic_write_text, cache_dir, code_of, model_fingerprint
from ..evaluation import accuracy_interval, predict
from ..models.linear import LinearClassifier
from .audit import BUDGETS, Budget, WorstCase, audit_attacks, victim_of
from .store import loose_digest, model_key

__all__ = ["CARDS_ENV", "card", "write_card", "write_bundle", "verify", "manifest", "describe", "used_logs_of", "code_version",
           "CardCheckError"]

#: The folder a build's chapters write their networks' cards into (set by the build for each chapter).
CARDS_ENV = "SPARSENB_CARDS"
#: How many of the worst case's lost images a card re-makes as adversarial examples, by default.
EXAMPLES = 8


class CardCheckError(AssertionError):
    """A bundle's adversarial example is not what its card says (outside the ball or box, or not misclassified)."""


def code_version() -> dict:
    """The git commit of the package's checkout (``None`` outside one) and whether its tracked files differ from it."""
    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10,
                                  check=True).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    commit = git("rev-parse", "HEAD")
    dirty = None if commit is None else bool(git("status", "--porcelain", "--untracked-files=no"))
    return {"commit": commit, "dirty": dirty}


def _budget_name(budget: Budget) -> str:
    return next((name for name, b in BUDGETS.items() if b == budget), "custom")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def card(
    name: str,
    model: nn.Module,
    wc: WorstCase,
    x: torch.Tensor,
    y: torch.Tensor,
    dataset: str,
    budget: Budget,
    kind: str = "audit",
    examples: int = EXAMPLES,
) -> tuple[dict, list[dict], dict]:
    r"""The card of network ``name`` audited by ``wc``, its per-image rows and its adversarial examples.

    ``x, y`` are the data set the audited images were drawn from
    (``wc.images`` index into it: :func:`~sparsenb.lab.audit.network_audit`
    and :func:`~sparsenb.lab.audit.audited` set them); ``budget`` is the
    audit's. ``examples`` of the images lost to an attack (clean errors
    left out), in image order, are re-made: the first of the audit's own
    attacks (not one credited from elsewhere) that broke the image runs
    again on it alone, through the gradient treatment that broke it
    (attacks whose result depends on the batch, Square, only where no other
    attack broke any image), and every re-made image
    is checked in the :math:`\epsilon`-ball and [0, 1] and kept only when
    misclassified; the card says how many were re-made of how many tried.
    Returns ``(card, rows, examples)``: JSON-able dicts and, for examples,
    tensors (``x``, ``x_adv``, ``y``, ``pred``) with the images' indices
    and attacks.
    """
    if not isinstance(name, str) or not name.strip():
        raise checks.fail("name", "the network's name (a non-empty string)", name)
    if not isinstance(wc, WorstCase):
        raise checks.fail("wc", "a WorstCase (lab.audit.worst_case or network_audit)", wc)
    if wc.images is None or len(wc.images) != wc.n:
        raise checks.ArgumentError("wc", "must say which images it audited (wc.images)")
    checks.images(x, "x")
    checks.labels(y, "y", n=len(x))
    if int(max(wc.images)) >= len(x):
        raise checks.ArgumentError("x", f"must be the data set the audit drew from: it has {len(x)} images, the audit used index {int(max(wc.images))}")
    on, dev = torch.as_tensor(wc.images).to(x.device), next(model.parameters()).device
    x, y = x[on].to(dev), y[on].to(dev)  # the audited images, where the model is
    if not isinstance(budget, Budget):
        raise checks.fail("budget", "the audit's Budget", budget)
    examples = checks.integer(examples, "examples", 0)
    checks.choice(kind, "kind", ("audit", "screening"))
    victim = victim_of(model)
    p, lo, hi = wc.accuracy()
    attacks = []
    for a in wc.attacks():
        c = wc.attack_correct(a)
        ap, alo, ahi = accuracy_interval(c)
        ev = wc.evaluations(a)
        attacks.append({
            "attack": a,
            "gradients": [g for (n, g) in wc.correct if n == a],
            "accuracy": round(ap, 4), "ci95": [round(alo, 4), round(ahi, 4)],
            "broke_first": int(sum(f == a for f in wc.first)),
            "only_this_attack": int(wc.only(a).sum()) if a != "clean" else 0,
            "evaluations_per_image": None if ev is None else round(ev, 1),
            "measured_elsewhere": a in wc.known,
        })
    images = [int(i) for i in wc.images]
    rows = []
    columns = list(wc.correct)
    for i in range(wc.n):
        row = {"position": i, "image": images[i], "label": int(y[i])}
        for (a, g) in columns:
            row[a if g is None else f"{a} / {g}"] = int(wc.correct[(a, g)][i])
        row["robust"] = int(wc.robust[i])
        row["first broken by"] = wc.first[i] or ""
        rows.append(row)
    made = _examples(model, wc, x, y, budget, examples)
    version = code_version()
    info = {
        "network": name,
        "dataset": dataset,
        "threat_model": "Linf",
        "eps": float(wc.eps),
        "audit": kind,
        "budget": _budget_name(budget),
        "budget_settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in budget.__dict__.items()},
        "n_images": wc.n,
        "images": images,
        "clean_accuracy": round(100.0 * float(wc.correct[("clean", None)].mean()), 4) if ("clean", None) in wc.correct else None,
        "attacks": attacks,
        "audited_accuracy": round(p, 4),
        "audited_ci95": [round(lo, 4), round(hi, 4)],
        "upper_bound": True,
        "found_by": wc.found_by(),
        "model": {**model_key(model), "parameters": int(sum(t.numel() for t in victim.classifier.parameters()))},
        "code": {**version, "fingerprint": code_of(card, model)},
        "compute": distributed.compute_key(x),
        "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "versions": {"sparsenb": _package_version(), "torch": torch.__version__, "python": platform.python_version()},
        "examples": {"made": len(made["image"]), "tried": made.pop("tried"), "attacks": sorted(set(made["attack"]))},
    }
    return info, rows, made


def _package_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("sparsenb")
    except metadata.PackageNotFoundError:
        return "unknown"


def _examples(model, wc: WorstCase, x, y, budget: Budget, limit: int) -> dict:
    """Re-make up to ``limit`` of the worst case's lost images, each with an audit attack that broke it (see :func:`card`)."""
    victim = victim_of(model)
    attacks = audit_attacks(budget, isinstance(victim.classifier, LinearClassifier), victim.frontend is not None)
    ran = [(a, g) for (a, g) in wc.correct if a in attacks and a not in wc.known]  # in the audit's order

    def breaker(i, invariant):
        return next(((a, g) for (a, g) in ran if wc.correct[(a, g)][i] == 0 and attacks[a].batch_invariant == invariant), None)

    lost = [i for i in range(wc.n) if not wc.robust[i] and wc.first[i] != "clean"]
    chosen = [(i, b) for i in lost if (b := breaker(i, True))]
    chosen = (chosen or [(i, b) for i in lost if (b := breaker(i, False))])[:limit]
    out = {"position": [], "image": [], "attack": [], "gradient": [], "x": [], "x_adv": [], "y": [], "pred": [], "tried": len(chosen)}
    for i, (name, gradient) in chosen:
        m = victim.model(gradient)
        xi, yi = x[i : i + 1], y[i : i + 1]
        x_adv = attacks[name](victim, m, xi, yi, wc.eps)
        check_adversarial(x_adv, xi, wc.eps)
        pred = predict(m, x_adv)
        if bool(pred[0] == yi[0]):
            continue  # not re-made alone (a batch-dependent attack): the card counts it as tried, not made
        out["position"].append(i)
        out["image"].append(int(wc.images[i]))
        out["attack"].append(name)
        out["gradient"].append(gradient)
        out["x"].append(xi.detach().cpu())
        out["x_adv"].append(x_adv.detach().cpu())
        out["y"].append(int(yi[0]))
        out["pred"].append(int(pred[0]))
    for k in ("x", "x_adv"):
        out[k] = torch.cat(out[k]) if out[k] else torch.empty(0, *x.shape[1:])
    out["y"], out["pred"] = torch.tensor(out["y"], dtype=torch.long), torch.tensor(out["pred"], dtype=torch.long)
    return out


def write_card(name: str, model: nn.Module, wc: WorstCase, x, y, dataset: str, budget: Budget, kind: str = "audit",
               examples: int = EXAMPLES, folder=None) -> dict | None:
    """:func:`card`, written to ``folder`` (default: :data:`CARDS_ENV`, set inside a build; else nothing is done).

    Files: ``<slug>-eps<eps>.json`` (the card), ``.csv`` (per-image rows)
    and ``.pt`` (the examples, loadable with ``weights_only=True``), each
    written atomically. Returns the card (None when there is no folder).
    """
    folder = folder or os.environ.get(CARDS_ENV, "").strip() or None
    if folder is None or not distributed.is_writer():
        return None
    info, rows, made = card(name, model, wc, x, y, dataset, budget, kind, examples)
    folder = Path(folder)
    stem = f"{_slug(name)}-eps{wc.eps:g}"
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(folder / f"{stem}.csv", buf.getvalue())
    blob = io.BytesIO()
    torch.save({**made, "eps": float(wc.eps), "network": name, "weights": model_fingerprint(model)}, blob)
    atomic_write_bytes(folder / f"{stem}.pt", blob.getvalue())
    atomic_write_json(folder / f"{stem}.json", {**info, "files": {"outcomes": f"{stem}.csv", "examples": f"{stem}.pt"}})
    return info


def verify(folder, models: dict | None = None) -> dict:
    r"""Check a bundle's cards: every example in the :math:`\epsilon`-ball and [0, 1], and misclassified.

    Without ``models`` the check uses the prediction recorded with each
    example; with ``models`` (``{network name: model}``) each named network
    classifies its examples again, and its weights must be the card's.
    Returns ``{card file: examples checked}``; raises :class:`CardCheckError`
    on the first failure, naming the card and the image.
    """
    folder = Path(folder)
    found = sorted((folder / "cards").glob("*.json")) if (folder / "cards").is_dir() else sorted(folder.glob("*.json"))
    cards = {p: info for p in found if (info := _card_info(p)) is not None}
    if not cards:
        raise checks.ArgumentError("folder", f"holds no cards (a bundle, or its cards/ folder): {folder}")
    models = models or {}
    checked = {}
    for path, info in cards.items():
        made = torch.load(path.with_name(info["files"]["examples"]), weights_only=True)
        eps = float(info["eps"])
        if len(made["x"]) != info["examples"]["made"]:
            raise CardCheckError(f"{path.name}: {len(made['x'])} examples stored, the card says {info['examples']['made']}")
        for j in range(len(made["x"])):
            where = f"{path.name}, image {made['image'][j]} (position {made['position'][j]})"
            try:
                check_adversarial(made["x_adv"][j : j + 1], made["x"][j : j + 1], eps)
            except AssertionError as err:
                raise CardCheckError(f"{where}: {err}") from None
            pred = int(made["pred"][j])
            model = models.get(info["network"])
            if model is not None:
                if model_fingerprint(model) != info["model"]["weights"]:
                    raise CardCheckError(f"{path.name}: the model given for {info['network']!r} is not the card's network")
                victim = victim_of(model)
                m = victim.model(made["gradient"][j])
                pred = int(predict(m, made["x_adv"][j : j + 1].to(next(m.parameters()).device))[0])
            if pred == int(made["y"][j]):
                raise CardCheckError(f"{where}: the adversarial example is classified correctly ({pred})")
        checked[path.name] = len(made["x"])
    return checked


def _card_info(path: Path) -> dict | None:
    """A card's contents, or None when ``path`` is not a card (another JSON file, or damaged)."""
    try:
        info = json.loads(path.read_text())
    except (json.JSONDecodeError, OSError, UnicodeDecodeError):
        return None
    fields = ("network", "eps", "examples", "files", "model")
    if not isinstance(info, dict) or not all(f in info for f in fields) or "examples" not in info["files"]:
        return None
    return info


def manifest(profile: str, used: list[Path], cards: list[Path]) -> dict:
    """What a bundle says about itself: code version, profile, date, device and precision, versions and counts."""
    return {
        "bundle": "sparsenb results",
        **code_version(),
        "profile": profile,
        "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "compute": distributed.compute_key(),
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU ({platform.processor() or platform.machine()})",
        "versions": {"sparsenb": _package_version(), "torch": torch.__version__, "python": platform.python_version()},
        "entries": len(used),
        "cards": len(cards),
    }


def _finished_key(path: Path) -> dict | None:
    """The store key a finished entry was filed under (results: inside the JSON; checkpoints: the JSON beside); None if unfinished."""
    if path.suffix == ".json":
        try:
            entry = json.loads(path.read_text())
        except (json.JSONDecodeError, OSError):
            return None
        return entry.get("key") if entry.get("complete") else None
    beside = path.with_suffix(".json")
    return json.loads(beside.read_text()) if beside.is_file() else None


def write_bundle(out, used_logs, cards_folder, profile: str, store_folder=None) -> dict:
    """Write a results bundle to the new folder ``out`` from a build's logs of used store entries and its cards.

    ``used_logs``: the files the build's chapters logged their store entries
    to (:data:`~sparsenb.lab.store.USED_ENV`); ``cards_folder``: where they
    wrote their cards (:data:`CARDS_ENV`); ``store_folder``: the cache
    folder (default :func:`sparsenb.cache.cache_dir`). Unfinished entries are
    left out. The folder is assembled beside ``out`` and renamed into place,
    so an interrupted call leaves no half bundle. Returns the manifest.
    """
    out = Path(out)
    if out.exists():
        raise checks.ArgumentError("out", f"must be a new folder, {out} exists")
    root = Path(store_folder) if store_folder else cache_dir()
    used: dict[Path, None] = {}
    for log in used_logs:
        for line in Path(log).read_text().splitlines():
            p = Path(line.strip())
            if line.strip() and p.is_file():
                used[p] = None
    cards = sorted(Path(cards_folder).rglob("*.json")) if cards_folder and Path(cards_folder).is_dir() else []
    if not used and not cards:
        raise checks.ArgumentError("used_logs", "name no stored entry and there are no cards: build the book first")
    tmp = out.with_name(f".{out.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "cards").mkdir(parents=True)
    index = {}
    for p in used:
        key = _finished_key(p)
        if key is None:
            continue
        try:
            rel = p.resolve().relative_to(root.resolve())
        except ValueError:  # read from another bundle: keep its place under store/
            rel = Path(*p.parts[p.parts.index("store") + 1 :]) if "store" in p.parts else Path("elsewhere") / p.name
        dest = tmp / "store" / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(p, dest)
        if p.suffix != ".json" and p.with_suffix(".json").is_file():
            shutil.copy2(p.with_suffix(".json"), dest.with_suffix(".json"))
        index[loose_digest(key)] = str(Path("store") / rel)
    seen: dict = {}
    for c in cards:
        info = json.loads(c.read_text())
        same = seen.get(c.name)
        if same is not None:  # two pages wrote a card for one network at one eps: one audited number
            if (same["model"]["weights"], same["audited_accuracy"], same["images"]) != (
                    info["model"]["weights"], info["audited_accuracy"], info["images"]):
                shutil.rmtree(tmp, ignore_errors=True)
                raise CardCheckError(f"two different cards named {c.name}: {same['audited_accuracy']} and {info['audited_accuracy']}")
            continue
        seen[c.name] = info
        for f in [c, *(c.with_name(v) for v in info.get("files", {}).values())]:
            shutil.copy2(f, tmp / "cards" / f.name)
    cards = sorted((tmp / "cards").glob("*.json"))
    info = manifest(profile, list(index), cards)
    (tmp / "index.json").write_text(json.dumps(index, indent=0, sort_keys=True))
    (tmp / "MANIFEST.json").write_text(json.dumps(info, indent=1))
    (tmp / "README.md").write_text(_readme(info, [json.loads(c.read_text()) for c in cards]))
    os.replace(tmp, out)
    return info


def _readme(info: dict, cards: list[dict]) -> str:
    lines = [
        "# sparsenb results bundle",
        "",
        f"Computed at commit `{info['commit']}`{' (with uncommitted changes)' if info['dirty'] else ''}, "
        f"profile `{info['profile']}`, {info['created']}, on {info['device']} (`{info['compute']}`).",
        "",
        "Every attacked accuracy is an upper bound on the robust accuracy; the audited worst case (over every",
        "attack of the audit, per image) is the tightest of them. Cards are `cards/*.json`, per-image outcomes",
        "`cards/*.csv`, adversarial examples `cards/*.pt`.",
        "",
        "| network | dataset | eps | images | clean % | audited worst case % (95% CI) | audit |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for c in sorted(cards, key=lambda c: (c["network"], c["eps"])):
        lo, hi = c["audited_ci95"]
        lines.append(f"| {c['network']} | {c['dataset']} | {c['eps']:g} | {c['n_images']} | {c['clean_accuracy']:.1f} "
                     f"| {c['audited_accuracy']:.1f} [{lo:.1f}, {hi:.1f}] | {c['audit']} |")
    lines += [
        "",
        "Check the examples: `python -c \"from sparsenb.lab.bundle import verify; print(verify('.'))\"`.",
        "Build the book's pages from this bundle (at any commit): `sparsenb-book build --results <this folder>`;",
        "each page then says at the top that its results were read from here where its own cache lacks them.",
        "",
    ]
    return "\n".join(lines)


def describe(folder) -> str:
    """One sentence for a page's provenance: which bundle results are read from, and where it was computed."""
    folder = Path(folder)
    path = folder / "MANIFEST.json"
    if not path.is_file():
        raise checks.ArgumentError("folder", f"is not a results bundle (no MANIFEST.json): {folder}")
    info = json.loads(path.read_text())
    here = code_version()["commit"]
    same = here is not None and here == info.get("commit") and not info.get("dirty")
    commit = (info.get("commit") or "unknown")[:12]
    return (f"the bundle `{folder.name}` (computed at commit `{commit}`"
            f"{' with uncommitted changes' if info.get('dirty') else ''}, {info.get('created', '?')[:10]}, "
            f"`{info.get('compute')}`), where this build's cache lacks them"
            + ("" if same else f"; this build's code is `{(here or 'unknown')[:12]}`, so they may differ from what it would compute"))


def used_logs_of(staging) -> list[Path]:
    """The logs of used store entries a build's chapters wrote in the staging folder ``staging`` (``_build/<profile>``)."""
    folder = Path(staging) / "book" / ".used"
    return sorted(folder.glob("*.txt")) if folder.is_dir() else []

