r"""The paper's CIFAR-10 experiment (Sec. VI, Table IV), declared once: four ResNet-32s, the colour front end, the test images.

Table IV trains the 32-layer ResNet of He et al. (:class:`~sparsenb.models.resnet.CifarResNet`)
four ways and attacks each at :math:`\epsilon = 2/255` with a 1,000-step PGD:

- **no defense**: trained on clean images;
- **front end**: the front end inside the training graph, sparsifying in
  (Y, Cb, Cr) with Symlet-9 at :math:`\rho = (3.5, 1, 1)\%` per channel
  (more sparsity on the chrominance, to which vision is less sensitive);
- **adversarial training**: Madry et al.'s, with a 5-step PGD inner attack;
- **front end + adversarial training**: both, with the milder
  :math:`\rho = (50, 25, 25)\%`.

Every network trains through :func:`sparsenb.lab.store.trained` (one loop,
checkpoints keyed by what made them) with the augmentation of He et al.
(:class:`~sparsenb.training.CropFlip`) applied to the raw images *before*
the front end, which sits inside the graph. :data:`RESNET_TRAINING` is He et
al.'s schedule; :func:`recipe` scales its learning-rate milestones to a
shorter run.

- :func:`frontend`: the colour front end (YCbCr, per-channel :math:`K`).
- :func:`resnet_victims`: the four networks as
  :class:`~sparsenb.lab.grid.Victim`, trained or read back.
- :func:`test_images`: the seeded subset of the held-out images that is attacked.
- :func:`channel_energy`: the energy a basis captures per YCbCr channel
  against :math:`\rho` (the colour analogue of the front-end chapter's curves).

Which data ran (the full CIFAR-10, or the 4,000-image subset) is
:func:`sparsenb.data.cifar10_source`.
"""

from __future__ import annotations

import dataclasses

import torch

from .. import checks, data
from ..basis import DenseTransform, WaveletTransform, dct_basis, pixel_basis
from ..frontend import SparsifyingFrontEnd, energy_captured, rgb_to_ycbcr, sparsity_level
from ..lab.grid import Victim
from ..lab.store import trained
from ..models.resnet import ResNetConfig
from ..training import Adversary, CropFlip, TrainConfig

__all__ = [
    "colour_images",
    "channel_energy_curves",
    "DEFENSES",
    "EPS",
    "IMAGE_SIZE",
    "CHANNELS",
    "RESNET_TRAINING",
    "recipe",
    "frontend",
    "resnet_victims",
    "test_images",
    "channel_energy",
]

#: The four networks of Table IV, by the names the chapter's tables use.
DEFENSES = ("no defense", "front end", "adversarial training", "front end + adversarial training")
#: Table IV's budget.
EPS = 2 / 255
IMAGE_SIZE = (32, 32)
#: The front end's working channels (:func:`sparsenb.frontend.rgb_to_ycbcr`, BT.601 full range).
CHANNELS = ("Y", "Cb", "Cr")
#: He et al. 2016 (Sec. 4.2): SGD with momentum 0.9, weight decay 1e-4, batch 128, learning rate 0.1 divided by 10 at
#: 32k and 48k of 64k iterations; on their 45,000 training images that is 182 epochs with milestones at 91 and 136
#: (on all 50,000, 64k iterations are 164 epochs: the ``full`` profile's).
RESNET_TRAINING = TrainConfig(
    optimizer="sgd",
    lr=0.1,
    momentum=0.9,
    weight_decay=1e-4,
    batch_size=128,
    epochs=182,
    milestones=(91, 136),
)


def recipe(
    epochs: int,
    seed: int,
    lr: float = RESNET_TRAINING.lr,
    batch_size: int = RESNET_TRAINING.batch_size,
    optimizer: str = RESNET_TRAINING.optimizer,
) -> TrainConfig:
    """:data:`RESNET_TRAINING` for ``epochs`` epochs, its milestones at the same fractions (1/2 and 3/4) of the run.

    ``optimizer="adam"`` swaps SGD for Adam (learning rate ``lr``, the same
    weight decay and milestones): a run of a few hundred steps, as on the
    subset, learns far more with it (measured on the subset on 2026-11-26,
    8 epochs of 64 with CropFlip, no front end: SGD at 0.1 with these
    milestones reached 26% held-out accuracy, Adam at 1e-3 47%).
    """
    epochs = checks.integer(epochs, "epochs", 1)
    milestones = tuple(
        sorted({m for m in (round(epochs / 2), round(3 * epochs / 4)) if 1 <= m < epochs})
    )
    return dataclasses.replace(
        RESNET_TRAINING,
        epochs=epochs,
        milestones=milestones,
        seed=checks.seed(seed),
        lr=lr,
        batch_size=batch_size,
        optimizer=checks.choice(optimizer, "optimizer", ("sgd", "adam")),
    )


