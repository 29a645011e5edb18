r"""The result store: every computation of the book keyed by what computed it, stored once, read back after.

Three kinds of things are stored, each under a key that holds everything that
decides its value, and nothing else:

* **any computation**, :func:`stored`: ``fn(*args, **kwargs)``, keyed by the
  function's name, its arguments (models by their weights, architecture and
  front-end settings; tensors by a fingerprint; dataclasses by their fields;
  numbers, strings and lists as they are) and the code (below);
* **checkpoints**, :func:`trained`: :func:`sparsenb.training.fit`'s model
  as a ``state_dict`` plus its config (loadable with ``weights_only=True``),
  keyed by the model and training configs, the front end's settings, the
  augmentation and adversary, a fingerprint of the training data and the
  code; :func:`trained_svm` does the same for the linear SVM;
* **attack cells** of an experiment grid (:func:`sparsenb.lab.grid.run`,
  per image, resumable per batch), with the same key helpers.

*The code* in every key is one rule (:func:`sparsenb.cache.code_of`): the
syntax trees, docstrings and comments excluded, of the ``sparsenb`` modules
that the function and the models, configs and attacks it is given
transitively import. New code recomputes; a comment edit does not.

A finished entry is written atomically, so a killed run leaves either the
entry or nothing; a damaged file is recomputed. In a process group
(:mod:`sparsenb.distributed`) process 0 decides what is stored and writes.

**Results computed elsewhere.** Every lookup goes through :func:`lookup`:
the entry under this code's key when the cache has it; else, when
:data:`RESULTS_ENV` names a results bundle (:mod:`sparsenb.lab.bundle`,
computed at another commit), the bundle's entry whose key is the same in
everything but the code (:func:`loose_digest`). Inside a build every entry a
chapter reads or writes is logged (:data:`USED_ENV`), which is how a bundle
knows what the pages rest on.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from .. import checks, distributed, training
from ..cache import (
    atomic_write_bytes,
    atomic_write_json,
    cache_dir,
    code_fingerprint,
    code_of,
    data_fingerprint,
    model_fingerprint,
    modules_of,
)
from ..frontend import SparsifyingFrontEnd
from ..models.linear import LinearClassifier
from ..training import SVMConfig

#: Third-party libraries whose attack code decides results (their version is part of an attack cell's key).
ATTACK_LIBRARIES = ("pyautoattack",)

#: A results bundle whose stored work is read where this cache lacks it (matched on everything but the code).
RESULTS_ENV = "SPARSENB_RESULTS"
#: A file each store entry a chapter reads or writes is logged to (one path per line; set by a build per chapter).
USED_ENV = "SPARSENB_USED"

__all__ = ["RESULTS_ENV", "USED_ENV", "lookup", "log_use", "loose_digest", "stored", "result_key", "trained", "trained_svm", "trained_svms", "load_checkpoint", "model_key", "key_of"]


# --------------------------------------------------------------------------
# any computation
# --------------------------------------------------------------------------
def stored(fn: Callable, *args, folder: str | Path | None = None, **kwargs):
    """``fn(*args, **kwargs)``, computed once and then read back from the cache.

    The key is :func:`result_key`. ``fn`` must return JSON-able data; what a
    later call reads back is that data after a JSON round trip (tuples
    become lists), and so is what the first call returns.
    """
    checks.function(fn, "fn")
    key = result_key(fn, *args, **kwargs)
    path = result_path(key, folder)
    done = distributed.decide(lambda: read(lookup(path, key)))
    if done is not None and done.get("complete"):
        return done["value"]
    value = json.loads(json.dumps(fn(*args, **kwargs)))
    if distributed.is_writer():  # in a process group every process computes it (it may hold collective calls)
        atomic_write_json(path, {"key": key, "complete": True, "value": value})
        log_use(path)
    return value


def result_key(fn: Callable, *args, **kwargs) -> dict:
    """The key :func:`stored` files ``fn(*args, **kwargs)`` under: the function, its arguments and the code."""
    return {
        "kind": f"{fn.__module__}.{fn.__qualname__}",
        "args": [key_of(a) for a in args],
        "kwargs": {k: key_of(v) for k, v in sorted(kwargs.items())},
        "code": code_of(fn, *args, *kwargs.values()),
        "compute": distributed.compute_key(),
    }


def key_of(value):
    """A JSON-able description of an argument that decides a stored value (see :func:`stored`)."""
    if isinstance(value, nn.Module):
        return model_key(value)
    if isinstance(value, torch.Tensor):
        return {"tensor": data_fingerprint(value)}
    if isinstance(value, np.ndarray):  # by content: repr() elides the middle of large arrays
        h = hashlib.sha256(str((value.dtype.str, value.shape)).encode())
        h.update(np.ascontiguousarray(value).tobytes())
        return {"array": h.hexdigest()[:16]}
    if callable(getattr(value, "spec", None)) and not isinstance(value, type):
        return value.spec()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"type": type(value).__name__, **{f.name: key_of(getattr(value, f.name)) for f in dataclasses.fields(value)}}
    if isinstance(value, dict):
        return {str(k): key_of(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [key_of(v) for v in value]
    if callable(value):
        return f"{getattr(value, '__module__', '?')}.{getattr(value, '__qualname__', repr(value))}"
    return jsonable(value)


def model_key(model: nn.Module, weights: str | None = None) -> dict:
    """A model's architecture, weights and front-end settings (with their gradient treatments)."""
    frontends = [
        {**m.settings(), "gradient": m.gradient, "refine_steps": m.refine_steps, "refine_step": m.refine_step}
        for m in model.modules()
        if isinstance(m, SparsifyingFrontEnd)
    ]
    return {"architecture": str(model), "weights": weights or model_fingerprint(model), "frontends": frontends}


