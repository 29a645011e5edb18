"""The work of ``test_distributed``: run under ``torchrun --nproc_per_node 2`` and in one plain process, then compared.

Not a test module. ``python tests/distributed_worker.py OUT`` (or under
torchrun) joins the process group if torchrun made one, then

* attacks a small grid (clean, FGSM, PGD with restarts, Square, which is not
  batch-invariant; an undefended and a defended CNN with two gradient
  treatments) on 45 MNIST test images in batches of 8 (6 batches, split
  unevenly between the processes), with the weights in ``OUT/cnn.pt``;
* trains two small CNNs (without dropout) with :func:`sparsenb.training.fit`: one with the
  front end precomputed, one with crop + flip and a PGD adversary;

and process 0 writes ``OUT/outcomes.json`` (every cell's per-image
outcomes) and ``OUT/trained-<name>.pt`` (the state dicts). One thread per
process, so that both runs do the same arithmetic per batch.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

torch.set_num_threads(1)

from sparsenb import distributed, models  # noqa: E402
from sparsenb.data import load_mnist  # noqa: E402
from sparsenb.lab.grid import Attack, Grid, Victim, run  # noqa: E402
from sparsenb.frontend import SparsifyingFrontEnd  # noqa: E402
from sparsenb.training import Adversary, CropFlip, TrainConfig, fit  # noqa: E402

N_IMAGES, BATCH = 45, 8
TRAININGS = ("frontend", "augmented-adversarial")


def grid(cnn: torch.nn.Module) -> Grid:
    fe = SparsifyingFrontEnd(0.035, "coif1")
    victims = {"plain": Victim(cnn), "defended": Victim(cnn, fe)}
    attacks = {
        "none": Attack("none"),
        "FGSM": Attack("fgsm"),
        "PGD": Attack("pgd", step=0.05, steps=5, restarts=3, seed=1),
        "Square": Attack("square", queries=20, seed=0),
    }
    return Grid(victims, attacks, eps=[0.1, 0.3], gradients=["bpda", "projection"])


def training_config() -> TrainConfig:
    return TrainConfig(optimizer="sgd", lr=0.05, momentum=0.5, batch_size=30, steps=6, seed=3)


#: Without dropout: each process draws dropout masks for its own part, so with dropout two runs agree in distribution only.
TRAINED = models.CNNConfig(dropout=0.0)


def train(name: str, x: torch.Tensor, y: torch.Tensor) -> torch.nn.Module:
    fe = SparsifyingFrontEnd(0.035, "coif1")
    if name == "frontend":
        return fit(TRAINED, x, y, training_config(), frontend=fe)
    return fit(TRAINED, x, y, training_config(), frontend=fe, augment=CropFlip(pad=2),
               adversary=Adversary("pgd", 0.1, {"step": 0.05, "steps": 2}))


def main(out: Path) -> None:
    distributed.init()
    x, y = load_mnist("test")
    cnn = models.CNNConfig().build()
    cnn.load_state_dict(torch.load(out / "cnn.pt", weights_only=True))
    outcomes = run(grid(cnn.eval()), x[:N_IMAGES], y[:N_IMAGES], batch_size=BATCH, progress=False, folder=out / "results")
    trained = {name: train(name, x[-240:], y[-240:]) for name in TRAININGS}
    if distributed.is_writer():
        cells = {json.dumps([c.victim, c.attack, c.gradient, c.eps]): res for c, res in outcomes.results.items()}
        (out / "outcomes.json").write_text(json.dumps(cells, sort_keys=True))
        for name, model in trained.items():
            torch.save(model.state_dict(), out / f"trained-{name}.pt")
    distributed.barrier()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
