"""The scorecard: chapters record their comparisons with the paper in a build, the scorecard page reads
only this build's valid records and gives every number of paper_numbers.csv a verdict."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from minibook import code_cell, write_book
from sparsenb import book as bk
from sparsenb.book import scorecard
from sparsenb.checks import ArgumentError
from sparsenb.lab.paper import OTHER_SETTING, SCREENING, WORST_CASE, Comparison
from sparsenb.lab.paper import paper_numbers, paper_rows


def _outcomes(k: int, n: int = 200) -> np.ndarray:
    return np.r_[np.ones(k, int), np.zeros(n - k, int)]


def _csv_row(**match) -> int:
    rows = paper_rows(**match)
    assert len(rows) == 1
    return int(rows.index[0])


PGD_FE = {"artifact": "Table II", "defense": "front end coif1", "attack": "PGD 100 restarts"}
FGSM_BPDA = {"artifact": "Table V", "attack": "FGSM", "gradient": "bpda"}
CLEAN_FE = {"artifact": "Table II", "defense": "front end coif1", "attack": "none"}
PGD_NONE = {"artifact": "Table II", "defense": "none", "attack": "PGD 100 restarts"}


@pytest.fixture
def build_env(tmp_path, monkeypatch):
    """A staging folder as a build leaves it; ``write(chapter, comparison)`` records as that chapter's kernel would."""
    records = tmp_path / "book" / ".records"
    monkeypatch.setenv(scorecard.RECORDS_ENV, str(records))

    def write(
        chapter: str,
        comparison,
        profile: str = "laptop",
        key: str | None = None,
        stamp: str | None = None,
        why=None,
        **more,
    ):
        key = key or f"key-{chapter}"
        monkeypatch.setenv(scorecard.CHAPTER_ENV, chapter)
        monkeypatch.setenv(scorecard.KEY_ENV, key)
        out = scorecard.record(comparison, profile, f"{chapter}-disagree", why, **more)
        stamps = tmp_path / "book" / ".executed"
        stamps.mkdir(parents=True, exist_ok=True)
        (stamps / f"{chapter}.json").write_text(json.dumps({"key": stamp or key}))
        return out

    return records, write


def _multiclass() -> Comparison:
    c = Comparison()
    c.table(
        "Table II",
        [
            ("PGD", "front end", _outcomes(130), PGD_FE),  # 65% [58.2, 71.3]
            ("PGD", "no defense", _outcomes(40), PGD_NONE),  # 20%, the paper's 5.12 far below
            ("no attack", "front end", _outcomes(197), CLEAN_FE),
            (
                "all attacks, worst case",
                "front end",
                _outcomes(100),
                PGD_FE,
                WORST_CASE,
            ),  # 50% on the audited images
            ("all attacks, worst case", "no defense", _outcomes(2), PGD_NONE, WORST_CASE),
        ],
    )
    c.table(
        "Table V", [("FGSM", "bpda", _outcomes(190), FGSM_BPDA)]
    )  # 95% [91.0, 97.3], the paper's 85.35 below
    return c


def test_every_number_of_the_paper_has_one_row_and_a_verdict_without_records(tmp_path):
    card = scorecard.card(
        "laptop",
        folder=tmp_path / "none",
        chapters=["mnist_binary", "mnist_multiclass", "adversarial_training"],
    )
    numbers = paper_numbers()
    assert len(card) == len(numbers) and list(card["paper"]) == list(numbers["value"])
    assert set(card["verdict"]) <= set(scorecard.VERDICTS) and card["ours"].isna().all()
    pretrained = card["model"] == "pretrained"
    assert pretrained.any() and (card.loc[pretrained, "verdict"] == "cannot be run here").all()
    assert card.loc[pretrained, "why"].str.contains("pretrained").all()
    cifar = card["artifact"] == "Table IV"  # no CIFAR-10 chapter in this list
    assert (card.loc[cifar, "verdict"] == "cannot be run here").all() and card.loc[
        cifar, "why"
    ].str.contains("no chapter").all()
    rest = ~pretrained & ~cifar
    assert (card.loc[rest, "verdict"] == "not run at this profile").all()
    assert card.loc[rest, "why"].str.contains("did not run in this build").all()
    counts = scorecard.counts(card)
    assert sum(counts.values()) == len(numbers) and counts["agrees"] == 0