def jsonable(value):
    """Numbers, strings, booleans and None as they are (NumPy scalars as Python ones), anything else by ``repr``."""
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)


def library_versions(*objects) -> dict:
    """Versions of the third-party attack libraries that the code of ``objects`` imports (their changes change results)."""
    from importlib import metadata

    from ..cache import imported_libraries, imported_modules

    modules = modules_of(*objects)
    used = set().union(*(imported_libraries(m) for m in imported_modules(*modules))) if modules else set()
    return {lib: metadata.version(lib) for lib in ATTACK_LIBRARIES if lib in used}


def result_path(key: dict, folder=None) -> Path:
    """Where the result with ``key`` lives: ``<folder or cache>/results/<2 hex>/<20 hex>.json``."""
    folder = Path(folder) if folder else cache_dir() / "results"
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    return folder / digest[:2] / f"{digest}.json"


def loose_digest(key: dict) -> str:
    """A key's digest without its code: what an entry computed at another commit is found by (:func:`lookup`)."""
    if not isinstance(key, dict):
        raise checks.fail("key", "a store key (a dict)", key)
    loose = {k: v for k, v in key.items() if k != "code"}
    return hashlib.sha256(json.dumps(loose, sort_keys=True).encode()).hexdigest()[:20]


def lookup(path: Path, key: dict) -> Path:
    """Where the entry filed under ``key`` at ``path`` is read from: ``path`` if it is there, else a bundle's.

    When ``path`` is missing and :data:`RESULTS_ENV` names a results bundle
    whose index has an entry with ``key``'s :func:`loose_digest` (the same
    key computed by other code), that entry's file; else ``path`` (to be
    computed and written there). The path returned is logged
    (:func:`log_use`) when it exists.
    """
    path = Path(path)
    if not path.is_file():
        bundle = os.environ.get(RESULTS_ENV, "").strip()
        if bundle:
            found = _bundle_index(bundle).get(loose_digest(key))
            if found is not None and (Path(bundle) / found).is_file():
                path = Path(bundle) / found
    if path.is_file():
        log_use(path)
    return path


def log_use(path: Path) -> None:
    """Append ``path`` to the file :data:`USED_ENV` names (inside a build; nothing otherwise)."""
    log = os.environ.get(USED_ENV, "").strip()
    if log and distributed.is_writer():
        Path(log).parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a") as f:  # one short line per write: appends do not interleave
            f.write(f"{Path(path).resolve()}\n")


_INDEXES: dict = {}


