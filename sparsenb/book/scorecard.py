"""The reproduction scorecard: every number of the paper beside ours, from what the chapters stored in this build.

A chapter that compares its numbers with the paper ends by recording its
:class:`~sparsenb.lab.paper.Comparison` (:func:`record`, called through
:func:`sparsenb.book.page.record`). Inside a build, :func:`sparsenb.book.execute.execute_chapter`
tells the kernel where records go and the key of this execution
(:data:`~sparsenb.book.layout.RECORDS_ENV`, :data:`~sparsenb.book.layout.KEY_ENV`, :data:`~sparsenb.book.layout.CHAPTER_ENV`), and the record is
written atomically to ``<staging>/book/.records/<chapter>.json``. The
scorecard page executes after every other chapter
(:data:`sparsenb.book.layout.SUMMARY_PAGES`) and :func:`card` reads only records
whose key is that of the chapter's last successful execution in the same
staging folder: a record left by a failed or older run counts as "did not
run". Nothing is recomputed and nothing is typed.

:func:`card` has one row per row of ``paper_numbers.csv``, with

* ``number``: the attack (with the paper's gradient treatment and any
  metric other than accuracy under attack) in one short cell;
* ``ours`` and its 95% Wilson interval: the chapter's like-for-like number
  (kind ``"ours"``);
* ``worst case``: the audited worst case per image over all attacks for the
  same model, defense and :math:`\\epsilon` (kind ``"all attacks, worst
  case"``), where the chapter measured one: the model's robust accuracy
  bounds every attack's accuracy, so it applies to every attacked row of
  that model;
* ``verdict`` (:data:`VERDICTS`): "agrees" when the paper's number lies in
  our interval, "ours higher", "ours lower"; "not run at this profile" when
  the chapter that reproduces the number did not run in this build or ran
  without this cell; "cannot be run here" with the reason
  (:data:`CANNOT_RUN`, or no chapter of the book reproduces it yet);
* ``why``: the reason for a missing number, or the chapter's explanation of
  what differs by construction for a disagreement.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from .. import checks
from ..cache import PROJECT_ROOT, atomic_write_json
from ..lab.paper import OTHER_SETTING, OURS, WORST_CASE, paper_numbers, verdict
from .layout import CHAPTER_ENV, KEY_ENV, PROFILES, RECORDS_ENV, Book, stamp_path

__all__ = [
    "CHAPTERS",
    "CANNOT_RUN",
    "VERDICTS",
    "record",
    "records",
    "card",
    "counts",
    "largest_disagreements",
    "show_whole_tables",
    "summary",
    "disagreement_notes",
    "discussed",
    "by_table",
    "reasons",
]

RECORD_VERSION = 1

#: Which chapter (file stem) reproduces the numbers of each artifact of ``paper_numbers.csv``.
CHAPTERS = {
    "Table I": "mnist_binary",
    "text VI-A": "mnist_binary",
    "App. B-D": "mnist_binary",
    "Table II": "mnist_multiclass",
    "Table V": "mnist_multiclass",
    "Table VI": "mnist_multiclass",
    "App. B-E": "mnist_multiclass",
    "Table III": "adversarial_training",
    "text VI-B": "adversarial_training",
    "Table IV": "cifar10",
}
#: Rows no chapter can reproduce, whatever the profile: ``(column, value) -> why``.
CANNOT_RUN = {
    ("model", "pretrained"): "the paper cites it for another group's pretrained model, which this offline machine does not have",
}
NOT_RUN = "not run at this profile"
CANNOT = "cannot be run here"
#: The verdicts of the scorecard, in the order its summary counts them.
VERDICTS = ("agrees", "ours higher", "ours lower", NOT_RUN, CANNOT)
_IDENTITY = ("dataset", "model", "defense", "eps", "rho")  # rows sharing these measure the same model at the same budget


def record(comparison, profile: str, where: str, why: dict | None = None, cannot: dict | None = None) -> dict:
    """A chapter's comparison with the paper, written for the scorecard when it runs inside a build.

    ``comparison``: the chapter's :class:`~sparsenb.lab.paper.Comparison`;
    ``profile``: the profile it ran at; ``where``: the label of the section
    that discusses its disagreements (the scorecard links to it); ``why``:
    ``{section: text}``, what differs by construction in each section of
    the comparison (shown beside that section's disagreements; a key
    ``"section / row"`` explains one row of a section instead; keys the
    comparison does not have at this profile are left out); ``cannot``:
    ``{section: text}`` for sections whose numbers are of another setting
    because the paper's cannot be run here (e.g. CIFAR-10 where only a subset
    of it is on the machine): their paper numbers then count as "cannot be
    run here", with the reason and our number in that setting, rather than as
    "not run at this profile". Returns the
    record; inside a build (:data:`~sparsenb.book.layout.RECORDS_ENV` set) it is also written
    atomically to ``<records>/<chapter>.json`` with the execution's key.
    """
    checks.choice(profile, "profile", PROFILES)
    if not isinstance(where, str) or not where:
        raise checks.ArgumentError("where", f"must name the label of a section, got {where!r}")
    why = {} if why is None else why
    if not isinstance(why, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in why.items()):
        raise checks.ArgumentError("why", "must map section names to explanations (str -> str)")
    cannot = {} if cannot is None else cannot
    if not isinstance(cannot, dict) or not all(isinstance(k, str) and isinstance(v, str) and v for k, v in cannot.items()):
        raise checks.ArgumentError("cannot", "must map section names to reasons (str -> non-empty str)")
    rows = getattr(comparison, "rows", None)
    if not isinstance(rows, list):
        raise checks.ArgumentError("comparison", f"must be a sparsenb.lab.paper.Comparison, got {type(comparison).__name__}")
    sections = {r["table"] for r in rows}
    named = sections | {f"{r['table']} / {r['row']}" for r in rows}
    why = {k: v for k, v in why.items() if k in named}  # a section this profile did not compare has nothing to explain
    cannot = {k: v for k, v in cannot.items() if k in sections}
    keep = ("table", "row", "column", "kind", "paper_row", "paper", "n", "accuracy", "lo", "hi")
    numbers = paper_numbers()
    identify = [c for c in numbers.columns if c != "value"]
    out = {
        "version": RECORD_VERSION,
        "chapter": os.environ.get(CHAPTER_ENV, ""),
        "key": os.environ.get(KEY_ENV, ""),
        "profile": profile,
        "where": where,
        "why": why,
        "cannot": cannot,
        "rows": [{k: r[k] for k in keep} | {"paper_columns": {c: numbers[c].iloc[r["paper_row"]] for c in identify}} for r in rows],
    }
    folder = os.environ.get(RECORDS_ENV)
    if folder and out["chapter"]:
        atomic_write_json(Path(folder) / f"{out['chapter']}.json", out)
    return out


def records(folder=None, profile: str = "laptop") -> tuple[dict, dict]:
    """This build's valid records and why the others are not: ``({chapter: record}, {chapter: why})``.

    ``folder`` defaults to :data:`~sparsenb.book.layout.RECORDS_ENV`, else ``_build/<profile>/book/.records``.
    A record is valid when its chapter's last successful execution in the
    same staging folder (``../.executed/<chapter>.json``) has the record's
    key, its profile is ``profile``, and every paper number it compared is
    still the number of that row of ``paper_numbers.csv``.
    """
    checks.choice(profile, "profile", PROFILES)
    if folder is None:
        folder = os.environ.get(RECORDS_ENV) or (PROJECT_ROOT / "_build" / profile / "book" / ".records")
    folder = Path(folder)
    numbers = paper_numbers()
    valid, invalid = {}, {}
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            rec = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            invalid[path.stem] = "its record cannot be read"
            continue
        stamp = stamp_path(folder.parent, path.stem)
        stamp_key = json.loads(stamp.read_text()).get("key") if stamp.is_file() else None
        if rec.get("version") != RECORD_VERSION or not rec.get("key") or rec.get("key") != stamp_key:
            invalid[path.stem] = "its record is not from its last successful execution"
        elif rec.get("profile") != profile:
            invalid[path.stem] = f"it ran at the {rec.get('profile')} profile"
        elif not all(_same_paper_row(numbers, r) for r in rec["rows"]):
            invalid[path.stem] = "paper_numbers.csv changed since it ran"
        else:
            valid[path.stem] = rec
    return valid, invalid


def _same_paper_row(numbers, r: dict) -> bool:
    """Whether the record row's CSV row still holds the number (and every column) it was compared with."""
    i = r["paper_row"]
    if not 0 <= i < len(numbers) or float(numbers["value"].iloc[i]) != r["paper"] or not r.get("paper_columns"):
        return False
    return all(c in numbers.columns and numbers[c].iloc[i] == v for c, v in r["paper_columns"].items())