def test_every_artifact_of_the_paper_has_a_chapter():
    assert set(paper_numbers()["artifact"]) <= set(scorecard.CHAPTERS)


def test_a_recorded_comparison_sets_ours_interval_worst_case_and_verdict(build_env):
    records, write = build_env
    comparison = _multiclass()
    out = write(
        "mnist_multiclass",
        comparison,
        why={"Table II": "PGD with 5 restarts", "Table VI": "not compared"},
    )
    assert out["why"] == {"Table II": "PGD with 5 restarts"}
    card = scorecard.card("laptop", chapters=["mnist_multiclass"])
    row = card.iloc[_csv_row(**PGD_FE)]
    mine = next(r for r in comparison.rows if r["row"] == "PGD" and r["column"] == "front end")
    assert (
        row["ours"] == 65.0
        and row["95% CI"] == f"[{mine['lo']:.2f}, {mine['hi']:.2f}]" == "[58.16, 71.27]"
        and row["n"] == 200
    )
    assert row["verdict"] == mine["verdict"] == "agrees"  # the paper's 61.04 lies in [58.2, 71.3]
    assert row["worst case"].startswith("50.00 [") and "n = 200" in row["worst case"]
    assert row["worst case - paper"] == pytest.approx(50.0 - row["paper"], abs=0.01)
    assert row["chapter"] == "mnist_multiclass" and row["where"] == "mnist_multiclass-disagree"
    # the defended model's worst case stands beside its other attacked rows at the same budget ...
    fgsm = card.iloc[_csv_row(**FGSM_BPDA)]
    assert fgsm["number"] == "FGSM (bpda)"
    natural = card.iloc[
        _csv_row(artifact="Table III", defense="Madry adversarial training", eps=0.1, attack="none")
    ]
    assert natural["number"] == "none, natural accuracy %"
    assert fgsm["worst case"].startswith("50.00 [") and fgsm["verdict"] == "ours higher"
    # ... but not beside its clean accuracy, nor another model's rows
    assert card.iloc[_csv_row(**CLEAN_FE)]["worst case"] == ""
    assert card.iloc[_csv_row(**PGD_NONE)]["worst case"].startswith("1.00 [")
    # a disagreement carries the chapter's explanation of its section (none given for Table V)
    plain = card.iloc[_csv_row(**PGD_NONE)]
    assert plain["verdict"] != "agrees" and plain["why"] == "PGD with 5 restarts"
    # numbers of the chapter it did not compare at this profile
    table6 = card[card["artifact"] == "Table VI"]
    assert (table6["verdict"] == "not run at this profile").all() and table6["why"].str.contains(
        "without this number"
    ).all()


def test_other_settings_do_not_stand_in_for_the_paper(build_env):
    _, write = build_env
    c = Comparison()
    row = {"artifact": "Table I", "defense": "front end db5", "attack": "white box"}
    c.table("Table I", [("white box", "coif1", _outcomes(100), row, OTHER_SETTING)])
    write("mnist_binary", c)
    card = scorecard.card("laptop", chapters=["mnist_binary"])
    assert card.iloc[_csv_row(**row)]["verdict"] == "not run at this profile"
    c.table("Table I", [("white box", "db5", _outcomes(190), row)])
    write("mnist_binary", c)
    card = scorecard.card("laptop", chapters=["mnist_binary"])
    assert card.iloc[_csv_row(**row)]["ours"] == 95.0


