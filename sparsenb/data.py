"""MNIST as tensors in [0, 1], from a local folder in torchvision's layout.

Where the data live (first that is set wins):

1. the ``root`` argument of the functions here;
2. the ``SPARSENB_DATA`` environment variable;
3. ``<cache>/data``, where ``<cache>`` is :func:`sparsenb.cache.cache_dir`
   (``.cache/`` at the top of a source checkout, git-ignored).

The folder holds ``MNIST/raw/`` with the four uncompressed IDX files, as
``torchvision.datasets.MNIST`` extracts them. If they are there, no network is
touched. If not, torchvision's download is tried (into the same folder), and
if that fails too, :class:`DataNotFoundError` says which files to put where.
"""
from __future__ import annotations

import numbers
import os
from pathlib import Path

import torch

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
    if root is None:
        root = os.environ.get(DATA_ENV) or (cache_dir() / "data")
    return Path(root).expanduser().resolve()


def _mnist_dataset(root: Path, train: bool):
    from torchvision.datasets import MNIST

    raw = root / "MNIST" / "raw"
    if all((raw / f).is_file() for f in MNIST_FILES):
        return MNIST(str(root), train=train, download=False)
    try:
        return MNIST(str(root), train=train, download=True)
    except Exception as err:  # no network, mirror down, disk read-only...
        missing = [f for f in MNIST_FILES if not (raw / f).is_file()]
        raise DataNotFoundError(
            f"MNIST is not in the data folder {root} and could not be downloaded ({type(err).__name__}: {err}).\n"
            f"Put the uncompressed IDX files {', '.join(missing)} in {raw}/ "
            f"(torchvision's layout), or point the data folder elsewhere with the root argument "
            f"or the {DATA_ENV} environment variable."
        ) from err


def load_mnist(split: str = "test", root=None, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST ``split`` ("train" or "test") as images ``(n, 1, 28, 28)`` in [0, 1] and int64 labels."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
    ds = _mnist_dataset(data_root(root), train=(split == "train"))
    x = ds.data.to(dtype).div_(255.0).unsqueeze(1)
    return x, ds.targets.to(torch.int64).clone()


def digit_pair(x: torch.Tensor, y: torch.Tensor, negative: int = 3, positive: int = 7):
    """The images of two digits with binary labels: 0 for ``negative``, 1 for ``positive``."""
    for name, d in (("negative", negative), ("positive", positive)):
        if isinstance(d, bool) or not isinstance(d, numbers.Integral) or not 0 <= d <= 9:
            raise ValueError(f"{name} must be a digit 0-9, got {d!r}")
    if negative == positive:
        raise ValueError(f"negative and positive must differ, got {negative} twice")
    keep = (y == negative) | (y == positive)
    return x[keep], (y[keep] == positive).to(torch.int64)


def subset(x: torch.Tensor, y: torch.Tensor, n: int | None, seed: int = 0):
    """A seeded random subset of ``n`` examples (all of them, in order, if ``n`` is None).

    The same ``seed`` and data give the same subset on every machine.
    """
    if n is None:
        return x, y
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"n must be a positive int or None, got {n!r}")
    if n > len(x):
        raise ValueError(f"n={n} is larger than the {len(x)} examples available")
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(x), generator=g)[:n].sort().values
    return x[idx], y[idx]


def pooled_split(x_a, y_a, x_b, y_b, test_fraction: float = 0.25, seed: int = 0):
    """Pool two sets and hold out ``test_fraction`` of each class (stratified, seeded).

    This is the authors' split for the binary experiments (all 70k MNIST
    images pooled, 25% held out). Returns ``(x_train, y_train, x_test, y_test)``.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    x = torch.cat([x_a, x_b])
    y = torch.cat([y_a, y_b])
    g = torch.Generator().manual_seed(seed)
    test = torch.zeros(len(y), dtype=torch.bool)
    for c in torch.unique(y):
        idx = (y == c).nonzero().flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        test[idx[: round(test_fraction * len(idx))]] = True
    return x[~test], y[~test], x[test], y[test]
