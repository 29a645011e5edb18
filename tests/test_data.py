"""Tests for sparsenb.data (MNIST and CIFAR-10 from a local folder) and sparsenb.cache (atomic writes)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from sparsenb import cache, data
from sparsenb.cache import atomic_write_bytes, atomic_write_json, atomic_write_text, cache_dir
from sparsenb.data import DATA_ENV, MNIST_FILES, DataNotFoundError, data_root, digit_pair, load_mnist, subset


# --------------------------------------------------------------------------
# data_root precedence
# --------------------------------------------------------------------------
def test_data_root_argument_wins_over_env(tmp_path, monkeypatch):
    arg, env = tmp_path / "arg", tmp_path / "env"
    monkeypatch.setenv(DATA_ENV, str(env))
    assert data_root(arg) == arg.resolve()
    assert data_root(str(arg)) == arg.resolve()


def test_data_root_env_wins_over_cache_default(tmp_path, monkeypatch):
    env = tmp_path / "env"
    monkeypatch.setenv(DATA_ENV, str(env))
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "cache"))
    assert data_root() == env.resolve()
    assert data_root(None) == env.resolve()


def test_data_root_cache_default(tmp_path, monkeypatch):
    monkeypatch.delenv(DATA_ENV, raising=False)
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "cache"))
    assert data_root() == (tmp_path / "cache" / "data").resolve()
    monkeypatch.delenv(cache.CACHE_ENV)
    assert data_root() == (cache_dir() / "data").resolve()


def test_data_root_empty_env_falls_back_to_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_ENV, "")
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "cache"))
    assert data_root() == (tmp_path / "cache" / "data").resolve()


def test_data_root_is_absolute_and_expands_user(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert data_root("~/mnist") == (tmp_path / "mnist").resolve()
    assert data_root("rel") == (tmp_path / "rel").resolve()
    assert data_root("rel").is_absolute()


def test_cache_dir_env(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "c"))
    assert cache_dir() == (tmp_path / "c").resolve()
    monkeypatch.delenv(cache.CACHE_ENV)
    # in a source checkout: <repo>/.cache
    assert cache_dir() == cache.PROJECT_ROOT / ".cache"


# --------------------------------------------------------------------------
# load_mnist from the real folder
# --------------------------------------------------------------------------
def test_load_mnist_test_split(mnist_test):
    x, y = mnist_test
    assert x.shape == (10000, 1, 28, 28)
    assert x.dtype == torch.float32
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    assert y.shape == (10000,) and y.dtype == torch.int64
    assert set(y.unique().tolist()) == set(range(10))
    # pixel values are multiples of 1/255
    assert torch.allclose(x[:50] * 255, (x[:50] * 255).round(), atol=1e-4)
    # published facts about the MNIST test set
    assert torch.bincount(y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert y[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]


def test_load_mnist_env_and_dtype(mnist_root, mnist_test, monkeypatch):
    monkeypatch.setenv(DATA_ENV, str(mnist_root))
    x, y = load_mnist("test", dtype=torch.float64)
    assert x.dtype == torch.float64 and x.shape == (10000, 1, 28, 28)
    assert torch.equal(x.float(), mnist_test[0])
    assert torch.equal(y, mnist_test[1])


def test_load_mnist_train_split(mnist_root):
    x, y = load_mnist("train", root=mnist_root)
    assert x.shape == (60000, 1, 28, 28) and x.dtype == torch.float32
    assert y.shape == (60000,) and y.dtype == torch.int64
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    assert torch.bincount(y).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert abs(float(x.mean()) - 0.1307) < 1e-3


@pytest.mark.parametrize("split", ["val", "Test", "", None, "training"])
def test_load_mnist_bad_split(split, mnist_root):
    with pytest.raises(ValueError, match="split"):
        load_mnist(split, root=mnist_root)


@pytest.fixture
def offline(monkeypatch):
    """Make torchvision's MNIST download fail as it would without network."""
    import torchvision

    def no_download(self):
        raise OSError("offline")

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", no_download)


