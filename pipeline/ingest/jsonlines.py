"""Streaming readers for one-object-per-line files: Amazon reviews and product metadata.

Lines are parsed one at a time and only the needed fields are kept, in chunks that become
polars frames, so a multi-GB ``.json.gz`` never has to fit in memory. The parser is passed in:
strict JSON (``json.loads``) for reviews and 2018 metadata, Python literals
(``ast.literal_eval``, never ``eval``) for 2014 metadata.
"""

from __future__ import annotations

import ast
import json
import math
import re
from pathlib import Path
from typing import Any, Callable, Iterator

import polars as pl

from pipeline.errors import UserError
from pipeline.ingest.records import RAW_SCHEMA, BadLines
from pipeline.ingest.textio import iter_lines, require_file
from pipeline.log import get_logger, progress

log = get_logger(__name__)

Parse = Callable[[bytes], Any]
CHUNK_ROWS = 200_000

# output column -> the review field it comes from (Amazon 2014 and 2018 use the same names)
REVIEW_FIELDS = {"user": "reviewerID", "item": "asin", "rating": "overall", "timestamp": "unixReviewTime"}

META_SCHEMA: dict[str, pl.DataType] = {
    "asin": pl.String(),
    "title": pl.String(),
    "brand": pl.String(),
    "categories": pl.List(pl.String()),
    "description": pl.String(),
    "line": pl.Int64(),
}

_ASIN = re.compile(rb"""["']asin["']\s*:\s*["']([^"']*)["']""")


def parse_json(raw: bytes) -> Any:
    """Strict JSON."""
    return json.loads(raw)


def parse_literal(raw: bytes) -> Any:
    """A Python literal (2014 metadata, single quotes) via ``ast.literal_eval``; JSON as a fall-back."""
    text = raw.decode("utf-8")
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return json.loads(text)


def iter_objects(
    path: Path, parse: Parse, bad: BadLines, what: str, keep: Callable[[bytes], bool] | None = None
) -> Iterator[tuple[int, dict]]:
    """Yield ``(line, object)`` for every non-blank line that parses to a dict (and passes ``keep``)."""
    for number, raw in progress(iter_lines(path), desc=path.name, unit=" lines"):
        if not raw.strip():
            continue
        if keep is not None and not keep(raw):
            continue
        try:
            obj = parse(raw)
        except (ValueError, SyntaxError, UnicodeDecodeError, MemoryError, RecursionError) as exc:
            bad(path, number, "malformed_line", f"not a valid {what} line ({exc.__class__.__name__}: {str(exc)[:80]})")
            continue
        if not isinstance(obj, dict):
            bad(path, number, "not_an_object", f"expected one {what} object per line, got {type(obj).__name__}")
            continue
        yield number, obj


def _as_id(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise ValueError


def _as_float(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError
    out = float(value)  # int, float or a numeric string
    return None if math.isnan(out) else out


def _as_int(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, int):
        return value
    number = float(value)
    if not number.is_integer():
        raise ValueError
    return int(number)


_CONVERT = {"user": _as_id, "item": _as_id, "rating": _as_float, "timestamp": _as_int}
_REASON = {"user": "bad_id", "item": "bad_id", "rating": "bad_rating", "timestamp": "bad_timestamp"}


def _require_fields(path: Path, frame: pl.DataFrame, fields: dict[str, str], first_keys: list[str]) -> None:
    """A field absent from every record is a missing column, not a missing value."""
    if frame.height == 0:
        return
    for column, key in fields.items():
        if frame[column].null_count() == frame.height:
            raise UserError(f"{path}: no record has the field '{key}' ({column}); fields found: {first_keys}")


def read_reviews(path: str | Path, parse: Parse, bad: BadLines, fields: dict[str, str] = REVIEW_FIELDS) -> pl.DataFrame:
    """Reviews as the raw interaction frame (see :mod:`pipeline.ingest.records`)."""
    path = require_file(path, "reviews")
    chunks: list[pl.DataFrame] = []
    cols: dict[str, list] = {c: [] for c in RAW_SCHEMA}
    first_keys: list[str] | None = None
    for number, obj in iter_objects(path, parse, bad, "review"):
        if first_keys is None:
            first_keys = list(obj)
        row = {}
        for column, key in fields.items():
            value = obj.get(key)
            try:
                row[column] = _CONVERT[column](value)
            except (TypeError, ValueError, OverflowError):
                bad(path, number, _REASON[column], f"field '{key}' has an invalid value {value!r}")
                break
        else:
            for column, value in row.items():
                cols[column].append(value)
            cols["line"].append(number)
            if len(cols["line"]) >= CHUNK_ROWS:
                chunks.append(pl.DataFrame(cols, schema=RAW_SCHEMA))
                cols = {c: [] for c in RAW_SCHEMA}
    chunks.append(pl.DataFrame(cols, schema=RAW_SCHEMA))
    frame = pl.concat(chunks, rechunk=True)
    _require_fields(path, frame, fields, first_keys or [])
    log.info("read %s: %d review rows", path, frame.height)
    return frame


def _text(value: Any) -> str | None:
    """A text field: strings as they are, lists of strings joined with a space; empty -> None."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        parts = [str(v).strip() for v in value if v is not None and str(v).strip()]
        return " ".join(parts) or None
    text = str(value)
    return text if text.strip() else None


def _path(value: Any) -> list[str] | None:
    """The first category path: a list of lists (2014) gives its first list; a flat list is the path."""
    if not isinstance(value, (list, tuple)) or not value:
        return None
    first = value[0]
    path = first if isinstance(first, (list, tuple)) else value
    out = [str(v) for v in path if v is not None and str(v) != ""]
    return out or None


def normalise_meta(obj: dict, categories_key: str) -> dict[str, Any]:
    """asin, title, brand, categories (first path), description (lists joined with a space)."""
    return {
        "asin": _as_id(obj.get("asin")),
        "title": _text(obj.get("title")),
        "brand": _text(obj.get("brand")),
        "categories": _path(obj.get(categories_key)),
        "description": _text(obj.get("description")),
    }


def read_meta(
    path: str | Path, parse: Parse, bad: BadLines, categories_key: str, wanted: set[str] | None = None
) -> tuple[pl.DataFrame, int]:
    """Metadata rows (duplicates kept, in file order) and the number of lines skipped unparsed.

    With ``wanted`` (the dataset's asins), lines whose asin is visibly another item are skipped
    without being parsed, which makes a large metadata file fast to scan.
    """
    path = require_file(path, "metadata")
    skipped = 0

    def keep(raw: bytes) -> bool:
        nonlocal skipped
        match = _ASIN.search(raw)
        if match is None or match.group(1).decode("utf-8", "replace") in wanted:  # type: ignore[operator]
            return True
        skipped += 1
        return False

    rows: list[dict] = []
    for number, obj in iter_objects(path, parse, bad, "metadata", keep if wanted is not None else None):
        try:
            row = normalise_meta(obj, categories_key)
        except (TypeError, ValueError):
            bad(path, number, "bad_id", f"field 'asin' has an invalid value {obj.get('asin')!r}")
            continue
        if row["asin"] is None:
            bad(path, number, "missing_asin", "metadata line without an 'asin'")
            continue
        if wanted is not None and row["asin"] not in wanted:
            skipped += 1
            continue
        row["line"] = number
        rows.append(row)
    frame = pl.DataFrame(rows, schema=META_SCHEMA) if rows else pl.DataFrame(schema=META_SCHEMA)
    log.info("read %s: %d metadata rows kept, %d lines for other items skipped", path, frame.height, skipped)
    return frame, skipped
