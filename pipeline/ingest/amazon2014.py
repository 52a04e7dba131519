"""Amazon 2014 (McAuley et al., SIGIR 2015) files: the format of the paper's datasets.

- ``ratings_<Cat>.csv``: ``user,item,rating,unix time``, comma-separated, no header.
- ``reviews_<Cat>_5.json.gz``: one JSON object per line (``reviewerID``, ``asin``, ``overall``,
  ``unixReviewTime``, ...).
- ``meta_<Cat>.json.gz``: one Python-literal dict per line (single quotes): ``asin``, ``title``,
  ``brand``, ``categories`` (a list of category paths), ``description``, ``imUrl`` -- parsed with
  ``ast.literal_eval``, never ``eval``.
- ``image_features_<Cat>.b``: see :mod:`pipeline.ingest.image_features`.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from pipeline.ingest import jsonlines
from pipeline.ingest.csvfile import read_delimited
from pipeline.ingest.records import RAW_SCHEMA, BadLines

RATINGS_COLUMNS = ["user", "item", "rating", "timestamp"]
KINDS = {"user": "str", "item": "str", "rating": "float", "timestamp": "int"}


def read_ratings_csv(path: str | Path, bad: BadLines) -> pl.DataFrame:
    """``ratings_<Cat>.csv`` as the raw interaction frame."""
    frame = read_delimited(
        path, select={c: c for c in RATINGS_COLUMNS}, kinds=KINDS, bad=bad, sep=",", header=False, columns=RATINGS_COLUMNS
    )
    return frame.cast(RAW_SCHEMA)  # type: ignore[arg-type]


def read_reviews(path: str | Path, bad: BadLines) -> pl.DataFrame:
    """``reviews_<Cat>[_5].json[.gz]`` as the raw interaction frame."""
    return jsonlines.read_reviews(path, jsonlines.parse_json, bad)


def read_meta(path: str | Path, bad: BadLines, wanted: set[str] | None = None) -> tuple[pl.DataFrame, int]:
    """``meta_<Cat>.json.gz`` rows (asin, title, brand, categories = first path, description, line)."""
    return jsonlines.read_meta(path, jsonlines.parse_literal, bad, categories_key="categories", wanted=wanted)
