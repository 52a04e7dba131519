"""A user's own data: delimited text or parquet of (user, item, rating, timestamp), plus an
optional item table. This is the path MovieLens takes.

Keys of a ``datasets.<name>`` entry (all but ``reviews`` optional):

``reviews``        the interactions file (CSV/TSV, plain or gzip, or parquet: detected from content)
``sep``            field separator; ``header`` (is line 1 column names?): detected when not given
                   (:mod:`pipeline.ingest.layout`); ``encoding`` (utf-8); ``quote`` (default ``"``, null for none)
``columns``        the file's column names in order (overrides a header)
``fields``         which file column holds each of user/item/rating/timestamp: a column name or a
                   1-based position (default: the column named like the role, e.g. ``userId``).
                   Without a timestamp column every timestamp is 0 (ties then keep file order).
``items``          item table (delimited text); ``items_sep`` (default ``sep``), ``items_encoding``
                   (utf-8), ``items_header`` (true), ``items_columns``, ``items_quote``
``items_id``       the item table's id column (default ``item``); matched to the interaction ids as text
``items_text``     the item table's text columns: a list of column names (any), or a mapping
                   {title|brand|description: column}. In a list, a column named ``title`` or ``brand``
                   fills that field; every other listed column, in the listed order, is appended
                   (space-joined, blank cells skipped) to the item's ``description``. The item
                   sentence is then title + brand + categories + description (MMRec's recipe,
                   :mod:`pipeline.features.sentences`), e.g. ``[title, genres, overview]`` gives
                   title + genres + overview.
``items_flags_as_categories``  0/1 columns; an item's ``categories`` are the names of its 1-columns,
                   in the listed order (MovieLens genres)
``images``         a folder of item images (file name = item id, or ``images_pattern``), or a ``.b``
                   file of Amazon 2014 CNN vectors (:mod:`pipeline.ingest.image_files`)

An item id on several rows of the item table is read once when the rows are identical (counted,
``meta.duplicate_meta`` in stats.json); rows that differ are a one-line error naming both lines.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from pipeline.errors import UserError
from pipeline.ingest.csvfile import read_delimited
from pipeline.ingest.jsonlines import META_SCHEMA
from pipeline.ingest.layout import ROLES, assign_roles, resolve_layout
from pipeline.ingest.records import RAW_SCHEMA, BadLines
from pipeline.ingest.textio import require_file
from pipeline.log import get_logger

log = get_logger(__name__)

KINDS = {"user": "str", "item": "str", "rating": "float", "timestamp": "int"}
TEXT_FIELDS = ("title", "brand", "description")
PARQUET_MAGIC = b"PAR1"


def is_parquet(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(4) == PARQUET_MAGIC


def _read_parquet(path: Path, select: dict[str, str]) -> pl.DataFrame:
    names = pl.read_parquet_schema(path)
    for role, column in select.items():
        if column not in names and role != "timestamp":
            raise UserError(f"{path}: no column '{column}' ({role}); columns found: {list(names)}")
    exprs = []
    for role, column in select.items():
        if column in names:
            kind = RAW_SCHEMA[role]
            source = pl.col(column).cast(pl.String) if kind == pl.String() else pl.col(column).cast(kind, strict=False)
            exprs.append(source.alias(role))
        else:
            exprs.append(pl.lit(None, dtype=RAW_SCHEMA[role]).alias(role))
    frame = pl.scan_parquet(path).select(exprs).collect()
    return frame.with_columns(pl.int_range(1, frame.height + 1, dtype=pl.Int64).alias("line"))


def read_interactions(cfg: dict[str, Any], bad: BadLines) -> pl.DataFrame:
    """The interactions file of a generic dataset as the raw interaction frame."""
    path = require_file(cfg["reviews"], "interactions")
    if is_parquet(path):
        roles = assign_roles(path, list(pl.read_parquet_schema(path)), cfg.get("fields"))
        frame = _read_parquet(path, _select(roles))
    else:
        encoding = cfg.get("encoding", "utf-8")
        layout = resolve_layout(path, sep=cfg.get("sep"), header=cfg.get("header"), columns=cfg.get("columns"),
                                fields=cfg.get("fields"), encoding=encoding)
        roles = layout.roles
        log.info("%s: separator %r, %s, columns %s", path, layout.sep, "header line" if layout.header else "no header line",
                 ", ".join(f"{role}={column}" for role, column in roles.items()))
        frame = read_delimited(
            path, select=_select(roles), kinds=KINDS, bad=bad, sep=layout.sep, header=layout.header,
            columns=cfg.get("columns") or (None if layout.header else layout.names), encoding=encoding,
            quote=cfg.get("quote", '"'), optional=frozenset({"timestamp"}),
        )
    if frame.height and frame["timestamp"].null_count() == frame.height:
        log.warning("%s: no timestamp column (columns %s); every timestamp is 0 (repeated pairs keep the last row)",
                    path, sorted(set(roles.values())))
        frame = frame.with_columns(pl.lit(0, dtype=pl.Int64).alias("timestamp"))
    return frame.select(list(RAW_SCHEMA)).cast(RAW_SCHEMA)  # type: ignore[arg-type]


def _select(roles: dict[str, str]) -> dict[str, str]:
    """The reader's output column -> file column; a missing timestamp reads as all null."""
    return {role: roles.get(role, "timestamp") for role in ROLES}