@pytest.mark.parametrize("split", ["test", "train"])
def test_missing_data_raises_data_not_found(tmp_path, offline, split):
    with pytest.raises(DataNotFoundError) as info:
        load_mnist(split, root=tmp_path)
    err = info.value
    assert isinstance(err, FileNotFoundError)
    msg = str(err)
    for f in MNIST_FILES:
        assert f in msg
    assert str(Path("MNIST") / "raw") in msg
    assert str(tmp_path.resolve() / "MNIST" / "raw") in msg
    assert "offline" in msg and "OSError" in msg
    assert DATA_ENV in msg
    assert isinstance(err.__cause__, OSError)


def test_missing_data_names_only_missing_files(tmp_path, offline, mnist_root):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    present = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    for f in present:
        (raw / f).symlink_to(mnist_root / "MNIST" / "raw" / f)
    with pytest.raises(DataNotFoundError) as info:
        load_mnist("test", root=tmp_path)
    put = str(info.value).split("Put the uncompressed IDX files", 1)[1]
    for f in MNIST_FILES:
        assert (f in put) == (f not in present), f


def test_missing_data_via_env(tmp_path, offline, monkeypatch):
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(DataNotFoundError, match="nowhere"):
        load_mnist("test")


# --------------------------------------------------------------------------
# digit_pair and subset
# --------------------------------------------------------------------------
def test_digit_pair_default_3_vs_7(mnist_test):
    x, y = mnist_test
    xp, yp = digit_pair(x, y)
    keep = (y == 3) | (y == 7)
    assert len(xp) == int(keep.sum()) == 1010 + 1028
    assert yp.dtype == torch.int64
    assert set(yp.unique().tolist()) == {0, 1}
    assert int((yp == 0).sum()) == 1010 and int((yp == 1).sum()) == 1028
    assert torch.equal(xp, x[keep])
    assert torch.equal(y[keep][yp == 1], torch.full((1028,), 7))
    assert torch.equal(y[keep][yp == 0], torch.full((1010,), 3))


def test_digit_pair_custom_digits():
    x = torch.arange(10.0).repeat(3).reshape(30, 1, 1, 1)
    y = torch.arange(10).repeat(3)
    xp, yp = digit_pair(x, y, negative=8, positive=0)
    assert xp.flatten().tolist() == [0.0, 8.0] * 3
    assert yp.tolist() == [1, 0] * 3


@pytest.mark.parametrize(
    "kwargs,name",
    [
        (dict(negative=7, positive=7), "negative and positive"),
        (dict(negative=10), "negative"),
        (dict(positive=-1), "positive"),
        (dict(negative=3.0), "negative"),
        (dict(positive="7"), "positive"),
    ],
)
def test_digit_pair_errors(kwargs, name):
    with pytest.raises(ValueError, match=name):
        digit_pair(torch.zeros(3, 1, 2, 2), torch.tensor([3, 7, 1]), **kwargs)


@pytest.fixture(scope="module")
def indexed():
    n = 200
    return torch.arange(n, dtype=torch.float32).reshape(n, 1, 1, 1), torch.arange(n) % 10


def test_subset_deterministic_and_seeded(indexed):
    x, y = indexed
    a = subset(x, y, 50, seed=0)
    b = subset(x, y, 50, seed=0)
    c = subset(x, y, 50, seed=1)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])
    assert a[0].shape == (50, 1, 1, 1) and a[1].shape == (50,)
    idx = a[0].flatten().long()
    assert len(set(idx.tolist())) == 50  # without replacement
    assert torch.equal(idx, idx.sort().values)  # original order kept
    assert torch.equal(a[1], y[idx])  # pairs stay aligned
    # default seed is 0
    assert torch.equal(subset(x, y, 50)[0], a[0])
    # independent of the global RNG state
    torch.manual_seed(1234)
    assert torch.equal(subset(x, y, 50, seed=0)[0], a[0])