def _bundle_index(bundle: str) -> dict:
    """A results bundle's ``index.json`` (loose digest to the entry's path in the bundle), read once per process."""
    index_path = Path(bundle) / "index.json"
    stamp = index_path.stat().st_mtime_ns if index_path.is_file() else None
    held = _INDEXES.get(bundle)
    if held is None or held[0] != stamp:
        if stamp is None:
            raise checks.ArgumentError(RESULTS_ENV, f"names {bundle}, which is not a results bundle (no index.json)")
        _INDEXES[bundle] = held = (stamp, json.loads(index_path.read_text()))
    return held[1]


def read(path: Path):
    """A stored JSON file, or None when it is missing or damaged (then it is recomputed)."""
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, OSError):
        return None


# --------------------------------------------------------------------------
# checkpoints
# --------------------------------------------------------------------------
def trained(
    model_config,
    x: torch.Tensor,
    y: torch.Tensor,
    config,
    frontend: nn.Module | None = None,
    augment=None,
    adversary=None,
    name: str | None = None,
    progress: bool = False,
    device=None,
    folder: str | Path | None = None,
) -> nn.Module:
    """:func:`sparsenb.training.fit`, trained once per key and then loaded (on the CPU; callers move it).

    The key holds ``model_config``, ``config``, the front end's settings,
    ``augment`` and ``adversary`` (dataclasses, so that their settings are
    part of the key), a fingerprint of ``(x, y)`` and the code of the
    training loop (:mod:`sparsenb.training` and what it imports) and of the
    modules of everything it is given. The finished checkpoint is
    ``{"state_dict", "model_config", "key", "log"}`` (``log``: the model's
    ``fit_log``, its epochs' seconds and guard accuracies, restored on
    loading as ``model.fit_log``) in
    ``<cache>/checkpoints/<name>-<hash>.pt`` with the key beside it as JSON;
    while training, the per-epoch state lives in ``<name>-<hash>.train.pt``,
    so a killed run resumes.
    """
    x, y, on = training.check_fit(model_config, x, y, config, frontend, augment, adversary, device)
    key = {
        "compute": distributed.compute_key(on),
        "model": _spec(model_config, "model_config"),
        "training": _spec(config, "config"),
        "frontend": None if frontend is None else _frontend_spec(frontend, adversary is not None),
        "augment": _spec(augment, "augment"),
        "adversary": _spec(adversary, "adversary"),
        "data": data_fingerprint(x, y),
        "code": code_fingerprint("training", *modules_of(model_config, config, frontend, augment, adversary)),
    }
    name = name or type(model_config).__name__.removesuffix("Config").lower()
    path = _checkpoint_path(name, key, folder)
    found = lookup(path, key)
    if distributed.decide(found.is_file):  # the processes share the cache folder
        return load_checkpoint(found, model_config)
    partial = path.with_suffix(".train.pt")
    model = training.fit(model_config, x, y, config, frontend, augment, adversary, partial, progress, device)
    if distributed.is_writer():
        _save_checkpoint(path, model, model_config, key)
        partial.unlink(missing_ok=True)
        log_use(path)
    return model.cpu()


def load_checkpoint(path: str | Path, model_config) -> nn.Module:
    """Rebuild ``model_config.build()`` and load a checkpoint saved by :func:`trained` (``weights_only=True``)."""
    state = torch.load(path, weights_only=True, map_location="cpu")
    if state.get("model_config") != _spec(model_config, "model_config"):
        raise checks.ArgumentError("model_config", f"does not match the checkpoint {path} ({state.get('model_config')})")
    model = model_config.build()
    model.load_state_dict(state["state_dict"])
    model.fit_log = state.get("log")
    return model.eval()


def trained_svm(x: torch.Tensor, y: torch.Tensor, config: SVMConfig = SVMConfig(), frontend=None, folder=None) -> LinearClassifier:
    """:func:`sparsenb.training.train_linear_svm` on ``frontend(x)``, fitted once per key (config, front end, data, code) and then loaded.

    The code is that of :mod:`sparsenb.training` and of the config's and the
    front end's modules, with what they transitively import.
    """
    return trained_svms(x, y, config, {"svm": frontend}, workers=1, folder=folder)["svm"]


