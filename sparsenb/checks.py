"""The one validation layer: every public function checks its arguments here.

Each check takes the value and the argument's ``name`` and either returns
the value in a normal form (a Python ``int``/``float``/``tuple``, a tensor)
or raises :class:`ArgumentError`, whose message starts with the argument's
name and says what was expected and what came (``eps must be a finite
number >= 0 and <= 1, got 1.5``). ``ArgumentError`` derives from both
``TypeError`` and ``ValueError``, so callers may catch either; its
``argument`` attribute holds the name.

Checks never create, write or move anything: a call that fails leaves no
trace. Checks that scan a whole tensor (:func:`images`, :func:`labels`)
belong at a function's entry, once per call, not inside its loops.
"""
from __future__ import annotations

import contextlib
import contextvars
import math
import numbers
import os
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch

__all__ = [
    "ArgumentError",
    "trusted",
    "GradientError",
    "fail",
    "real",
    "integer",
    "seed",
    "flag",
    "choice",
    "size2d",
    "per_channel",
    "function",
    "path",
    "tensor",
    "finite",
    "images",
    "labels",
    "finite_gradient",
]


class ArgumentError(TypeError, ValueError):
    """A bad argument: the message starts with its name; ``argument`` holds the name.

    ``ArgumentError("eps", "must be >= 0")`` reads ``eps must be >= 0``; a
    message starting with ``=`` is joined without a space (``level=3 is ...``).
    """

    def __init__(self, argument: str, message: str):
        super().__init__(f"{argument}{'' if message.startswith('=') else ' '}{message}")
        self.argument = argument


class GradientError(ArgumentError, FloatingPointError):
    """A model whose input gradient holds NaN or infinity (also a ``FloatingPointError``)."""


def fail(name: str, expected: str, value: Any) -> ArgumentError:
    """An :class:`ArgumentError` saying ``name must be <expected>, got <value>`` (to raise)."""
    return ArgumentError(name, f"must be {expected}, got {_show(value)}")


def _show(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)} and dtype {value.dtype}"
    if isinstance(value, np.ndarray):
        return f"a numpy array of shape {value.shape} and dtype {value.dtype}"
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    plain = isinstance(value, (int, float, str)) and not isinstance(value, bool)
    return text if plain else f"{text} ({type(value).__name__})"


