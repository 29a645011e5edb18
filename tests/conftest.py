"""Shared pytest fixtures (keep generic: other test modules may use them)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def mnist_root() -> Path:
    """The local MNIST folder (torchvision layout): ``$SPARSENB_DATA``, else ``<repo>/../shared/data``."""
    return Path(os.environ.get("SPARSENB_DATA") or (REPO_ROOT / ".." / "shared" / "data")).resolve()


@pytest.fixture(scope="session")
def mnist_test(mnist_root):
    """The MNIST test split ``(x, y)``, loaded once per session. Treat as read-only."""
    from sparsenb.data import load_mnist

    return load_mnist("test", root=mnist_root)


@pytest.fixture(scope="module")
def one_thread():
    """Run a module's tests on one thread (opt in with ``pytestmark = pytest.mark.usefixtures("one_thread")``).

    Tiny tensors gain nothing from threads, and on a busy machine OpenMP's
    waiting threads make them many times slower.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def centroids(mnist_test):
    """A nearest-class-mean classifier in float64 (logits x.mu_c - |mu_c|^2 / 2), fitted on test images
    1000..2999 (about 80% accurate): a small differentiable victim for the attack tests. Treat as read-only."""
    import torch
    from torch import nn

    x, y = mnist_test
    xs, ys = x[1000:3000].double().flatten(1), y[1000:3000]
    mu = torch.stack([xs[ys == c].mean(0) for c in range(10)])
    lin = nn.Linear(784, 10).double()
    with torch.no_grad():
        lin.weight.copy_(mu)
        lin.bias.copy_(-0.5 * mu.pow(2).sum(1))
    return nn.Sequential(nn.Flatten(), lin).eval()


@pytest.fixture(scope="session")
def smoke_build(tmp_path_factory, mnist_root):
    """Every chapter executed with the smoke profile and the HTML built, once per session: ``(staging, index.html)``.

    Shared by the book tests and the browser check, so a session builds the book once.
    """
    from sparsenb import book

    out = tmp_path_factory.mktemp("book") / "smoke"
    index = book.build("smoke", data=mnist_root, out=out, progress=False)
    return out, index
