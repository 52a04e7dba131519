"""A dataset's split and feature matrices in MMRec's layout, so any MMRec model trains on exactly our split.

MMRec (``data/<name>/`` under its ``data_path``) reads ``<name>.inter`` -- tab-separated, header
``userID itemID rating timestamp x_label`` (0 = train, 1 = valid, 2 = test), ids contiguous from
0 -- and the item feature matrices ``image_feat.npy`` / ``text_feat.npy`` (row i = item i). Its
dataset config (``src/configs/dataset/<name>.yaml``) names the files. :func:`export_mmrec` writes:

- ``<name>.inter``: every interaction of ``interactions.parquet`` in its order, ids as they are;
- ``u_id_mapping.csv`` / ``i_id_mapping.csv``: raw id <-> id (``user_id userID`` / ``asin itemID``),
  as MMRec's preprocessing writes them;
- ``text_feat.npy`` / ``image_feat.npy``: the features stage's vectors, byte for byte (a dataset
  without a modality has no file for it);
- ``<name>.yaml``: the MMRec dataset config for these files.

Our importer (:mod:`pipeline.ingest.mmrec`, ``format: mmrec``) reads the folder back to the same
interactions, split and raw ids (tests/test_export.py checks the round trip).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from pipeline.atomic import staged_files
from pipeline.errors import UserError
from pipeline.features.mmrec import FILES as FEATURE_FILES
from pipeline.ingest.split import SPLIT_NAMES
from pipeline.log import get_logger
from pipeline.schemas import read_table

log = get_logger(__name__)

_BAD_ID_CHARS = ("\t", "\n", "\r", '"')


def _check_ids(path: Path, ids: pl.Series, what: str) -> None:
    """Raw ids go into tab-separated files unquoted: refuse the characters that would break them."""
    for ch in _BAD_ID_CHARS:
        bad = ids.filter(ids.str.contains(ch, literal=True))
        if bad.len():
            raise UserError(f"{path}: {what} {bad[0]!r} holds {ch!r}, which MMRec's tab-separated id maps cannot hold "
                            f"({bad.len()} such id(s))")


def _check_covered(path: Path, ids: pl.Series, n: int, what: str) -> None:
    """MMRec counts ids as max + 1 and our importer requires each to occur: every id must have an interaction."""
    seen = np.zeros(n, dtype=bool)
    seen[ids.to_numpy()] = True
    if not seen.all():
        missing = np.flatnonzero(~seen)
        raise UserError(f"{path}: {what} {missing[0]} has no interaction ({len(missing)} of {n} {what}s have none); "
                        "an MMRec .inter must hold every id 0..n-1")


def export_mmrec(ingest_dir: str | Path, features_dir: str | Path | None, out_dir: str | Path, name: str,
                 out_flag: str = "") -> dict[str, Any]:
    """Write ``name``'s MMRec folder (module docstring) into ``out_dir``, all files or none (a feature file
    of an earlier export the dataset no longer has is removed); returns what was written."""
    files = [f"{name}.inter", "u_id_mapping.csv", "i_id_mapping.csv", *FEATURE_FILES.values(), f"{name}.yaml"]
    with staged_files(out_dir, files, out_flag) as staging:
        done = _export_mmrec(Path(ingest_dir), features_dir, staging, name)
    done["inter"] = (Path(out_dir) / f"{name}.inter").as_posix()
    log.info("wrote %s: %s.inter with %d interactions (%s) of %d users and %d items, id maps, %s",
             out_dir, name, done["n_interactions"], ", ".join(f"{s} {n}" for s, n in done["splits"].items()), done["n_users"],
             done["n_items"], ", ".join(done["features"]) or "no feature matrix (the dataset has none)")
    return done


def _export_mmrec(ingest_dir: Path, features_dir: str | Path | None, out_dir: Path, name: str) -> dict[str, Any]:
    inter_path = ingest_dir / "interactions.parquet"
    inter = read_table(inter_path, "interactions")
    users = read_table(ingest_dir / "users.parquet", "users")
    items = read_table(ingest_dir / "items.parquet", "items", columns=["item", "asin"])
    _check_covered(inter_path, inter["user"], users.height, "user")
    _check_covered(inter_path, inter["item"], items.height, "item")
    _check_ids(ingest_dir / "users.parquet", users["user_id"], "user id")
    _check_ids(ingest_dir / "items.parquet", items["asin"], "item id")

    label = {s: i for i, s in enumerate(SPLIT_NAMES)}
    table = inter.select(
        pl.col("user").alias("userID"), pl.col("item").alias("itemID"), "rating", "timestamp",
        pl.col("split").replace_strict(label, return_dtype=pl.Int8).alias("x_label"),
    )
    table.write_csv(out_dir / f"{name}.inter", separator="\t")
    users.select(pl.col("user_id"), pl.col("user").alias("userID")).write_csv(out_dir / "u_id_mapping.csv", separator="\t")
    items.select(pl.col("asin"), pl.col("item").alias("itemID")).write_csv(out_dir / "i_id_mapping.csv", separator="\t")

    features: dict[str, dict[str, Any]] = {}
    vectors = Path(features_dir) / "vectors" if features_dir is not None else None
    for modality, file_name in FEATURE_FILES.items():
        src = vectors / f"{modality}.npy" if vectors is not None else None
        if src is None or not src.is_file():
            continue
        mat = np.load(src, mmap_mode="r", allow_pickle=False)
        if mat.ndim != 2 or mat.shape[0] != items.height:
            raise UserError(f"{src}: shape {tuple(mat.shape)}, expected one row per item ({items.height}, d)")
        shutil.copyfile(src, out_dir / file_name)
        features[file_name] = {"source": src.as_posix(), "dim": int(mat.shape[1]), "dtype": str(mat.dtype)}
    (out_dir / f"{name}.yaml").write_text(_dataset_config(name, features))
    counts = {s: int((inter["split"] == s).sum()) for s in SPLIT_NAMES}
    return {"inter": (out_dir / f"{name}.inter").as_posix(), "n_interactions": inter.height, "splits": counts,
            "n_users": users.height, "n_items": items.height, "features": features}


def _dataset_config(name: str, features: dict[str, Any]) -> str:
    lines = [
        f"# MMRec dataset config for {name} (copy to MMRec's src/configs/dataset/{name}.yaml; data_path = the",
        "# folder above this one). Written by `simgr export --format mmrec`: our split, x_label 0/1/2 = train/valid/test.",
        "USER_ID_FIELD: userID",
        "ITEM_ID_FIELD: itemID",
        "TIME_FIELD: timestamp",
        "filter_out_cod_start_users: True",
        f"inter_file_name: '{name}.inter'",
    ]
    if "image_feat.npy" in features:
        lines.append("vision_feature_file: 'image_feat.npy'")
    if "text_feat.npy" in features:
        lines.append("text_feature_file: 'text_feat.npy'")
    lines.append('field_separator: "\\t"')
    return "\n".join(lines) + "\n"