@pytest.mark.parametrize(
    "case, reason",
    [
        ({"stamp": "another-key"}, "not from its last successful execution"),
        ({"profile": "smoke"}, "ran at the smoke profile"),
    ],
)
def test_a_record_not_from_this_build_counts_as_not_run(build_env, case, reason):
    _, write = build_env
    write("mnist_multiclass", _multiclass(), **case)
    card = scorecard.card("laptop", chapters=["mnist_multiclass"])
    row = card.iloc[_csv_row(**PGD_FE)]
    assert (
        pd.isna(row["ours"])
        and row["verdict"] == "not run at this profile"
        and reason in row["why"]
    )


@pytest.mark.parametrize("change", ["value", "row moved to a row with the same value"])
def test_a_record_whose_paper_numbers_changed_counts_as_not_run(build_env, change):
    records, write = build_env
    write("mnist_multiclass", _multiclass())
    path = records / "mnist_multiclass.json"
    rec = json.loads(path.read_text())
    if change == "value":
        rec["rows"][0]["paper"] += 1.0
    else:  # Table II's PGD number 61.04 is also Table III's at eps 0.2 and Table V's iterated PGD
        twin = _csv_row(artifact="Table V", attack="PGD 100 restarts", gradient="iterated")
        assert paper_numbers()["value"].iloc[twin] == rec["rows"][0]["paper"]
        rec["rows"][0]["paper_row"] = twin
    path.write_text(json.dumps(rec))
    row = scorecard.card("laptop", chapters=["mnist_multiclass"]).iloc[_csv_row(**PGD_FE)]
    assert row["verdict"] == "not run at this profile" and "paper_numbers.csv changed" in row["why"]


def test_only_the_books_chapters_count_and_a_row_can_have_its_own_explanation(build_env):
    _, write = build_env
    write(
        "mnist_multiclass",
        _multiclass(),
        why={"Table II": "attacks", "Table II / PGD": "PGD with 5 restarts"},
    )
    card = scorecard.card(
        "laptop", chapters=["mnist_binary"]
    )  # the multiclass chapter left the book
    assert card.iloc[_csv_row(**PGD_NONE)]["verdict"] == "cannot be run here"
    card = scorecard.card("laptop", chapters=["mnist_multiclass"])
    assert card.iloc[_csv_row(**PGD_NONE)]["why"] == "PGD with 5 restarts"


def test_record_outside_a_build_writes_nothing(tmp_path, monkeypatch):
    for env in (scorecard.RECORDS_ENV, scorecard.KEY_ENV, scorecard.CHAPTER_ENV):
        monkeypatch.delenv(env, raising=False)
    monkeypatch.chdir(tmp_path)
    out = scorecard.record(_multiclass(), "laptop", "mc-disagree")
    assert out["chapter"] == "" and len(out["rows"]) == 6 and not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"profile": "paper"}, "profile"),
        ({"where": ""}, "where"),
        ({"why": {"Table II": 1}}, "why"),
        ({"why": ["Table II"]}, "why"),
        ({"comparison": [1, 2]}, "comparison"),
    ],
)
def test_record_rejects_bad_input_before_writing(build_env, kwargs, name):
    records, _ = build_env
    args = {"comparison": _multiclass(), "profile": "laptop", "where": "mc", "why": None} | kwargs
    with pytest.raises(ArgumentError, match=f"^{name}"):
        scorecard.record(**args)
    assert not records.exists()


def test_largest_disagreements_are_sorted_by_distance(build_env):
    _, write = build_env
    write("mnist_multiclass", _multiclass())
    card = scorecard.card("laptop", chapters=["mnist_multiclass"])
    top = scorecard.largest_disagreements(card, 3)
    assert (
        len(top) == 2 and (top["verdict"] != "agrees").all()
    )  # PGD without defense and FGSM disagree
    gaps = top["ours - paper"].abs().tolist()
    assert gaps == sorted(gaps, reverse=True)
    with pytest.raises(ArgumentError, match="^n"):
        scorecard.largest_disagreements(card, -1)


