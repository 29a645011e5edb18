r"""What the chapter "CIFAR-10: a colour front end before ResNet-32" computes, one function per section.

=====================================  ============================================================
:func:`data_used`                      which CIFAR-10 this run has: the full set or the subset
:func:`colour_frontend`                held-out images through the front end at Table IV's two settings
:func:`energy_per_channel`             the energy the top :math:`K` keep per YCbCr channel and basis
:func:`networks`                       the four ResNet-32s (trained or read back), natural accuracy
:func:`training_speed`                 the training loop timed for each of the four variants
:func:`pgd_and_audit`                  PGD through each gradient treatment and the audit
:func:`table4`                         Table IV beside the paper's numbers, and its figure
:func:`adds_to_adversarial_training`   the paired difference behind the paper's closing claim
:func:`disagreements`                  the compared numbers, and what the scorecard records
:func:`summary`                        ours and the paper's, one row per network
=====================================  ============================================================

Each returns a :class:`~sparsenb.chapters.section.Section`: its tables and
figure as attributes and ``numbers``, the values the prose quotes (the
paper's among them, read from ``paper_numbers.csv`` by
:func:`sparsenb.lab.paper.paper_number`).

The experiment, declared once: Table IV trains the 32-layer ResNet of He
et al. (:class:`~sparsenb.models.resnet.CifarResNet`) four ways and attacks
each at :math:`\epsilon = 2/255` with a 1,000-step PGD:

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
shorter run. The pieces the sections share:

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

import numpy as np
import pandas as pd
import torch

from .. import data
from ..basis import DenseTransform, WaveletTransform, dct_basis, pixel_basis
from ..evaluation import accuracy_interval, format_accuracy, predict
from ..frontend import SparsifyingFrontEnd, energy_captured, rgb_to_ycbcr, sparsity_level
from ..lab import audit
from ..lab.audit import AttackSettings, robust_accuracy
from ..lab.grid import Victim
from ..lab.paper import OTHER_SETTING, OURS, WORST_CASE, Comparison, paper_number
from ..lab.stats import discordance_to_resolve, paired_comparison
from ..lab.store import trained
from ..lab.timing import cost_frame, measured_cost
from ..models.resnet import ResNetConfig
from ..training import Adversary, CropFlip, TrainConfig
from .figures import accuracy_errorbar
from .section import Section, drawn, numbers

__all__ = [
    "PAPER_PGD",
    "DEFENSES",
    "PAPER_DEFENSES",
    "TAGS",
    "EPS",
    "IMAGE_SIZE",
    "CHANNELS",
    "ENERGY_RHOS",
    "RESNET_TRAINING",
    "recipe",
    "frontend",
    "resnet_victims",
    "test_images",
    "channel_energy",
    "data_used",
    "colour_frontend",
    "energy_per_channel",
    "networks",
    "training_speed",
    "pgd_and_audit",
    "table4",
    "adds_to_adversarial_training",
    "disagreements",
    "summary",
]

#: The four networks of Table IV, by the names the chapter's tables use.
DEFENSES = ("no defense", "front end", "adversarial training", "front end + adversarial training")
#: The same four as ``paper_numbers.csv`` names them (its ``defense`` column).
PAPER_DEFENSES = dict(
    zip(
        DEFENSES,
        (
            "none",
            "front end sym9 YCbCr",
            "adversarial training",
            "front end + adversarial training (PGD-5)",
        ),
    )
)
#: The glue names' short tag of each network (``nat_fe``, ``pgd_at``...).
TAGS = dict(zip(DEFENSES, ("none", "fe", "at", "both")))
#: Table IV's budget.
EPS = 2 / 255
IMAGE_SIZE = (32, 32)
#: The front end's working channels (:func:`sparsenb.frontend.rgb_to_ycbcr`, BT.601 full range).
CHANNELS = ("Y", "Cb", "Cr")
#: The sparsity levels of the energy table and figure.
ENERGY_RHOS = (0.0025, 0.005, 0.01, 0.02, 0.035, 0.05, 0.1, 0.25, 0.5)
#: The paper's attack in ``paper_numbers.csv``, and its test set's size.
PAPER_PGD = "PGD 1000 steps"
PAPER_TEST_IMAGES = 10000
#: He et al.'s schedule: 64,000 iterations of 128 images.
HE_ITERATIONS, HE_BATCH = 64000, 128

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
    epochs = int(epochs)
    milestones = tuple(
        sorted({m for m in (round(epochs / 2), round(3 * epochs / 4)) if 1 <= m < epochs})
    )
    return dataclasses.replace(
        RESNET_TRAINING,
        epochs=epochs,
        milestones=milestones,
        seed=int(seed),
        lr=lr,
        batch_size=batch_size,
        optimizer=optimizer,
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
    n_train, seed, inner_steps = int(n_train), int(seed), int(inner_steps)
    inner_step_per_eps, eps = float(inner_step_per_eps), float(eps)
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
    return data.subset(*data.load_cifar10("test"), int(n_images) or None, seed=int(seed))


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
    rhos = list(rhos)
    N = IMAGE_SIZE[0] * IMAGE_SIZE[1]
    Ks = [sparsity_level(r, N) for r in rhos]
    transforms = {
        f"{w}, level {L}": WaveletTransform(w, IMAGE_SIZE, L) for w in wavelets for L in levels
    }
    for name in dense:
        matrix = {"dct": dct_basis, "pixel": pixel_basis}[name]
        transforms[name if name == "pixel" else name.upper()] = DenseTransform(
            matrix(IMAGE_SIZE), IMAGE_SIZE
        )
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
# figures (each section function draws its own, see drawn)
# --------------------------------------------------------------------------
def _plt():
    import matplotlib.pyplot as plt

    return plt


def _no_ticks(axes) -> None:
    for ax in np.ravel(axes):
        ax.set_xticks([])
        ax.set_yticks([])


def _colour_images(rows: dict, titles=None):
    """A grid of colour images: one row per entry of ``rows`` (label -> images ``(n, 3, H, W)`` in [0, 1]).

    ``titles``: one per column (e.g. the class names), shown above the first row.
    """
    n = len(next(iter(rows.values())))
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


def _images_figure(s: Section):
    """The held-out images (top row) and what each front end returns (one row per setting)."""
    return _colour_images(s.rows, titles=s.titles)


def _energy_figure(s: Section):
    r"""Energy missed by the top K coefficients of each YCbCr channel against :math:`\rho`, one panel per channel.

    ``s.frame``: :func:`channel_energy`'s long frame (columns ``basis,
    channel, rho, missed``); the missed share is drawn on a log scale, one
    curve per basis. ``s.marks``: ``{channel: [rho, ...]}``, drawn as dotted
    vertical lines (the front end's settings).
    """
    plt = _plt()
    frame = s.frame
    channels = list(dict.fromkeys(frame["channel"]))
    fig, axes = plt.subplots(
        1, len(channels), figsize=(4.0 * len(channels), 3.6), sharey=True, squeeze=False
    )
    for ax, channel in zip(axes[0], channels):
        part = frame[frame["channel"] == channel]
        for name, curve in part.groupby("basis", sort=False):
            ax.plot(100 * curve["rho"], curve["missed"].clip(lower=1e-6), marker=".", label=name)
        for r in dict(s.marks).get(channel, ()):
            ax.axvline(100 * r, color="grey", lw=0.8, ls=":")
        ax.set(xscale="log", yscale="log", xlabel=r"$\rho = K/N$ (%)", title=channel)
    axes[0, 0].set_ylabel(r"mean $1 - \|\mathcal{H}_K(\Psi z)\|_2^2 / \|z\|_2^2$")
    axes[0, -1].legend(title="basis", fontsize=8)
    fig.suptitle(
        f"energy the top K coefficients miss, per channel ({s.n_images} images)", fontsize=10
    )
    return fig


def _table4_figure(s: Section):
    """Ours (natural, PGD, worst case, with 95% intervals) per network, the paper's natural and PGD hollow beside them."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 4.0))
    at = np.arange(len(DEFENSES))
    series = [
        ("natural", "o", "tab:green"),
        ("PGD", "s", "tab:blue"),
        ("worst case", "v", "tab:red"),
    ]
    for k, (label, marker, color) in enumerate(series):
        accuracy_errorbar(
            ax,
            at + 0.12 * (k - 1),
            [s.intervals[label][n] for n in DEFENSES],
            fmt=marker,
            color=color,
            label=f"ours, {label}",
        )
    for label, marker, color in (("natural", "o", "tab:green"), ("PGD", "s", "tab:blue")):
        ax.plot(
            at + 0.36,
            [s.paper[label][n] for n in DEFENSES],
            marker,
            mfc="none",
            color=color,
            ms=8,
            label=f"paper, {label}",
        )
    ax.set_xticks(at, [n.replace(" + ", " +\n") for n in DEFENSES], fontsize=8)
    ax.set(ylabel="accuracy (%)", ylim=(-2, 102), xlim=(-0.5, len(at) - 0.3))
    ax.legend(fontsize=7, ncol=2, loc="upper left")
    return fig


# --------------------------------------------------------------------------
# sections
# --------------------------------------------------------------------------
def _paper(defense: str, attack: str) -> float:
    """The paper's Table IV number for one of :data:`DEFENSES` under ``attack`` (``"none"`` or :data:`PAPER_PGD`)."""
    return paper_number(artifact="Table IV", defense=PAPER_DEFENSES[defense], attack=attack)


def data_used() -> Section:
    """Which CIFAR-10 this run reads (:func:`sparsenb.data.cifar10_source`) and how many images each split holds.

    ``full``: whether it is the whole CIFAR-10 (the paper's data), rather
    than the 4,000-image subset of an offline machine, whose numbers are
    compared with the paper's as another setting, not as reproductions.
    ``numbers``: ``source`` (its name), ``n_train_all``, ``n_test_all``.
    """
    source = data.cifar10_source()
    x_train_all, _ = data.load_cifar10("train")
    x_test_all, _ = data.load_cifar10("test")
    n_train, n_test = len(x_train_all), len(x_test_all)
    table = pd.DataFrame(
        {"training images": [n_train], "held-out images": [n_test]},
        index=pd.Index([source], name="data"),
    )
    return Section(
        full=source.startswith("CIFAR-10 ("),
        n_all=n_train + n_test,
        table=table,
        numbers=numbers(source=source, n_train_all=n_train, n_test_all=n_test),
    )


@drawn(_images_figure)
def colour_frontend(
    rho_alone, rho_adversarial, wavelet: str, level: int, seed: int, n_show: int = 6
) -> Section:
    r"""``n_show`` held-out images through the front end at Table IV's two settings.

    ``numbers``: the :math:`K` of each setting (``K_alone``, ``K_mild``,
    as text), both :math:`\rho` in percent (``rho_alone_shown``,
    ``rho_adv_shown``), ``wavelet``, ``level`` and ``paper_nat_drop``, the
    natural accuracy the paper's front end alone costs (points).
    """
    x_show, y_show = test_images(n_show, seed)
    fe_alone = frontend(rho_alone, wavelet, level)
    fe_mild = frontend(rho_adversarial, wavelet, level)
    rows = {
        "input": x_show,
        f"rho = {tuple(rho_alone)}\nK = {fe_alone.K}": fe_alone(x_show),
        f"rho = {tuple(rho_adversarial)}\nK = {fe_mild.K}": fe_mild(x_show),
    }
    values = {"K_alone": str(fe_alone.K), "K_mild": str(fe_mild.K)}
    values |= {"wavelet": wavelet, "level": level}
    values |= {
        "rho_alone_shown": f"({', '.join(f'{100 * r:g}' for r in rho_alone)})%",
        "rho_adv_shown": f"({', '.join(f'{100 * r:g}' for r in rho_adversarial)})%",
        "paper_nat_drop": _paper("no defense", "none") - _paper("front end", "none"),
    }
    return Section(
        rows=rows,
        titles=[data.CIFAR10_CLASSES[int(c)] for c in y_show],
        numbers=numbers(**values),
    )


@drawn(_energy_figure)
def energy_per_channel(
    n_images: int, seed: int, rho_alone, rho_adversarial, wavelet: str, level: int, rhos=ENERGY_RHOS
) -> Section:
    r"""The share of each YCbCr channel's energy the top :math:`K` keep, for ``wavelet`` at one level and at ``level``, the DCT and the pixel basis.

    ``table``: the share kept (%) per basis and channel (rows) and
    :math:`\rho` (columns); the figure draws the share missed. ``numbers``:
    what Y and Cb keep at the front end's ``rho_alone`` with ``level``
    levels (``y_kept``, ``cb_kept``), with one (``y_kept_1``, ``cb_kept_1``)
    and with the DCT (``y_kept_dct``), in percent; the size of a one-level
    approximation band (``band_1``) and the chrominance's :math:`K` alone
    (``K_cb``); and ``chroma_behind_<basis>`` (``pyramid`` for ``level``
    levels, ``1``, ``dct``, ``pixel``): in how many of the ``chroma_pairs``
    (chrominance channel, :math:`\rho`) pairs of the table Cb or Cr keeps
    less of its energy than Y, the premise of the paper's uneven
    :math:`\rho` being that it never does.
    """
    x_energy, _ = test_images(n_images, seed)
    rhos = list(rhos)
    frame = channel_energy(x_energy, rhos, wavelets=(wavelet,), levels=sorted({1, level}))
    kept = frame.set_index(["basis", "channel", "rho"])["captured"]
    name_l, name_1 = f"{wavelet}, level {level}", f"{wavelet}, level 1"
    behind = {
        b: sum(kept[(b, c, r)] < kept[(b, "Y", r)] for c in ("Cb", "Cr") for r in rhos)
        for b in dict.fromkeys(frame["basis"])
    }
    table = frame.pivot_table(
        index=["basis", "channel"], columns="rho", values="captured", sort=False
    )
    values = {
        "energy_images": len(x_energy),
        "y_kept": 100 * kept[(name_l, "Y", rho_alone[0])],
        "cb_kept": 100 * kept[(name_l, "Cb", rho_alone[1])],
        "y_kept_1": 100 * kept[(name_1, "Y", rho_alone[0])],
        "cb_kept_1": 100 * kept[(name_1, "Cb", rho_alone[1])],
        "y_kept_dct": 100 * kept[("DCT", "Y", rho_alone[0])],
        "rho_y": 100 * rho_alone[0],
        "rho_c": 100 * rho_alone[1],
        "band_1": (IMAGE_SIZE[0] // 2) * (IMAGE_SIZE[1] // 2),
        "K_cb": frontend(rho_alone, wavelet, level).K[1],
        "chroma_pairs": 2 * len(rhos),
        "chroma_behind_pyramid": behind[name_l],
        "chroma_behind_1": behind[name_1],
        "chroma_behind_dct": behind["DCT"],
        "chroma_behind_pixel": behind["pixel"],
    }
    marks = {c: sorted({rho_alone[i], rho_adversarial[i]}) for i, c in enumerate(CHANNELS)}
    return Section(
        frame=frame,
        marks=marks,
        n_images=len(x_energy),
        table=table.mul(100).round(2),
        numbers=numbers(**values),
    )


def networks(
    n_train: int,
    epochs: int,
    seed: int,
    rho_alone,
    rho_adversarial,
    wavelet: str,
    level: int,
    inner_steps: int,
    inner_step_per_eps: float,
    inner_gradient: str,
    lr: float,
    batch_size_train: int,
    optimizer: str,
    natural_images: int,
    device=None,
) -> Section:
    """Table IV's four ResNet-32s (:func:`resnet_victims`: trained, or read back) and their natural accuracy.

    ``victims``, ``x_train`` and ``y_train`` as :func:`resnet_victims`
    returns them; ``natural``: each network's per-image 0/1 outcomes on
    ``natural_images`` held-out images (0: all), ``table`` their accuracy
    with its 95% interval. ``runs``: the four ways of training (name ->
    ``(front end, adversary)``) and ``config`` the schedule, for
    :func:`training_speed`. ``numbers``: the training settings the prose
    quotes, ``n_train_used``, ``n_params`` and ``n_natural``.
    """
    victims, x_train, y_train = resnet_victims(
        n_train,
        epochs,
        seed,
        rho_alone,
        rho_adversarial,
        wavelet,
        level,
        inner_steps,
        inner_step_per_eps,
        inner_gradient,
        EPS,
        lr,
        batch_size_train,
        optimizer,
        device,
    )
    x_nat, y_nat = (t.to(device) for t in test_images(natural_images, seed))
    natural = {
        name: (predict(v.model(), x_nat) == y_nat).int().cpu().numpy()
        for name, v in victims.items()
    }
    table = pd.DataFrame(
        {
            f"natural accuracy, {len(x_nat)} held-out images (%)": {
                n: format_accuracy(c) for n, c in natural.items()
            }
        }
    )
    adversary = Adversary("pgd", EPS, {"step": inner_step_per_eps * EPS, "steps": inner_steps})
    runs = {
        "plain": (None, None),
        "front end": (frontend(rho_alone, wavelet, level), None),
        f"adversarial, PGD-{inner_steps}": (None, adversary),
        f"front end + adversarial, PGD-{inner_steps}": (
            frontend(rho_adversarial, wavelet, level, inner_gradient),
            adversary,
        ),
    }
    values = {
        "batch_size_train": batch_size_train,
        "lr": lr,
        "epochs": epochs,
        "optimizer": optimizer,
        "inner_steps": inner_steps,
        "inner_step_per_eps": inner_step_per_eps,
        "inner_gradient": inner_gradient,
        "n_train_used": len(x_train),
        "n_params": sum(p.numel() for p in ResNetConfig().build().parameters()),
        "n_natural": len(x_nat),
    }
    return Section(
        victims=victims,
        x_train=x_train,
        y_train=y_train,
        natural=natural,
        config=recipe(epochs, seed, lr, batch_size_train, optimizer),
        runs=runs,
        table=table,
        numbers=numbers(**values),
    )


def training_speed(nets: Section, cost_batches: int, cost_repeats: int, device=None) -> Section:
    """The training loop timed for each of the four ways of training (:func:`networks`' ``runs``), augmentation on.

    :func:`sparsenb.lab.timing.measured_cost` (measured once, then read
    back): ``cost_batches`` batches per variant and round, ``cost_repeats``
    rounds, the median reported. ``table``: images per second, seconds per
    epoch of the full 50,000 images and the slowdown; ``numbers``: the
    device, the images per second without and with adversarial training
    (``speed_plain``, ``speed_adv``), an epoch in minutes and He et al.'s
    64,000 iterations of 128 in hours (``schedule_*_h``).
    """
    cost = measured_cost(
        ResNetConfig(),
        nets.x_train,
        nets.y_train,
        nets.config,
        nets.runs,
        cost_batches,
        cost_repeats,
        device,
        augment=CropFlip(),
    )
    speed = cost_frame(cost, 50000)  # an epoch: the full training set
    speed.insert(0, "training images / s (wall)", cost["batch_size"] / speed["s per batch (wall)"])
    adv = f"adversarial, PGD-{nets.numbers['inner_steps']}"
    rate, epoch = speed["training images / s (wall)"], speed["s per epoch (wall)"]
    values = {
        "cost_batches": cost_batches,
        "cost_repeats": cost_repeats,
        "cost_device": cost["device"],
        "cost_threads": cost["threads"],
        "speed_plain": rate["plain"],
        "speed_adv": rate[adv],
        "epoch_plain_min": epoch["plain"] / 60,
        "epoch_adv_min": epoch[adv] / 60,
        "schedule_plain_h": HE_ITERATIONS * HE_BATCH / rate["plain"] / 3600,
        "schedule_adv_h": HE_ITERATIONS * HE_BATCH / rate[adv] / 3600,
    }
    table = speed[["training images / s (wall)", "s per epoch (wall)", "slowdown (CPU)"]]
    return Section(cost=cost, table=table.round(2), numbers=numbers(**values))


def pgd_and_audit(
    nets: Section,
    n_images: int,
    seed: int,
    pgd_steps: int,
    pgd_restarts: int,
    pgd_step_per_eps: float,
    gradients,
    audit_images: int,
    audit_attacks,
    audit_budget: str,
    audit_overrides: dict,
    batch_size: int,
    device=None,
) -> Section:
    r"""PGD on ``n_images`` held-out images and the audit on a seeded ``audit_images`` of them, every network at :data:`EPS`.

    :func:`sparsenb.lab.audit.robust_accuracy` (stored per image, resumed):
    PGD through each of ``gradients`` where there is a front end, the audit's
    ``audit_attacks`` with the budget ``audit_budget`` of
    :data:`sparsenb.lab.audit.BUDGETS`, its fields ``audit_overrides``
    replaced. ``result``: the :class:`~sparsenb.lab.audit.RobustAccuracy`;
    ``table``: one row per network.
    """
    budget = dataclasses.replace(audit.BUDGETS[audit_budget], **audit_overrides)
    x, y = (t.to(device) for t in test_images(n_images, seed))
    cells = [(name, EPS) for name in DEFENSES]
    settings = AttackSettings(
        pgd_steps,
        pgd_restarts,
        pgd_step_per_eps,
        tuple(gradients),
        audit_images,
        tuple(audit_attacks),
        budget,
        seed,
    )
    result = robust_accuracy(nets.victims, cells, x, y, settings, batch_size, progress=True)
    values = {
        "n_images": len(x),
        "pgd_restarts": pgd_restarts,
        "pgd_steps": pgd_steps,
        "pgd_step_per_eps": pgd_step_per_eps,
        "gradients_shown": ", ".join(gradients),
        "audit_images": audit_images,
        "audit_shown": ", ".join(audit_attacks),
    }
    return Section(result=result, table=result.frame(), numbers=numbers(**values))


@drawn(_table4_figure)
def table4(nets: Section, attacked: Section, full: bool) -> Section:
    """Table IV: natural accuracy, PGD and the audited worst case of each network beside the paper's numbers.

    ``comparison``: the :class:`~sparsenb.lab.paper.Comparison` it fills
    (rows of the kind ``"ours"``, and ``"all attacks, worst case"`` for the
    audit, where ``full`` says the data are the paper's; ``"other setting"``
    otherwise), for the scorecard. ``numbers``: ``nat_<tag>``,
    ``pgd_<tag>``, ``worst_<tag>`` (ours, %) and ``paper_nat_<tag>``,
    ``paper_pgd_<tag>`` for the tags of :data:`TAGS`.
    """
    natural, result = nets.natural, attacked.result
    comparison = Comparison()
    kind, worst_kind = (OURS, WORST_CASE) if full else (OTHER_SETTING, OTHER_SETTING)
    entries = []
    for name in DEFENSES:
        match = {"artifact": "Table IV", "defense": PAPER_DEFENSES[name]}
        pgd = match | {"attack": PAPER_PGD}
        entries.append((name, "natural", natural[name], match | {"attack": "none"}, kind))
        entries.append((name, "PGD", result.pgd(name, EPS), pgd, kind))
        worst = result.worst(name, EPS).robust
        entries.append((name, "worst case (audited images)", worst, pgd, worst_kind))
    table = comparison.table("Table IV", entries)
    intervals = {
        "natural": {n: accuracy_interval(natural[n]) for n in DEFENSES},
        "PGD": {n: accuracy_interval(result.pgd(n, EPS)) for n in DEFENSES},
        "worst case": {n: result.worst_interval(n, EPS) for n in DEFENSES},
    }
    paper = {
        "natural": {n: _paper(n, "none") for n in DEFENSES},
        "PGD": {n: _paper(n, PAPER_PGD) for n in DEFENSES},
    }
    values = {}
    for name, t in TAGS.items():
        values[f"nat_{t}"] = intervals["natural"][name][0]
        values[f"pgd_{t}"] = intervals["PGD"][name][0]
        values[f"worst_{t}"] = intervals["worst case"][name][0]
        values[f"paper_nat_{t}"] = paper["natural"][name]
        values[f"paper_pgd_{t}"] = paper["PGD"][name]
    return Section(
        comparison=comparison,
        intervals=intervals,
        paper=paper,
        table=table,
        numbers=numbers(**values),
    )


def adds_to_adversarial_training(nets: Section, attacked: Section) -> Section:
    r"""The paired difference, front end + adversarial training minus adversarial training, natural, under PGD and in the worst case.

    ``table``: :func:`sparsenb.lab.stats.paired_comparison` (Newcombe's
    interval for paired proportions, the share of discordant images, the
    images that would resolve the paper's difference at that share).
    ``numbers``: the PGD row (``d_pgd``, ``d_pgd_lo``, ``d_pgd_hi``,
    ``r_pgd`` in %, ``n_resolve``), the paper's difference
    (``paper_diff``, points), the half-width 10,000 images would give at our
    share (``half_10k``, points), and ``r_resolve``: the share of
    discordant images (%) below which the paper's 10,000 test images resolve
    its difference about half the time
    (:func:`sparsenb.lab.stats.discordance_to_resolve`).
    """
    a, b = "front end + adversarial training", "adversarial training"
    natural, result = nets.natural, attacked.result
    paper_diff = _paper(a, PAPER_PGD) - _paper(b, PAPER_PGD)
    pairs = {
        "natural": (natural[a], natural[b]),
        "PGD": (result.pgd(a, EPS), result.pgd(b, EPS)),
        "worst case": (result.worst(a, EPS).robust, result.worst(b, EPS).robust),
    }
    frame = paired_comparison(pairs, paper_diff)
    row = frame.loc["PGD"]
    values = {
        "d_pgd": row["difference"],
        "d_pgd_lo": row["lo"],
        "d_pgd_hi": row["hi"],
        "r_pgd": row["discordant %"],
        "paper_diff": paper_diff,
        "n_resolve": int(row["images to resolve"]),
        "half_10k": 1.96 * np.sqrt(row["discordant %"] / 100 / PAPER_TEST_IMAGES) * 100,
        "r_resolve": 100 * discordance_to_resolve(paper_diff, PAPER_TEST_IMAGES),
    }
    return Section(table=frame.round(2), numbers=numbers(**values))


def disagreements(t4: Section, ran: Section, nets: Section, attacked: Section) -> Section:
    """The numbers of :func:`table4` set beside the paper's, and what the scorecard records about them.

    ``table``: every compared row with its verdict; ``numbers``:
    ``n_compared`` and ``n_disagree`` (the paper's number outside our 95%
    interval). ``why`` and ``cannot`` are the notes the page hands to the
    scorecard (:func:`sparsenb.book.page.record`): what differs by
    construction, and, on the subset (``ran.full`` false), why the paper's
    setting cannot run here (``None`` on the full CIFAR-10).
    """
    counts = t4.comparison.counts()
    n, a = nets.numbers, attacked.numbers
    why = {
        "Table IV": f"ResNet-32 trained for {n['epochs']} epochs on {n['n_train_used']} images with a "
        f"{n['inner_steps']}-step inner attack (paper: the full CIFAR-10, presumably He et al.'s 64,000 "
        f"iterations, PGD-5); PGD {a['pgd_restarts']} x {a['pgd_steps']} steps (paper: 1,000)"
    }
    r = ran.numbers
    cannot = (
        None
        if ran.full
        else {
            "Table IV": f"only a {ran.n_all:,}-image subset of CIFAR-10 is on this machine "
            f"({r['n_train_all']:,} training, {r['n_test_all']:,} held-out images): the paper trained "
            "on 50,000 and tested on the official 10,000"
        }
    )
    values = {"n_compared": counts["compared"], "n_disagree": counts["compared"] - counts["agrees"]}
    return Section(why=why, cannot=cannot, table=t4.comparison.frame(), numbers=numbers(**values))


def summary(nets: Section, attacked: Section, t4: Section) -> Section:
    """Ours (natural, PGD, worst case, with 95% intervals), what broke the audited images, and the paper's, per network."""
    natural, result = nets.natural, attacked.result
    table = pd.DataFrame(
        {
            "ours, natural": [format_accuracy(natural[n]) for n in DEFENSES],
            "ours, PGD": [format_accuracy(result.pgd(n, EPS)) for n in DEFENSES],
            "ours, worst case": [format_accuracy(result.worst(n, EPS).robust) for n in DEFENSES],
            "broken by (audited images)": [result.worst(n, EPS).found_by() for n in DEFENSES],
            "paper, natural": [t4.paper["natural"][n] for n in DEFENSES],
            "paper, PGD": [t4.paper["PGD"][n] for n in DEFENSES],
        },
        index=list(DEFENSES),
    )
    return Section(table=table, numbers={})
