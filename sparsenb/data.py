"""MNIST and CIFAR-10 as tensors in [0, 1], from a local folder in torchvision's layout.

Where the data live (first that is set wins):

1. the ``root`` argument of the functions here;
2. the ``SPARSENB_DATA`` environment variable;
3. ``<cache>/data``, where ``<cache>`` is :func:`sparsenb.cache.cache_dir`
   (``.cache/`` at the top of a source checkout, git-ignored).

The folder holds ``MNIST/raw/`` with the four uncompressed IDX files, as
``torchvision.datasets.MNIST`` extracts them. If they are there, no network is
touched. If not, torchvision's download is tried (into a temporary folder,
moved into place only when it succeeded), and if that fails too,
:class:`DataNotFoundError` says which files to put where. A call that fails
creates nothing.

For CIFAR-10 (:func:`load_cifar10`) the folder holds either torchvision's
``cifar-10-batches-py/`` (the full 50,000 + 10,000 images) or, where that
cannot be had, ``CIFAR10-subset/<class>/<index>.png``: the first 4,000
images of the official training set, split by index into 3,000 for training
and 1,000 held out. The full set wins when both are there;
:func:`cifar10_source` says which one a call reads. Nothing is downloaded.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import torch

from . import checks
from .cache import cache_dir

__all__ = [
    "DATA_ENV",
    "MNIST_FILES",
    "DataNotFoundError",
    "data_root",
    "load_mnist",
    "CIFAR10_CLASSES",
    "CIFAR10_SUBSET",
    "CIFAR10_BATCHES",
    "load_cifar10",
    "cifar10_source",
    "digit_pair",
    "subset",
    "pooled_split",
]

#: The environment variable naming the data folder.
DATA_ENV = "SPARSENB_DATA"
MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


class DataNotFoundError(FileNotFoundError):
    """The data set is neither on disk nor downloadable."""


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data folder: ``root`` if given, else ``$SPARSENB_DATA``, else ``<cache>/data``."""
    checks.path(root, "root", optional=True)
    if root is None:
        root = os.environ.get(DATA_ENV) or (cache_dir() / "data")
    return Path(root).expanduser().resolve()


def _download(raw: Path) -> None:
    """Download MNIST with torchvision into a temporary folder, then move the IDX files to ``raw``."""
    from torchvision.datasets import MNIST

    with tempfile.TemporaryDirectory(prefix="sparsenb-mnist-") as tmp:
        MNIST(tmp, train=False, download=True)  # fetches all four files
        raw.mkdir(parents=True, exist_ok=True)
        for f in MNIST_FILES:
            if not (raw / f).is_file():
                part = raw / f"{f}.part"
                shutil.copyfile(Path(tmp) / "MNIST" / "raw" / f, part)
                os.replace(part, raw / f)


def _mnist_dataset(root: Path, train: bool):
    from torchvision.datasets import MNIST

    raw = root / "MNIST" / "raw"
    if root.exists() and not root.is_dir():
        raise checks.ArgumentError("root", f"must be a folder, got the file {root}")
    if not all((raw / f).is_file() for f in MNIST_FILES):
        try:
            _download(raw)
        except Exception as err:  # no network, mirror down, disk read-only...
            missing = [f for f in MNIST_FILES if not (raw / f).is_file()]
            raise DataNotFoundError(
                f"MNIST is not in the data folder {root} and could not be downloaded ({type(err).__name__}: {err}).\n"
                f"Put the uncompressed IDX files {', '.join(missing)} in {raw}/ "
                f"(torchvision's layout), or point the data folder elsewhere with the root argument "
                f"or the {DATA_ENV} environment variable."
            ) from err
    return MNIST(str(root), train=train, download=False)