def trained_svms(x: torch.Tensor, y: torch.Tensor, config: SVMConfig, frontends: dict, workers: int | None = None,
                 folder=None) -> dict:
    """:func:`trained_svm` for each front end of ``frontends`` (name to a front end, or None), the missing ones fitted side by side.

    The SVMs not stored yet are fitted in ``workers`` processes (default: one
    per CPU core; :func:`sparsenb.training.train_linear_svms`), each exactly
    as it would be alone, and stored under the key :func:`trained_svm` uses.
    In a process group every process fits them and process 0 writes.
    Returns name to :class:`~sparsenb.models.linear.LinearClassifier`, in
    ``frontends``' order.
    """
    checks.images(x, "x")
    checks.labels(y, "y", n=len(x), classes=2)
    if not isinstance(frontends, dict) or not frontends:
        raise checks.fail("frontends", "a non-empty dict of name to front end (or None)", frontends)
    if workers is None:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    workers = checks.integer(workers, "workers", 1)
    data = data_fingerprint(x, y)
    out, missing = {}, {}
    for name, frontend in frontends.items():
        key = {
            "model": _spec(config, "config"),
            "frontend": None if frontend is None else _frontend_spec(frontend, False),
            "data": data,
            "code": code_fingerprint("training", *modules_of(config, frontend)),
            "dtype": str(x.dtype),
            "compute": distributed.compute_key("cpu"),  # scikit-learn fits on the CPU
        }
        path = _checkpoint_path("svm", key, folder)
        found = lookup(path, key)
        if distributed.decide(found.is_file):
            state = torch.load(found, weights_only=True, map_location="cpu")
            out[name] = LinearClassifier.from_weights(state["w"], float(state["b"]), tuple(x.shape[1:]))
        else:
            missing[name] = (frontend, key, path)
    names = list(missing)
    inputs = [training.sparsify_dataset(x, missing[n][0]) for n in names]
    for name, svm in zip(names, training.train_linear_svms(inputs, y, config, workers=workers)):
        out[name] = svm
        if distributed.is_writer():
            _, key, path = missing[name]
            buf = io.BytesIO()
            torch.save({"w": svm.linear.weight.detach().reshape(-1).clone(), "b": float(svm.b.detach()),
                        "key": json.dumps(key, sort_keys=True)}, buf)
            atomic_write_bytes(path, buf.getvalue())
            atomic_write_bytes(path.with_suffix(".json"), json.dumps(key, indent=1, sort_keys=True).encode())
            log_use(path)
    return {name: out[name] for name in frontends}


def _save_checkpoint(path: Path, model: nn.Module, model_config, key: dict) -> None:
    state = {
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "model_config": _spec(model_config, "model_config"),
        "key": json.dumps(key, sort_keys=True),
        "log": getattr(model, "fit_log", None),
    }
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())
    atomic_write_bytes(path.with_suffix(".json"), json.dumps(key, indent=1, sort_keys=True).encode())


def _checkpoint_path(name: str, key: dict, folder) -> Path:
    folder = Path(folder) if folder else cache_dir() / "checkpoints"
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return folder / f"{name}-{digest}.pt"


def _spec(obj, name: str):
    """A JSON-able description of a config, augmentation or adversary (``None`` stays ``None``)."""
    if obj is None:
        return None
    if not dataclasses.is_dataclass(obj) or isinstance(obj, type):
        raise checks.fail(name, "a dataclass instance (its fields are part of the checkpoint's key)", obj)
    fields = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    return {"type": type(obj).__name__, **json.loads(json.dumps(fields, default=str))}


def _frontend_spec(frontend: nn.Module, with_gradient: bool) -> dict:
    if not callable(getattr(frontend, "settings", None)):
        raise checks.fail("frontend", "a front end with settings() (e.g. SparsifyingFrontEnd): they key the checkpoint", frontend)
    settings = dict(frontend.settings())
    if with_gradient:  # an adversary attacks through the front end: how its gradient passes matters
        settings.update(gradient=frontend.gradient, refine_steps=frontend.refine_steps, refine_step=frontend.refine_step)
    return settings
