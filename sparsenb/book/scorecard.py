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
from ..lab.paper import (
    COLUMNS,
    OTHER_SETTING,
    OURS,
    REDUCED,
    REDUCED_SETTING,
    SCREENING,
    WORST_CASE,
    paper_numbers,
    verdict,
    widened,
)
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
    "audits",
    "AuditConflict",
    "spreads",
    "spread_table",
    "disagreement_notes",
    "discussed",
    "by_table",
    "reasons",
]

RECORD_VERSION = 2

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
    (
        "model",
        "pretrained",
    ): "the paper cites it for another group's pretrained model, which this offline machine does not have",
}
NOT_RUN = "not run at this profile"
CANNOT = "cannot be run here"
#: The verdicts of the scorecard, in the order its summary counts them. Only like-for-like rows count as
#: agreement or disagreement; where this profile reduced the attack or the training the row says
#: "reduced setting" (one-sided where only the attack was reduced: see :func:`sparsenb.lab.paper.verdict`).
VERDICTS = ("agrees", "ours higher", "ours lower", REDUCED_SETTING, NOT_RUN, CANNOT)
#: Models whose fit is deterministic (no spread between trainings): the scikit-learn SVM.
DETERMINISTIC = ("linear SVM",)
_IDENTITY = (
    "dataset",
    "model",
    "defense",
    "eps",
    "rho",
)  # rows sharing these measure the same model at the same budget
#: The columns of paper_numbers.csv that say which number a row is (all before its value).
_DESCRIBED = COLUMNS[: COLUMNS.index("value")]


