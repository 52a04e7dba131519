"""Cleaning: each dropped row counted under one reason; repeated pairs keep the latest review."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from pipeline.ingest import amazon2014, amazon2018
from pipeline.ingest.clean import clean_interactions, dedupe_meta
from pipeline.ingest.records import RAW_SCHEMA, BadLines

FIX = Path(__file__).parent / "fixtures" / "ingest"


def test_reasons_and_latest_review_wins():
    raw = amazon2014.read_reviews(FIX / "reviews_2014.json", BadLines())
    kept, dropped = clean_interactions(raw, 1.0, 5.0)
    assert dropped == {
        "missing_user": 0, "missing_item": 0, "missing_rating": 1, "missing_timestamp": 0,
        "rating_out_of_range": 1, "duplicate_pair": 1,
    }
    # (U1, I1) at t=100 (line 1) and t=300 (line 5): the later one, rating 2, stays
    assert kept.rows() == [("U1", "I2", 4.0, 200, 2), ("U2", "I1", 3.0, 150, 3), ("U1", "I1", 2.0, 300, 5), ("U2", "I3", 1.0, 160, 8)]


def test_timestamp_tie_keeps_the_last_row_in_file_order():
    raw = amazon2018.read_reviews(FIX / "reviews_2018.json", BadLines())
    kept, dropped = clean_interactions(raw, 1.0, 5.0)
    assert dropped["duplicate_pair"] == 1
    assert kept.filter((pl.col("user") == "R1") & (pl.col("item") == "P2")).rows() == [("R1", "P2", 1.0, 1393372900, 4)]


def test_later_review_earlier_in_file_wins():
    raw = pl.DataFrame(
        {"user": ["a", "a", None, "b"], "item": ["x", "x", "y", None], "rating": [5.0, 1.0, 3.0, 2.0],
         "timestamp": [20, 10, 1, 1], "line": [1, 2, 3, 4]},
        schema=RAW_SCHEMA,
    )
    kept, dropped = clean_interactions(raw, 1.0, 5.0)
    assert kept.rows() == [("a", "x", 5.0, 20, 1)]
    assert dropped["missing_user"] == 1 and dropped["missing_item"] == 1 and dropped["duplicate_pair"] == 1


def test_meta_keeps_the_first_row_per_asin():
    meta, _ = amazon2018.read_meta(FIX / "meta_2018.json", BadLines())
    kept, n_dup = dedupe_meta(meta)
    assert n_dup == 1
    assert kept.select("asin", "title").rows() == [("P1", "Guitar Mag"), ("P2", None)]


def test_first_seen_ids_and_compact():
    from pipeline.ingest.reindex import compact, first_seen_ids

    codes, uniques = first_seen_ids(pl.Series(["b", "a", "b", "c", "a"]))
    assert codes.tolist() == [0, 1, 0, 2, 1] and uniques.to_list() == ["b", "a", "c"]
    new, old_of_new = compact(np.array([5, 2, 5, 9, 2]))
    assert new.tolist() == [0, 1, 0, 2, 1] and old_of_new.tolist() == [5, 2, 9]


def test_latest_per_pair_on_codes():
    from pipeline.ingest.clean import latest_per_pair

    # (0,0) at rows 0, 2, 4 with times 5, 9, 9 -> row 4 (tie: last); (0,1) at rows 1, 5 with times 4, 2 -> row 1; (1,0) once
    keep = latest_per_pair(np.array([0, 0, 0, 1, 0, 0]), np.array([0, 1, 0, 0, 0, 1]), np.array([5, 4, 9, 1, 9, 2]))
    assert keep.tolist() == [False, True, False, True, True, False]


def test_latest_per_pair_matches_a_plain_python_scan():
    from pipeline.ingest.clean import latest_per_pair

    rng = np.random.default_rng(11)
    for _ in range(30):
        n = int(rng.integers(1, 60))
        users, items, times = rng.integers(0, 4, n), rng.integers(0, 3, n), rng.integers(0, 4, n)
        best: dict[tuple[int, int], int] = {}
        for j in range(n):  # later rows win ties, so >= keeps the last of equal times
            pair = (int(users[j]), int(items[j]))
            if pair not in best or times[j] >= times[best[pair]]:
                best[pair] = j
        expected = np.zeros(n, dtype=bool)
        expected[list(best.values())] = True
        assert np.array_equal(latest_per_pair(users, items, times), expected)
