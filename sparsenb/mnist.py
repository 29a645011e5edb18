r"""The paper's multiclass MNIST experiment (Sec. VI-B), declared once: its two CNNs, its test images, its attacks, and their audit.

The multiclass chapter runs it and the adaptive-evaluation chapter reads it
back: both call these functions with the same parameters, so every
checkpoint (:func:`sparsenb.training.trained`) and every per-image outcome
(:func:`sparsenb.experiments.run`) is computed once and then read from the
store.

- :func:`cnn_victims`: the four-layer CNN trained on clean images ("no
  defense") and retrained with the front end inside its training graph
  ("front end"), as :class:`~sparsenb.experiments.Victim`.
- :func:`test_images`: the seeded subset of the test set that is attacked.
- :func:`table2_attacks`: the paper's six attacks (and no attack) with the
  chapter's step sizes and counts.
- :func:`audited`: for each victim, :func:`sparsenb.audit.worst_case` on a
  seeded random ``n`` of the attacked images (:func:`audit_subset`): the
  grid's outcomes on them are credited as known, and only the strong attacks
  (APGD-CE, APGD-T, FAB-T, Square, the adaptive attack) run on top.
"""
from __future__ import annotations

import dataclasses

import torch

from . import audit, checks, data
from .experiments import Attack, Outcomes, Victim
from .frontend import SparsifyingFrontEnd
from .models import CNNConfig
from .training import CNN_TRAINING, trained

__all__ = ["DEFENSES", "cnn_victims", "test_images", "table2_attacks", "audit_subset", "audited"]

#: The victims' names, as the chapters' tables show them.
DEFENSES = ("no defense", "front end")


def cnn_victims(
    n_train: int,
    epochs: int,
    seed: int,
    rho: float,
    wavelet: str,
    refine_steps: int,
    refine_step: float,
    device: torch.device | str | None = None,
    progress: bool = True,
) -> tuple[dict[str, Victim], torch.Tensor, torch.Tensor]:
    r"""The undefended and the defended CNN (trained, or read from the checkpoint store), and the training images.

    ``n_train`` training images (0: all 60,000, a seeded subset otherwise),
    the book's CNN recipe for ``epochs`` epochs; the front end keeps
    :math:`K = \lfloor \rho N \rfloor` coefficients in ``wavelet`` and
    its iterated-projection gradient refines ``refine_steps`` times by
    ``refine_step``. Returns ``({"no defense": ..., "front end": ...}, x_train, y_train)``.
    """
    n_train = checks.integer(n_train, "n_train", 0)
    epochs = checks.integer(epochs, "epochs", 1)
    seed = checks.seed(seed)
    x_train, y_train = data.subset(*data.load_mnist("train"), n_train or None, seed=seed)
    fe = SparsifyingFrontEnd(rho, wavelet, refine_steps=refine_steps, refine_step=refine_step)
    recipe = dataclasses.replace(CNN_TRAINING, epochs=epochs, seed=seed)
    plain = trained(CNNConfig(), x_train, y_train, recipe, progress=progress, device=device)
    defended = trained(CNNConfig(), x_train, y_train, recipe, frontend=fe, progress=progress, device=device)
    if device is not None:
        plain, defended, fe = plain.to(device), defended.to(device), fe.to(device)
    return {"no defense": Victim(plain), "front end": Victim(defended, fe)}, x_train, y_train


def test_images(n_images: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The attacked test images: a seeded random subset of ``n_images`` of the 10,000 (0: all)."""
    n_images = checks.integer(n_images, "n_images", 0)
    return data.subset(*data.load_mnist("test"), n_images or None, seed=checks.seed(seed))


def table2_attacks(
    ifgsm_step: float,
    ifgsm_steps: int,
    ill_step: float,
    ill_steps: int,
    pgd_step: float,
    pgd_steps: int,
    pgd_restarts: int,
    seed: int,
) -> dict[str, Attack]:
    """The paper's attacks on the CNN (Tables II and V), by the names its tables use, and "no attack"."""
    return {
        "no attack": Attack("none"),
        "FGSM": Attack("fgsm"),
        "locally linear": Attack("locally_linear"),
        "iterative locally linear": Attack("iterative_locally_linear", step=ill_step, steps=ill_steps),
        "iterative FGSM": Attack("ifgsm", step=ifgsm_step, steps=ifgsm_steps),
        "momentum iterative FGSM": Attack("mifgsm", step=ifgsm_step, steps=ifgsm_steps, decay=1.0),
        "PGD": Attack("pgd", step=pgd_step, steps=pgd_steps, restarts=pgd_restarts, seed=seed),
    }


def audit_subset(n_images: int, n: int, seed: int) -> torch.Tensor:
    """Indices (sorted) of a seeded random ``n`` of ``n_images`` attacked images: the ones the audit attacks (all when ``n >= n_images``)."""
    n_images, n = checks.integer(n_images, "n_images", 1), checks.integer(n, "n", 1)
    g = torch.Generator().manual_seed(checks.seed(seed))
    return torch.randperm(n_images, generator=g)[: min(n, n_images)].sort().values


def audited(
    victims: dict[str, Victim],
    outcomes: Outcomes,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    budget: audit.Budget,
    n: int,
    seed: int = 0,
    batch_size: int = 500,
    progress: bool = True,
) -> dict[str, audit.WorstCase]:
    """Per victim, the worst case per image over the grid's attacks and the audit's strong ones, on :func:`audit_subset` of the images.

    ``outcomes`` is the grid the chapter ran on ``(x, y)`` at ``eps``; its
    cells on the audited images are credited as known (no recomputation),
    so only :func:`sparsenb.audit.strong_attacks` of ``budget`` run here.
    """
    if not isinstance(outcomes, Outcomes) or outcomes.n != len(x):
        raise checks.fail("outcomes", f"the Outcomes of the grid run on these {len(x)} images", outcomes)
    if not isinstance(budget, audit.Budget):
        raise checks.fail("budget", "an audit.Budget", budget)
    idx = audit_subset(len(x), n, seed)
    strong = audit.strong_attacks(budget)
    return {
        name: audit.worst_case(v.model(), x[idx], y[idx], eps, budget, attacks=strong, batch_size=batch_size, progress=progress,
                               known=outcomes.by_attack(name, eps=eps, images=idx.tolist(), skip=["no attack"]))
        for name, v in victims.items()
    }
