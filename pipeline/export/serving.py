"""Batch recommendations, final embeddings and a FAISS index of one trained run, to serve it elsewhere.

Every model scores a (user, item) pair by the inner product of its final embeddings
(``embeddings.pt``), so a run is served by: the user's embedding, an inner-product index over the
item embeddings, and the items to leave out (those the user already has). :func:`export_run`
writes, into one folder:

``recommendations.parquet``  (schema ``export_recommendations``)
    the top ``k`` of every user, with raw ids: user, user_id, rank (1 = best), item, item_id, score.
    Computed with the evaluation's own ranking (:func:`pipeline.evaluation.ranking.top_items`:
    masked items never listed, ties ordered by item id).
``user_embeddings.npy``, ``item_embeddings.npy``
    float32 ``[n_users, d]`` / ``[n_items, d]``; row i is internal id i (``users.parquet`` /
    ``items.parquet`` map it to the raw id).
``items.faiss``
    ``faiss.IndexFlatIP`` over the item embeddings (exact inner product; ``faiss.read_index``).
``users.parquet``, ``items.parquet``
    internal id -> raw id (and title where the dataset has one); schemas ``users`` / ``items``.
``manifest.json``
    what was exported: run, sizes, ``k``, the masked splits, file list, how to query.

Querying the index for a user: :func:`index_top_k` searches ``k`` plus as many items as the user
has masked, drops the masked ones and orders ties by item id -- the same top ``k`` as
``recommendations.parquet`` wherever the scores are not tied at the k-th place (FAISS and torch
may round an inner product differently in the last bit, which only matters at such near-ties).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import polars as pl

from pipeline.atomic import staged_files
from pipeline.errors import UserError
from pipeline.evaluation.outputs import load_embeddings
from pipeline.evaluation.ranking import EvalSets, top_items
from pipeline.log import get_logger, progress
from pipeline.jsonio import write_json
from pipeline.schemas import read_table, write_table

log = get_logger(__name__)

SPLITS = ("train", "valid", "test")
#: masked by default: everything the user is known to have (a served user is not re-shown them)
DEFAULT_EXCLUDE = SPLITS
INDEX_FILE = "items.faiss"
#: every file an export writes (manifest.json's "files" and the manifest itself)
FILES = ("recommendations.parquet", "user_embeddings.npy", "item_embeddings.npy", INDEX_FILE, "users.parquet", "items.parquet",
         "manifest.json")


def load_interactions(ingest_dir: str | Path) -> tuple[pl.DataFrame, pl.DataFrame, EvalSets]:
    """``users``, ``items`` tables and the train/valid/test pairs of an ingest folder."""
    ingest_dir = Path(ingest_dir)
    users = read_table(ingest_dir / "users.parquet", "users")
    items = read_table(ingest_dir / "items.parquet", "items")
    inter = read_table(ingest_dir / "interactions.parquet", "interactions", columns=["user", "item", "split"])
    pairs = {}
    for split in SPLITS:
        part = inter.filter(pl.col("split") == split)
        pairs[split] = (part["user"].to_numpy().astype(np.int64), part["item"].to_numpy().astype(np.int64))
    return users, items, EvalSets(users.height, items.height, pairs["train"], pairs["valid"], pairs["test"])


def excluded_items(sets: EvalSets, users: np.ndarray, exclude: Sequence[str]) -> list[np.ndarray]:
    """The masked items of each of ``users`` (union over the ``exclude`` splits), sorted."""
    out = []
    for u in users:
        parts = [sets.csr(s).indices[sets.csr(s).indptr[u]:sets.csr(s).indptr[u + 1]] for s in exclude]
        out.append(np.unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64))
    return out


def check_exclude(exclude: Sequence[str]) -> tuple[str, ...]:
    bad = [s for s in exclude if s not in SPLITS]
    if bad:
        raise UserError(f"--exclude: expected splits among {list(SPLITS)}, got {bad}")
    return tuple(dict.fromkeys(exclude))


def export_run(ingest_dir: str | Path, run_dir: str | Path, out_dir: str | Path, *, k: int = 20,
               exclude: Sequence[str] = DEFAULT_EXCLUDE, batch_size: int = 4096, run: str | None = None,
               out_flag: str = "") -> dict[str, Any]:
    """Write the serving files of one run (module docstring) into ``out_dir``, all of them or none
    (:func:`pipeline.atomic.staged_files`; ``out_flag`` names the folder's option in messages); returns the manifest."""
    if not 1 <= k <= np.iinfo(np.int16).max:
        raise UserError(f"-k: expected a number of recommendations in 1..{np.iinfo(np.int16).max}, got {k}")
    exclude = check_exclude(exclude)
    with staged_files(out_dir, FILES, out_flag) as staging:
        manifest = _export_run(ingest_dir, run_dir, staging, k=k, exclude=exclude, batch_size=batch_size, run=run)
    log.info("wrote %s: %d recommendations (top %d of %d users, %s masked, %d empty ranks), embeddings, %s",
             out_dir, manifest["n_recommendations"], k, manifest["n_users"], "+".join(exclude) or "nothing",
             manifest["n_empty_ranks"], INDEX_FILE)
    return manifest


def _export_run(ingest_dir: str | Path, run_dir: str | Path, out_dir: Path, *, k: int, exclude: tuple[str, ...], batch_size: int,
                run: str | None) -> dict[str, Any]:
    import faiss

    run_dir = Path(run_dir)
    users, items, sets = load_interactions(ingest_dir)
    user_emb, item_emb = load_embeddings(run_dir / "embeddings.pt", users.height, items.height)
    log.info("read %s and %s: %d users, %d items, embeddings of width %d", ingest_dir, run_dir / "embeddings.pt",
             users.height, items.height, user_emb.shape[1])

    frames, n_empty = [], 0
    all_users = np.arange(users.height, dtype=np.int64)
    for start in progress(range(0, users.height, batch_size), desc="recommend"):
        batch = all_users[start:start + batch_size]
        top, scores = top_items(user_emb, item_emb, sets, batch, k, exclude=exclude)
        keep = top >= 0
        n_empty += int((~keep).sum())
        frames.append(pl.DataFrame({
            "user": np.repeat(batch, k)[keep.ravel()].astype(np.int32),
            "rank": np.tile(np.arange(1, k + 1, dtype=np.int16), len(batch))[keep.ravel()],
            "item": top[keep].astype(np.int32),
            "score": scores[keep].astype(np.float32),
        }))
    recs = pl.concat(frames) if frames else pl.DataFrame(schema={"user": pl.Int32, "rank": pl.Int16, "item": pl.Int32, "score": pl.Float32})
    recs = (recs.join(users, on="user", how="left", maintain_order="left")
                .join(items.select("item", pl.col("asin").alias("item_id")), on="item", how="left", maintain_order="left"))
    write_table(recs, "export_recommendations", out_dir / "recommendations.parquet")

    user_np = np.ascontiguousarray(user_emb.numpy(), dtype=np.float32)
    item_np = np.ascontiguousarray(item_emb.numpy(), dtype=np.float32)
    np.save(out_dir / "user_embeddings.npy", user_np)
    np.save(out_dir / "item_embeddings.npy", item_np)
    index = faiss.IndexFlatIP(item_np.shape[1])
    index.add(item_np)
    faiss.write_index(index, str(out_dir / INDEX_FILE))
    write_table(users, "users", out_dir / "users.parquet")
    write_table(items.select([c for c in ("item", "asin", "title") if c in items.columns]), "items", out_dir / "items.parquet")

    manifest = {
        "run": run or run_dir.as_posix(),
        "n_users": users.height,
        "n_items": items.height,
        "dim": int(item_np.shape[1]),
        "k": k,
        "excluded": list(exclude),
        "n_recommendations": recs.height,
        "n_empty_ranks": n_empty,
        "score": "inner product of the user's and the item's final embedding (the model's own score)",
        "files": {
            "recommendations.parquet": "user, user_id, rank (1 = best), item, item_id, score: the top k of every user, excluded splits masked",
            "user_embeddings.npy": "float32 [n_users, dim], row = internal user id",
            "item_embeddings.npy": "float32 [n_items, dim], row = internal item id",
            INDEX_FILE: "faiss.IndexFlatIP over item_embeddings.npy (ids = internal item ids)",
            "users.parquet": "user (internal id), user_id (raw id)",
            "items.parquet": "item (internal id), asin (raw id), title where known",
        },
        "query": "index = faiss.read_index('items.faiss'); D, I = index.search(user_embeddings[[u]], k + len(items_to_skip)); "
                 "drop items_to_skip from I (pipeline.export.serving.index_top_k does this and orders ties by item id)",
    }
    write_json(manifest, out_dir / "manifest.json")
    return manifest


def index_top_k(index: Any, queries: np.ndarray, excluded: Sequence[np.ndarray], k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` (items, scores) of each query row from a FAISS inner-product index, ``excluded[r]`` left out.

    Searches ``k`` plus the largest number of excluded items, so at least ``k`` rankable items come
    back for every row; within them, orders by score (descending), then item id. Ranks past the
    rankable items hold item -1 and score -inf (as :func:`pipeline.evaluation.ranking.top_items`).
    """
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    if queries.ndim != 2 or len(queries) != len(excluded):
        raise ValueError(f"queries must be [n, d] with one excluded list per row; got {queries.shape} and {len(excluded)}")
    n_fetch = min(index.ntotal, k + max((len(e) for e in excluded), default=0))
    scores, ids = index.search(queries, n_fetch)
    out_items = np.full((len(queries), k), -1, dtype=np.int64)
    out_scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
    for r in range(len(queries)):
        keep = (ids[r] >= 0) & ~np.isin(ids[r], excluded[r])
        row_ids, row_scores = ids[r][keep], scores[r][keep]
        order = np.lexsort((row_ids, -row_scores))[:k]
        out_items[r, :len(order)], out_scores[r, :len(order)] = row_ids[order], row_scores[order]
    return out_items, out_scores
