"""Readers on small hand-written fixtures: values, file order, gzip, malformed and duplicate rows."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import polars as pl
import pytest

from pipeline.errors import UserError
from pipeline.ingest import amazon2014, amazon2018, generic
from pipeline.ingest.detect import detect_source
from pipeline.ingest.records import BadLines

FIX = Path(__file__).parent / "fixtures" / "ingest"


def _gzip(src: Path, dest: Path) -> Path:
    with src.open("rb") as fin, gzip.GzipFile(dest, "wb", mtime=0) as fout:
        shutil.copyfileobj(fin, fout)
    return dest


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_amazon2014_reviews_keep_every_row_with_line_numbers():
    frame = amazon2014.read_reviews(FIX / "reviews_2014.json", BadLines("raise"))
    assert frame.columns == ["user", "item", "rating", "timestamp", "line"]
    assert frame.rows() == [
        ("U1", "I1", 5.0, 100, 1),
        ("U1", "I2", 4.0, 200, 2),
        ("U2", "I1", 3.0, 150, 3),
        ("U1", "I1", 2.0, 300, 5),  # line 4 is blank
        ("U3", "I2", 6.0, 120, 6),
        ("U3", "I3", None, 130, 7),  # no 'overall': a missing value for cleaning to count
        ("U2", "I3", 1.0, 160, 8),
    ]


def test_gzip_is_detected_from_content(tmp_path):
    plain = amazon2018.read_reviews(FIX / "reviews_2018.json", BadLines())
    gz = amazon2018.read_reviews(_gzip(FIX / "reviews_2018.json", tmp_path / "reviews.json"), BadLines())
    assert gz.equals(plain) and plain.height == 5


def test_amazon2014_meta_is_parsed_as_python_literals():
    meta, skipped = amazon2014.read_meta(FIX / "meta_2014.json", BadLines(), wanted={"I1", "I2"})
    assert skipped == 1  # I9
    assert meta.to_dicts() == [
        {"asin": "I1", "title": "Baby's First Spoon", "brand": "Acme", "categories": ["Baby", "Feeding", "Spoons"],
         "description": "A soft spoon.", "line": 1},
        {"asin": "I2", "title": "Bottle", "brand": None, "categories": ["Baby", "Feeding"], "description": None, "line": 2},
        {"asin": "I1", "title": "Second copy, ignored", "brand": None, "categories": ["Other"], "description": None, "line": 3},
    ]


def test_literal_meta_is_never_evaluated(tmp_path):
    path = _write(tmp_path / "meta.json", "{'asin': 'I1', 'title': __import__('os').getcwd()}\n")
    with pytest.raises(UserError, match=r"meta.json:1: not a valid metadata line"):
        amazon2014.read_meta(path, BadLines())


def test_amazon2018_meta_joins_description_lists_and_keeps_html():
    meta, _ = amazon2018.read_meta(FIX / "meta_2018.json", BadLines())
    rows = meta.to_dicts()
    assert rows[0]["description"] == "Written by <b>musicians</b>. For guitar."
    assert rows[0]["categories"] == ["Magazine Subscriptions", "Arts, Music &amp; Photography", "Music"]
    assert rows[1] == {"asin": "P2", "title": None, "brand": "Cond Nast", "categories": None, "description": None, "line": 2}
    assert [r["asin"] for r in rows] == ["P1", "P2", "P1"]  # duplicates are kept here, removed by cleaning


def test_malformed_json_line_names_file_and_line(tmp_path):
    path = _write(tmp_path / "r.json", '{"reviewerID": "a", "asin": "b", "overall": 5, "unixReviewTime": 1}\n{"reviewerID": "a",\n')
    with pytest.raises(UserError, match=r"r.json:2: not a valid review line \(JSONDecodeError"):
        amazon2018.read_reviews(path, BadLines("raise"))


def test_bad_values_are_skipped_and_counted_with_skip(tmp_path):
    path = _write(
        tmp_path / "r.json",
        '{"reviewerID": "a", "asin": "b", "overall": 5, "unixReviewTime": 1}\n'
        "not json\n"
        '["a", "list"]\n'
        '{"reviewerID": "a", "asin": "c", "overall": "five", "unixReviewTime": 2}\n'
        '{"reviewerID": "a", "asin": "d", "overall": 4, "unixReviewTime": 2.5}\n'
        '{"reviewerID": "b", "asin": "b", "overall": "3", "unixReviewTime": "7"}\n',
    )
    bad = BadLines("skip")
    frame = amazon2018.read_reviews(path, bad)
    assert frame.rows() == [("a", "b", 5.0, 1, 1), ("b", "b", 3.0, 7, 6)]
    assert bad.as_dict() == {"bad_rating": 1, "bad_timestamp": 1, "malformed_line": 1, "not_an_object": 1}
    one_bad = _write(tmp_path / "r2.json", '{"reviewerID": "a", "asin": "b", "overall": 5, "unixReviewTime": 1}\n'
                     '{"reviewerID": "a", "asin": "c", "overall": "five", "unixReviewTime": 2}\n')
    with pytest.raises(UserError, match=r"r2.json:2: field 'overall' has an invalid value 'five'"):
        amazon2018.read_reviews(one_bad, BadLines("raise"))


def test_missing_field_names_it_and_the_fields_found(tmp_path):
    path = _write(tmp_path / "r.json", '{"user": "a", "asin": "b", "overall": 5, "unixReviewTime": 1}\n')
    with pytest.raises(UserError, match=r"no record has the field 'reviewerID' \(user\); fields found: \['user', 'asin', 'overall', 'unixReviewTime'\]"):
        amazon2018.read_reviews(path, BadLines())


def test_ratings_csv_bad_rating_raises_or_is_skipped():
    with pytest.raises(UserError, match=r"ratings_2014.csv:4: column 'rating' \(rating\) is not a float: 'abc'"):
        amazon2014.read_ratings_csv(FIX / "ratings_2014.csv", BadLines("raise"))
    bad = BadLines("skip")
    frame = amazon2014.read_ratings_csv(FIX / "ratings_2014.csv", bad)
    assert frame.rows() == [("A", "X", 5.0, 1000, 1), ("B", "X", 4.0, 1001, 2), ("A", "Y", 3.0, 1002, 3), ("C", "Z", 2.0, 1004, 5)]
    assert bad.as_dict() == {"bad_rating": 1}


def test_csv_too_many_fields_and_short_lines(tmp_path):
    path = _write(tmp_path / "r.csv", "a,x,5,1\n\na,y,4,2,extra\nb,x\n")
    with pytest.raises(UserError, match=r"r.csv:3: more than the 4 fields"):
        amazon2014.read_ratings_csv(path, BadLines())
    frame = amazon2014.read_ratings_csv(path, BadLines("skip"))
    assert frame.rows() == [("a", "x", 5.0, 1, 1), ("b", "x", None, None, 4)]  # short line: missing values


def test_csv_gzip_and_block_boundaries(tmp_path, monkeypatch):
    import pipeline.ingest.textio as textio

    lines = "".join(f"u{j % 7},i{j % 11},{1 + j % 5},{1000 + j}\n" for j in range(500))
    _gzip(_write(tmp_path / "plain.csv", lines), tmp_path / "r.csv.gz")
    monkeypatch.setattr(textio, "BLOCK_BYTES", 64)  # many blocks, cut mid-line
    frame = amazon2014.read_ratings_csv(tmp_path / "r.csv.gz", BadLines())
    assert frame.height == 500 and frame["line"].to_list() == list(range(1, 501))
    assert frame.row(499) == ("u2", "i4", 5.0, 1499, 500)


def test_generic_tsv_and_latin1_item_table_with_genre_flags():
    cfg = {
        "reviews": str(FIX / "ratings.tsv"), "sep": "\t", "header": False, "columns": ["u", "i", "r", "t"],
        "fields": {"user": "u", "item": "i", "rating": "r", "timestamp": "t"},
        "items": str(FIX / "items_latin1.txt"), "items_sep": "|", "items_encoding": "latin-1", "items_header": False,
        "items_columns": ["item", "title", "Drama", "Comedy", "Horror"], "items_text": ["title"],
        "items_flags_as_categories": ["Drama", "Comedy", "Horror"],
    }
    frame = generic.read_interactions(cfg, BadLines())
    assert frame.rows() == [("1", "10", 4.0, 900, 1), ("1", "20", 5.0, 901, 2), ("2", "10", 3.0, 902, 3), ("2", "30", 1.0, 903, 4)]
    items = generic.read_items(cfg, BadLines())
    assert items.select("asin", "title", "categories").rows() == [
        ("10", "Café (1995)", ["Comedy", "Horror"]),
        ("20", "Zürich", ["Drama"]),
        ("30", "Untitled", None),
        ("40", "Unused", ["Drama", "Comedy", "Horror"]),
    ]


def test_generic_missing_column_and_parquet(tmp_path):
    path = _write(tmp_path / "r.csv", "userId,movieId,rating\n1,2,3.5\n")
    frame = generic.read_interactions({"reviews": str(path)}, BadLines())  # header, separator and roles detected
    assert frame.rows() == [("1", "2", 3.5, 0, 2)]  # no timestamp column: 0
    assert generic.read_interactions({"reviews": str(path), "fields": {"user": "userId", "item": 2}}, BadLines()).equals(frame)
    with pytest.raises(UserError, match=r"no column 'uid' \(user\); columns found: \['userId', 'movieId', 'rating'\]"):
        generic.read_interactions({"reviews": str(path), "fields": {"user": "uid"}}, BadLines())
    no_rating = _write(tmp_path / "n.csv", "user,item,timestamp\n1,2,3\n")
    with pytest.raises(UserError, match=r"n.csv: no rating column; columns found: \['user', 'item', 'timestamp'\]; say which"):
        generic.read_interactions({"reviews": str(no_rating)}, BadLines())
    pq = tmp_path / "r.bin"
    pl.DataFrame({"user": [7, 8], "item": ["a", "b"], "rating": [1, 2], "timestamp": [5, 6]}).write_parquet(pq)
    assert generic.read_interactions({"reviews": str(pq)}, BadLines()).rows() == [("7", "a", 1.0, 5, 1), ("8", "b", 2.0, 6, 2)]


def test_format_detection(tmp_path):
    assert detect_source(FIX / "reviews_2018.json", FIX / "meta_2018.json") == {"format": "amazon2018"}
    assert detect_source(FIX / "reviews_2014.json", FIX / "meta_2014.json") == {"format": "amazon2014"}
    assert detect_source(FIX / "ratings_2014.csv") == {"format": "amazon2014"}
    assert detect_source(FIX / "toy.inter") == {"format": "mmrec"}
    assert detect_source(FIX / "ratings.tsv") == {"format": "generic", "sep": "\t", "header": False, "columns": ["user", "item", "rating", "timestamp"]}
    with pytest.raises(UserError, match="cannot tell the format"):
        detect_source(_write(tmp_path / "x.txt", "hello world\n"))