def frontend(
    rho, wavelet: str = "sym9", level: int = 1, gradient: str = "bpda"
) -> SparsifyingFrontEnd:
    r"""The colour front end: RGB to YCbCr, :math:`K_c = \lfloor \rho_c N \rfloor` of each channel's coefficients in ``wavelet``, back to RGB.

    ``rho`` is one sparsity level per channel (Y, Cb, Cr), e.g. ``(0.035, 0.01, 0.01)``.
    """
    return SparsifyingFrontEnd(
        rho, wavelet, level, IMAGE_SIZE, channels=3, gradient=gradient, color="ycbcr"
    )


def resnet_victims(
    n_train: int,
    epochs: int,
    seed: int,
    rho_alone,
    rho_adversarial,
    wavelet: str,
    level: int,
    inner_steps: int,
    inner_step_per_eps: float,
    inner_gradient: str = "bpda",
    eps: float = EPS,
    lr: float = RESNET_TRAINING.lr,
    batch_size: int = RESNET_TRAINING.batch_size,
    optimizer: str = RESNET_TRAINING.optimizer,
    device: torch.device | str | None = None,
    progress: bool = True,
) -> tuple[dict[str, Victim], torch.Tensor, torch.Tensor]:
    r"""Table IV's four ResNet-32s (trained, or read from the checkpoint store), and the training images.

    ``n_train`` training images (0: all of the training split that
    :func:`sparsenb.data.load_cifar10` reads; a seeded subset otherwise),
    :func:`recipe` for ``epochs`` epochs (``optimizer``, ``lr``, ``batch_size``)
    with :class:`~sparsenb.training.CropFlip`.
    The front end keeps ``rho_alone`` per channel when it is the only
    defense and ``rho_adversarial`` with adversarial training; adversarial
    training runs PGD of ``inner_steps`` steps of ``inner_step_per_eps *
    eps`` from a random start, through the front end with
    ``inner_gradient``. Returns ``({name: Victim} in the order of
    :data:`DEFENSES`, x_train, y_train)``.
    """
    n_train = checks.integer(n_train, "n_train", 0)
    seed = checks.seed(seed)
    inner_steps = checks.integer(inner_steps, "inner_steps", 1)
    inner_step_per_eps = checks.real(inner_step_per_eps, "inner_step_per_eps", 0.0, low_open=True)
    eps = checks.real(eps, "eps", 0.0, 1.0, low_open=True)
    config = recipe(epochs, seed, lr, batch_size, optimizer)
    fe_alone = frontend(rho_alone, wavelet, level)
    fe_inner = frontend(rho_adversarial, wavelet, level, inner_gradient)
    x_train, y_train = data.subset(*data.load_cifar10("train"), n_train or None, seed=seed)
    adversary = Adversary("pgd", eps, {"step": inner_step_per_eps * eps, "steps": inner_steps})
    augment = CropFlip()

    def train(fe=None, adv=None):
        return trained(
            ResNetConfig(),
            x_train,
            y_train,
            config,
            frontend=fe,
            augment=augment,
            adversary=adv,
            name="resnet",
            progress=progress,
            device=device,
        ).to(device or "cpu")

    victims = {
        "no defense": Victim(train()),
        "front end": Victim(train(fe_alone), fe_alone.to(device or "cpu")),
        "adversarial training": Victim(train(adv=adversary)),
        "front end + adversarial training": Victim(
            train(fe_inner, adversary),
            frontend(rho_adversarial, wavelet, level).to(device or "cpu"),
        ),
    }
    return victims, x_train, y_train