def load_mnist(split: str = "test", root=None, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST ``split`` ("train" or "test") as images ``(n, 1, 28, 28)`` in [0, 1] and int64 labels."""
    split = checks.choice(split, "split", ("train", "test"))
    dtype = checks.choice(dtype, "dtype", (torch.float32, torch.float64))
    ds = _mnist_dataset(data_root(root), train=(split == "train"))
    x = ds.data.to(dtype).div_(255.0).unsqueeze(1)
    return x, ds.targets.to(torch.int64).clone()


# --------------------------------------------------------------------------
# CIFAR-10: torchvision's full set, or the exact 4,000-image subset
# --------------------------------------------------------------------------
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
"""Class names in torchvision's label order (label ``i`` is ``CIFAR10_CLASSES[i]``)."""
CIFAR10_BATCHES = "cifar-10-batches-py"
"""torchvision's folder of the full CIFAR-10 (``torchvision.datasets.CIFAR10``)."""
CIFAR10_SUBSET = "CIFAR10-subset"
"""The subset's folder: ``<class>/<index>.png``, ``index`` = position in the official training set."""
CIFAR10_SUBSET_TRAIN = 3000  # the lowest indices; the rest (1,000) are held out as "test"
CIFAR10_SUBSET_SIZE = 4000
_CIFAR10_SOURCES = {
    "full": "CIFAR-10 (torchvision, 50,000 + 10,000)",
    "subset": "CIFAR-10 subset (first 4,000 training images: 3,000 train / 1,000 held out)",
}


def _cifar10_kind(root: Path) -> str:
    """``"full"`` if torchvision's folder is there, else ``"subset"`` if the subset's is, else raise."""
    if root.exists() and not root.is_dir():
        raise checks.ArgumentError("root", f"must be a folder, got the file {root}")
    if (root / CIFAR10_BATCHES).is_dir():
        return "full"
    if (root / CIFAR10_SUBSET).is_dir():
        return "subset"
    raise DataNotFoundError(
        f"CIFAR-10 is not in the data folder {root}. Put either torchvision's full CIFAR-10 in "
        f"{root / CIFAR10_BATCHES}/ (what torchvision.datasets.CIFAR10(root, download=True) leaves there on a "
        f"machine with internet access) or the 4,000-image subset in {root / CIFAR10_SUBSET}/ "
        f"(<class>/<index>.png, index = position in the official training set), or point the data folder "
        f"elsewhere with the root argument or the {DATA_ENV} environment variable."
    )


def cifar10_source(root=None) -> str:
    """Which CIFAR-10 :func:`load_cifar10` reads from this data folder, in words (for the page).

    ``"CIFAR-10 (torchvision, 50,000 + 10,000)"`` or ``"CIFAR-10 subset (first
    4,000 training images: 3,000 train / 1,000 held out)"``; raises
    :class:`DataNotFoundError` where neither is there.
    """
    return _CIFAR10_SOURCES[_cifar10_kind(data_root(root))]


def _cifar10_full(root: Path, train: bool):
    from torchvision.datasets import CIFAR10

    try:
        ds = CIFAR10(str(root), train=train, download=False)
    except RuntimeError as err:  # torchvision: "Dataset not found or corrupted"
        raise DataNotFoundError(
            f"{root / CIFAR10_BATCHES}/ is there but incomplete or corrupted ({err}). Replace it with torchvision's "
            f"download, or remove it to use the subset in {root / CIFAR10_SUBSET}/."
        ) from err
    return torch.from_numpy(ds.data).permute(0, 3, 1, 2), torch.tensor(ds.targets, dtype=torch.int64)


def _cifar10_subset(folder: Path, train: bool):
    import numpy as np
    from PIL import Image

    found = sorted(p.name for p in folder.iterdir() if p.is_dir())
    if found != sorted(CIFAR10_CLASSES):
        raise DataNotFoundError(
            f"{folder}/ must hold one folder per class {', '.join(CIFAR10_CLASSES)}; found {', '.join(found) or 'none'}"
        )
    items = []  # (index, label, path); labels by name in torchvision's order, not by folder order
    for label, name in enumerate(CIFAR10_CLASSES):
        for p in (folder / name).glob("*.png"):
            if not p.stem.isdigit():
                raise DataNotFoundError(f"{p} is not named <index>.png (index = position in the training set)")
            items.append((int(p.stem), label, p))
    items.sort()
    indices = [i for i, _, _ in items]
    if len(items) != CIFAR10_SUBSET_SIZE or len(set(indices)) != len(indices):
        raise DataNotFoundError(
            f"{folder}/ must hold {CIFAR10_SUBSET_SIZE:,} PNGs with distinct indices, found {len(items):,} "
            f"({len(set(indices)):,} distinct indices)"
        )
    items = items[:CIFAR10_SUBSET_TRAIN] if train else items[CIFAR10_SUBSET_TRAIN:]
    pixels = []
    for _, _, p in items:
        with Image.open(p) as im:
            pixels.append(np.asarray(im.convert("RGB")))
    x = torch.from_numpy(np.stack(pixels)).permute(0, 3, 1, 2)
    return x, torch.tensor([label for _, label, _ in items], dtype=torch.int64)


def load_cifar10(split: str, root=None) -> tuple[torch.Tensor, torch.Tensor]:
    """CIFAR-10 ``split`` ("train" or "test") as float32 images ``(n, 3, 32, 32)`` in [0, 1] and int64 labels.

    From torchvision's full set if ``<data>/cifar-10-batches-py/`` is there
    (50,000 train, 10,000 test), else from the subset ``<data>/CIFAR10-subset/``
    sorted by training-set index: the 3,000 lowest indices are "train", the
    other 1,000 "test" (held out; not the official test set). Labels follow
    :data:`CIFAR10_CLASSES`. :func:`cifar10_source` says which source this
    is; where neither is there, :class:`DataNotFoundError` names both.
    """
    split = checks.choice(split, "split", ("train", "test"))
    root = data_root(root)
    if _cifar10_kind(root) == "full":
        x, y = _cifar10_full(root, train=(split == "train"))
    else:
        x, y = _cifar10_subset(root / CIFAR10_SUBSET, train=(split == "train"))
    return x.contiguous().to(torch.float32).div_(255.0), y


def digit_pair(x: torch.Tensor, y: torch.Tensor, negative: int = 3, positive: int = 7):
    """The images of two digits with binary labels: 0 for ``negative``, 1 for ``positive``."""
    negative = checks.integer(negative, "negative", 0, 9)
    positive = checks.integer(positive, "positive", 0, 9)
    if negative == positive:
        raise checks.ArgumentError("negative and positive", f"must differ, got {negative} twice")
    y = checks.labels(y, "y")
    checks.tensor(x, "x", n=len(y))
    keep = (y == negative) | (y == positive)
    return x[keep], (y[keep] == positive).to(torch.int64)


def _examples(x, y) -> None:
    """``x`` and ``y``: tensors with one row per example, as many of each."""
    checks.tensor(y, "y")
    if y.dim() == 0:
        raise checks.fail("y", "a tensor with one row per example", y)
    checks.tensor(x, "x", n=len(y))


def subset(x: torch.Tensor, y: torch.Tensor, n: int | None, seed: int = 0):
    """A seeded random subset of ``n`` examples (all of them, in order, if ``n`` is None).

    The same ``seed`` and data give the same subset on every machine.
    """
    _examples(x, y)
    seed = checks.seed(seed)
    if n is None:
        return x, y
    n = checks.integer(n, "n", 1, len(x))
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(x), generator=g)[:n].sort().values
    return x[idx], y[idx]


