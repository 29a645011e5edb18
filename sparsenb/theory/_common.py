"""Small private helpers shared by the theory modules: array conversion, shapes, progress bars."""
from __future__ import annotations

import math

import numpy as np
import torch
from tqdm import tqdm  # plain bars: tqdm.auto warns inside kernels without ipywidgets


def _check_int(value, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int >= {minimum}, got {value!r}")
    if int(value) < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value}")
    return int(value)


def _check_positive(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name} must be a positive number, got {value!r}")
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value}")
    return value


def _check_K(K, N: int, name: str = "K") -> int:
    K = _check_int(K, name)
    if K > N:
        raise ValueError(f"{name} must lie in [1, N={N}], got {K}")
    return K


def _check_K_for(transform, K) -> int:
    return _check_K(K, transform.N)



def _torch(x, name: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.to(torch.float64)
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.asarray(x, dtype=np.float64))
    raise TypeError(f"{name} must be a torch.Tensor or numpy array, got {type(x).__name__}")


def _numpy(x, name: str, N: int | None = None) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        arr = x.detach().cpu().to(torch.float64).numpy()
    elif isinstance(x, np.ndarray):
        arr = np.asarray(x, dtype=np.float64)
    else:
        raise TypeError(f"{name} must be a torch.Tensor or numpy array, got {type(x).__name__}")
    if N is not None and (arr.ndim == 0 or arr.shape[-1] != N):
        raise ValueError(f"{name} must end in the signal length N={N}, got shape {arr.shape}")
    return arr


def _flat(v: torch.Tensor, transform) -> torch.Tensor:
    """``v`` with the transform's signal dimensions flattened to one of length N."""
    nd = len(transform.shape)
    if tuple(v.shape[v.dim() - nd :]) != tuple(transform.shape):
        raise ValueError(f"expected a tensor ending in the signal shape {tuple(transform.shape)}, got {tuple(v.shape)}")
    return v.reshape(*v.shape[: v.dim() - nd], -1)



def _progress(iterable, progress: bool, **kw):
    return tqdm(iterable, disable=not progress, leave=False, **kw)

