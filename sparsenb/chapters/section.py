"""What a chapter module returns for each section of its page.

Every page of the book has a module of the same stem in :mod:`sparsenb.chapters`
with one function per section. Each returns a :class:`Section`: its tables
and figures as attributes (``section.table``, ``section.figure``) and
``numbers``, the values the page's prose argues from, keyed by their glue
names (the page calls ``glue(**section.numbers)``). Sections return numbers,
tables and figures, never sentences: prose stays in the page.
"""

from __future__ import annotations

import functools
from types import SimpleNamespace

import numpy as np

__all__ = ["Section", "numbers", "drawn", "powers_of_two", "mnist_digits"]


class Section(SimpleNamespace):
    """What one section of a chapter computed: tables and figures as attributes, ``numbers`` for the prose."""


def numbers(**values) -> dict:
    """``values`` as glue-ready Python numbers: integers as ``int``, other numbers as ``float`` (NumPy and torch
    scalars included), strings as they are; ``:`` in names becomes ``_``."""
    import numbers as _numbers

    def plain(v):
        if isinstance(v, str):
            return v
        if hasattr(v, "item") and getattr(v, "ndim", 0) == 0:
            v = v.item()
        if isinstance(v, _numbers.Integral) and not isinstance(v, bool):
            return int(v)
        return float(v) + 0.0

    return {k.replace(":", "_"): plain(v) for k, v in values.items()}


def drawn(draw):
    """Decorate a section function so that its :class:`Section` carries ``figure = draw(section)``.

    The figure is closed in pyplot (it is not shown where it was made); the
    page places it with :func:`sparsenb.book.page.figure`.
    """

    def decorate(fn):
        @functools.wraps(fn)
        def section(*args, **kwargs) -> Section:
            import matplotlib.pyplot as plt

            s = fn(*args, **kwargs)
            s.figure = draw(s)
            plt.close(s.figure)
            return s

        return section

    return decorate


def powers_of_two(log2_bounds) -> list[int]:
    """:math:`2^a, 2^{a+1}, \\ldots, 2^b` for ``log2_bounds = (a, b)``."""
    low, high = log2_bounds
    return [int(n) for n in 2 ** np.arange(low, high + 1)]


def mnist_digits(n_images: int, seed: int):
    """A seeded random ``n_images`` of the MNIST test digits, in float64 (the theory chapters' inputs)."""
    import torch

    from .. import data

    x, y = data.load_mnist("test", dtype=torch.float64)
    return data.subset(x, y, n_images, seed=seed)[0]
