"""Amazon 2018 (Ni, Li & McAuley, EMNLP 2019) files, all strict JSON lines.

- ``<Cat>_5.json.gz`` / ``<Cat>.json.gz``: reviews (``reviewerID``, ``asin``, ``overall``,
  ``unixReviewTime``, ...). Real files repeat some (user, item) pairs; cleaning collapses them.
- ``meta_<Cat>.json.gz``: ``asin``, ``title``, ``brand``, ``category`` (one flat category path),
  ``description`` (a list of strings, may hold HTML; joined with a space), ``imageURL``, ...
  Real files repeat products; cleaning keeps the first row per asin.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from pipeline.ingest import jsonlines
from pipeline.ingest.records import BadLines


def read_reviews(path: str | Path, bad: BadLines) -> pl.DataFrame:
    """Reviews as the raw interaction frame."""
    return jsonlines.read_reviews(path, jsonlines.parse_json, bad)


def read_meta(path: str | Path, bad: BadLines, wanted: set[str] | None = None) -> tuple[pl.DataFrame, int]:
    """Metadata rows (asin, title, brand, categories, description, line), duplicates kept."""
    return jsonlines.read_meta(path, jsonlines.parse_json, bad, categories_key="category", wanted=wanted)