def _cannot_run(row) -> str | None:
    for (column, value), why in CANNOT_RUN.items():
        if row[column] == value:
            return why
    return None


def card(profile: str = "laptop", folder=None, chapters=None):
    """The scorecard: one row per row of ``paper_numbers.csv``, in its order (see the module docstring).

    ``chapters``: the file stems of the book's chapters (default: those in
    ``_toc.yml``); a number whose chapter is not among them "cannot be run
    here" (no chapter reproduces it yet).
    """
    import pandas as pd

    if chapters is None:
        chapters = [p.stem for p in Book().chapters()]
    chapters = list(chapters)
    valid, invalid = records(folder, profile)
    valid = {c: valid[c] for c in chapters if c in valid}  # in book order; a chapter no longer in the book does not count
    numbers = paper_numbers()
    ours: dict[int, list] = {}  # csv row -> [(chapter, record row)], like-for-like numbers in book order
    other: dict[int, list] = {}  # csv row -> [(chapter, record row)]: numbers of another setting, in book order
    worst_on: dict[tuple, dict] = {}  # (chapter, csv row) -> the all-attacks worst case recorded on that row
    worst: dict[tuple, dict] = {}  # (chapter, identity) -> the same, for every row of that model at that budget
    for chapter, rec in valid.items():
        for r in rec["rows"]:
            if r["kind"] == OURS:
                ours.setdefault(r["paper_row"], []).append((chapter, r))
            elif r["kind"] == OTHER_SETTING and r["table"] in rec.get("cannot", {}):  # only another setting can run here
                other.setdefault(r["paper_row"], []).append((chapter, r))
            elif r["kind"] == WORST_CASE:
                worst_on.setdefault((chapter, r["paper_row"]), r)
                worst.setdefault((chapter, tuple(numbers[c].iloc[r["paper_row"]] for c in _IDENTITY)), r)
    out = []
    for i, row in numbers.iterrows():
        entry = {c: row[c] for c in ("artifact", "dataset", "model", "defense", "attack", "gradient", "eps", "rho", "metric")}
        entry["number"] = row["attack"] + (f" ({row['gradient']})" if row["gradient"] else "") + (
            f", {row['metric']}" if row["metric"] != "accuracy %" else "")  # what was measured, in one short cell
        entry.update({"paper": float(row["value"]), "ours": None, "95% CI": "", "n": None, "worst case": "",
                      "worst case - paper": None, "chapter": CHAPTERS.get(row["artifact"], ""), "section": "", "why": ""})
        chapter = entry["chapter"]
        if i in ours:  # the chapter that reproduces this table, if it recorded the number, else the first that did
            chapter, r = next((c for c in ours[i] if c[0] == chapter), ours[i][0])
            p, lo, hi = r["accuracy"], r["lo"], r["hi"]
            entry.update({"ours": round(p, 2), "95% CI": f"[{lo:.2f}, {hi:.2f}]", "n": r["n"], "chapter": chapter,
                          "section": r["table"], "verdict": verdict(entry["paper"], p, lo, hi)})
            if entry["verdict"] != "agrees":
                why = valid[chapter]["why"]
                entry["why"] = why.get(f"{r['table']} / {r['row']}", why.get(r["table"], ""))
            attacked = row["metric"] == "accuracy %" and row["attack"] != "none"
            identity = tuple(row[c] for c in _IDENTITY)
            w = worst_on.get((chapter, i)) or (worst.get((chapter, identity)) if attacked else None)
            if w is not None:
                entry["worst case"] = f"{w['accuracy']:.2f} [{w['lo']:.2f}, {w['hi']:.2f}] (n = {w['n']})"
                entry["worst case - paper"] = round(w["accuracy"] - entry["paper"], 2)
        elif (why := _cannot_run(row)) is not None:
            entry.update({"verdict": CANNOT, "why": why})
        elif chapter not in chapters:
            entry.update({"verdict": CANNOT, "why": f"no chapter of this book reproduces {row['artifact']} yet"})
        elif i in other:  # a chapter measured it in another setting and said why the paper's cannot run here
            chapter, r = next((c for c in other[i] if c[0] == chapter), other[i][0])
            reason = valid[chapter]["cannot"][r["table"]]
            entry.update({"verdict": CANNOT, "chapter": chapter, "section": r["table"],
                          "why": f"{reason}. Ours in that setting: {r['accuracy']:.2f} [{r['lo']:.2f}, {r['hi']:.2f}] (n = {r['n']})"})
        elif chapter in valid:
            entry.update({"verdict": NOT_RUN, "why": f"{chapter} ran at the {profile} profile without this number"})
        else:
            reason = invalid.get(chapter, "it did not run in this build")
            entry.update({"verdict": NOT_RUN, "why": f"{chapter}: {reason}"})
        entry["where"] = valid[chapter]["where"] if chapter in valid else ""
        out.append(entry)
    columns = ["artifact", "dataset", "model", "defense", "attack", "gradient", "eps", "rho", "metric", "number", "paper", "ours", "95% CI", "n",
               "worst case", "worst case - paper", "verdict", "why", "chapter", "section", "where"]
    return pd.DataFrame(out, columns=columns)


