"""Cleaning with accounting: every row dropped is counted under one reason.

Interactions, in this order (a row is counted under the first reason that applies):
``missing_user``, ``missing_item``, ``missing_rating``, ``missing_timestamp``,
``rating_out_of_range`` (outside ``[rating_min, rating_max]``), then ``duplicate_pair``:
repeated (user, item) rows collapse to the latest review (largest timestamp; on a tie, the
last one in file order). Metadata: repeated asins keep their first row (``duplicate_meta``).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from pipeline.ingest.reindex import first_seen_ids
from pipeline.log import get_logger

log = get_logger(__name__)

INVALID_REASONS = ("missing_user", "missing_item", "missing_rating", "missing_timestamp", "rating_out_of_range")


def drop_invalid(raw: pl.DataFrame, rating_min: float, rating_max: float) -> tuple[pl.DataFrame, dict[str, int]]:
    """Rows with all values present and the rating in range (file order kept), and drops by reason."""
    rating = pl.col("rating")
    reason = (
        pl.when(pl.col("user").is_null()).then(pl.lit(0))
        .when(pl.col("item").is_null()).then(pl.lit(1))
        .when(rating.is_null() | rating.is_nan()).then(pl.lit(2))
        .when(pl.col("timestamp").is_null()).then(pl.lit(3))
        .when((rating < rating_min) | (rating > rating_max)).then(pl.lit(4))
        .otherwise(pl.lit(-1))
        .alias("reason")
    )
    codes = raw.select(reason)["reason"].to_numpy()
    counts = np.bincount(codes[codes >= 0], minlength=len(INVALID_REASONS))
    dropped = {name: int(counts[j]) for j, name in enumerate(INVALID_REASONS)}
    kept = raw.filter(pl.Series(codes < 0)) if counts.sum() else raw
    return kept, dropped


def latest_per_pair(users: np.ndarray, items: np.ndarray, timestamps: np.ndarray) -> np.ndarray:
    """Keep-mask with one row per (user, item): the largest timestamp, ties to the last row.

    Rows must be in file order; ``users``/``items`` are integer codes (>= 0).
    """
    users = np.asarray(users, dtype=np.int64)
    if users.size == 0:
        return np.ones(0, dtype=bool)
    key = users * (int(np.max(items)) + 1) + np.asarray(items, dtype=np.int64)
    timestamps = np.asarray(timestamps)
    order = np.argsort(key, kind="stable")  # equal keys stay in file order
    sorted_key = key[order]
    repeated = np.zeros(order.size, dtype=bool)
    repeated[1:] = sorted_key[1:] == sorted_key[:-1]
    repeated[:-1] |= repeated[1:].copy()
    keep = np.ones(order.size, dtype=bool)
    rows = order[repeated]  # only rows of repeated pairs need the time order (usually few)
    if rows.size:
        by_time = rows[np.lexsort((timestamps[rows], key[rows]))]  # stable: ties stay in file order
        last = np.ones(by_time.size, dtype=bool)
        last[:-1] = key[by_time][1:] != key[by_time][:-1]
        keep[by_time[~last]] = False
    return keep


def clean_interactions(raw: pl.DataFrame, rating_min: float, rating_max: float) -> tuple[pl.DataFrame, dict[str, int]]:
    """The raw interaction frame (file order) without invalid rows or repeated pairs, and drops by reason."""
    frame, dropped = drop_invalid(raw.sort("line"), rating_min, rating_max)
    users, _ = first_seen_ids(frame["user"])
    items, _ = first_seen_ids(frame["item"])
    keep = latest_per_pair(users, items, frame["timestamp"].to_numpy())
    dropped["duplicate_pair"] = int((~keep).sum())
    kept = frame.filter(pl.Series(keep))
    log.info("cleaning kept %d of %d rows; dropped %s", kept.height, raw.height, {k: v for k, v in dropped.items() if v})
    return kept, dropped


def dedupe_meta(meta: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """Metadata with one row per asin (the first in file order), and how many rows were dropped."""
    kept = meta.sort("line").unique(subset=["asin"], keep="first", maintain_order=True)
    return kept, meta.height - kept.height
