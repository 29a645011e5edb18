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
- :func:`pgd_cost`: the model evaluations PGD spent per image in the grid,
  beside the nominal count of its restarts and steps.

The audit of the grid's victims is :func:`sparsenb.audit.audited`.
"""
from __future__ import annotations

import dataclasses

import torch

from . import checks, data
from .experiments import Attack, Victim
from .frontend import SparsifyingFrontEnd
from .models import CNNConfig
from .training import CNN_TRAINING, trained

__all__ = ["DEFENSES", "cnn_victims", "test_images", "table2_attacks", "pgd_cost"]

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


def pgd_cost(outcomes, restarts: int, steps: int):
    """PGD's model evaluations per image in each cell of ``outcomes``, beside the nominal ``restarts * (steps + 1)``.

    PGD stops restarting an image once it is fooled
    (:func:`sparsenb.attacks.pgd`), so the evaluations the grid counted
    (:meth:`sparsenb.experiments.Outcomes.evaluations`: forward passes, each
    with its backward pass) fall short of the nominal count, which has one
    check per restart besides the steps. Returns a frame indexed by
    ``(victim, gradient)`` ("-" without a front end) with the columns
    "evaluations / image", "nominal / image" and "share of nominal %".
    """
    import pandas as pd

    restarts = checks.integer(restarts, "restarts", 1)
    steps = checks.integer(steps, "steps", 1)
    nominal = restarts * (steps + 1)
    cells = [c for c in outcomes.results if c.attack == "PGD"]
    if not cells:
        raise checks.ArgumentError("outcomes", "holds no PGD cell")
    frame = pd.DataFrame(
        {(c.victim, c.gradient or "-"): {"evaluations / image": outcomes.evaluations(c.victim, "PGD", c.gradient, c.eps),
                                         "nominal / image": nominal} for c in cells}
    ).T
    frame["share of nominal %"] = 100 * frame["evaluations / image"] / nominal
    return frame
