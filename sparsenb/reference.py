"""The paper's reported numbers, for the side-by-side tables and the prose.

They are read at run time from ``paper_numbers.csv`` (one number per row) in
the reference folder: ``$SPARSENB_REFERENCE`` if set, else
``../shared/reference`` beside this checkout. Nothing here is typed by hand.

Columns: ``artifact`` (Table I, text VI-B, ...), ``dataset``, ``model``,
``defense``, ``attack``, ``gradient``, ``eps``, ``rho``, ``metric``,
``value`` (a float) and ``note``.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from . import checks
from .cache import PROJECT_ROOT

__all__ = ["REFERENCE_ENV", "COLUMNS", "reference_dir", "paper_numbers", "paper_number", "paper_rows"]

REFERENCE_ENV = "SPARSENB_REFERENCE"
FILENAME = "paper_numbers.csv"
COLUMNS = ("artifact", "dataset", "model", "defense", "attack", "gradient", "eps", "rho", "metric", "value", "note")


def reference_dir(root=None) -> Path:
    """Folder holding ``paper_numbers.csv``: ``root``, ``$SPARSENB_REFERENCE`` or ``../shared/reference``."""
    if root is None:
        root = os.environ.get(REFERENCE_ENV) or (PROJECT_ROOT.parent / "shared" / "reference")
    return Path(root).expanduser().resolve()


@lru_cache(maxsize=8)
def _read(path: Path, mtime: float):
    import pandas as pd

    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{path} lacks the column(s) {missing}; expected {list(COLUMNS)}")
    df["value"] = df["value"].astype(float)
    return df


def paper_numbers(root=None):
    """Every number of the paper as a pandas DataFrame, one per row (``value`` is a float)."""
    path = reference_dir(root) / FILENAME
    if not path.is_file():
        raise FileNotFoundError(f"the paper's numbers are not at {path}; set {REFERENCE_ENV} to the folder holding {FILENAME}")
    return _read(path, path.stat().st_mtime).copy()


def paper_rows(root=None, **match):
    """The rows whose columns equal ``match`` (values compared as text: ``eps=0.2`` matches "0.2")."""
    df = paper_numbers(root)
    for column, value in match.items():
        if column not in COLUMNS or column == "value":
            raise checks.ArgumentError(column, f"is not a column of {FILENAME}; columns: {list(COLUMNS[:-2]) + ['note']}")
        df = df[df[column] == ("" if value is None else str(value))]
    return df


def paper_number(root=None, **match) -> float:
    """The value of the one row of ``paper_numbers.csv`` whose columns equal ``match``.

    Raises ``LookupError`` (listing the candidates) unless exactly one row matches.
    """
    rows = paper_rows(root, **match)
    if len(rows) != 1:
        hint = "" if len(rows) == 0 else ": add columns to tell\n" + rows.drop(columns=["value"]).to_string()
        raise LookupError(f"{len(rows)} rows of {FILENAME} match {match}; expected exactly one{hint}")
    return float(rows["value"].iloc[0])
