"""The paper's reported numbers, for the side-by-side tables.

They are read at run time from ``paper_results.csv`` in the reference folder:
``$SPARSENB_REFERENCE`` if set, else ``../shared/reference`` beside this
checkout. Nothing here is typed by hand.
"""
from __future__ import annotations

import os
from pathlib import Path

from .cache import PROJECT_ROOT

__all__ = ["REFERENCE_ENV", "reference_dir", "paper_results", "paper_value"]

REFERENCE_ENV = "SPARSENB_REFERENCE"


def reference_dir(root=None) -> Path:
    """Folder holding ``paper_results.csv``: ``root``, ``$SPARSENB_REFERENCE`` or ``../shared/reference``."""
    if root is None:
        root = os.environ.get(REFERENCE_ENV) or (PROJECT_ROOT.parent / "shared" / "reference")
    return Path(root).expanduser().resolve()


def paper_results(root=None):
    """The paper's numbers as a pandas DataFrame (columns: artifact, dataset, model,
    defense, attack, eps, rho, metric, value, note); ``value`` stays text because
    some cells hold several numbers ("82.02 / 86.08 / 78.27")."""
    import pandas as pd

    path = reference_dir(root) / "paper_results.csv"
    if not path.is_file():
        raise FileNotFoundError(
            f"the paper's numbers are not at {path}; set {REFERENCE_ENV} to the folder holding paper_results.csv"
        )
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def paper_value(artifact: str, root=None, **match) -> list[float]:
    """The number(s) of the one row of ``artifact`` whose columns equal ``match``.

    ``"82.02 / 86.08 / 78.27*"`` gives ``[82.02, 86.08, 78.27]``; a dash gives NaN.
    Raises ``LookupError`` unless exactly one row matches.
    """
    df = paper_results(root)
    rows = df[df["artifact"] == artifact]
    for column, value in match.items():
        if column not in df.columns:
            raise KeyError(f"no column {column!r} in paper_results.csv; columns: {list(df.columns)}")
        rows = rows[rows[column] == str(value)]
    if len(rows) != 1:
        raise LookupError(f"{len(rows)} rows of {artifact!r} match {match}; expected exactly one")
    out = []
    for part in rows.iloc[0]["value"].split("/"):
        part = part.strip().rstrip("*").strip()
        out.append(float("nan") if part in ("-", "—", "") else float(part))
    return out