def test_images(n_images: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The attacked images: a seeded random subset of ``n_images`` of the held-out split (0: all of it)."""
    n_images = checks.integer(n_images, "n_images", 0)
    return data.subset(*data.load_cifar10("test"), n_images or None, seed=checks.seed(seed))


def channel_energy(x: torch.Tensor, rhos, wavelets=("sym9",), levels=(1,), dense=("dct", "pixel")):
    r"""Share of each YCbCr channel's energy that the :math:`K = \lfloor \rho N \rfloor` largest coefficients keep, per basis and :math:`\rho`.

    ``x``: colour images ``(B, 3, 32, 32)`` in [0, 1], converted to YCbCr as
    the front end sees them (Cb and Cr centred on 0.5). The bases: every
    wavelet of ``wavelets`` at every number of levels of ``levels``
    (labelled ``"sym9, level 5"``), then the dense ones of ``dense``
    (``"dct"``, ``"pixel"``). Returns a long frame with columns ``basis,
    channel, rho, K, captured`` (the mean share over the images) and
    ``missed`` (one minus it).
    """
    import pandas as pd

    x = checks.images(x, "x", channels=3, size=IMAGE_SIZE)
    if isinstance(rhos, (str, bytes)) or not hasattr(rhos, "__iter__"):
        raise checks.fail("rhos", "a non-empty list of sparsity levels in (0, 1]", rhos)
    rhos = list(rhos)
    if not rhos:
        raise checks.fail("rhos", "a non-empty list of sparsity levels in (0, 1]", rhos)
    N = IMAGE_SIZE[0] * IMAGE_SIZE[1]
    Ks = [sparsity_level(r, N) for r in rhos]
    for name, value in (("wavelets", wavelets), ("levels", levels), ("dense", dense)):
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise checks.fail(name, "a list (or tuple)", value)
    transforms = {
        f"{w}, level {L}": WaveletTransform(w, IMAGE_SIZE, L) for w in wavelets for L in levels
    }
    for i, name in enumerate(dense):
        matrix = {"dct": dct_basis, "pixel": pixel_basis}.get(
            checks.choice(name, f"dense[{i}]", ("dct", "pixel"))
        )
        transforms[name if name == "pixel" else name.upper()] = DenseTransform(
            matrix(IMAGE_SIZE), IMAGE_SIZE
        )
    if not transforms:
        raise checks.ArgumentError("wavelets", "and dense name no basis at all")
    z = rgb_to_ycbcr(x.double())
    rows = []
    for name, transform in transforms.items():
        for c, channel in enumerate(CHANNELS):
            share = energy_captured(z[:, c], transform, Ks).mean(dim=1)
            rows += [
                {
                    "basis": name,
                    "channel": channel,
                    "rho": r,
                    "K": k,
                    "captured": float(s),
                    "missed": 1 - float(s),
                }
                for r, k, s in zip(rhos, Ks, share)
            ]
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------
# figures
# --------------------------------------------------------------------------
def _plt():
    import matplotlib.pyplot as plt

    return plt


def _no_ticks(axes) -> None:
    import numpy as np

    for ax in np.ravel(axes):
        ax.set_xticks([])
        ax.set_yticks([])


def colour_images(rows: dict, titles=None):
    """A grid of colour images: one row per entry of ``rows`` (label -> images ``(n, 3, H, W)`` in [0, 1]).

    ``titles``: one per column (e.g. the class names), shown above the first row.
    """
    if not isinstance(rows, dict) or not rows:
        raise checks.fail("rows", "a non-empty dict of label -> images (n, 3, H, W)", rows)
    n = len(next(iter(rows.values())))
    for label, images in rows.items():
        checks.images(images, f"rows[{label!r}]", channels=3)
        if len(images) != n:
            raise checks.ArgumentError(
                f"rows[{label!r}]", f"must hold {n} images like the first row, got {len(images)}"
            )
    if titles is not None and len(titles) != n:
        raise checks.ArgumentError(
            "titles", f"must give one title per column ({n}), got {len(titles)}"
        )
    plt = _plt()
    labels = list(rows)
    fig, axes = plt.subplots(
        len(labels), n, figsize=(1.45 * n + 1.2, 1.5 * len(labels)), squeeze=False
    )
    for i, label in enumerate(labels):
        for j in range(n):
            axes[i, j].imshow(
                torch.as_tensor(rows[label][j]).detach().cpu().permute(1, 2, 0).clamp(0, 1).numpy()
            )
        axes[i, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    if titles is not None:
        for j, t in enumerate(titles):
            axes[0, j].set_title(t, fontsize=9)
    _no_ticks(axes)
    return fig


def channel_energy_curves(frame, marks=(), n_images=None):
    r"""Energy missed by the top K coefficients of each YCbCr channel against :math:`\rho`, one panel per channel.

    ``frame``: :func:`sparsenb.chapters.cifar10.channel_energy`'s long frame (columns
    ``basis, channel, rho, missed``); the missed share is drawn on a log
    scale, one curve per basis. ``marks``: ``{channel: [rho, ...]}``, drawn
    as dotted vertical lines (the front end's settings).
    """
    plt = _plt()
    channels = list(dict.fromkeys(frame["channel"]))
    fig, axes = plt.subplots(
        1, len(channels), figsize=(4.0 * len(channels), 3.6), sharey=True, squeeze=False
    )
    for ax, channel in zip(axes[0], channels):
        part = frame[frame["channel"] == channel]
        for name, curve in part.groupby("basis", sort=False):
            ax.plot(100 * curve["rho"], curve["missed"].clip(lower=1e-6), marker=".", label=name)
        for r in dict(marks).get(channel, ()):
            ax.axvline(100 * r, color="grey", lw=0.8, ls=":")
        ax.set(xscale="log", yscale="log", xlabel=r"$\rho = K/N$ (%)", title=channel)
    axes[0, 0].set_ylabel(r"mean $1 - \|\mathcal{H}_K(\Psi z)\|_2^2 / \|z\|_2^2$")
    axes[0, -1].legend(title="basis", fontsize=8)
    images = "" if n_images is None else f" ({n_images} images)"
    fig.suptitle(f"energy the top K coefficients miss, per channel{images}", fontsize=10)
    return fig
