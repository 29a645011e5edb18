"""A toy chapter: how much of a digit its K largest wavelet coefficients keep (tests/test_new_chapter.py).

================  =================================================================
:func:`kept`      the mean energy share the top K coefficients keep, per sparsity level
================  =================================================================
"""
from __future__ import annotations

import pandas as pd
import torch

from .. import data
from ..frontend import SparsifyingFrontEnd, energy_captured
from .section import Section, numbers

__all__ = ["kept"]


def kept(n_images: int, rhos) -> Section:
    """The mean share of image energy the top K coefficients keep, on the first ``n_images`` test digits."""
    x = data.load_mnist("test", dtype=torch.float64)[0][:n_images]
    rows = {}
    for rho in rhos:
        fe = SparsifyingFrontEnd(rho, "coif1")
        rows[f"{rho:.1%}"] = {"K": fe.K[0], "energy kept %": 100 * float(energy_captured(x, fe.transform, fe.K).mean())}
    table = pd.DataFrame(rows).T
    return Section(table=table, numbers=numbers(n_images=n_images, best=table["energy kept %"].max()))