def record(
    comparison,
    profile: str,
    where: str,
    why: dict | None = None,
    cannot: dict | None = None,
    reduced: dict | None = None,
    spread: dict | None = None,
) -> dict:
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
    "not run at this profile". ``reduced``: ``{section, "section / row" or "section / row / column":
    ("attack" or "training", what was reduced and by how much)}`` for
    numbers this profile measured with a weaker attack than the paper's or a
    less-trained network (:func:`sparsenb.lab.paper.verdict`). ``spread``:
    ``{model: {"clean": sd, "attacked": sd, "networks": k, "images": n}}``,
    the standard deviation (points) of the accuracy of ``k`` networks of the
    paper's model (its ``model`` in ``paper_numbers.csv``) trained with
    different seeds, clean and under the chapter's strongest attack. Returns the
    record; inside a build (:data:`~sparsenb.book.layout.RECORDS_ENV` set) it is also written
    atomically to ``<records>/<chapter>.json`` with the execution's key.
    """
    checks.choice(profile, "profile", PROFILES)
    if not isinstance(where, str) or not where:
        raise checks.ArgumentError("where", f"must name the label of a section, got {where!r}")
    why = {} if why is None else why
    if not isinstance(why, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in why.items()
    ):
        raise checks.ArgumentError("why", "must map section names to explanations (str -> str)")
    cannot = {} if cannot is None else cannot
    if not isinstance(cannot, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v for k, v in cannot.items()
    ):
        raise checks.ArgumentError(
            "cannot", "must map section names to reasons (str -> non-empty str)"
        )
    rows = getattr(comparison, "rows", None)
    if not isinstance(rows, list):
        raise checks.ArgumentError(
            "comparison",
            f"must be a sparsenb.lab.paper.Comparison, got {type(comparison).__name__}",
        )
    sections = {r["table"] for r in rows}
    named = (
        sections
        | {f"{r['table']} / {r['row']}" for r in rows}
        | {f"{r['table']} / {r['row']} / {r['column']}" for r in rows}
    )
    why = {
        k: v for k, v in why.items() if k in named
    }  # a section this profile did not compare has nothing to explain
    cannot = {k: v for k, v in cannot.items() if k in sections}
    reduced = {} if reduced is None else reduced
    ok = (
        all(
            isinstance(k, str)
            and isinstance(v, (tuple, list))
            and len(v) == 2
            and v[0] in REDUCED
            and isinstance(v[1], str)
            and v[1]
            for k, v in reduced.items()
        )
        if isinstance(reduced, dict)
        else False
    )
    if not ok:
        raise checks.ArgumentError(
            "reduced", f"must map section names to pairs (one of {REDUCED}, what was reduced)"
        )
    reduced = {k: list(v) for k, v in reduced.items() if k in named}
    spread = {} if spread is None else spread
    if not isinstance(spread, dict) or not all(
        isinstance(m, str)
        and isinstance(v, dict)
        and {"clean", "attacked", "networks", "images"} <= set(v)
        for m, v in spread.items()
    ):
        raise checks.ArgumentError(
            "spread", "must map model names to {'clean', 'attacked', 'networks', 'images'}"
        )
    spread = {m: {k: float(x) for k, x in v.items()} for m, v in spread.items()}
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
        "reduced": reduced,
        "spread": spread,
        "rows": [
            {k: r[k] for k in keep}
            | {"paper_columns": {c: numbers[c].iloc[r["paper_row"]] for c in identify}}
            for r in rows
        ],
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
        folder = os.environ.get(RECORDS_ENV) or (
            PROJECT_ROOT / "_build" / profile / "book" / ".records"
        )
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
        if (
            rec.get("version") != RECORD_VERSION
            or not rec.get("key")
            or rec.get("key") != stamp_key
        ):
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
    if (
        not 0 <= i < len(numbers)
        or float(numbers["value"].iloc[i]) != r["paper"]
        or not r.get("paper_columns")
    ):
        return False
    return all(
        c in numbers.columns and numbers[c].iloc[i] == v for c, v in r["paper_columns"].items()
    )


def _cannot_run(row) -> str | None:
    for (column, value), why in CANNOT_RUN.items():
        if row[column] == value:
            return why
    return None


def spreads(valid: dict) -> dict:
    """The spread between networks the chapters recorded, by model: ``{model: {"clean", "attacked", "networks",
    "images", "chapter"}}`` (the first chapter, in book order, that measured each model)."""
    out = {}
    for chapter, rec in valid.items():
        for model, s in rec.get("spread", {}).items():
            out.setdefault(model, {**s, "chapter": chapter})
    return out


def _spread_of(model: str, attacked: bool, measured: dict) -> tuple[float, str]:
    """The spread (points) that widens a row of ``model``, and where it comes from."""
    if model in DETERMINISTIC:
        return 0.0, "deterministic fit"
    key = "attacked" if attacked else "clean"
    if model in measured:
        return measured[model][key], f"{model}, {int(measured[model]['networks'])} networks"
    if (
        measured
    ):  # a network whose spread was not measured: the largest one measured stands in for it
        stand_in = max(measured, key=lambda m: measured[m][key])
        return measured[stand_in][key], f"as the {stand_in} (not measured for this model)"
    return 0.0, "not measured in this build"


def card(profile: str = "laptop", folder=None, chapters=None):
    """The scorecard: one row per row of ``paper_numbers.csv``, in its order (see the module docstring).

    ``chapters``: the file stems of the book's chapters (default: those in
    ``_toc.yml``); a number whose chapter is not among them "cannot be run
    here" (no chapter reproduces it yet). The verdict compares the paper's
    number with our interval widened by the spread between networks
    (:func:`sparsenb.lab.paper.widened`, :func:`spreads`) and says "reduced
    setting" where the chapter declared the attack or the training reduced
    (:func:`sparsenb.lab.paper.verdict`).
    """
    import pandas as pd

    if chapters is None:
        chapters = [p.stem for p in Book().chapters()]
    chapters = list(chapters)
    valid, invalid = records(folder, profile)
    valid = {
        c: valid[c] for c in chapters if c in valid
    }  # in book order; a chapter no longer in the book does not count
    measured = spreads(valid)
    numbers = paper_numbers()
    ours: dict[
        int, list
    ] = {}  # csv row -> [(chapter, record row)], like-for-like numbers in book order
    other: dict[
        int, list
    ] = {}  # csv row -> [(chapter, record row)]: numbers of another setting, in book order
    worst_on: dict[
        tuple, dict
    ] = {}  # (chapter, csv row) -> the all-attacks worst case recorded on that row
    worst: dict[
        tuple, dict
    ] = {}  # (chapter, identity) -> the same, for every row of that model at that budget
    for chapter, rec in valid.items():
        for r in rec["rows"]:
            if r["kind"] == OURS:
                ours.setdefault(r["paper_row"], []).append((chapter, r))
            elif r["kind"] == OTHER_SETTING and r["table"] in rec.get(
                "cannot", {}
            ):  # only another setting can run here
                other.setdefault(r["paper_row"], []).append((chapter, r))
            elif r["kind"] == WORST_CASE:
                worst_on.setdefault((chapter, r["paper_row"]), r)
                worst.setdefault(
                    (chapter, tuple(numbers[c].iloc[r["paper_row"]] for c in _IDENTITY)), r
                )
    out = []
    for i, row in numbers.iterrows():
        entry = {
            c: row[c]
            for c in _DESCRIBED
        }
        entry["number"] = (
            row["attack"]
            + (f" ({row['gradient']})" if row["gradient"] else "")
            + (f", {row['metric']}" if row["metric"] != "accuracy %" else "")
        )  # what was measured, in one short cell
        entry.update(
            {
                "paper": float(row["value"]),
                "ours": None,
                "95% CI": "",
                "n": None,
                "spread": None,
                "with spread": "",
                "reduced": "",
                "worst case": "",
                "worst case - paper": None,
                "chapter": CHAPTERS.get(row["artifact"], ""),
                "section": "",
                "why": "",
            }
        )
        chapter = entry["chapter"]
        if (
            i in ours
        ):  # the chapter that reproduces this table, if it recorded the number, else the first that did
            chapter, r = next((c for c in ours[i] if c[0] == chapter), ours[i][0])
            p, lo, hi = r["accuracy"], r["lo"], r["hi"]
            attacked = row["metric"] == "accuracy %" and row["attack"] != "none"
            sd, source = _spread_of(row["model"], attacked, measured)
            wlo, whi = widened(p, lo, hi, sd)
            reduced = valid[chapter].get("reduced", {})
            how = (
                reduced.get(f"{r['table']} / {r['row']} / {r['column']}")
                or reduced.get(f"{r['table']} / {r['row']}")
                or reduced.get(r["table"])
            )
            entry.update(
                {
                    "ours": round(p, 2),
                    "95% CI": f"[{lo:.2f}, {hi:.2f}]",
                    "n": r["n"],
                    "chapter": chapter,
                    "spread": round(sd, 2),
                    "with spread": f"[{wlo:.2f}, {whi:.2f}]",
                    "spread from": source,
                    "reduced": f"{how[0]}: {how[1]}" if how else "",
                    "section": r["table"],
                    "verdict": verdict(entry["paper"], p, wlo, whi, how[0] if how else None),
                }
            )
            if entry["verdict"] != "agrees":
                why = valid[chapter]["why"]
                entry["why"] = why.get(f"{r['table']} / {r['row']}", why.get(r["table"], ""))
            identity = tuple(row[c] for c in _IDENTITY)
            w = worst_on.get((chapter, i)) or (worst.get((chapter, identity)) if attacked else None)
            if w is not None:
                entry["worst case"] = (
                    f"{w['accuracy']:.2f} [{w['lo']:.2f}, {w['hi']:.2f}] (n = {w['n']})"
                )
                entry["worst case - paper"] = round(w["accuracy"] - entry["paper"], 2)
        elif (why := _cannot_run(row)) is not None:
            entry.update({"verdict": CANNOT, "why": why})
        elif chapter not in chapters:
            entry.update(
                {
                    "verdict": CANNOT,
                    "why": f"no chapter of this book reproduces {row['artifact']} yet",
                }
            )
        elif (
            i in other
        ):  # a chapter measured it in another setting and said why the paper's cannot run here
            chapter, r = next((c for c in other[i] if c[0] == chapter), other[i][0])
            reason = valid[chapter]["cannot"][r["table"]]
            entry.update(
                {
                    "verdict": CANNOT,
                    "chapter": chapter,
                    "section": r["table"],
                    "why": f"{reason}. Ours in that setting: {r['accuracy']:.2f} [{r['lo']:.2f}, {r['hi']:.2f}] (n = {r['n']})",
                }
            )
        elif chapter in valid:
            entry.update(
                {
                    "verdict": NOT_RUN,
                    "why": f"{chapter} ran at the {profile} profile without this number",
                }
            )
        else:
            reason = invalid.get(chapter, "it did not run in this build")
            entry.update({"verdict": NOT_RUN, "why": f"{chapter}: {reason}"})
        entry["where"] = valid[chapter]["where"] if chapter in valid else ""
        out.append(entry)
    columns = [
        *_DESCRIBED,
        "number",
        "paper",
        "ours",
        "95% CI",
        "n",
        "spread",
        "spread from",
        "with spread",
        "reduced",
        "worst case",
        "worst case - paper",
        "verdict",
        "why",
        "chapter",
        "section",
        "where",
    ]
    return pd.DataFrame(out, columns=columns)


def audits(profile: str = "laptop", folder=None, chapters=None):
    """One line per independent audit: a network (model and defense) at one :math:`\\epsilon`.

    Beside the audited worst case (with its interval and images), the
    paper's strongest attack on that network (the lowest accuracy it reports
    for it at that budget) and our number under that attack, like for like.
    ``worst case vs paper`` says whether the worst case's whole interval lies
    below the paper's number, above it, or overlaps it. A network's audit
    is one line whichever pages show it (``chapter`` names them all); two
    different audited worst cases for one network at one budget raise
    :class:`AuditConflict` (the build fails). Screening audits (a cheaper
    pass over many networks) are lines of their own, ``audit`` "screening",
    never compared with the paper's number.
    """
    import pandas as pd

    if chapters is None:
        chapters = [p.stem for p in Book().chapters()]
    valid, _ = records(folder, profile)
    valid = {c: valid[c] for c in chapters if c in valid}
    numbers = paper_numbers()
    table = card(profile, folder, chapters)
    lines: dict = {}  # (audit kind, identity[, accuracy, images]) -> line
    for chapter, rec in valid.items():
        for r in rec["rows"]:
            if r["kind"] not in (WORST_CASE, SCREENING):
                continue
            identity = tuple(numbers[c].iloc[r["paper_row"]] for c in _IDENTITY)
            same = numbers[
                (numbers[list(_IDENTITY)].apply(tuple, axis=1) == identity)
                & (numbers["metric"] == "accuracy %")
                & (numbers["attack"] != "none")
            ]
            if same.empty:
                continue
            worst = f"{r['accuracy']:.2f} [{r['lo']:.2f}, {r['hi']:.2f}]"
            if r["kind"] == WORST_CASE:
                key = ("audit", identity)
                held = lines.get(key)
                if held is not None and (held["worst case"], held["images"]) != (worst, r["n"]):
                    raise AuditConflict(
                        f"two audited worst cases for {identity}: {held['worst case']} on "
                        f"{held['images']} images ({held['chapter']}) and {worst} on {r['n']} ({chapter})"
                    )
            else:
                key = ("screening", identity, worst, r["n"])
                held = lines.get(key)
            if held is not None:
                if chapter not in held["chapter"].split(", "):
                    held["chapter"] += f", {chapter}"
                continue
            strongest = same["value"].idxmin()
            paper = float(numbers["value"].iloc[strongest])
            mine = table.iloc[strongest]
            if r["kind"] == SCREENING:
                where = "not compared (screening)"
            else:
                where = "below" if r["hi"] < paper else ("above" if r["lo"] > paper else "overlaps")
            lines[key] = {
                "dataset": identity[0],
                "model": identity[1],
                "defense": identity[2],
                "eps": identity[3],
                "paper's strongest attack": numbers["attack"].iloc[strongest],
                "paper": paper,
                "ours, same attack": ""
                if pd.isna(mine["ours"])
                else f"{mine['ours']:.2f} {mine['95% CI']}",
                "audit": key[0],
                "worst case": worst,
                "images": r["n"],
                "worst case vs paper": where,
                "chapter": chapter,
            }
    columns = [
        "dataset",
        "model",
        "defense",
        "eps",
        "paper's strongest attack",
        "paper",
        "ours, same attack",
        "audit",
        "worst case",
        "images",
        "worst case vs paper",
        "chapter",
    ]
    out = pd.DataFrame(list(lines.values()), columns=columns)
    return out.sort_values("audit", kind="stable").reset_index(drop=True)


class AuditConflict(ValueError):
    """Two pages show different audited worst cases for one network at one budget."""


def counts(scorecard) -> dict[str, int]:
    """How many numbers of the paper have each verdict (every verdict of :data:`VERDICTS`, zeros included)."""
    found = scorecard["verdict"].value_counts().to_dict()
    unknown = set(found) - set(VERDICTS)
    if unknown:
        raise checks.ArgumentError(
            "scorecard", f"has verdicts {sorted(unknown)} outside {VERDICTS}"
        )
    return {v: int(found.get(v, 0)) for v in VERDICTS}


def largest_disagreements(scorecard, n: int = 5):
    """The ``n`` like-for-like numbers farthest from the paper's among the disagreements (largest ``|ours - paper|``).

    Rows whose attack or training this profile reduced are left out: their distance to the paper's number says
    nothing about the paper.
    """
    n = checks.integer(n, "n", 0)
    like_for_like = scorecard["reduced"].fillna("") == ""
    compared = scorecard[
        scorecard["verdict"].isin(("ours higher", "ours lower")) & like_for_like
    ].copy()
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


def summary(card, audit_lines) -> tuple:
    """The verdicts counted per table of the paper, and the counts the page quotes: ``(table, numbers)``.

    ``audit_lines`` is :func:`audits`: ``n_audits`` independent audits (and ``n_screenings`` screening
    ones), of which ``n_audits_below`` have a worst case whose whole interval lies below the paper's
    strongest attack on the same network.
    """
    import pandas as pd

    c = counts(card)
    numbers = {
        "n_numbers": len(card),
        "n_agree": c["agrees"],
        "n_higher": c["ours higher"],
        "n_lower": c["ours lower"],
        "n_reduced": c[REDUCED_SETTING],
        "n_not_run": c[NOT_RUN],
        "n_cannot": c[CANNOT],
        "n_audits": int((audit_lines["audit"] == "audit").sum()),
        "n_screenings": int((audit_lines["audit"] == "screening").sum()),
        "n_audits_below": int((audit_lines["worst case vs paper"] == "below").sum()),
        "n_audits_overlap": int((audit_lines["worst case vs paper"] == "overlaps").sum()),
    }
    table = pd.crosstab(
        card["artifact"], card["verdict"], margins=True, margins_name="all"
    ).reindex(index=[*card["artifact"].unique(), "all"], columns=[*VERDICTS, "all"], fill_value=0)
    return table, numbers


def spread_table(profile: str = "laptop", folder=None, chapters=None):
    """The spread between networks each chapter measured: one row per model (standard deviations in points)."""
    import pandas as pd

    if chapters is None:
        chapters = [p.stem for p in Book().chapters()]
    valid, _ = records(folder, profile)
    measured = spreads({c: valid[c] for c in chapters if c in valid})
    rows = {
        m: {
            "networks": int(v["networks"]),
            "images": int(v["images"]),
            "sd clean": v["clean"],
            "sd attacked": v["attacked"],
            "chapter": v["chapter"],
        }
        for m, v in measured.items()
    }
    return pd.DataFrame.from_dict(
        rows, orient="index", columns=["networks", "images", "sd clean", "sd attacked", "chapter"]
    )


def disagreement_notes(top):
    """What each chapter says differs by construction, for the rows of :func:`largest_disagreements` (Markdown)."""
    from IPython.display import Markdown

    lines = [
        f"{i}. {r['artifact']}, {r['defense']}, {r['attack']} ({r['chapter']}): "
        f"{r['why'] or 'no explanation recorded'}."
        for i, r in top.iterrows()
    ]
    return Markdown("\n".join(lines) or "(no disagreement in this build)")


def discussed(card):
    """A list of the sections where each chapter discusses its disagreements (Markdown)."""
    from IPython.display import Markdown

    where = card[card["where"] != ""].drop_duplicates("chapter")
    lines = [f"- {{ref}}`{w}` ({c})" for w, c in zip(where["where"], where["chapter"])]
    return Markdown("\n".join(lines) or "- (no chapter recorded a comparison in this build)")


def by_table(card):
    """Every number, numbered within its table of the paper."""
    columns = [
        "defense",
        "number",
        "eps",
        "paper",
        "ours",
        "95% CI",
        "with spread",
        "worst case",
        "verdict",
    ]
    index = ["artifact", card.groupby("artifact", sort=False).cumcount() + 1]
    return card.set_index(index)[columns].astype(object).fillna("")


def reasons(card):
    """What was reduced, why numbers are missing, and what differs by construction where they disagree, with how many (Markdown)."""
    from IPython.display import Markdown

    lines = []
    for column, lead in (("reduced", "reduced at this profile: "), ("why", "")):
        grouped = (
            card[card[column].fillna("") != ""]
            .groupby(column, sort=False)
            .agg(n=("artifact", "size"), tables=("artifact", "unique"))
        )
        lines += [
            f"- {r['n']} number(s) of {', '.join(r['tables'])}: {lead}{text}."
            for text, r in grouped.iterrows()
        ]
    return Markdown("\n".join(lines) or "- (none)")
