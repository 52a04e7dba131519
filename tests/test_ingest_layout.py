"""Delimited ratings with or without a header, columns by name or position (detected or given),
and `simgr ingest`'s one-line errors for bad input (issue 13, items 2 and 3)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from pipeline.errors import UserError
from pipeline.ingest.image_features import write_image_features
from conftest import simgr
from pipeline.ingest.layout import assign_roles, has_header, resolve_layout, sniff_separator


ROWS = [(f"u{u}", f"i{(u * 7 + j * 3) % 11}", 1 + (u + j) % 5, 1000 + 10 * u + j) for u in range(12) for j in range(6)]


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _csv(path: Path, header: str | None = "user,item,rating,timestamp", sep: str = ",", order=(0, 1, 2, 3)) -> Path:
    lines = [header] if header else []
    lines += [sep.join(str(row[j]) for j in order) for row in ROWS]
    return _write(path, "\n".join(lines) + "\n")


def test_separator_and_header_detection():
    assert sniff_separator(["a,b,c", "d,e,f"]) == ","
    assert sniff_separator(["a\tb, c\tx", "d\te\tf"]) == "\t"  # the comma count differs between lines
    assert sniff_separator(["a;b;c;d", "1;2;3;4"]) == ";"
    assert sniff_separator(["hello world"]) is None
    assert has_header(["userId,movieId,rating", "1,2,3.5"], ",")  # names a role
    assert has_header(["who,what,stars_given", "1,2,3.5"], ",")  # text above a number column
    assert not has_header(["1,2,3.5", "1,3,4"], ",") and not has_header(["a,b,4", "c,d,5"], ",")


def test_roles_by_alias_name_or_position(tmp_path):
    path = tmp_path / "r.csv"
    assert assign_roles(path, ["UserID", "asin", "Stars", "unixReviewTime"], None) == {
        "user": "UserID", "item": "asin", "rating": "Stars", "timestamp": "unixReviewTime"}
    assert assign_roles(path, ["a", "b", "c"], {"user": 2, "item": "a", "rating": 3}) == {"user": "b", "item": "a", "rating": "c"}
    with pytest.raises(UserError, match=r"r.csv: no rating column; columns found: \['user', 'item', 'when'\]; say which column"):
        assign_roles(path, ["user", "item", "when"], None)
    with pytest.raises(UserError, match=r"r.csv: rating is column 5, but the lines have 3 fields"):
        assign_roles(path, ["user", "item", "x"], {"rating": 5})
    with pytest.raises(UserError, match=r"column 'user' is given two roles \(user, item\)"):
        assign_roles(path, ["user", "x", "rating"], {"item": "user"})


def test_layout_given_parts_are_not_detected(tmp_path):
    path = _csv(tmp_path / "r.txt", header=None, sep="|")
    layout = resolve_layout(path)
    assert (layout.sep, layout.header, layout.names) == ("|", False, ["user", "item", "rating", "timestamp"])
    layout = resolve_layout(path, sep="|", header=False, columns=["u", "i", "r", "t"], fields={"user": "u", "item": "i", "rating": "r", "timestamp": "t"})
    assert layout.roles == {"user": "u", "item": "i", "rating": "r", "timestamp": "t"}
    shuffled = _csv(tmp_path / "s.txt", header=None, order=(2, 0, 3, 1))
    assert resolve_layout(shuffled, fields={"user": 2, "item": 4, "rating": 1, "timestamp": 3}).roles == {
        "user": "column2", "item": "column4", "rating": "column1", "timestamp": "column3"}


def _frames(out: Path) -> list[pl.DataFrame]:
    return [pl.read_parquet(out / f"{name}.parquet") for name in ("interactions", "users", "items")]


@pytest.mark.parametrize(
    "header, order, args",
    [
        ("user,item,rating,timestamp", (0, 1, 2, 3), []),  # issue 13 item 2: detected as a headered CSV
        ("user,item,rating,timestamp", (0, 1, 2, 3), ["--format", "generic"]),
        ("rating;when;who;what", (2, 3, 0, 1), ["--sep", ";", "--columns", "who,what,rating,when"]),
        (None, (1, 0, 2, 3), ["--no-header", "--columns", "2,1,3,4"]),
        ("ItemID\tUserID\tScore\tTime", (1, 0, 2, 3), ["--sep", "\\t"]),
    ],
)
def test_simgr_ingest_reads_delimited_text_with_or_without_header(tmp_path, monkeypatch, capsys, header, order, args):
    reference = _csv(tmp_path / "ref.tsv", header=None, sep="\t")  # headerless TSV: the generic reader, as before
    code, out, err = simgr(monkeypatch, capsys, "ingest", "--reviews", str(reference), "--out", str(tmp_path / "ref"), "--kcore", "2")
    assert code == 0, err
    sep = ";" if "--sep" in args and ";" in args else ("\t" if "\\t" in args else ",")
    path = _csv(tmp_path / "r.csv", header=header, sep=sep, order=order)
    code, out, err = simgr(monkeypatch, capsys, "ingest", "--reviews", str(path), "--out", str(tmp_path / "out"), "--kcore", "2", *args)
    assert code == 0, err
    assert out.startswith(f"{tmp_path / 'out'}: 12 users, 11 items, 72 interactions")
    for got, expected in zip(_frames(tmp_path / "out"), _frames(tmp_path / "ref")):
        assert got.equals(expected)


@pytest.mark.parametrize(
    "text, args, message",
    [
        ("user,item,timestamp\nu1,i1,5\n", [],  # issue 13 item 2: the missing column is named, with the columns found
         "no rating column; columns found: ['user', 'item', 'timestamp']"),
        ("user,item,timestamp\nu1,i1,5\n", ["--format", "generic"], "no rating column; columns found: ['user', 'item', 'timestamp']"),
        ("u1,i1,5\n", ["--no-header", "--columns", "user,item,rating"],
         "--columns user,item,rating: a file without a header line has no column names; give 1-based positions"),
        ("u1,i1,5\n", ["--columns", "1,2"], "--columns: expected user,item,rating[,timestamp]"),
        ("u1,i1,5\n", ["--format", "amazon2018", "--sep", ","], "--sep: options of delimited text (--format generic), not of --format amazon2018"),
        ("user,item,rating\nu1,i1,5\n", ["--kcore", "-1"], "--kcore: -1 is out of range (expected an integer >= 0)"),
        ("user,item,rating\nu1,i1,5\n", ["--split", "weekly"], "--split: 'weekly' is not one of random, temporal"),
        ("", ["--format", "amazon2018"], "(format amazon2018): no interactions read (is the file empty, or of another format?)"),
        ("hello world\n", [], "cannot tell the format from its first line 'hello world'"),
    ],
)
def test_simgr_ingest_bad_input_is_one_line(tmp_path, monkeypatch, capsys, text, args, message):
    path = _write(tmp_path / "r.csv", text)
    code, out, err = simgr(monkeypatch, capsys, "ingest", "--reviews", str(path), "--out", str(tmp_path / "out"), "--kcore", "1", *args)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err, err
    assert "params.yaml" not in err  # flags are named as flags
    assert not (tmp_path / "out").exists()


def test_simgr_ingest_out_naming_a_file(tmp_path, monkeypatch, capsys):
    path = _csv(tmp_path / "r.csv")
    target = _write(tmp_path / "taken.txt", "x")
    code, _, err = simgr(monkeypatch, capsys, "ingest", "--reviews", str(path), "--out", str(target))
    assert code == 2 and err == f"error: --out {target}: exists and is not a folder (the outputs are four files in a folder)\n"
    assert target.read_text() == "x"


def test_simgr_ingest_image_file_matching_no_item(tmp_path, monkeypatch, capsys):
    path = _csv(tmp_path / "r.csv")
    other = write_image_features(tmp_path / "other.b", ["B000", "B001"], np.ones((2, 4), np.float32))
    code, _, err = simgr(monkeypatch, capsys, "ingest", "--reviews", str(path), "--out", str(tmp_path / "o"), "--kcore", "1",
                         "--images", str(other), "--image-dim", "4")
    assert code == 2 and err.count("\n") == 1
    assert "other.b: none of its 2 ASINs matches an item of the dataset (e.g. item 'i0', record 'B000')" in err
    some = write_image_features(tmp_path / "some.b", ["i0", "i3", "B001"], np.ones((3, 4), np.float32))
    code, out, err = simgr(monkeypatch, capsys, "ingest", "--reviews", str(path), "--out", str(tmp_path / "o"), "--kcore", "1",
                           "--images", str(some), "--image-dim", "4")
    assert code == 0, err
    assert out.rstrip().endswith("; 2 of 11 items have an image vector")