NAMED_FIELDS = ("title", "brand")  # in the list form of items_text, the columns of these names fill their field
PART = "part:"  # select names of the columns appended to the description, in order


def text_columns(cfg: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    """``items_text`` as (field -> column for the fields filled from one column, the columns appended
    in order to the description). The mapping form fills fields only; the list form fills title and
    brand from the columns of those names and makes the description from the other columns."""
    spec = cfg.get("items_text") or {}
    if isinstance(spec, list):
        names = [str(c) for c in spec]
        return {n: n for n in names if n in NAMED_FIELDS}, [n for n in names if n not in NAMED_FIELDS]
    unknown = sorted(set(spec) - set(TEXT_FIELDS))
    if unknown:
        raise UserError(f"params.yaml: items_text names {unknown} are not among {list(TEXT_FIELDS)} (use a list of columns)")
    return {field: str(column) for field, column in spec.items()}, []


def _shown(value: Any, width: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 4] + "...'"


def repeated_ids(frame: pl.DataFrame, path: Path, select: dict[str, str]) -> int:
    """How many rows repeat an item id of an earlier row with the same content (they are dropped
    later, :func:`pipeline.ingest.clean.dedupe_meta`); a repeat with other content is a UserError
    naming the id, both lines and the first column that differs."""
    dup = frame.filter(pl.col("asin").is_not_null() & pl.col("asin").is_duplicated())
    if not dup.height:
        return 0
    content = [c for c in frame.columns if c not in ("asin", "line")]
    distinct = dup.unique(subset=["asin", *content], keep="first", maintain_order=True)
    conflicting = distinct.filter(pl.col("asin").is_duplicated())
    if conflicting.height:
        item = conflicting.sort("line")["asin"][0]
        rows = list(dup.filter(pl.col("asin") == item).sort("line").iter_rows(named=True))
        first = rows[0]
        other = next(r for r in rows if any(r[c] != first[c] for c in content))
        column = next(c for c in content if other[c] != first[c])
        raise UserError(
            f"{path}:{other['line']}: item id {item!r} of line {first['line']} again, with other content (column "
            f"'{select[column]}': {_shown(first[column])} on line {first['line']}, {_shown(other[column])} here); "
            "the item table must give each item one row, or repeat it identically"
        )
    repeated = dup.height - dup["asin"].n_unique()
    log.info("%s: %d row(s) repeat %d item id(s) with identical content; each id is read once", path, repeated, dup["asin"].n_unique())
    return repeated


def read_items(cfg: dict[str, Any], bad: BadLines) -> pl.DataFrame:
    """The optional item table as metadata rows (asin, title, brand, categories, description, line)."""
    path = require_file(cfg["items"], "item table")
    fields, parts = text_columns(cfg)
    flags = [str(f) for f in cfg.get("items_flags_as_categories") or []]
    select = {"asin": str(cfg.get("items_id", "item")), **fields, **{f"{PART}{i}": c for i, c in enumerate(parts)},
              **{f"flag:{f}": f for f in flags}}
    frame = read_delimited(
        path, select=select, kinds={name: "str" for name in select}, bad=bad, sep=cfg.get("items_sep", cfg.get("sep", ",")),
        header=bool(cfg.get("items_header", True)), columns=cfg.get("items_columns"),
        encoding=cfg.get("items_encoding", "utf-8"), quote=cfg.get("items_quote", '"'), what="item table",
    )
    repeated_ids(frame, path, select)
    if parts:
        cells = [pl.when(pl.col(f"{PART}{i}").str.strip_chars() != "").then(pl.col(f"{PART}{i}")) for i in range(len(parts))]
        joined = pl.concat_str(cells, separator=" ", ignore_nulls=True)
        frame = frame.with_columns(pl.when(joined != "").then(joined).alias("description")).drop(
            [f"{PART}{i}" for i in range(len(parts))])
    if flags:
        bad_flags = frame.filter(pl.any_horizontal([~pl.col(f"flag:{f}").fill_null("0").is_in(["0", "1"]) for f in flags]))
        if bad_flags.height:
            raise UserError(f"{path}:{bad_flags['line'][0]}: category flag columns {flags} must hold 0 or 1")
        categories = pl.concat_list([pl.when(pl.col(f"flag:{f}") == "1").then(pl.lit(f)) for f in flags]).list.drop_nulls()
        frame = frame.with_columns(pl.when(categories.list.len() > 0).then(categories).alias("categories"))
    for name in META_SCHEMA:
        if name not in frame.columns:
            frame = frame.with_columns(pl.lit(None, dtype=META_SCHEMA[name]).alias(name))
    missing = frame.filter(pl.col("asin").is_null())
    for line in missing["line"]:
        bad(path, int(line), "missing_item_id", f"item table row without an id in column '{select['asin']}'")
    return frame.filter(pl.col("asin").is_not_null()).select(list(META_SCHEMA)).cast(META_SCHEMA)  # type: ignore[arg-type]
