"""The paper's numbers read at run time (sparsenb.lab.paper) from paper_numbers.csv:
one number per row, exact lookups, clear errors, and where the file is looked up."""
from __future__ import annotations

import csv
import math
import os

import pytest

from sparsenb import checks
from sparsenb.lab import paper as reference
from sparsenb.lab.paper import paper_number, paper_numbers, paper_rows

HEADER = ",".join(reference.COLUMNS) + "\n"


def _csv_file():
    return reference.reference_dir() / reference.FILENAME


def test_one_number_per_row():
    with open(_csv_file(), newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows and list(rows[0]) == list(reference.COLUMNS)
    for row in rows:
        value = float(row["value"])  # a plain number: no "a / b" packs, no stars
        assert math.isfinite(value), row
        assert row["value"].strip() == row["value"] and "/" not in row["value"] and "*" not in row["value"], row
    df = paper_numbers()
    assert len(df) == len(rows)
    assert df["value"].dtype.kind == "f"
    assert tuple(df.columns) == reference.COLUMNS


def test_rows_are_told_apart_by_their_columns():
    """paper_number can reach every row: no two rows agree on every column but value and note."""
    df = paper_numbers()
    key = [c for c in reference.COLUMNS if c not in ("value", "note")]
    assert not df.duplicated(key).any()


@pytest.mark.parametrize(
    "match, value",
    [
        (dict(artifact="Table II", defense="front end coif1", attack="PGD 100 restarts"), 61.04),
        (dict(artifact="Table II", defense="none", attack="none"), 99.31),
        (dict(artifact="Table II", defense="front end coif1", attack="none"), 98.97),
        (dict(artifact="Table II", defense="none", attack="PGD 100 restarts", eps=0.2), 5.12),
        (dict(artifact="Table I", defense="front end db5", attack="white box", eps="0.1"), 95.37),
    ],
)
def test_exact_lookups(match, value):
    assert paper_number(**match) == value
    assert type(paper_number(**match)) is float


def test_every_row_can_be_looked_up_by_all_its_columns():
    df = paper_numbers()
    for _, row in df.iterrows():
        match = {c: row[c] for c in reference.COLUMNS if c != "value"}
        assert paper_number(**match) == row["value"]


def test_lookups_that_do_not_find_exactly_one_row():
    with pytest.raises(LookupError, match="0 rows") as err:
        paper_number(artifact="Table II", defense="front end coif1", attack="PGD 1000 restarts")
    assert "expected exactly one" in str(err.value)
    with pytest.raises(LookupError, match="rows") as err:
        paper_number(artifact="Table II", defense="front end coif1")  # several: the message lists them
    assert "PGD 100 restarts" in str(err.value)
    assert len(paper_rows(artifact="Table II", defense="front end coif1")) > 1


@pytest.mark.parametrize("column", ["table", "value", "Attack"])
def test_unknown_columns_are_argument_errors(column):
    with pytest.raises(checks.ArgumentError) as err:
        paper_number(artifact="Table II", **{column: "x"})
    assert err.value.argument == column
    assert "artifact" in str(err.value)  # lists the columns there are


def test_missing_reference_names_the_folder_and_the_variable(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError) as err:
        paper_numbers(tmp_path)
    assert str(tmp_path) in str(err.value) and reference.REFERENCE_ENV in str(err.value)
    monkeypatch.setenv(reference.REFERENCE_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="nowhere") as err:
        paper_number(artifact="Table II")
    assert reference.REFERENCE_ENV in str(err.value)
    assert not (tmp_path / "nowhere").exists()


def test_environment_variable_points_elsewhere(tmp_path, monkeypatch):
    path = tmp_path / reference.FILENAME
    path.write_text(HEADER + "Table X,MNIST,m,none,a,,0.2,,accuracy %,1.5,\nTable X,MNIST,m,none,b,,0.2,,accuracy %,7,note\n")
    monkeypatch.setenv(reference.REFERENCE_ENV, str(tmp_path))
    assert reference.reference_dir() == tmp_path.resolve()
    assert paper_number(artifact="Table X", attack="a") == 1.5
    assert paper_number(artifact="Table X", attack="b", gradient=None, eps=0.2) == 7.0
    assert len(paper_numbers()) == 2
    path.write_text(HEADER + "Table X,MNIST,m,none,a,,0.2,,accuracy %,2.5,\n")  # an edited file is read again
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    assert paper_number(artifact="Table X", attack="a") == 2.5
    assert reference.reference_dir(tmp_path / "other") == (tmp_path / "other").resolve()  # an explicit root wins


def test_a_file_lacking_columns_is_refused(tmp_path):
    (tmp_path / reference.FILENAME).write_text("artifact,value\nTable X,1\n")
    with pytest.raises(ValueError, match="gradient"):
        paper_numbers(tmp_path)


def test_paper_numbers_returns_a_copy():
    df = paper_numbers()
    df.loc[:, "value"] = -1.0
    assert paper_number(artifact="Table II", defense="none", attack="none") == 99.31
