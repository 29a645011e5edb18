"""Small private helpers shared by the theory modules: float64 conversion, signal shapes, progress bars.

The theory works in float64 throughout (exact identities are tested to
1e-12); inputs may be tensors or NumPy arrays.
"""
from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm  # plain bars: tqdm.auto warns inside kernels without ipywidgets

from .. import checks


def _torch(x, name: str) -> torch.Tensor:
    """``x`` as a float64 tensor (from a tensor or a NumPy array)."""
    if isinstance(x, torch.Tensor):
        return x.to(torch.float64)
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.asarray(x, dtype=np.float64))
    raise checks.fail(name, "a torch.Tensor or numpy array", x)


def _numpy(x, name: str, N: int | None = None) -> np.ndarray:
    """``x`` as a float64 NumPy array, its last dimension checked to be ``N`` if given."""
    if isinstance(x, torch.Tensor):
        arr = x.detach().cpu().to(torch.float64).numpy()
    elif isinstance(x, np.ndarray):
        arr = np.asarray(x, dtype=np.float64)
    else:
        raise checks.fail(name, "a torch.Tensor or numpy array", x)
    if N is not None and (arr.ndim == 0 or arr.shape[-1] != N):
        raise checks.ArgumentError(name, f"must end in the signal length N={N}, got shape {arr.shape}")
    return arr


def _flat(v: torch.Tensor, transform) -> torch.Tensor:
    """``v`` with the transform's signal dimensions flattened to one of length N."""
    nd = len(transform.shape)
    if tuple(v.shape[v.dim() - nd :]) != tuple(transform.shape):
        raise ValueError(f"expected a tensor ending in the signal shape {tuple(transform.shape)}, got {tuple(v.shape)}")
    return v.reshape(*v.shape[: v.dim() - nd], -1)


def _progress(iterable, progress: bool, **kw):
    return tqdm(iterable, disable=not progress, leave=False, **kw)