def test_subset_known_values_stable(indexed):
    """The same seed gives the same subset on every machine: pin torch.randperm's CPU stream."""
    x, y = indexed
    expected = torch.randperm(200, generator=torch.Generator().manual_seed(7))[:5].sort().values
    assert torch.equal(subset(x, y, 5, seed=7)[0].flatten().long(), expected)


def test_subset_all_and_none(indexed):
    x, y = indexed
    xa, ya = subset(x, y, None)
    assert xa is x and ya is y
    xs, ys = subset(x, y, len(x), seed=3)
    assert torch.equal(xs, x) and torch.equal(ys, y)


@pytest.mark.parametrize("n", [0, -1, 201, 10**6, True, 2.0, "5"])
def test_subset_bad_n(n, indexed):
    x, y = indexed
    with pytest.raises(ValueError, match="n"):
        subset(x, y, n)


def test_subset_on_mnist(mnist_test):
    x, y = mnist_test
    xs, ys = subset(x, y, 100, seed=0)
    assert xs.shape == (100, 1, 28, 28) and ys.shape == (100,)
    xs2, _ = subset(x, y, 100, seed=0)
    assert torch.equal(xs, xs2)


# --------------------------------------------------------------------------
# cache: atomic writes
# --------------------------------------------------------------------------
def test_atomic_write_json_writes_and_leaves_no_temp(tmp_path):
    path = tmp_path / "sub" / "dir" / "result.json"
    obj = {"b": [1, 2.5, None], "a": {"rho": 0.035, "K": 27}, "s": "ü"}
    out = atomic_write_json(path, obj)
    assert Path(out) == path
    assert json.loads(path.read_text(encoding="utf-8")) == obj
    assert path.read_text(encoding="utf-8").endswith("\n")
    assert sorted(os.listdir(path.parent)) == ["result.json"]
    # overwrite
    atomic_write_json(path, [1, 2, 3])
    assert json.loads(path.read_text()) == [1, 2, 3]
    assert sorted(os.listdir(path.parent)) == ["result.json"]


def test_atomic_write_json_deterministic(tmp_path):
    atomic_write_json(tmp_path / "a.json", {"x": 1, "a": 2})
    atomic_write_json(tmp_path / "b.json", {"a": 2, "x": 1})
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()


def test_atomic_write_failure_keeps_old_file_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "r.json"
    atomic_write_json(path, {"old": True})

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(cache.os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_json(path, {"new": True})
    assert json.loads(path.read_text()) == {"old": True}
    assert os.listdir(tmp_path) == ["r.json"]


def test_atomic_write_json_unserialisable_writes_nothing(tmp_path):
    with pytest.raises(TypeError):
        atomic_write_json(tmp_path / "x.json", {"t": object()})
    assert os.listdir(tmp_path) == []


def test_atomic_write_bytes_and_text(tmp_path):
    atomic_write_bytes(tmp_path / "b.bin", b"\x00\x01")
    atomic_write_text(tmp_path / "t.txt", "héllo")
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "t.txt").read_text(encoding="utf-8") == "héllo"
    assert sorted(os.listdir(tmp_path)) == ["b.bin", "t.txt"]


def test_module_exports():
    assert set(data.__all__) >= {"load_mnist", "digit_pair", "subset", "data_root", "DataNotFoundError"}


# --------------------------------------------------------------------------
# bad input, as a new user would try it: one ArgumentError naming the argument,
# and a failed call creates nothing
# --------------------------------------------------------------------------
from sparsenb.checks import ArgumentError  # noqa: E402


def _tree(path):
    return sorted(str(p.relative_to(path)) for p in Path(path).rglob("*"))


@pytest.fixture
def offline_after_mkdir(monkeypatch):
    """torchvision's download as it fails without network: it creates MNIST/raw/ first, then raises."""
    import torchvision

    def no_download(self):
        os.makedirs(self.raw_folder, exist_ok=True)
        (Path(self.raw_folder) / "train-images-idx3-ubyte.gz").write_bytes(b"partial")
        raise OSError("offline")

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", no_download)


