"""Format auto-detection from file content (never from the file name).

``detect_source(reviews, meta)`` returns the source settings a ``datasets.<name>`` entry would
hold (``format`` plus, for delimited text, ``sep``/``header``/``columns``):

- parquet                                    -> generic
- a JSON object with reviewerID/asin/overall -> amazon2014 when the metadata is Python-literal
  (single quotes), else amazon2018 (the two review formats are read the same way)
- a tab-separated header with userID, itemID -> mmrec
- ``user,item,rating,time`` without header   -> amazon2014 (the ratings-only CSV)
- 3-4 tab/comma/semicolon/pipe fields, numeric rating -> generic, no header (e.g. MovieLens u.data)
- delimited text whose first line is a header (:func:`pipeline.ingest.layout.is_header`)
  -> generic with that header; the reader then finds the columns by name and names a missing one
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from pipeline.errors import UserError
from pipeline.ingest.layout import SAMPLE_LINES, has_header, sniff_separator
from pipeline.ingest.textio import first_lines, require_file

FORMATS = ("amazon2014", "amazon2018", "mmrec", "generic")
RATING_COLUMNS = ["user", "item", "rating", "timestamp"]
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


def is_json_lines(path: Path) -> bool:
    """True when the first non-blank line is a strict-JSON object."""
    lines = first_lines(path, 1)
    if not lines or not lines[0].lstrip().startswith("{"):
        return False
    try:
        return isinstance(json.loads(lines[0]), dict)
    except ValueError:
        return False


def _delimited(line: str) -> tuple[str, list[str]] | None:
    for sep in ("\t", ",", ";", "|"):
        parts = line.split(sep)
        if len(parts) in (3, 4) and _NUMBER.match(parts[2].strip()) and all(p.strip() for p in parts[:2]):
            return sep, parts
    return None


def detect_source(reviews: str | Path, meta: str | Path | None = None) -> dict:
    """The source settings for ``reviews`` (and its optional ``meta``), or a UserError."""
    path = require_file(reviews, "reviews")
    with path.open("rb") as fh:
        if fh.read(4) == b"PAR1":
            return {"format": "generic"}
    lines = first_lines(path, 2)
    if not lines:
        raise UserError(f"{path}: the file is empty")
    first = lines[0]
    if first.lstrip().startswith("{"):
        try:
            obj = json.loads(first)
        except ValueError:
            obj = None
        if isinstance(obj, dict) and {"reviewerID", "asin"} <= set(obj):
            literal_meta = meta is not None and not is_json_lines(require_file(meta, "metadata"))
            return {"format": "amazon2014" if literal_meta else "amazon2018"}
    header = [c.strip() for c in first.split("\t")]
    if {"userID", "itemID"} <= set(header):
        return {"format": "mmrec"}
    found = _delimited(first)
    if found:
        sep, parts = found
        columns = RATING_COLUMNS[: len(parts)]
        if sep == "," and len(parts) == 4:
            return {"format": "amazon2014"}
        return {"format": "generic", "sep": sep, "header": False, "columns": columns}
    sample = first_lines(path, SAMPLE_LINES)
    sep = sniff_separator(sample)
    if sep is not None and has_header(sample, sep):
        return {"format": "generic", "sep": sep, "header": True}
    raise UserError(
        f"{path}: cannot tell the format from its first line {first[:80]!r}; pass --format "
        f"({'/'.join(FORMATS)}); for delimited text give --sep, --header/--no-header and --columns "
        f"(datasets.<name>: format generic, sep, header, fields)"
    )
