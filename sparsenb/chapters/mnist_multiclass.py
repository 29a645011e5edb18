r"""The paper's multiclass MNIST experiment (Sec. VI-B), declared once: its two CNNs, its test images, its attacks, and their audit.

The multiclass chapter runs it and the adaptive-evaluation chapter reads it
back: both call these functions with the same parameters, so every
checkpoint (:func:`sparsenb.lab.store.trained`) and every per-image outcome
(:func:`sparsenb.lab.grid.run`) is computed once and then read from the
store.

- :func:`cnn_victims`: the four-layer CNN trained on clean images ("no
  defense") and retrained with the front end inside its training graph
  ("front end"), as :class:`~sparsenb.lab.grid.Victim`.
- :func:`test_images`: the seeded subset of the test set that is attacked.
- :func:`table2_attacks`: the paper's six attacks (and no attack) with the
  chapter's step sizes and counts.
- :func:`pgd_cost`: the model evaluations PGD spent per image in the grid,
  beside the nominal count of its restarts and steps.

The audit of the grid's victims is :func:`sparsenb.lab.audit.audited`.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import torch

from .. import checks, data
from ..attacks import check_adversarial, ifgsm, iterative_locally_linear
from ..evaluation import predict
from ..frontend import SparsifyingFrontEnd
from ..lab.grid import Attack, Victim
from ..lab.store import trained
from ..models.cnn import CNNConfig
from ..theory.switches import flip_share, switch_states
from ..training import CNN_TRAINING

__all__ = [
    "DEFENSES",
    "cnn_victims",
    "test_images",
    "table2_attacks",
    "pgd_cost",
    "run_attack",
    "switch_flips",
    "ifgsm_sweep",
    "one_step_flips",
]

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
    defended = trained(
        CNNConfig(), x_train, y_train, recipe, frontend=fe, progress=progress, device=device
    )
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
        "iterative locally linear": Attack(
            "iterative_locally_linear", step=ill_step, steps=ill_steps
        ),
        "iterative FGSM": Attack("ifgsm", step=ifgsm_step, steps=ifgsm_steps),
        "momentum iterative FGSM": Attack("mifgsm", step=ifgsm_step, steps=ifgsm_steps, decay=1.0),
        "PGD": Attack("pgd", step=pgd_step, steps=pgd_steps, restarts=pgd_restarts, seed=seed),
    }


def pgd_cost(outcomes, restarts: int, steps: int):
    """PGD's model evaluations per image in each cell of ``outcomes``, beside the nominal ``restarts * (steps + 1)``.

    PGD stops restarting an image once it is fooled
    (:func:`sparsenb.attacks.gradient.pgd`), so the evaluations the grid counted
    (:meth:`sparsenb.lab.grid.Outcomes.evaluations`: forward passes, each
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
        {
            (c.victim, c.gradient or "-"): {
                "evaluations / image": outcomes.evaluations(c.victim, "PGD", c.gradient, c.eps),
                "nominal / image": nominal,
            }
            for c in cells
        }
    ).T
    frame["share of nominal %"] = 100 * frame["evaluations / image"] / nominal
    return frame


# --------------------------------------------------------------------------
# Table VI and Figs. 9-10: I-FGSM sweeps and ReLU switch flips
# --------------------------------------------------------------------------
def run_attack(
    attack: Callable,
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int = 500,
    progress: bool = False,
    desc: str = "attack",
    **kwargs,
) -> torch.Tensor:
    """Apply ``attack(x=..., y=..., **kwargs)`` batch by batch; return all adversarial images."""
    from tqdm.auto import tqdm

    out = []
    batches = list(zip(x.split(batch_size), y.split(batch_size)))
    for xb, yb in tqdm(batches, desc=desc, disable=not progress, leave=False):
        out.append(attack(x=xb, y=yb, **kwargs))
    return torch.cat(out)


@torch.no_grad()
def switch_flips(model, x: torch.Tensor, x_adv: torch.Tensor, batch_size: int = 500) -> dict:
    """How many ReLU switches flip between ``x`` and ``x_adv`` (Fig. 9).

    ``model`` is a :class:`~sparsenb.models.cnn.NielsenCNN` or a defended one
    (:func:`sparsenb.theory.switches.switch_states`). Returns ``{"total": [% of all
    units that flip, per image], "layers": {layer: mean % over images}}``.
    """
    if x_adv.shape != x.shape:
        raise ValueError(
            f"x_adv must have the shape of x {tuple(x.shape)}, got {tuple(x_adv.shape)}"
        )
    total, layers = [], {}
    for xb, ab in zip(x.split(batch_size), x_adv.split(batch_size)):
        t, per = flip_share(switch_states(model, xb), switch_states(model, ab))
        total += t.tolist()
        for k, v in per.items():
            layers.setdefault(k, []).extend(v.tolist())
    return {"total": total, "layers": {k: sum(v) / len(v) for k, v in layers.items()}}


def ifgsm_sweep(
    model,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    step: float,
    record_at,
    batch_size: int = 500,
    count_flips: bool = False,
) -> dict:
    """One I-FGSM run of ``max(record_at)`` steps, read out along the way (Table VI, Fig. 10).

    A run of ``k`` steps is the first ``k`` steps of a longer run, so one run
    gives the per-image outcomes after each ``k`` in ``record_at``
    (``{"correct": {str(k): [0/1 per image]}}``, each iterate checked in the
    ball and box). With ``count_flips``, also the mean and standard deviation
    over images of the % of ReLU switches that flip at each step
    (``"flips_mean"``, ``"flips_std"``, one entry per step;
    :func:`sparsenb.theory.switches.switch_states`).
    """
    record_at = sorted({int(k) for k in record_at})
    if not record_at or record_at[0] < 1:
        raise ValueError(f"record_at must hold step counts >= 1, got {record_at!r}")
    steps = record_at[-1]
    correct = {k: [] for k in record_at}
    s1 = torch.zeros(steps, dtype=torch.float64)
    s2 = torch.zeros(steps, dtype=torch.float64)
    for xb, yb in zip(x.split(batch_size), y.split(batch_size)):
        prev = [switch_states(model, xb)] if count_flips else None

        def record(k, x_adv):
            if k in correct:
                check_adversarial(x_adv, xb, eps)
                correct[k] += (predict(model, x_adv) == yb).int().tolist()
            if count_flips:
                with torch.no_grad():
                    cur = switch_states(model, x_adv)
                share = flip_share(prev[0], cur)[0].cpu()
                s1[k - 1] += share.sum()
                s2[k - 1] += share.pow(2).sum()
                prev[0] = cur

        ifgsm(model, xb, yb, eps, step, steps, callback=record)
    out = {"correct": {str(k): v for k, v in correct.items()}}
    if count_flips:
        mean = s1 / len(x)
        out["flips_mean"] = mean.tolist()
        out["flips_std"] = (s2 / len(x) - mean.pow(2)).clamp_min(0).sqrt().tolist()
    return out


def one_step_flips(
    model, x: torch.Tensor, y: torch.Tensor, eps: float, step: float, batch_size: int = 500
) -> dict:
    """Switch flips caused by one step of size ``step`` of the iterative locally linear attack (Fig. 9).

    The step is checked to stay within ``step`` of ``x``; returns :func:`switch_flips`.
    """
    x1 = run_attack(
        iterative_locally_linear, x, y, batch_size, model=model, eps=eps, step=step, steps=1
    )
    check_adversarial(x1, x, step)
    return switch_flips(model, x, x1, batch_size)