def test_comparison_entries_name_a_known_kind():
    with pytest.raises(ArgumentError, match="^kind"):
        Comparison().table("Table II", [("PGD", "front end", _outcomes(10), PGD_FE, "best case")])
    with pytest.raises(ArgumentError, match="^entries"):
        Comparison().table("Table II", [("PGD", "front end", _outcomes(10))])


# ---------------------------------------------------------------------------
# in a build: the scorecard runs after the chapters it reads, and again when a record changes
# ---------------------------------------------------------------------------
_CHAPTER = """import numpy as np
from sparsenb.lab.paper import Comparison
from sparsenb.book.page import record
c = Comparison()
c.table("Table II", [("PGD", "front end", np.r_[np.ones(K), np.zeros(200 - K)], {PGD})])
record(c, profile, "ch")"""
_CARD = """import json
from sparsenb.book import scorecard
card = scorecard.card(profile)
row = card.iloc[ROW]
open("../seen.json", "w").write(json.dumps({"ours": row["ours"], "chapter": row["chapter"]}))"""


def _book(root, k: int):
    body = _CHAPTER.replace("K", str(k)).replace("{PGD}", repr(PGD_FE))
    card = _CARD.replace("ROW", str(_csv_row(**PGD_FE)))
    return write_book(
        root, {"scorecard": code_cell(card), "ch": code_cell(body) + "\n(ch)=\n## Disagreements\n"}
    )


def test_the_scorecard_reads_this_builds_records_and_follows_them(tmp_path, capfd):
    out = tmp_path / "out"
    bk.build("smoke", data=tmp_path, out=out, progress=False, book=_book(tmp_path / "src", 130))
    err = capfd.readouterr().err
    assert err.index("ch: executed") < err.index(
        "scorecard: executed"
    )  # first in the table of contents, run last
    seen = json.loads((tmp_path / "src" / "seen.json").read_text())
    assert seen == {"ours": 65.0, "chapter": "ch"}
    record = json.loads((out / "book" / ".records" / "ch.json").read_text())
    assert record["key"] == json.loads((out / "book" / ".executed" / "ch.json").read_text())["key"]
    # nothing changed: nothing runs
    source = bk.Book(tmp_path / "src")
    bk.build("smoke", data=tmp_path, out=out, progress=True, book=source)
    err = capfd.readouterr().err
    assert "ch: up to date" in err and "scorecard: up to date" in err
    # the chapter's number changes: it runs again, and so does the scorecard, which reads the new number
    chapter = tmp_path / "src" / "book" / "ch.md"
    chapter.write_text(chapter.read_text().replace("130", "150"))
    bk.build("smoke", data=tmp_path, out=out, progress=True, book=source)
    err = capfd.readouterr().err
    assert "ch: executed" in err and "scorecard: executed" in err
    assert json.loads((tmp_path / "src" / "seen.json").read_text())["ours"] == 75.0


def test_a_failed_run_leaves_no_record_and_no_stamp(tmp_path):
    book = _book(tmp_path / "src", 130)
    out = tmp_path / "out" / "book"
    source = book.chapter("ch")
    bk.execute_chapter(
        source, out, bk.chapter_parameters("smoke", "ch", book), tmp_path, progress=False
    )
    assert (out / ".records" / "ch.json").is_file() and (out / ".executed" / "ch.json").is_file()
    source.write_text(
        source.read_text()
        + "\n```{code-cell} ipython3\nraise RuntimeError('after the record')\n```\n"
    )
    with pytest.raises(bk.ChapterError, match="after the record"):
        bk.execute_chapter(
            source, out, bk.chapter_parameters("smoke", "ch", book), tmp_path, progress=False
        )
    assert (
        not (out / ".records" / "ch.json").exists() and not (out / ".executed" / "ch.json").exists()
    )
    card = scorecard.card("smoke", folder=out / ".records", chapters=["ch", "mnist_multiclass"])
    assert card.iloc[_csv_row(**PGD_FE)]["verdict"] == "not run at this profile"


