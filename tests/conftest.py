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