@pytest.mark.parametrize("root", ["missing", "missing/deeper"])
def test_missing_root_creates_nothing(tmp_path, offline_after_mkdir, root):
    before = _tree(tmp_path)
    with pytest.raises(DataNotFoundError) as info:
        load_mnist("test", root=tmp_path / root)
    msg = str(info.value)
    assert all(f in msg for f in MNIST_FILES) and str(tmp_path / root / "MNIST" / "raw") in msg
    assert _tree(tmp_path) == before, "a failed load_mnist created files or folders"


def test_existing_empty_root_stays_empty(tmp_path, offline_after_mkdir):
    with pytest.raises(DataNotFoundError):
        load_mnist("train", root=tmp_path)
    assert _tree(tmp_path) == []


def test_a_download_is_moved_into_place(tmp_path, mnist_root, monkeypatch):
    """The download goes to a temporary folder; on success the four files land in <root>/MNIST/raw."""
    import torchvision

    def fake_download(self):
        os.makedirs(self.raw_folder, exist_ok=True)
        for f in MNIST_FILES:
            (Path(self.raw_folder) / f).symlink_to(mnist_root / "MNIST" / "raw" / f)

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", fake_download)
    x, y = load_mnist("test", root=tmp_path / "new")
    assert x.shape == (10000, 1, 28, 28) and y[:3].tolist() == [7, 2, 1]
    assert _tree(tmp_path / "new") == ["MNIST", "MNIST/raw"] + [f"MNIST/raw/{f}" for f in sorted(MNIST_FILES)]


def test_root_that_is_a_file(tmp_path, offline):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ArgumentError, match="^root "):
        load_mnist("test", root=f)
    assert _tree(tmp_path) == ["file"]


_X = torch.zeros(6, 1, 2, 2)
_Y = torch.tensor([3, 7, 1, 3, 7, 7])
BAD = (
    [(lambda v=v: load_mnist(v, root="unused"), "split") for v in ("val", "Test", "", None, 0, ["test"])]
    + [(lambda v=v: load_mnist("test", root="unused", dtype=v), "dtype") for v in (torch.float16, torch.uint8, "float32", float, None)]
    + [(lambda v=v: load_mnist("test", root=v), "root") for v in (3, b"data", "", ["data"])]
    + [(lambda v=v: data_root(v), "root") for v in (3, 1.5, "", object())]
    + [(lambda v=v: digit_pair(_X, _Y, negative=v), "negative") for v in (10, -1, 3.0, "3", True, None)]
    + [(lambda v=v: digit_pair(_X, _Y, positive=v), "positive") for v in (10, 7.5, None)]
    + [(lambda: digit_pair(_X, _Y, negative=7, positive=7), "negative and positive")]
    + [(lambda v=v: digit_pair(_X, v), "y") for v in (None, _Y.double(), _Y.numpy(), _Y[None])]
    + [(lambda v=v: digit_pair(v, _Y), "x") for v in (None, _X[:5], _X.numpy())]
    + [(lambda v=v: subset(_X, _Y, v), "n") for v in (0, -1, 7, True, 2.0, "5")]
    + [(lambda v=v: subset(_X, _Y, 2, seed=v), "seed") for v in (1.5, None, -1, "0", True)]
    + [(lambda v=v: subset(v, _Y, 2), "x") for v in (None, _X[:5], _X.numpy())]
    + [(lambda v=v: subset(_X, v, 2), "y") for v in (None, torch.tensor(1), [1, 2, 3, 4, 5, 6])]
    + [(lambda v=v: data.pooled_split(_X, _Y, _X, _Y, test_fraction=v), "test_fraction") for v in (0, 1, 1.5, -0.1, True, None, "0.25", float("nan"))]
    + [(lambda v=v: data.pooled_split(_X, _Y, _X, _Y, seed=v), "seed") for v in (1.5, None)]
    + [(lambda: data.pooled_split(_X, _Y, _X[:5], _Y), "x_b"), (lambda: data.pooled_split(_X, _Y.double(), _X, _Y), "y_a")]
    + [(lambda: data.pooled_split(_X, _Y, torch.zeros(6, 1, 3, 3), _Y), "x_b"), (lambda: data.pooled_split(None, _Y, _X, _Y), "x_a")]
)


