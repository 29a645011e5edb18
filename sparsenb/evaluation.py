"""Measuring models: accuracy with confidence intervals, attacks run in batches
and checked, and sweeps whose finished cells are stored atomically and not
recomputed.
"""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Callable

import torch

from .attacks import check_adversarial, two_class_logits
from .cache import atomic_write_json, cache_dir

#: The modules whose source decides what an attack run computes; their hash
#: keys stored results (:func:`code_fingerprint`).
COMPUTING_MODULES = ("attacks", "basis", "evaluation", "frontend", "models")

__all__ = [
    "predict",
    "accuracy",
    "wilson_interval",
    "accuracy_interval",
    "format_accuracy",
    "run_attack",
    "attack_outcomes",
    "support_overlap",
    "code_fingerprint",
    "ResultStore",
]


@torch.no_grad()
def predict(model, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Predicted classes ``(B,)``; binary models (one logit) predict 1 where it is positive."""
    return torch.cat([two_class_logits(model(b)).argmax(1) for b in x.split(batch_size)])


def accuracy(model, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> float:
    """Share of ``x`` classified as ``y``."""
    return float((predict(model, x, batch_size) == y).double().mean())


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a proportion (95% for z = 1.96)."""
    if n <= 0:
        raise ValueError(f"n must be positive, got {n}")
    if not 0 <= successes <= n:
        raise ValueError(f"successes must lie in [0, {n}], got {successes}")
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def accuracy_interval(correct) -> tuple[float, float, float]:
    """Accuracy in percent and its 95% Wilson interval ``(p, lo, hi)`` from per-image 0/1 outcomes."""
    outcomes = torch.as_tensor(correct).flatten()
    if outcomes.numel() == 0:
        raise ValueError("correct must hold at least one outcome")
    if not bool(((outcomes == 0) | (outcomes == 1)).all()):
        raise ValueError("correct must hold 0/1 (or boolean) outcomes")
    k, n = int(outcomes.sum()), outcomes.numel()
    lo, hi = wilson_interval(k, n)
    return 100 * k / n, 100 * lo, 100 * hi


def format_accuracy(correct, digits: int = 1) -> str:
    """``"p [lo, hi]"``: :func:`accuracy_interval` as text, for tables."""
    p, lo, hi = accuracy_interval(correct)
    return f"{p:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def run_attack(attack: Callable, x: torch.Tensor, y: torch.Tensor, batch_size: int = 500, progress: bool = False, desc: str = "attack", **kwargs) -> torch.Tensor:
    """Apply ``attack(x=..., y=..., **kwargs)`` batch by batch; return all adversarial images."""
    from tqdm.auto import tqdm

    out = []
    batches = list(zip(x.split(batch_size), y.split(batch_size)))
    for xb, yb in tqdm(batches, desc=desc, disable=not progress, leave=False):
        out.append(attack(x=xb, y=yb, **kwargs))
    return torch.cat(out)


def attack_outcomes(
    attack: Callable,
    model,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    batch_size: int = 500,
    frontend=None,
    progress: bool = False,
    **kwargs,
) -> dict[str, list[int]]:
    r"""Attack ``model`` on ``(x, y)`` in batches and return per-image outcomes.

    Runs ``attack(model=model, x=..., y=..., eps=eps, **kwargs)``, checks that
    every adversarial image lies in the :math:`\epsilon`-ball around its input
    and in [0, 1] (:func:`sparsenb.attacks.check_adversarial`), and returns
    ``{"correct": [0/1 per image]}``; given the model's ``frontend``, also
    ``"overlap"``: :math:`|\mathcal{S}_K(x) \cap \mathcal{S}_K(x + e)|` per
    image. Lists, so that a :class:`ResultStore` can keep them.
    """
    x_adv = run_attack(attack, x, y, batch_size, progress=progress, model=model, eps=eps, **kwargs)
    check_adversarial(x_adv, x, eps)
    out = {"correct": (predict(model, x_adv) == y).int().tolist()}
    if frontend is not None:
        out["overlap"] = support_overlap(frontend, x, x_adv).tolist()
    return out


def support_overlap(frontend, x: torch.Tensor, x_adv: torch.Tensor) -> torch.Tensor:
    r""":math:`|\mathcal{S}_K(x) \cap \mathcal{S}_K(x + e)|` per image, summed over channels."""
    return (frontend.support(x) & frontend.support(x_adv)).flatten(1).sum(1)


def code_fingerprint(modules: tuple[str, ...] = COMPUTING_MODULES) -> str:
    """A short hash of the source of these ``sparsenb`` modules.

    Part of a :class:`ResultStore`'s settings, so that results computed by
    older code are not reused once an attack, the front end or a model changes.
    """
    h = hashlib.sha256()
    for module in modules:
        path = Path(__file__).parent / f"{module}.py"
        if not path.is_file():
            raise ValueError(f"modules: sparsenb has no module {module!r}")
        h.update(module.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


class ResultStore:
    """A JSON file of finished results, one entry per key, rewritten atomically after each.

    ``store.get_or_compute(key, fn)`` returns the stored value for ``key`` or
    computes ``fn()``, stores it and returns it; a run that is interrupted
    resumes where it stopped. Values must be JSON-serialisable.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.data = json.loads(self.path.read_text()) if self.path.is_file() else {}

    @classmethod
    def for_run(cls, name: str, settings: dict) -> "ResultStore":
        """A store in ``<cache>/results/`` named after ``name`` and a hash of ``settings``."""
        digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]
        return cls(cache_dir() / "results" / f"{name}-{digest}.json")

    @staticmethod
    def _key(key) -> str:
        return key if isinstance(key, str) else json.dumps(key, sort_keys=True, default=str)

    def __contains__(self, key) -> bool:
        return self._key(key) in self.data

    def __getitem__(self, key):
        return self.data[self._key(key)]

    def get_or_compute(self, key, fn: Callable):
        k = self._key(key)
        if k not in self.data:
            self.data[k] = fn()
            atomic_write_json(self.path, self.data)
        return self.data[k]
