"""MNIST as tensors in [0, 1], from a local folder in torchvision's layout.

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
    "digit_pair",
    "subset",
    "pooled_split",
]

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
