"""MMRec's processed datasets, imported as they are (no cleaning, no k-core, no re-split).

``<name>.inter`` is tab-separated with a header: ``userID``, ``itemID``, ``rating``,
``timestamp``, ``x_label`` (0 = train, 1 = valid, 2 = test). Ids are already contiguous and
0-based; this is checked (a gap is a UserError), and ids and split are kept exactly so results are
comparable with MMRec-based papers. ``rating``/``timestamp`` are optional (1.0 / 0 when absent).

Optional files next to the ``.inter`` (MMRec's layout, ``data/<name>/``):

- ``u_id_mapping.csv`` / ``i_id_mapping.csv`` (tab-separated, header ``user_id userID`` /
  ``asin itemID``): raw ids for ``users.parquet``/``items.parquet``; without them the raw id is the
  number itself.
- ``image_feat.npy`` / ``text_feat.npy`` (row i = item i): picked up by the features stage
  from the same folder as the ``.inter`` file; ingest does not read them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from pipeline.errors import UserError
from pipeline.ingest.csvfile import read_delimited, read_header
from pipeline.ingest.records import BadLines

SELECT = {"user": "userID", "item": "itemID", "rating": "rating", "timestamp": "timestamp", "x_label": "x_label"}
KINDS = {"user": "int", "item": "int", "rating": "float", "timestamp": "int", "x_label": "int"}
FEATURE_FILES = {"image": "image_feat.npy", "text": "text_feat.npy"}


def read_inter(path: str | Path, bad: BadLines) -> pl.DataFrame:
    """The ``.inter`` rows: user, item (int), rating, timestamp, x_label, line."""
    path = Path(path)
    frame = read_delimited(
        path, select=SELECT, kinds=KINDS, bad=bad, sep="\t", header=True, optional=frozenset({"rating", "timestamp"}),
        what="MMRec .inter",
    )
    for column in ("user", "item", "x_label"):
        missing = frame.filter(pl.col(column).is_null())
        if missing.height:
            raise UserError(f"{path}:{missing['line'][0]}: missing value in column '{SELECT[column]}'")
    labels = frame.filter(~pl.col("x_label").is_in([0, 1, 2]))
    if labels.height:
        raise UserError(f"{path}:{labels['line'][0]}: x_label must be 0, 1 or 2 (train/valid/test), got {labels['x_label'][0]}")
    for column in ("user", "item"):
        _check_contiguous(path, frame[column], SELECT[column])
    duplicated = frame.filter(pl.struct("user", "item").is_duplicated())
    if duplicated.height:
        raise UserError(
            f"{path}:{duplicated['line'][1]}: repeated (userID, itemID) = ({duplicated['user'][0]}, {duplicated['item'][0]}); "
            "an MMRec .inter holds each pair once"
        )
    return frame.with_columns(
        pl.col("rating").fill_null(1.0), pl.col("timestamp").fill_null(0)
    )


def _check_contiguous(path: Path, ids: pl.Series, name: str) -> None:
    if ids.len() == 0:
        raise UserError(f"{path}: the file has no interactions")
    lo, hi, n = int(ids.min()), int(ids.max()), ids.n_unique()  # type: ignore[arg-type]
    if lo != 0 or hi != n - 1:
        raise UserError(
            f"{path}: column '{name}' must hold contiguous 0-based ids (MMRec's format); found {n} distinct ids in {lo}..{hi}"
        )


def read_id_map(inter_path: Path, file_name: str, id_column: str, n: int) -> pl.Series:
    """Raw ids for ids 0..n-1 from an MMRec mapping file next to the .inter, else the numbers as text."""
    path = inter_path.parent / file_name
    if not path.is_file():
        return pl.Series("raw", [str(i) for i in range(n)], dtype=pl.String)
    names = read_header(path, "\t", "utf-8")
    if id_column not in names or len(names) < 2:
        raise UserError(f"{path}: expected a tab-separated header with '{id_column}' and a raw-id column; columns found: {names}")
    raw_column = next(c for c in names if c != id_column)
    table = read_delimited(
        path, select={"raw": raw_column, "id": id_column}, kinds={"raw": "str", "id": "int"}, bad=BadLines("raise"),
        sep="\t", header=True, what="MMRec id map",
    ).unique(subset=["id"], keep="first", maintain_order=True)
    ids = pl.DataFrame({"id": np.arange(n, dtype=np.int64)}).join(table, on="id", how="left", maintain_order="left")
    if ids["raw"].null_count():
        missing = ids.filter(pl.col("raw").is_null())["id"][0]
        raise UserError(f"{path}: no raw id for {id_column} {missing} (expected one row for each id 0..{n - 1})")
    return ids["raw"]
