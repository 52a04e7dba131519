"""Data contracts: every parquet file the pipeline writes, its columns, types and invariants.

Each table kind has one :class:`TableSchema`. :func:`write_table` validates a frame before it is
written and :func:`read_table` validates it again after it is read, so a file produced by another
version, edited by hand or truncated is caught at the boundary with a one-line error naming the
file and the field.

Tables (``*`` = optional column, present when the source has it):

``interactions``  (data/<ds>/ingest/interactions.parquet)
    user int32 (0..n_users-1), item int32 (0..n_items-1), rating float32, timestamp int64
    (unix seconds), split str in {train, valid, test}. One row per (user, item).
``users``  (data/<ds>/ingest/users.parquet)
    user int32 (contiguous from 0), user_id str (the raw id).
``items``  (data/<ds>/ingest/items.parquet)
    item int32 (contiguous from 0), asin str (the raw id), title* str, brand* str,
    categories* list[str] (the first category path), description* str (raw, may hold HTML).
``knn``  (data/<ds>/neighbors/lists/knn_<modality>.parquet)
    item int32, neighbor int32, score float32 (cosine), rank int16 (0 = most similar).
``candidates``  (data/<ds>/graph/candidates/tail_candidates.parquet, popular_candidates.parquet)
    item int32 (the query q), neighbor int32, score float32 (fused S^f), rank int16.
    Tail lists: most similar tail items first; popular lists: least similar popular items first.
``item_groups``  (data/<ds>/graph/candidates/item_groups.parquet)
    item int32, degree int32 (training degree), tail bool (eq. 15).
``edges``  (data/<ds>/graph/edges.parquet)
    user int32, item int32, sign int8 in {+1, -1}, origin str in {observed, pseudo},
    weight float32 (rating for observed edges, S^f for pseudo edges). One row per (user, item).
``thresholds``  (data/<ds>/graph/thresholds.parquet)
    user int32, mu float32, sigma float32, delta float32.
``pseudo_edges``  (data/<ds>/graph/pseudo_edges.parquet)
    user int32, item int32, sign int8 in {+1, -1} (APFI: +1 to tail items, eq. 19; -1 to popular
    items, eq. 21), weight float32 (the fused similarity S^f). One row per (user, item).
``recommendations``  (eval/<ds>/<run>/recommendations.parquet)
    user int32, item int32, rank int16 (0 = top), score float32.
``export_recommendations``  (exports/<ds>/<run>/recommendations.parquet, ``simgr export``)
    user int32, user_id str (raw id), rank int16 (1 = best), item int32, item_id str (raw id,
    the asin), score float32 (inner product of the final embeddings). One row per (user, rank).
``user_metrics``  (eval/<ds>/<run>/user_metrics.parquet)
    user int32, split str in {valid, test}, n_relevant int32, then one float64 column per
    metric (``recall@20``, ``ndcg@20``, ...).
``feature_sketch``  (data/<ds>/features/fingerprint.parquet, committed; :mod:`pipeline.repro.fingerprint`)
    modality str, item int32, norm float32, s0 .. s7 float32 (the vector's fixed random projection).
``fingerprint``  (data/<ds>/neighbors/fingerprint.parquet, data/<ds>/graph/fingerprint.parquet, committed)
    part str (a list file or edge kind), key int32 (item or user), n int32, hash int64,
    score_sum float64, margin float32 (NaN: the part is exact). One row per (part, key).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

import polars as pl

from pipeline.atomic import atomic_file
from pipeline.errors import UserError

Check = Callable[[pl.DataFrame], "str | None"]


@dataclass(frozen=True)
class TableSchema:
    """Columns (name -> dtype), which of them are optional, and extra invariant checks."""

    name: str
    columns: Mapping[str, pl.DataType]
    optional: frozenset[str] = frozenset()
    unique: tuple[str, ...] = ()
    checks: tuple[Check, ...] = ()
    extra_columns: Mapping[str, pl.DataType] | None = None  # pattern-free extras allowed with this dtype
    nullable: frozenset[str] = field(default_factory=frozenset)


def _in_set(column: str, allowed: set) -> Check:
    def check(df: pl.DataFrame) -> str | None:
        bad = df.filter(~pl.col(column).is_in(list(allowed)))
        if bad.height:
            return f"column '{column}' has {bad.height} value(s) outside {sorted(allowed)}, e.g. {bad[column][0]!r}"
        return None

    return check


def _non_negative(*columns: str) -> Check:
    def check(df: pl.DataFrame) -> str | None:
        for c in columns:
            if df.height and df[c].min() < 0:
                return f"column '{c}' has negative values (min {df[c].min()})"
        return None

    return check


def _positive(*columns: str) -> Check:
    def check(df: pl.DataFrame) -> str | None:
        for c in columns:
            if df.height and df[c].min() < 1:
                return f"column '{c}' must be >= 1 (min {df[c].min()})"
        return None

    return check


def _contiguous(column: str) -> Check:
    def check(df: pl.DataFrame) -> str | None:
        if df.height == 0:
            return None
        ids = df[column]
        if ids.min() != 0 or ids.max() != df.height - 1 or ids.n_unique() != df.height:
            return f"column '{column}' must hold the contiguous ids 0..{df.height - 1} once each"
        return None

    return check


_ID = pl.Int32

SCHEMAS: dict[str, TableSchema] = {
    "interactions": TableSchema(
        "interactions",
        {"user": _ID, "item": _ID, "rating": pl.Float32, "timestamp": pl.Int64, "split": pl.String},
        unique=("user", "item"),
        checks=(_in_set("split", {"train", "valid", "test"}), _non_negative("user", "item")),
    ),
    "users": TableSchema(
        "users", {"user": _ID, "user_id": pl.String}, unique=("user",), checks=(_contiguous("user"),)
    ),
    "items": TableSchema(
        "items",
        {
            "item": _ID,
            "asin": pl.String,
            "title": pl.String,
            "brand": pl.String,
            "categories": pl.List(pl.String),
            "description": pl.String,
        },
        optional=frozenset({"title", "brand", "categories", "description"}),
        nullable=frozenset({"title", "brand", "categories", "description"}),
        unique=("item",),
        checks=(_contiguous("item"),),
    ),
    "knn": TableSchema(
        "knn",
        {"item": _ID, "neighbor": _ID, "score": pl.Float32, "rank": pl.Int16},
        unique=("item", "rank"),
        checks=(_non_negative("item", "neighbor", "rank"),),
    ),
    "candidates": TableSchema(
        "candidates",
        {"item": _ID, "neighbor": _ID, "score": pl.Float32, "rank": pl.Int16},
        unique=("item", "rank"),
        checks=(_non_negative("item", "neighbor", "rank"),),
    ),
    "item_groups": TableSchema(
        "item_groups",
        {"item": _ID, "degree": pl.Int32, "tail": pl.Boolean},
        unique=("item",),
        checks=(_contiguous("item"), _non_negative("degree")),
    ),
    "edges": TableSchema(
        "edges",
        {"user": _ID, "item": _ID, "sign": pl.Int8, "origin": pl.String, "weight": pl.Float32},
        unique=("user", "item"),
        checks=(_in_set("sign", {1, -1}), _in_set("origin", {"observed", "pseudo"}), _non_negative("user", "item")),
    ),
    "thresholds": TableSchema(
        "thresholds",
        {"user": _ID, "mu": pl.Float32, "sigma": pl.Float32, "delta": pl.Float32},
        unique=("user",),
        checks=(_non_negative("user", "sigma"),),
    ),
    "pseudo_edges": TableSchema(
        "pseudo_edges",
        {"user": _ID, "item": _ID, "sign": pl.Int8, "weight": pl.Float32},
        unique=("user", "item"),
        checks=(_in_set("sign", {1, -1}), _non_negative("user", "item")),
    ),
    "recommendations": TableSchema(
        "recommendations",
        {"user": _ID, "item": _ID, "rank": pl.Int16, "score": pl.Float32},
        unique=("user", "rank"),
        checks=(_non_negative("user", "item", "rank"),),
    ),
    "export_recommendations": TableSchema(
        "export_recommendations",
        {"user": _ID, "user_id": pl.String, "rank": pl.Int16, "item": _ID, "item_id": pl.String, "score": pl.Float32},
        unique=("user", "rank"),
        checks=(_non_negative("user", "item"), _positive("rank")),
    ),
    "user_metrics": TableSchema(
        "user_metrics",
        {"user": _ID, "split": pl.String, "n_relevant": pl.Int32},
        unique=("user", "split"),
        checks=(_in_set("split", {"valid", "test"}),),
        extra_columns={"*": pl.Float64},
    ),
    "feature_sketch": TableSchema(
        "feature_sketch",
        {"modality": pl.String, "item": _ID, "norm": pl.Float32, **{f"s{k}": pl.Float32 for k in range(8)}},
        unique=("modality", "item"),
        checks=(_non_negative("item", "norm"),),
    ),
    "fingerprint": TableSchema(
        "fingerprint",
        {"part": pl.String, "key": _ID, "n": pl.Int32, "hash": pl.Int64, "score_sum": pl.Float64, "margin": pl.Float32},
        unique=("part", "key"),
        checks=(_non_negative("n"),),
    ),
}


def validate(df: pl.DataFrame, kind: str, source: object = "<frame>") -> pl.DataFrame:
    """Check ``df`` against the schema ``kind``; return it with columns in contract order.

    Raises :class:`UserError` naming ``source`` and the offending field on the first violation.
    """
    schema = SCHEMAS[kind]
    present = set(df.columns)
    required = [c for c in schema.columns if c not in schema.optional]
    missing = [c for c in required if c not in present]
    if missing:
        raise UserError(
            f"{source}: {kind} table is missing column(s) {missing}; found {df.columns}"
        )
    ordered = [c for c in schema.columns if c in present]
    extras = [c for c in df.columns if c not in schema.columns]
    if extras and schema.extra_columns is None:
        raise UserError(f"{source}: {kind} table has unexpected column(s) {extras}; expected {list(schema.columns)}")
    for c in ordered:
        want = schema.columns[c]
        if df.schema[c] != want:
            raise UserError(f"{source}: column '{c}' of the {kind} table has type {df.schema[c]}, expected {want}")
        if c not in schema.nullable and df[c].null_count():
            raise UserError(f"{source}: column '{c}' of the {kind} table has {df[c].null_count()} missing value(s)")
    if schema.extra_columns is not None:
        want = schema.extra_columns["*"]
        for c in extras:
            if df.schema[c] != want:
                raise UserError(f"{source}: column '{c}' of the {kind} table has type {df.schema[c]}, expected {want}")
    if schema.unique and df.height:
        n_dup = df.height - df.select(schema.unique).unique().height
        if n_dup:
            raise UserError(f"{source}: {kind} table has {n_dup} duplicate row(s) on {list(schema.unique)}")
    for check in schema.checks:
        problem = check(df)
        if problem:
            raise UserError(f"{source}: {kind} table: {problem}")
    return df.select(ordered + extras)


def write_table(df: pl.DataFrame, kind: str, path: str | Path) -> Path:
    """Validate ``df`` as ``kind`` and write it to ``path`` as parquet (deterministic bytes), atomically."""
    path = Path(path)
    df = validate(df, kind, source=path)
    # statistics off and a fixed compression keep the bytes identical across runs
    with atomic_file(path) as tmp:
        df.write_parquet(tmp, compression="zstd", compression_level=3, statistics=False)
    return path


def read_table(path: str | Path, kind: str, columns: list[str] | None = None) -> pl.DataFrame:
    """Read a parquet file written by :func:`write_table` and validate it as ``kind``."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: file not found (expected a {kind} table; run the stage that writes it)")
    try:
        df = pl.read_parquet(path)
    except Exception as exc:  # corrupt or non-parquet file
        raise UserError(f"{path}: not a readable parquet file ({exc.__class__.__name__}: {exc})") from None
    df = validate(df, kind, source=path)
    return df.select(columns) if columns else df
