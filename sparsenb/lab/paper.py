r"""The paper's numbers, and ours beside them with a verdict.

**The paper's numbers** are read at run time from ``paper_numbers.csv``
(one number per row) in the reference folder: ``$SPARSENB_REFERENCE`` if
set, else ``../shared/reference`` beside this checkout. Nothing here is
typed by hand. Columns: ``artifact`` (Table I, text VI-B, ...), ``dataset``,
``model``, ``defense``, ``attack``, ``gradient``, ``eps``, ``rho``,
``metric``, ``value`` (a float) and ``note``. :func:`paper_number` finds one.

**Ours beside them**: :class:`Comparison` collects rows (our per-image
outcomes, the paper's number); the verdict is "agrees" when the paper's
number lies in our 95% Wilson interval, else "ours higher" or "ours lower".
:meth:`Comparison.table` builds a chapter's side-by-side table and adds its
rows, and :meth:`Comparison.frame` then yields the chapter's agree/disagree
table. Each row also says what *kind* of number of ours it is
(:data:`KINDS`): the like-for-like reproduction of the paper's number
(``"ours"``), the same number under a setting the paper did not use
(``"other setting"``, e.g. the coif1 front end beside the paper's db5 row),
or an audited worst case per image, over the paper's attacks or over all
attacks. The chapters' tables treat them alike; the scorecard
(:mod:`sparsenb.book.scorecard`) takes the paper's verdict from the
``"ours"`` row and sets the all-attacks worst case beside it.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from .. import checks
from ..cache import PROJECT_ROOT
from ..evaluation import accuracy_interval, format_accuracy

__all__ = [
    "REFERENCE_ENV",
    "FILENAME",
    "COLUMNS",
    "reference_dir",
    "paper_numbers",
    "paper_number",
    "paper_rows",
    "Comparison",
    "KINDS",
    "OURS",
    "OTHER_SETTING",
    "PAPERS_ATTACKS",
    "SCREENING",
    "WORST_CASE",
    "REDUCED",
    "REDUCED_SETTING",
    "verdict",
    "widened",
]

REFERENCE_ENV = "SPARSENB_REFERENCE"
FILENAME = "paper_numbers.csv"
COLUMNS = (
    "artifact",
    "dataset",
    "model",
    "defense",
    "attack",
    "gradient",
    "eps",
    "rho",
    "metric",
    "value",
    "note",
)


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
        raise FileNotFoundError(
            f"the paper's numbers are not at {path}; set {REFERENCE_ENV} to the folder holding {FILENAME}"
        )
    return _read(path, path.stat().st_mtime).copy()


def paper_rows(root=None, **match):
    """The rows whose columns equal ``match`` (values compared as text: ``eps=0.2`` matches "0.2")."""
    df = paper_numbers(root)
    for column, value in match.items():
        if column not in COLUMNS or column == "value":
            raise checks.ArgumentError(
                column, f"is not a column of {FILENAME}; columns: {list(COLUMNS[:-2]) + ['note']}"
            )
        df = df[df[column] == ("" if value is None else str(value))]
    return df


def paper_number(root=None, **match) -> float:
    """The value of the one row of ``paper_numbers.csv`` whose columns equal ``match``.

    Raises ``LookupError`` (listing the candidates) unless exactly one row matches.
    """
    rows = paper_rows(root, **match)
    if len(rows) != 1:
        hint = (
            ""
            if len(rows) == 0
            else ": add columns to tell\n" + rows.drop(columns=["value"]).to_string()
        )
        raise LookupError(
            f"{len(rows)} rows of {FILENAME} match {match}; expected exactly one{hint}"
        )
    return float(rows["value"].iloc[0])


# --------------------------------------------------------------------------
# ours beside the paper's
# --------------------------------------------------------------------------
OURS = "ours"
OTHER_SETTING = "other setting"
PAPERS_ATTACKS = "paper's attacks, worst case"
WORST_CASE = "all attacks, worst case"
SCREENING = "screening audit"
#: What a number of ours compared with the paper's is: the like-for-like reproduction, the same under another
#: setting, the worst case per image over the paper's attacks, over all attacks (the audited robust accuracy,
#: at the profile's audit budget: one per network and budget, the same on every page), or a screening audit (a
#: cheaper pass over many networks: an upper bound that is never set beside the paper's as the worst case).
KINDS = (OURS, OTHER_SETTING, PAPERS_ATTACKS, WORST_CASE, SCREENING)


#: Why a comparison is not like for like: this profile ran a weaker attack than the paper's (fewer steps or
#: restarts), or trained the network less. Chapters declare it per section or row (:func:`verdict`).
REDUCED = ("attack", "training")
REDUCED_SETTING = "reduced setting"


def verdict(value: float, p: float, lo: float, hi: float, reduced: str | None = None) -> str:
    """Our number ``p`` with its interval ``[lo, hi]`` against the paper's ``value``.

    Like for like (``reduced`` None): "agrees" when ``value`` lies in the
    interval, else "ours higher" or "ours lower". Where this profile ran a
    weaker attack than the paper (``reduced="attack"``) our accuracy can only
    be expected higher, so the verdict is one-sided: "ours lower" when even
    the whole interval lies below the paper's number (our network is less
    robust than the paper's, whatever the attack), else "reduced setting".
    Where it trained the network less (``reduced="training"``) neither
    direction says anything about the paper: "reduced setting".
    """
    if reduced is not None and reduced not in REDUCED:
        raise ValueError(f"reduced must be None or one of {REDUCED}, got {reduced!r}")
    if reduced == "training":
        return REDUCED_SETTING
    if reduced == "attack":
        return "ours lower" if hi < value else REDUCED_SETTING
    return "agrees" if lo <= value <= hi else ("ours higher" if p > value else "ours lower")


def widened(p: float, lo: float, hi: float, spread: float, z: float = 1.96) -> tuple[float, float]:
    r"""The interval ``[lo, hi]`` of one network's accuracy ``p`` widened by the spread between networks.

    ``spread`` is the standard deviation (points) of the accuracy of networks
    trained by the same recipe with different seeds, measured on the same
    images. Our network and the paper's are one draw each, so the difference
    between them varies by :math:`\sqrt{2}` times it besides our sampling
    error: each side of the interval becomes
    :math:`\sqrt{h^2 + 2 (z s)^2}` for its half-width :math:`h`, clipped to
    [0, 100].
    """
    extra = 2.0 * (z * float(spread)) ** 2
    return max(0.0, p - float(np.sqrt((p - lo) ** 2 + extra))), min(
        100.0, p + float(np.sqrt((hi - p) ** 2 + extra))
    )


class Comparison:
    """Our per-image outcomes beside the paper's numbers, one row each, with a verdict.

    ``add(section, row, column, correct, kind="ours", **paper)`` looks up
    the paper's number with :func:`sparsenb.lab.paper.paper_number`
    (``paper`` holds the CSV's columns). The verdict is "agrees" when the
    paper's number lies in our 95% Wilson interval, else "ours higher" or
    "ours lower". ``kind`` is one of :data:`KINDS`.
    """

    def __init__(self):
        self.rows: list[dict] = []

    def add(self, section: str, row: str, column: str, correct, kind: str = OURS, **paper) -> float:
        checks.choice(kind, "kind", KINDS)
        value = paper_number(**paper)
        csv_row = int(
            paper_rows(**paper).index[0]
        )  # its position in paper_numbers.csv (0 = first number)
        p, lo, hi = accuracy_interval(correct)
        n = int(np.asarray(correct).size)
        self.rows.append(
            {
                "table": section,
                "row": row,
                "column": column,
                "ours": round(p, 2),
                "95% CI": f"[{lo:.1f}, {hi:.1f}]",
                "paper": value,
                "ours - paper": round(p - value, 2),
                "verdict": verdict(value, p, lo, hi),
                "kind": kind,
                "paper_row": csv_row,
                "n": n,
                "lo": lo,
                "hi": hi,
                "accuracy": p,
            }
        )
        return value

    def table(self, section: str, entries) -> "pandas.DataFrame":  # noqa: F821
        """A table of our accuracies (with 95% intervals) beside the paper's, rows added to ``comparison``.

        ``entries`` holds ``(row, column, correct, paper)`` tuples, or
        ``(row, column, correct, paper, kind)`` with ``kind`` one of
        :data:`KINDS` (default ``"ours"``): ``correct`` the per-image 0/1
        outcomes, ``paper`` the columns of the paper's row in
        ``paper_numbers.csv`` (a dict), or ``None`` where the paper has no
        number. Each column ``c`` of the result is followed by ``"paper: c"``;
        a cell without a paper number shows "-". A ``paper`` match naming a value
        that appears nowhere in the CSV raises, so a typo cannot pass for a
        missing number.
        """
        import pandas as pd

        table: dict = {}
        columns: list = []
        for entry in entries:
            if len(entry) not in (4, 5):
                raise checks.ArgumentError(
                    "entries",
                    f"must hold (row, column, correct, paper[, kind]) tuples, got {entry!r:.80}",
                )
            row, column, correct, paper, kind = (*entry, OURS)[:5]
            value = "-"
            if paper is not None:
                rows = paper_rows(**paper)  # an unknown column raises here
                known = paper_numbers()
                for k, v in paper.items():
                    if ("" if v is None else str(v)) not in set(
                        known[k]
                    ):  # None matches an empty field, as in paper_rows
                        raise checks.ArgumentError(
                            "paper", f"{k}={v!r} appears in no row of paper_numbers.csv"
                        )
                if len(rows) == 1:
                    value = self.add(section, row, column, correct, kind, **paper)
                elif len(rows) > 1:
                    raise LookupError(f"several rows of paper_numbers.csv match {paper}")
            table.setdefault(row, {})[column] = format_accuracy(correct)
            table[row][f"paper: {column}"] = value
            for c in (column, f"paper: {column}"):
                if c not in columns:
                    columns.append(c)
        return pd.DataFrame(table).T.reindex(columns=columns).fillna("")

    def frame(self, disagreements_only: bool = False):
        """The compared rows as a table (only the disagreements with ``disagreements_only``)."""
        import pandas as pd

        df = pd.DataFrame(
            self.rows,
            columns=[
                "table",
                "row",
                "column",
                "ours",
                "95% CI",
                "paper",
                "ours - paper",
                "verdict",
            ],
        )
        return df[df["verdict"] != "agrees"].reset_index(drop=True) if disagreements_only else df

    def counts(self) -> dict[str, int]:
        """How many rows have each verdict (and ``"compared"``: all rows)."""
        out = {"compared": len(self.rows), "agrees": 0, "ours higher": 0, "ours lower": 0}
        for r in self.rows:
            out[r["verdict"]] += 1
        return out
