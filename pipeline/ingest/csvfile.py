"""Streaming reader for delimited text (CSV/TSV, plain or gzip) into typed polars frames.

The file is read in blocks of whole lines (:func:`pipeline.ingest.textio.iter_blocks`); each block
is parsed by polars with every column as text, then the requested columns are cast, so memory
holds one block plus the kept columns, never the file. Row ``i`` of a block is line
``first_line + i`` (records may not span lines); a cell that does not cast (a rating ``"abc"``),
or a line with more fields than the declared columns, is a bad line. A line with fewer fields
reads as missing values, which cleaning drops and counts.
"""

from __future__ import annotations

import codecs
import csv
import io
from pathlib import Path

import polars as pl

from pipeline.errors import UserError
from pipeline.ingest.records import BadLines
from pipeline.ingest.textio import iter_blocks, open_binary, require_file
from pipeline.log import get_logger, progress

log = get_logger(__name__)

EXTRA = "__extra_field__"
KINDS = {"str": pl.String(), "float": pl.Float64(), "int": pl.Int64()}


def _codec(encoding: str) -> str:
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise UserError(f"unknown text encoding {encoding!r} (e.g. utf-8, latin-1)") from None


ENCODING_HOW = "give the file's encoding: datasets.<name>.encoding (items_encoding for the item table), or simgr ingest --encoding"


def encoding_error(path: Path, data: bytes, first_line: int, exc: UnicodeDecodeError, codec: str) -> UserError:
    """The one line for bytes of ``data`` (lines from ``first_line`` on) that are not ``codec`` text."""
    line = first_line + data.count(b"\n", 0, exc.start)
    column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
    byte = data[exc.start:exc.start + 1].hex()
    return UserError(f"{path}:{line}: not {codec} text (byte 0x{byte} at column {column}: the file has another encoding, "
                     f"e.g. latin-1); {ENCODING_HOW} latin-1")


def read_header(path: Path, sep: str, encoding: str) -> list[str]:
    """Column names from the first line of ``path``."""
    codec = _codec(encoding)
    with open_binary(path) as fh:
        raw = fh.readline()
    try:
        first = raw.decode(codec).rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise encoding_error(path, raw, 1, exc, codec) from None
    if not first.strip():
        raise UserError(f"{path}:1: expected a header line with column names, found an empty line")
    return [name.strip().strip('"') for name in next(csv.reader([first], delimiter=sep))]


def _parse_block(block: bytes, names: list[str], sep: str, quote: str | None) -> pl.DataFrame:
    return pl.read_csv(
        io.BytesIO(block),
        has_header=False,
        separator=sep,
        quote_char=quote,
        schema={n: pl.String() for n in [*names, EXTRA]},
        missing_columns="insert",
        truncate_ragged_lines=True,
        raise_if_empty=False,
    )


def _cast(column: str, kind: str) -> pl.Expr:
    """Text column -> ``kind``; a cell that does not convert becomes null (and is reported as bad)."""
    raw = pl.col(column)
    if kind == "str":
        return raw.str.strip_chars().replace("", None)
    if kind == "float":
        return raw.str.strip_chars().cast(pl.Float64, strict=False).fill_nan(None)
    as_float = raw.str.strip_chars().cast(pl.Float64, strict=False)
    integral = pl.when(as_float == as_float.floor()).then(as_float.cast(pl.Int64, strict=False))
    return pl.coalesce(raw.str.strip_chars().cast(pl.Int64, strict=False), integral)


def _report(path: Path, rows: pl.DataFrame, names: list[str], present: dict[str, str], kinds: dict[str, str], bad: BadLines) -> None:
    """Pass each bad row to the bad-line policy with what is wrong with it."""
    for row in rows.iter_rows(named=True):
        if row[EXTRA] is not None:
            bad(path, row["line"], "too_many_fields", f"more than the {len(names)} fields {names}")
            continue
        for out, src in present.items():
            if kinds[out] == "str" or row[src] is None:
                continue
            value = pl.Series([row[src]]).to_frame(src).select(_cast(src, kinds[out]))[src][0]
            if value is None:
                bad(path, row["line"], f"bad_{out}", f"column '{src}' ({out}) is not a {kinds[out]}: {row[src]!r}")
                break


