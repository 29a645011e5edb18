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
