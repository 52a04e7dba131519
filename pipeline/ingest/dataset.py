"""Raw files -> ``interactions/users/items.parquet`` + ``stats.json``: what the ingest stage and
``simgr ingest`` both run.

read -> clean -> k-core -> re-index -> split -> join metadata -> write. A ``source`` is one
``datasets.<name>`` entry of ``params.yaml`` (``format``, ``reviews``, optional ``meta``,
``images``, ``image_dim`` and the generic reader's keys); ``format: auto`` (or none) detects it
from the content. MMRec ``.inter`` files skip cleaning, k-core, re-indexing and splitting: their
ids and split are kept exactly.

The four files are written together or not at all (:func:`pipeline.atomic.staged_files`): a
failure leaves ``out_dir`` as it was, and its message says when the folder still holds an earlier
run's outputs. Counted changes besides the drops: timestamps converted to seconds
(:func:`pipeline.ingest.split.timestamps_in_seconds`), in ``stats.json: timestamps`` when there are any.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import polars as pl

from pipeline.atomic import staged_files
from pipeline.errors import UserError
from pipeline.ingest import amazon2014, amazon2018, generic, image_files, jsonlines, mmrec
from pipeline.ingest.clean import dedupe_meta, drop_invalid, latest_per_pair
from pipeline.ingest.detect import FORMATS, detect_source, is_json_lines
from pipeline.ingest.image_features import DEFAULT_DIM, iter_asins
from pipeline.ingest.kcore import kcore
from pipeline.ingest.records import BadLines
from pipeline.ingest.reindex import compact, first_seen_ids
from pipeline.ingest.split import SPLIT_NAMES, split_codes, timestamps_in_seconds
from pipeline.ingest.textio import require_file
from pipeline.jsonio import write_json
from pipeline.log import get_logger
from pipeline.schemas import write_table
from pipeline.settings.sections import Ingest

log = get_logger(__name__)

OUTPUTS = ("interactions.parquet", "users.parquet", "items.parquet", "stats.json")
TEXT_FIELDS = ("title", "brand", "categories", "description")


def resolve_source(source: dict[str, Any]) -> dict[str, Any]:
    """``source`` with its ``format`` filled in (detected from content when missing or ``auto``)."""
    if not source.get("reviews"):
        raise UserError("no interactions file given (datasets.<name>.reviews / --reviews)")
    fmt = source.get("format") or "auto"
    if fmt == "auto":
        return {**source, **detect_source(source["reviews"], source.get("meta"))}
    if fmt not in FORMATS:
        raise UserError(f"unknown format {fmt!r}; expected one of {['auto', *FORMATS]}")
    return dict(source)


def read_raw(source: dict[str, Any], bad: BadLines) -> pl.DataFrame:
    """The raw interaction frame of an Amazon or generic source."""
    fmt, reviews = source["format"], Path(source["reviews"])
    if fmt == "generic":
        if not generic.is_parquet(require_file(reviews, "interactions")):
            return generic.read_interactions(source, bad)
        try:
            return generic.read_interactions(source, bad)
        except pl.exceptions.PolarsError as exc:  # truncated, or not parquet after all
            raise UserError(f"{reviews}: not a readable parquet file ({exc.__class__.__name__}: {str(exc).splitlines()[0]})") from None
    if fmt == "amazon2014" and not is_json_lines(require_file(reviews, "reviews")):
        return amazon2014.read_ratings_csv(reviews, bad)
    return (amazon2014 if fmt == "amazon2014" else amazon2018).read_reviews(reviews, bad)


def read_metadata(source: dict[str, Any], wanted: set[str], bad: BadLines) -> tuple[pl.DataFrame | None, dict[str, int]]:
    """De-duplicated metadata rows for the ``wanted`` asins (None without a metadata file)."""
    fmt = source["format"]
    if fmt == "generic" and source.get("items"):
        meta, skipped = generic.read_items(source, bad), 0
        rows = meta.height
        meta = meta.filter(pl.col("asin").is_in(list(wanted)))
        skipped = rows - meta.height
    elif source.get("meta"):
        reader = {"amazon2018": amazon2018.read_meta, "amazon2014": amazon2014.read_meta}.get(fmt)
        if reader is None:  # MMRec / generic with an Amazon metadata file: either flavour parses
            meta, skipped = jsonlines.read_meta(source["meta"], jsonlines.parse_literal, bad, "categories", wanted)
        else:
            meta, skipped = reader(source["meta"], bad, wanted)
    else:
        return None, {}
    kept, duplicates = dedupe_meta(meta)
    return kept, {"rows": meta.height, "duplicate_meta": duplicates, "rows_for_other_items": skipped}


def items_table(asins: pl.Series, meta: pl.DataFrame | None) -> pl.DataFrame:
    """``items.parquet``: item id, asin and the text fields found in the metadata."""
    items = pl.DataFrame({"item": np.arange(asins.len(), dtype=np.int32), "asin": asins.cast(pl.String)})
    if meta is None:
        return items
    fields = [f for f in TEXT_FIELDS if meta[f].null_count() < meta.height]
    return items.join(meta.select("asin", *fields), on="asin", how="left", maintain_order="left")


def image_coverage(source: dict[str, Any], asins: pl.Series) -> int | None:
    """How many items have a record in the ``.b`` image file, or a file in the images folder
    (None without ``images``); a ``.b`` file that matches no item is a UserError (the features
    stage could build nothing from it)."""
    kind = image_files.images_kind(source)
    if kind is None:
        return None
    image_files.check_images_path(source, "images", must_exist=kind == "folder")
    if kind == "folder":
        found = image_files.match_image_files(source["images"], asins.to_list(), source.get("images_pattern"))
        log.info("images: %d of %d items have a file in %s (%s)", len(found.files), asins.len(), source["images"],
                 ", ".join(f"{k} {v}" for k, v in found.counts().items()))
        return len(found.files)
    path = require_file(source["images"], "image feature")
    wanted = set(asins.to_list())
    records = set(iter_asins(path, int(source.get("image_dim") or DEFAULT_DIM)))
    matched = len(wanted & records)
    if matched == 0 and wanted:
        raise UserError(
            f"{path}: none of its {len(records)} ASINs matches an item of the dataset (e.g. item {asins[0]!r}, "
            f"record {next(iter(sorted(records)), 'none')!r}); is it the image file of another category?"
        )
    log.info("images: %d of %d items have a record in %s", matched, len(wanted), path)
    return matched


def _require_rows(frame: pl.DataFrame, source: dict[str, Any], bad: BadLines, what: str) -> None:
    """A UserError when ``frame`` is empty: nothing was read, or nothing survived cleaning."""
    if frame.height:
        return
    skipped = bad.as_dict()
    raise UserError(f"{source['reviews']} (format {source['format']}): {what}" + (f"; bad lines skipped: {skipped}" if skipped else ""))


def _histogram(ratings: pl.Series) -> dict[str, int]:
    counts = ratings.value_counts().sort(ratings.name)
    return {f"{float(r):g}": int(c) for r, c in counts.iter_rows()}


def build_stats(
    inter: pl.DataFrame, items: pl.DataFrame, n_users: int, *, fmt: str, cfg: Ingest, rows_read: int,
    dropped: dict[str, int], rounds: list[dict[str, int]] | None, meta_counts: dict[str, int], with_image: int | None,
    converted: dict[str, int] | None = None,
) -> dict[str, Any]:
    """The ``stats.json`` of an ingested dataset (a committed output)."""
    n_items, n = items.height, inter.height
    splits = {name: int((inter["split"] == name).sum()) for name in SPLIT_NAMES}
    with_meta = {f"with_{f}": int(items[f].is_not_null().sum()) for f in TEXT_FIELDS if f in items.columns}
    return {
        "format": fmt,
        "n_users": n_users,
        "n_items": n_items,
        "n_interactions": n,
        "density": n / (n_users * n_items) if n_users and n_items else 0.0,
        "rating_histogram": _histogram(inter["rating"]),
        "splits": splits,
        "split": {"method": "given" if fmt == "mmrec" else cfg.split, "seed": cfg.seed if cfg.split == "random" else None},
        "rows_read": rows_read,
        "dropped": dict(dropped),
        **({"timestamps": {"converted_to_seconds": dict(converted)}} if converted else {}),
        "kcore": {
            "k": None if rounds is None else cfg.kcore,
            "rounds": {f"round_{r['round']}": {k: v for k, v in r.items() if k != "round"} for r in rounds or []},
        },
        "items": {**with_meta, "without_meta": meta_counts.get("without_meta", n_items), "with_image": with_image},
        "meta": {k: v for k, v in meta_counts.items() if k != "without_meta"},
    }


def _write(out_dir: Path, inter: pl.DataFrame, users: pl.DataFrame, items: pl.DataFrame, stats: dict) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    write_table(inter, "interactions", out_dir / "interactions.parquet")
    write_table(users, "users", out_dir / "users.parquet")
    write_table(items, "items", out_dir / "items.parquet")
    write_json(stats, out_dir / "stats.json")


def _meta_and_items(source: dict, asins: pl.Series, on_error: str) -> tuple[pl.DataFrame, dict[str, int]]:
    bad = BadLines(on_error)
    meta, counts = read_metadata(source, set(asins.to_list()), bad)
    counts.update({f"bad_line_{k}": v for k, v in bad.as_dict().items()})
    items = items_table(asins, meta)
    counts["without_meta"] = asins.len() - (0 if meta is None else int(asins.is_in(meta["asin"].implode()).sum()))
    return items, counts


def _interactions(user: np.ndarray, item: np.ndarray, frame: pl.DataFrame, split: np.ndarray) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "user": user.astype(np.int32),
            "item": item.astype(np.int32),
            "rating": frame["rating"].cast(pl.Float32),
            "timestamp": frame["timestamp"].cast(pl.Int64),
            "split": pl.Series(np.asarray(SPLIT_NAMES, dtype=object)[split], dtype=pl.String),
        }
    ).sort(["user", "item"])


def ingest_mmrec(source: dict[str, Any], cfg: Ingest, out_dir: Path, bad: BadLines) -> dict[str, Any]:
    """Import an MMRec ``.inter`` keeping its ids and split."""
    path = Path(source["reviews"])
    frame = mmrec.read_inter(path, bad)
    _require_rows(frame, source, bad, "no interactions read (is the file empty?)")
    n_users, n_items = int(frame["user"].max()) + 1, int(frame["item"].max()) + 1
    inter = _interactions(frame["user"].to_numpy(), frame["item"].to_numpy(), frame, frame["x_label"].to_numpy())
    users = pl.DataFrame({"user": np.arange(n_users, dtype=np.int32), "user_id": mmrec.read_id_map(path, "u_id_mapping.csv", "userID", n_users)})
    asins = mmrec.read_id_map(path, "i_id_mapping.csv", "itemID", n_items)
    items, meta_counts = _meta_and_items(source, asins, cfg.on_error)
    stats = build_stats(
        inter, items, n_users, fmt="mmrec", cfg=cfg, rows_read=frame.height, dropped={f"bad_line_{k}": v for k, v in bad.as_dict().items()}, rounds=None,
        meta_counts=meta_counts, with_image=image_coverage(source, asins),
    )
    _write(out_dir, inter, users, items, stats)
    return stats


def ingest(source: dict[str, Any], cfg: Ingest, out_dir: str | Path, name: str = "dataset", *,
           label: Callable[[str], str] = lambda key: f"params.yaml: ingest.{key}", out_flag: str = "") -> dict[str, Any]:
    """Ingest one source into ``out_dir`` (all four files, or none); returns the stats written to ``stats.json``.
    ``label`` names an ``ingest`` setting in messages (``--split`` for the command line), ``out_flag``
    the output folder (``--out``)."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"{out_dir}: exists and is not a folder (the ingest outputs are four files in a folder)")
    with staged_files(out_dir, OUTPUTS, out_flag) as staging:
        stats = _ingest(source, cfg, staging, name, label)
    log.info(
        "wrote %s: %d users, %d items, %d interactions (%s)",
        out_dir, stats["n_users"], stats["n_items"], stats["n_interactions"],
        ", ".join(f"{k} {v}" for k, v in stats["splits"].items()),
    )
    return stats