def counts(scorecard) -> dict[str, int]:
    """How many numbers of the paper have each verdict (every verdict of :data:`VERDICTS`, zeros included)."""
    found = scorecard["verdict"].value_counts().to_dict()
    unknown = set(found) - set(VERDICTS)
    if unknown:
        raise checks.ArgumentError("scorecard", f"has verdicts {sorted(unknown)} outside {VERDICTS}")
    return {v: int(found.get(v, 0)) for v in VERDICTS}


def largest_disagreements(scorecard, n: int = 5):
    """The ``n`` compared numbers farthest from the paper's among the disagreements (largest ``|ours - paper|``)."""
    n = checks.integer(n, "n", 0)
    compared = scorecard[scorecard["verdict"].isin(("ours higher", "ours lower"))].copy()
    compared["ours - paper"] = (compared["ours"] - compared["paper"]).round(2)
    order = compared["ours - paper"].abs().sort_values(ascending=False, kind="stable").index
    top = compared.loc[order[:n]].reset_index(drop=True)
    top.index += 1  # numbered from 1, as the page lists them
    return top


# --------------------------------------------------------------------------
# what the scorecard page shows, one function per part
# --------------------------------------------------------------------------
def show_whole_tables() -> None:
    """Let the page show every row of its tables and every cell whole (pandas' display options)."""
    import pandas as pd

    pd.set_option("display.max_rows", 200, "display.max_colwidth", None)