def read_delimited(
    path: str | Path,
    *,
    select: dict[str, str],
    kinds: dict[str, str],
    bad: BadLines,
    sep: str = ",",
    header: bool = False,
    columns: list[str] | None = None,
    encoding: str = "utf-8",
    quote: str | None = '"',
    optional: frozenset[str] = frozenset(),
    what: str = "ratings",
) -> pl.DataFrame:
    """Read ``path`` and return ``select``'s output columns (cast to ``kinds``) plus ``line``.

    ``select`` maps an output name to the file column holding it. File columns are named by the
    header line (``header=True``) or by ``columns`` (which also overrides a header). A selected
    column absent from the file is a UserError naming it and the columns found, unless it is in
    ``optional`` (then it is all null).
    """
    path = require_file(path, what)
    if len(sep) != 1:
        raise UserError(f"{path}: the separator must be one character, got {sep!r}")
    codec = _codec(encoding)
    names = read_header(path, sep, encoding) if header else None
    if columns:
        names = [str(c) for c in columns]
    if not names:
        raise UserError(f"{path}: the file has no header line, so its column names must be configured ('columns')")
    present = {out: src for out, src in select.items() if src in names}
    for out, src in select.items():
        if out not in present and out not in optional:
            raise UserError(f"{path}: no column '{src}' ({out}); columns found: {names}")
    chunks: list[pl.DataFrame] = []
    for first_line, block in progress(iter_blocks(path, skip_lines=int(header)), desc=path.name, unit=" blocks"):
        if codec != "utf-8":
            try:
                block = block.decode(codec).encode("utf-8")
            except UnicodeDecodeError as exc:
                raise encoding_error(path, block, first_line, exc, codec) from None
        try:
            raw = _parse_block(block, names, sep, quote)
        except Exception as exc:  # polars parse errors carry no line number: give the block's range
            try:
                block.decode("utf-8")
            except UnicodeDecodeError as bad_text:  # not text in the given encoding: say where
                raise encoding_error(path, block, first_line, bad_text, codec) from None
            raise UserError(
                f"{path}:{first_line}: cannot parse the lines from here on as {sep!r}-separated text ({exc.__class__.__name__})"
            ) from None
        n_lines = block.count(b"\n")
        if raw.height != n_lines:
            raise UserError(
                f"{path}:{first_line}: {raw.height} records parsed from {n_lines} lines; quoted fields may not span lines"
            )
        raw = raw.with_columns(pl.int_range(first_line, first_line + raw.height, dtype=pl.Int64).alias("line"))
        blank = pl.all_horizontal([pl.col(n).is_null() for n in names])
        raw = raw.filter(~blank)
        problems = [pl.col(EXTRA).is_not_null()]
        problems += [pl.col(src).is_not_null() & _cast(src, kinds[out]).is_null() for out, src in present.items() if kinds[out] != "str"]
        typed = raw.select(*[_cast(src, kinds[out]).alias(out) for out, src in present.items()], "line",
                           pl.any_horizontal(problems).alias("__bad__"))
        is_bad = typed["__bad__"]
        if is_bad.any():
            _report(path, raw.filter(is_bad), names, present, kinds, bad)
            typed = typed.filter(~is_bad)
        chunks.append(typed.drop("__bad__"))
    frame = pl.concat(chunks, rechunk=True) if chunks else pl.DataFrame(schema={**{o: KINDS[kinds[o]] for o in present}, "line": pl.Int64()})
    for out in select:
        if out not in present:
            frame = frame.with_columns(pl.lit(None, dtype=KINDS[kinds[out]]).alias(out))
    log.info("read %s: %d %s rows", path, frame.height, what)
    return frame.select(*select, "line")