@pytest.mark.book
def test_the_smoke_builds_scorecard_reads_every_comparing_chapter(smoke_build):
    """In the smoke build every chapter that compares with the paper left a valid record, and the scorecard
    page (built, first after the introduction) gives each of the paper's numbers a verdict."""
    out, index = smoke_build
    valid, invalid = scorecard.records(out / "book" / ".records", "smoke")
    assert {"mnist_binary", "mnist_multiclass", "adversarial_training"} <= set(
        valid
    ) and not invalid
    card = scorecard.card("smoke", folder=out / "book" / ".records")
    assert len(card) == len(paper_numbers()) and set(card["verdict"]) <= set(scorecard.VERDICTS)
    compared = card["ours"].notna()
    assert compared.sum() >= 40 and card.loc[compared, "chapter"].isin(valid).all()
    # smoke shortens every iterative attack and the adversarial training: none of those rows reads as like for like
    iterative = compared & card["attack"].str.contains("PGD|iterative", regex=True)
    assert iterative.any() and (card.loc[iterative, "reduced"] != "").all()
    assert (card.loc[iterative, "verdict"].isin(["reduced setting", "ours lower"])).all()
    trained = compared & card["defense"].str.contains("adversarial training")
    assert trained.any() and (card.loc[trained, "verdict"] == "reduced setting").all()
    # the multiclass chapter measured the spread between its CNNs, and it widens the CNN's rows
    spread = valid["mnist_multiclass"]["spread"]["4-layer CNN"]
    assert spread["networks"] == 2 and spread["attacked"] >= 0
    cnn = card[compared & (card["model"] == "4-layer CNN")]
    assert (cnn["spread from"] == "4-layer CNN, 2 networks").all()
    # one network at one budget, one audited worst case: the adversarial-training page shows the
    # multiclass chapter's audit of the defended CNN, and its other cells as screening only
    shown = {}
    for chapter in ("mnist_multiclass", "adversarial_training"):
        for r in valid[chapter]["rows"]:
            row = paper_numbers().iloc[r["paper_row"]]
            if r["kind"] == WORST_CASE and row["defense"] == "front end coif1" and float(row["eps"]) == 0.2:
                shown.setdefault(chapter, set()).add((r["accuracy"], r["n"]))
    assert set(shown) == {"mnist_multiclass", "adversarial_training"}
    assert shown["mnist_multiclass"] == shown["adversarial_training"] and len(shown["mnist_multiclass"]) == 1
    kinds = {r["kind"] for r in valid["adversarial_training"]["rows"]}
    assert SCREENING in kinds
    lines = scorecard.audits("smoke", folder=out / "book" / ".records")
    fe = lines[(lines["defense"] == "front end coif1") & (lines["eps"].astype(float) == 0.2) & (lines["audit"] == "audit")]
    assert len(fe) == 1 and fe.iloc[0]["chapter"] == "mnist_multiclass, adversarial_training"
    page = (index.parent / "book" / "scorecard.html").read_text()
    assert "Every number, by table" in page and "cannot be run here" in page and "Each audit once" in page
    assert bk.Book().chapters()[0].stem == "scorecard", (
        "the scorecard is the first chapter after the introduction"
    )