@pytest.mark.parametrize("case", range(len(BAD)))
def test_bad_input_raises_one_argument_error_naming_it(case, tmp_path, monkeypatch, offline):
    monkeypatch.chdir(tmp_path)  # root="unused" would be relative to here: nothing may appear
    call, argument = BAD[case]
    with pytest.raises(ArgumentError) as info:
        call()
    err = info.value
    assert isinstance(err, TypeError) and isinstance(err, ValueError)
    assert err.argument == argument, str(err)
    assert str(err).startswith(argument + " "), str(err)
    assert _tree(tmp_path) == []


def test_pooled_split_valid():
    xtr, ytr, xte, yte = data.pooled_split(_X, _Y, _X, _Y, test_fraction=0.5, seed=1)
    assert len(xtr) + len(xte) == 12 and len(ytr) == len(xtr) and len(yte) == len(xte)
    assert sorted(torch.cat([ytr, yte]).tolist()) == sorted(_Y.tolist() * 2)


# --------------------------------------------------------------------------
# CIFAR-10: the exact 4,000-image subset, torchvision's full set, the error
# --------------------------------------------------------------------------
from sparsenb.data import (  # noqa: E402
    CIFAR10_BATCHES,
    CIFAR10_CLASSES,
    CIFAR10_SUBSET,
    cifar10_source,
    load_cifar10,
)

SUBSET_SOURCE = "CIFAR-10 subset (first 4,000 training images: 3,000 train / 1,000 held out)"
FULL_SOURCE = "CIFAR-10 (torchvision, 50,000 + 10,000)"


@pytest.fixture(scope="module")
def cifar_subset_root(tmp_path_factory, mnist_root):
    """A data folder holding only the shared CIFAR-10 subset (a link), so the subset is read even where
    the shared folder also has torchvision's full set."""
    root = tmp_path_factory.mktemp("cifar-subset")
    (root / CIFAR10_SUBSET).symlink_to(mnist_root / CIFAR10_SUBSET, target_is_directory=True)
    return root


@pytest.fixture(scope="module")
def cifar_subset(cifar_subset_root):
    """``{"train": (x, y), "test": (x, y)}`` from the subset, loaded once per module. Treat as read-only."""
    return {split: load_cifar10(split, root=cifar_subset_root) for split in ("train", "test")}


def _subset_index(root, split):
    """The training-set indices of a split of the subset, in load order (from the file names)."""
    files = sorted(int(p.stem) for p in (root / CIFAR10_SUBSET).glob("*/*.png"))
    return files[:3000] if split == "train" else files[3000:]


def test_cifar10_classes_in_torchvision_order():
    from torchvision.datasets import CIFAR10

    assert CIFAR10_CLASSES == ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
    # ImageFolder would label the folders alphabetically: for these names that is the same order
    assert sorted(CIFAR10_CLASSES) == list(CIFAR10_CLASSES)
    assert CIFAR10_BATCHES == CIFAR10.base_folder


@pytest.mark.parametrize("split,n", [("train", 3000), ("test", 1000)])
def test_load_cifar10_subset_shapes_and_values(cifar_subset, split, n):
    x, y = cifar_subset[split]
    assert x.shape == (n, 3, 32, 32) and x.dtype == torch.float32 and x.is_contiguous()
    assert y.shape == (n,) and y.dtype == torch.int64
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0  # some pixels are black, some white
    assert torch.allclose(x * 255, (x * 255).round(), atol=1e-4)  # 8-bit pixels
    assert set(y.tolist()) == set(range(10))
    assert 0.4 < float(x.mean()) < 0.55  # CIFAR-10's mean pixel is about 0.47