def pooled_split(x_a, y_a, x_b, y_b, test_fraction: float = 0.25, seed: int = 0):
    """Pool two sets and hold out ``test_fraction`` of each class (stratified, seeded).

    This is the authors' split for the binary experiments (all 70k MNIST
    images pooled, 25% held out). Returns ``(x_train, y_train, x_test, y_test)``.
    """
    test_fraction = checks.real(test_fraction, "test_fraction", 0.0, 1.0, low_open=True, high_open=True)
    seed = checks.seed(seed)
    y_a, y_b = checks.labels(y_a, "y_a"), checks.labels(y_b, "y_b")
    checks.tensor(x_a, "x_a", n=len(y_a))
    checks.tensor(x_b, "x_b", n=len(y_b))
    if x_a.shape[1:] != x_b.shape[1:] or x_a.dtype != x_b.dtype:
        raise checks.ArgumentError(
            "x_b", f"must match x_a's example shape and dtype {tuple(x_a.shape[1:])}, {x_a.dtype}; "
            f"got {tuple(x_b.shape[1:])}, {x_b.dtype}"
        )
    x = torch.cat([x_a, x_b])
    y = torch.cat([y_a, y_b])
    g = torch.Generator().manual_seed(seed)
    test = torch.zeros(len(y), dtype=torch.bool)
    for c in torch.unique(y):
        idx = (y == c).nonzero().flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        test[idx[: round(test_fraction * len(idx))]] = True
    return x[~test], y[~test], x[test], y[test]