# ---------------------------------------------------------------------------
# reduced settings, the spread between networks, and each audit once
# ---------------------------------------------------------------------------
def test_a_reduced_attack_gives_a_one_sided_verdict_and_reduced_training_none(build_env):
    _, write = build_env
    write(
        "mnist_multiclass",
        _multiclass(),
        reduced={
            "Table II / PGD / front end": ("training", "2 epochs"),
            "Table II / PGD / no defense": ("attack", "PGD 2 x 2"),  # 20% above the paper's 5.12: no news
            "Table V": ("attack", "FGSM is one step"),  # 95% above 85.35: no news either
            "Table VII": ("attack", "not compared at this profile"),
        },
    )
    card = scorecard.card("laptop", chapters=["mnist_multiclass"])
    assert card.iloc[_csv_row(**PGD_FE)]["verdict"] == "reduced setting"  # would agree like for like
    assert card.iloc[_csv_row(**PGD_FE)]["reduced"] == "training: 2 epochs"
    for match in (PGD_NONE, FGSM_BPDA):
        assert card.iloc[_csv_row(**match)]["verdict"] == "reduced setting"
    assert card.iloc[_csv_row(**CLEAN_FE)]["reduced"] == ""
    assert scorecard.counts(card)["reduced setting"] == 3
    assert scorecard.largest_disagreements(card).empty  # reduced rows say nothing by their distance
    text = scorecard.reasons(card).data
    assert "reduced at this profile: attack: PGD 2 x 2" in text and "Table VII" not in text


def test_a_weaker_attack_that_still_leaves_less_than_the_paper_is_a_disagreement(build_env):
    _, write = build_env
    c = Comparison()
    c.table("Table II", [("PGD", "front end", _outcomes(60), PGD_FE)])  # 30%, the paper's 61.04 above
    write("mnist_multiclass", c, reduced={"Table II / PGD": ("attack", "PGD 2 x 2")})
    row = scorecard.card("laptop", chapters=["mnist_multiclass"]).iloc[_csv_row(**PGD_FE)]
    assert row["verdict"] == "ours lower" and row["reduced"] == "attack: PGD 2 x 2"


def test_the_spread_between_networks_widens_the_interval_a_verdict_uses(build_env):
    _, write = build_env
    c = Comparison()
    c.table("Table II", [("PGD", "front end", _outcomes(100), PGD_FE)])  # 50% [43.1, 56.9]: 61.04 outside
    write("mnist_multiclass", c)
    row = scorecard.card("laptop", chapters=["mnist_multiclass"]).iloc[_csv_row(**PGD_FE)]
    assert row["verdict"] == "ours lower" and row["spread"] == 0.0 and row["with spread"] == row["95% CI"]
    spread = {"4-layer CNN": {"clean": 0.5, "attacked": 4.0, "networks": 3, "images": 200}}
    write("mnist_multiclass", c, spread=spread)
    card = scorecard.card("laptop", chapters=["mnist_multiclass"])
    row = card.iloc[_csv_row(**PGD_FE)]
    lo, hi = (float(x) for x in row["with spread"].strip("[]").split(","))
    assert row["spread"] == 4.0 and lo < 43.1 and hi > 61.04 and row["verdict"] == "agrees"
    assert row["spread from"] == "4-layer CNN, 3 networks"
    table = scorecard.spread_table("laptop", chapters=["mnist_multiclass"])
    assert table.loc["4-layer CNN", "sd attacked"] == 4.0 and table.loc["4-layer CNN", "networks"] == 3


def test_an_unmeasured_network_borrows_the_largest_spread_and_the_svm_has_none():
    measured = {"4-layer CNN": {"clean": 0.5, "attacked": 3.0, "networks": 3}, "other": {"clean": 1.5, "attacked": 2.0, "networks": 2}}
    assert scorecard._spread_of("ResNet", True, measured) == (3.0, "as the 4-layer CNN (not measured for this model)")
    assert scorecard._spread_of("ResNet", False, measured)[0] == 1.5
    assert scorecard._spread_of("linear SVM", True, measured) == (0.0, "deterministic fit")
    assert scorecard._spread_of("ResNet", True, {})[0] == 0.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"reduced": {"Table II": ("data", "less")}},
        {"reduced": {"Table II": ("attack", "")}},
        {"reduced": ["Table II"]},
        {"spread": {"4-layer CNN": {"clean": 1.0}}},
        {"spread": [1.0]},
    ],
)
def test_record_rejects_bad_reductions_and_spreads_before_writing(build_env, kwargs):
    records, _ = build_env
    name = next(iter(kwargs))
    with pytest.raises(ArgumentError, match=f"^{name}"):
        scorecard.record(_multiclass(), "laptop", "mc", **kwargs)
    assert not records.exists()