def test_load_cifar10_subset_matches_the_files(cifar_subset, cifar_subset_root):
    """Sorted by training-set index, labels from the class folder, pixels from the PNG."""
    import numpy as np
    from PIL import Image

    folder = cifar_subset_root / CIFAR10_SUBSET
    by_index = {int(p.stem): (CIFAR10_CLASSES.index(p.parent.name), p) for p in folder.glob("*/*.png")}
    assert sorted(by_index) == list(range(4000))  # images 0..3999 of the training set
    for split in ("train", "test"):
        x, y = cifar_subset[split]
        index = _subset_index(cifar_subset_root, split)
        assert y.tolist() == [by_index[i][0] for i in index]
        for k in (0, 1, len(index) // 2, len(index) - 1):
            label, path = by_index[index[k]]
            with Image.open(path) as im:
                expected = torch.from_numpy(np.array(im.convert("RGB"))).permute(2, 0, 1).float() / 255
            assert torch.equal(x[k], expected), (split, k)


def test_load_cifar10_subset_split_by_index(cifar_subset_root):
    train, test = _subset_index(cifar_subset_root, "train"), _subset_index(cifar_subset_root, "test")
    assert train == list(range(3000)) and test == list(range(3000, 4000))
    assert not set(train) & set(test)


def test_load_cifar10_subset_known_labels(cifar_subset):
    """Published facts about data_batch_1: its first labels and per-class counts of the subset's folders."""
    _, ytr = cifar_subset["train"]
    _, yte = cifar_subset["test"]
    assert ytr[:10].tolist() == [6, 9, 9, 4, 1, 1, 2, 7, 8, 3]  # frog, truck, truck, deer, automobile, ...
    counts = (torch.bincount(ytr, minlength=10) + torch.bincount(yte, minlength=10)).tolist()
    assert counts == [396, 366, 420, 384, 422, 393, 414, 385, 407, 413]


def test_load_cifar10_subset_deterministic(cifar_subset, cifar_subset_root, monkeypatch):
    x, y = cifar_subset["test"]
    monkeypatch.setenv(DATA_ENV, str(cifar_subset_root))
    x2, y2 = load_cifar10("test")  # the data folder from the environment
    assert torch.equal(x, x2) and torch.equal(y, y2)
    assert x2.data_ptr() != x.data_ptr()  # a fresh tensor every call


def test_cifar10_source(cifar_subset_root, monkeypatch):
    assert cifar10_source(cifar_subset_root) == SUBSET_SOURCE
    monkeypatch.setenv(DATA_ENV, str(cifar_subset_root))
    assert cifar10_source() == SUBSET_SOURCE


@pytest.fixture
def fake_full_cifar(tmp_path, monkeypatch):
    """A data folder with torchvision's full layout holding tiny batches (md5 check bypassed), next to the subset."""
    import pickle

    import torchvision.datasets.cifar as tv_cifar

    folder = tmp_path / CIFAR10_BATCHES
    folder.mkdir()
    g = torch.Generator().manual_seed(0)
    batches = {}
    for name, n in [(f"data_batch_{i}", 3) for i in range(1, 6)] + [("test_batch", 4)]:
        data = torch.randint(0, 256, (n, 3 * 32 * 32), generator=g, dtype=torch.uint8).numpy()
        labels = torch.randint(0, 10, (n,), generator=g).tolist()
        batches[name] = (data, labels)
        (folder / name).write_bytes(pickle.dumps({"data": data, "labels": labels}))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": list(CIFAR10_CLASSES)}))
    (tmp_path / CIFAR10_SUBSET).mkdir()  # both there: the full set wins
    monkeypatch.setattr(tv_cifar, "check_integrity", lambda path, md5=None: os.path.isfile(path))
    return tmp_path, batches


def test_load_cifar10_prefers_torchvision_full_set(fake_full_cifar):
    import numpy as np

    root, batches = fake_full_cifar
    assert cifar10_source(root) == FULL_SOURCE
    x, y = load_cifar10("train", root=root)
    assert x.shape == (15, 3, 32, 32) and x.dtype == torch.float32 and x.is_contiguous()
    assert y.dtype == torch.int64 and y.tolist() == sum((batches[f"data_batch_{i}"][1] for i in range(1, 6)), [])
    first = torch.from_numpy(np.ascontiguousarray(batches["data_batch_1"][0][0])).reshape(3, 32, 32)
    assert torch.equal(x[0], first.float() / 255)  # channel-first, as the pickles store it
    xt, yt = load_cifar10("test", root=root)
    assert xt.shape == (4, 3, 32, 32) and yt.tolist() == batches["test_batch"][1]


def test_corrupt_full_set_is_an_error_not_a_fallback(tmp_path, cifar_subset_root):
    (tmp_path / CIFAR10_BATCHES).mkdir()
    (tmp_path / CIFAR10_BATCHES / "data_batch_1").write_bytes(b"truncated")
    (tmp_path / CIFAR10_SUBSET).symlink_to(cifar_subset_root / CIFAR10_SUBSET, target_is_directory=True)
    with pytest.raises(DataNotFoundError, match="incomplete or corrupted") as info:
        load_cifar10("test", root=tmp_path)
    assert str(tmp_path / CIFAR10_BATCHES) in str(info.value)


@pytest.mark.parametrize("root", ["", "missing", "missing/deeper"])
def test_missing_cifar10_names_both_options(tmp_path, root):
    before = _tree(tmp_path)
    where = (tmp_path / root).resolve()
    for call in (lambda: load_cifar10("train", root=where), lambda: cifar10_source(where)):
        with pytest.raises(DataNotFoundError) as info:
            call()
        msg = str(info.value)
        assert isinstance(info.value, FileNotFoundError)
        assert str(where / CIFAR10_BATCHES) in msg and str(where / CIFAR10_SUBSET) in msg
        assert DATA_ENV in msg and "root" in msg
    assert _tree(tmp_path) == before, "a failed load_cifar10 created files or folders"


def test_missing_cifar10_via_env(tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(DataNotFoundError, match="nowhere"):
        load_cifar10("test")
    assert _tree(tmp_path) == []


def test_incomplete_subset_is_an_error(tmp_path):
    for name in CIFAR10_CLASSES[:9]:
        (tmp_path / CIFAR10_SUBSET / name).mkdir(parents=True)
    with pytest.raises(DataNotFoundError, match="truck"):
        load_cifar10("test", root=tmp_path)
    (tmp_path / CIFAR10_SUBSET / "truck").mkdir()
    with pytest.raises(DataNotFoundError, match="4,000 PNGs"):
        load_cifar10("test", root=tmp_path)


BAD_CIFAR = (
    [(lambda v=v: load_cifar10(v, root="unused"), "split") for v in ("val", "Test", "", None, 0, ["test"], "training")]
    + [(lambda v=v: load_cifar10("test", root=v), "root") for v in (3, b"data", "", ["data"])]
    + [(lambda v=v: cifar10_source(v), "root") for v in (3, "", object())]
)


@pytest.mark.parametrize("case", range(len(BAD_CIFAR)))
def test_cifar10_bad_input_raises_one_argument_error_naming_it(case, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    call, argument = BAD_CIFAR[case]
    with pytest.raises(ArgumentError) as info:
        call()
    assert info.value.argument == argument, str(info.value)
    assert str(info.value).startswith(argument + " ")
    assert _tree(tmp_path) == []


def test_cifar10_root_that_is_a_file(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ArgumentError, match="^root "):
        load_cifar10("test", root=f)
    assert _tree(tmp_path) == ["file"]


def test_cifar10_exports():
    assert {"load_cifar10", "cifar10_source", "CIFAR10_CLASSES"} <= set(data.__all__)