def summary(card) -> tuple:
    """The verdicts counted per table of the paper, and the counts the page quotes: ``(table, numbers)``."""
    import pandas as pd

    c = counts(card)
    audited = card[card["worst case - paper"].notna()]
    numbers = {
        "n_numbers": len(card), "n_agree": c["agrees"], "n_higher": c["ours higher"], "n_lower": c["ours lower"],
        "n_not_run": c[NOT_RUN], "n_cannot": c[CANNOT], "n_audited": len(audited),
        "n_worst_below": int((audited["worst case - paper"] < 0).sum()),
    }
    table = pd.crosstab(card["artifact"], card["verdict"], margins=True, margins_name="all").reindex(
        index=[*card["artifact"].unique(), "all"], columns=[*VERDICTS, "all"], fill_value=0
    )
    return table, numbers


def disagreement_notes(top):
    """What each chapter says differs by construction, for the rows of :func:`largest_disagreements` (Markdown)."""
    from IPython.display import Markdown

    lines = [f"{i}. {r['artifact']}, {r['defense']}, {r['attack']} ({r['chapter']}): "
             f"{r['why'] or 'no explanation recorded'}." for i, r in top.iterrows()]
    return Markdown("\n".join(lines) or "(no disagreement in this build)")


def discussed(card):
    """A list of the sections where each chapter discusses its disagreements (Markdown)."""
    from IPython.display import Markdown

    where = card[card["where"] != ""].drop_duplicates("chapter")
    lines = [f"- {{ref}}`{w}` ({c})" for w, c in zip(where["where"], where["chapter"])]
    return Markdown("\n".join(lines) or "- (no chapter recorded a comparison in this build)")


def by_table(card):
    """Every number, numbered within its table of the paper."""
    columns = ["defense", "number", "eps", "paper", "ours", "95% CI", "worst case", "verdict"]
    index = ["artifact", card.groupby("artifact", sort=False).cumcount() + 1]
    return card.set_index(index)[columns].astype(object).fillna("")


def reasons(card):
    """Why numbers are missing, and what differs by construction where they disagree, with how many (Markdown)."""
    from IPython.display import Markdown

    grouped = card[card["why"] != ""].groupby("why", sort=False).agg(n=("artifact", "size"), tables=("artifact", "unique"))
    lines = [f"- {r['n']} number(s) of {', '.join(r['tables'])}: {why}." for why, r in grouped.iterrows()]
    return Markdown("\n".join(lines) or "- (none)")