def test_each_network_at_each_budget_is_audited_once(build_env):
    _, write = build_env
    c = _multiclass()
    c.rows = [r for r in c.rows if not (r["kind"] == WORST_CASE and r["column"] == "no defense")]
    c.table("Table II", [("all attacks, worst case", "no defense", _outcomes(10), PGD_NONE, WORST_CASE)])  # 5%
    write("mnist_multiclass", c)
    lines = scorecard.audits("laptop", chapters=["mnist_multiclass"])
    # two audited networks (front end and none, at 0.2), though the front end's worst case stands on several rows
    assert len(lines) == 2
    fe = lines[lines["defense"] == "front end coif1"].iloc[0]
    assert fe["paper"] == min(paper_rows(artifact="Table II", defense="front end coif1", eps=0.2)["value"])
    assert fe["worst case"].startswith("50.00 [") and fe["images"] == 200
    assert fe["worst case vs paper"] == "below"  # [43.1, 56.9] below 61.04
    none = lines[lines["defense"] == "none"].iloc[0]
    assert none["worst case vs paper"] == "overlaps"  # 5% [2.7, 9.0] around 5.12
    assert none["ours, same attack"].startswith("20.00 [")
    _, numbers = scorecard.summary(scorecard.card("laptop", chapters=["mnist_multiclass"]), lines)
    assert numbers["n_audits"] == 2 and numbers["n_audits_below"] == 1 and numbers["n_audits_overlap"] == 1


def test_two_pages_with_different_audits_of_one_network_fail_and_equal_ones_are_one_line(build_env):
    _, write = build_env
    write("mnist_multiclass", _multiclass())
    table3 = {"artifact": "Table III", "defense": "front end coif1", "eps": 0.2, "attack": "PGD 100 steps 100 restarts"}
    same = Comparison()
    same.table("Table III", [("eps = 0.2", "worst case (audit)", _outcomes(100), table3, WORST_CASE)])
    write("adversarial_training", same)
    chapters = ["mnist_multiclass", "adversarial_training"]
    lines = scorecard.audits("laptop", chapters=chapters)
    fe = lines[lines["defense"] == "front end coif1"]
    assert len(fe) == 1 and fe.iloc[0]["chapter"] == "mnist_multiclass, adversarial_training"
    other = Comparison()
    other.table("Table III", [("eps = 0.2", "worst case (audit)", _outcomes(122), table3, WORST_CASE)])
    write("adversarial_training", other)
    with pytest.raises(scorecard.AuditConflict, match="two audited worst cases"):
        scorecard.audits("laptop", chapters=chapters)


def test_a_screening_audit_is_listed_labelled_and_never_compared(build_env):
    _, write = build_env
    madry = {"artifact": "Table III", "defense": "Madry adversarial training", "eps": 0.3,
             "attack": "PGD 100 steps 100 restarts"}
    c = Comparison()
    c.table("Table III", [("eps = 0.3", "worst case (screening)", _outcomes(10, 100), madry, SCREENING)])
    write("adversarial_training", c)
    lines = scorecard.audits("laptop", chapters=["adversarial_training"])
    assert len(lines) == 1 and lines.iloc[0]["audit"] == "screening"
    assert lines.iloc[0]["worst case vs paper"] == "not compared (screening)"  # 10% is far below 90.57, yet not "below"
    card = scorecard.card("laptop", chapters=["adversarial_training"])
    assert card.iloc[_csv_row(**madry)]["worst case"] == ""  # nor set beside the paper's number
    _, numbers = scorecard.summary(card, lines)
    assert numbers["n_audits"] == 0 and numbers["n_screenings"] == 1