def _is_real(value) -> bool:
    return isinstance(value, (numbers.Real, np.floating, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_int(value) -> bool:
    return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, (bool, np.bool_))


def _bounds_text(low, high, low_open, high_open) -> str:
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {low:g}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {high:g}")
    return " and ".join(parts)


# --------------------------------------------------------------------------
# scalars and options
# --------------------------------------------------------------------------
def real(
    value,
    name: str,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """A finite real number (not a bool, not a string, not a tensor) within the bounds, as ``float``."""
    bounds = _bounds_text(low, high, low_open, high_open)
    expected = "a finite number" + (f" {bounds}" if bounds else "")
    try:
        v = float(value) if _is_real(value) else math.nan
    except OverflowError:  # an int beyond the float range
        v = math.inf
    if not math.isfinite(v):
        raise fail(name, expected, value)
    if low is not None and (v <= low if low_open else v < low):
        raise fail(name, expected, value)
    if high is not None and (v >= high if high_open else v > high):
        raise fail(name, expected, value)
    return v


def integer(value, name: str, low: int | None = None, high: int | None = None) -> int:
    """A whole number given as an int (not a bool, not a float such as 1.5 or 2.0), as ``int``."""
    bounds = _bounds_text(low, high, False, False)
    expected = "an int" + (f" {bounds}" if bounds else "")
    if not _is_int(value):
        raise fail(name, expected, value)
    v = int(value)
    if (low is not None and v < low) or (high is not None and v > high):
        raise fail(name, expected, value)
    return v


def seed(value, name: str = "seed") -> int:
    """A random seed: an int in [0, 2**63)."""
    if not _is_int(value) or not 0 <= int(value) < 2**63:
        raise fail(name, "an int in [0, 2**63)", value)
    return int(value)


def flag(value, name: str) -> bool:
    """``True`` or ``False`` (numpy booleans too), as ``bool``."""
    if not isinstance(value, (bool, np.bool_)):
        raise fail(name, "True or False", value)
    return bool(value)


def choice(value, name: str, options: Iterable) -> Any:
    """One of ``options`` (same type and ``==``, so ``True`` is not ``1``; strings exactly, numpy's too)."""
    options = tuple(options)
    try:
        ok = any((type(value) is type(o) or isinstance(o, str) and isinstance(value, str)) and value == o for o in options)
    except Exception:  # noqa: BLE001 - an object whose == fails is not an option
        ok = False
    if not ok:
        raise fail(name, f"one of {options}", value)
    return value


def size2d(value, name: str) -> tuple[int, int]:
    """An image size ``(H, W)`` of positive ints (an int ``n`` means ``(n, n)``)."""
    if _is_int(value):
        value = (value, value)
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 2:
        raise fail(name, "a pair (H, W) of positive ints", value)
    return tuple(integer(v, f"{name}[{i}]", 1) for i, v in enumerate(value))


def per_channel(value, name: str, channels: int, check: Callable[[Any, str], Any]) -> tuple:
    """One value for every channel: a single value is repeated, a list or tuple must have one per channel.

    ``check(v, name)`` validates each value (e.g. ``lambda v, n: real(v, n, 0, 1, low_open=True)``).
    """
    if isinstance(value, (list, tuple)):
        if len(value) != channels:
            raise fail(name, f"one value or a tuple of one per channel ({channels})", value)
        return tuple(check(v, f"{name}[{i}]") for i, v in enumerate(value))
    return (check(value, name),) * channels


def function(value, name: str, optional: bool = False):
    """A callable (or ``None`` where ``optional``)."""
    if value is None and optional:
        return None
    if not callable(value):
        raise fail(name, "callable" + (" or None" if optional else ""), value)
    return value


def path(value, name: str, optional: bool = False):
    """A file-system path: a non-empty ``str`` or ``os.PathLike`` (or ``None`` where ``optional``)."""
    if value is None and optional:
        return None
    if not isinstance(value, (str, os.PathLike)) or (isinstance(value, str) and not value.strip()):
        raise fail(name, "a path (str or pathlib.Path)" + (" or None" if optional else ""), value)
    return value


# --------------------------------------------------------------------------
# tensors
# --------------------------------------------------------------------------
def tensor(x, name: str, n: int | None = None, floating: bool = False) -> torch.Tensor:
    """A ``torch.Tensor``: float32/float64 if ``floating``; with ``n``, a batch of ``n`` rows (first dimension)."""
    if not isinstance(x, torch.Tensor):
        raise fail(name, "a torch.Tensor", x)
    if floating and x.dtype not in (torch.float32, torch.float64):
        raise ArgumentError(name, f"must be a float32 or float64 tensor, got dtype {x.dtype}")
    if n is not None and (x.dim() == 0 or x.shape[0] != n):
        raise ArgumentError(name, f"must have {n} rows (one per example), got shape {tuple(x.shape)}")
    return x


def finite(x: torch.Tensor, name: str) -> torch.Tensor:
    """A tensor without NaN or infinity (one scan of the values)."""
    if not bool(torch.isfinite(x.detach()).all()):
        raise ArgumentError(name, "contains NaN or infinite values")
    return x


_TRUSTED = contextvars.ContextVar("sparsenb_trusted_images", default=False)


@contextlib.contextmanager
def trusted():
    """Inside, :func:`images` skips its value scan (one reduction and one device sync per call).

    For the inner loops of code whose images were checked on the way in and
    stay in [0, 1] by construction: an attack's steps (each clipped to the
    box, and :func:`sparsenb.attacks.base.check_adversarial` checks what it
    returns) and a training loop's batches. Types, dtypes and shapes are
    still checked.
    """
    token = _TRUSTED.set(True)
    try:
        yield
    finally:
        _TRUSTED.reset(token)


def images(
    x,
    name: str = "x",
    channels: int | None = None,
    size: tuple[int, int] | None = None,
    box: bool = True,
    scan: bool = True,
) -> torch.Tensor:
    """A float32/float64 batch ``(B, C, H, W)`` (``B`` may be 0), finite and, with ``box``, in [0, 1].

    ``box=False`` checks finiteness only (for perturbations); ``scan=False``
    checks type, dtype and shape only, in O(1) (for use inside loops), and
    so does every call inside :func:`trusted`. The value scan is one
    reduction (one device sync); the diagnosis runs only on failure.
    """
    if not isinstance(x, torch.Tensor):
        raise fail(name, "a torch.Tensor of images (B, C, H, W)", x)
    if x.dtype not in (torch.float32, torch.float64):
        raise ArgumentError(name, f"must be a float32 or float64 tensor, got dtype {x.dtype}")
    if x.dim() != 4 or min(x.shape[1:]) < 1:
        raise ArgumentError(name, f"must have shape (B, C, H, W) with C, H, W >= 1, got shape {tuple(x.shape)}")
    if channels is not None and x.shape[1] != channels:
        raise ArgumentError(name, f"must have {channels} channel(s), got shape {tuple(x.shape)}")
    if size is not None and tuple(x.shape[-2:]) != tuple(size):
        raise ArgumentError(name, f"must be images of size {tuple(size)}, got shape {tuple(x.shape)}")
    if scan and x.numel() and not _TRUSTED.get():
        v = x.detach()
        lo, hi = torch.aminmax(v)  # one pass; a NaN anywhere makes both NaN, and NaN fails every comparison
        ok = (lo >= 0) & (hi <= 1) if box else (lo > -math.inf) & (hi < math.inf)
        if not bool(ok):
            if not bool(torch.isfinite(v).all()):
                raise ArgumentError(name, "contains NaN or infinite values")
            raise ArgumentError(name, f"must lie in [0, 1], got values in [{float(v.min()):.4g}, {float(v.max()):.4g}]")
    return x


def labels(y, name: str = "y", n: int | None = None, classes: int | None = None, device=None) -> torch.Tensor:
    """Class labels: an int64/int32 tensor ``(n,)`` (on ``device`` if given) with values in ``[0, classes)``."""
    if not isinstance(y, torch.Tensor) or y.dtype not in (torch.int64, torch.int32):
        raise fail(name, "an int64 tensor of class labels", y)
    if y.dim() != 1 or (n is not None and y.shape[0] != n):
        raise ArgumentError(name, f"must be a tensor of shape ({'B' if n is None else n},), got shape {tuple(y.shape)}")
    if device is not None and y.device != torch.device(device):
        raise ArgumentError(name, f"must be on the images' device {device}, got device {y.device}")
    if classes is not None and y.numel():
        lo, hi = (int(v) for v in torch.aminmax(y))
        if lo < 0 or hi >= classes:
            raise ArgumentError(
                name, f"must hold class labels in [0, {classes - 1}] ({classes} classes), got values in [{lo}, {hi}]"
            )
    return y


def finite_gradient(g: torch.Tensor, name: str = "model") -> torch.Tensor:
    """Raise :class:`GradientError` naming ``name`` if an input gradient holds NaN or infinity.

    ``g`` is the gradient, or a boolean tensor that is True where gradients
    were finite (an attack collects one over its steps, so that it checks
    once per call without a device sync per step). A NaN gradient would
    otherwise become a zero step (``sign(nan) = 0``) and a broken model
    would look robust.
    """
    ok = g.all() if g.dtype == torch.bool else torch.isfinite(g).all()
    if not bool(ok):
        raise GradientError(
            name,
            "gives an input gradient with NaN or infinite values (its logits or loss are not finite "
            "at these images); attacking it would take zero steps and make it look robust",
        )
    return g