def _timestamps(frame: pl.DataFrame, source: dict[str, Any], cfg: Ingest, label: Callable[[str], str]) -> tuple[pl.DataFrame, dict[str, int]]:
    """The frame's timestamps in one unit (counted conversions), and a temporal split refused when
    they cannot order anything (no timestamp column, or all equal)."""
    ts, converted = timestamps_in_seconds(frame["timestamp"].to_numpy())
    if converted:
        log.warning("%s: timestamps mix units: %s converted to seconds (stats.json: timestamps)", source["reviews"],
                    ", ".join(f"{n} in {unit}" for unit, n in converted.items()))
        frame = frame.with_columns(pl.Series("timestamp", ts, dtype=pl.Int64))
    if cfg.split == "temporal" and frame.height and int(frame["timestamp"].n_unique()) == 1:
        value = int(frame["timestamp"][0])
        what = "has no timestamp column (every timestamp reads as 0)" if value == 0 else f"has one timestamp, {value}, on all {frame.height} rows"
        raise UserError(f"{label('split')}: temporal orders the interactions by time, but {source['reviews']} {what}; "
                        "split randomly instead, or say which column holds the timestamps: datasets.<name>.fields, or simgr ingest --columns "
                        "user,item,rating,timestamp")
    return frame, converted


def _ingest(source: dict[str, Any], cfg: Ingest, out_dir: Path, name: str, label: Callable[[str], str]) -> dict[str, Any]:
    source = resolve_source(source)
    bad = BadLines(cfg.on_error)
    if source["format"] == "mmrec":
        return ingest_mmrec(source, cfg, out_dir, bad)
    raw = read_raw(source, bad)
    _require_rows(raw, source, bad, "no interactions read (is the file empty, or of another format?)")
    rows_read = raw.height
    frame, dropped = drop_invalid(raw, cfg.rating_min, cfg.rating_max)
    del raw
    _require_rows(frame, source, bad, f"none of the {rows_read} rows is a valid interaction (dropped: "
                  f"{ {k: v for k, v in dropped.items() if v} }; ratings must lie in [{cfg.rating_min}, {cfg.rating_max}])")
    frame, converted = _timestamps(frame, source, cfg, label)
    user_codes, user_ids = first_seen_ids(frame["user"])
    item_codes, asins = first_seen_ids(frame["item"])
    frame = frame.select("rating", "timestamp")
    unique = latest_per_pair(user_codes, item_codes, frame["timestamp"].to_numpy())
    dropped["duplicate_pair"] = int((~unique).sum())
    log.info("cleaning kept %d of %d rows; dropped %s", int(unique.sum()), rows_read, {k: v for k, v in dropped.items() if v})
    core = kcore(user_codes[unique], item_codes[unique], cfg.kcore, source=f"{name} ({source['reviews']})")
    keep = np.flatnonzero(unique)[core.keep]
    dropped["kcore"] = int((~core.keep).sum())
    log.info("%d-core kept %d interactions after %d round(s)", cfg.kcore, keep.size, len(core.rounds))
    user, user_old = compact(user_codes[keep])
    item, item_old = compact(item_codes[keep])
    frame = frame[keep]
    split = split_codes(cfg.split, user, item, frame["timestamp"].to_numpy(), cfg.seed)
    inter = _interactions(user, item, frame, split)
    users = pl.DataFrame({"user": np.arange(user_old.size, dtype=np.int32), "user_id": user_ids.gather(user_old)})
    asins = asins.gather(item_old)
    all_dropped = {**{f"bad_line_{k}": v for k, v in bad.as_dict().items()}, **dropped}
    items, meta_counts = _meta_and_items(source, asins, cfg.on_error)
    stats = build_stats(
        inter, items, users.height, fmt=source["format"], cfg=cfg, rows_read=rows_read, dropped=all_dropped,
        rounds=core.rounds, meta_counts=meta_counts, with_image=image_coverage(source, asins), converted=converted,
    )
    _write(out_dir, inter, users, items, stats)
    return stats
