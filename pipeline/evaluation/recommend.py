"""Top-K recommendations of one raw user id from a trained run, with item titles (``simgr recommend``)."""

from __future__ import annotations

import html
import re
from pathlib import Path

import numpy as np
import polars as pl

from pipeline.errors import UserError
from pipeline.evaluation.outputs import load_embeddings
from pipeline.evaluation.ranking import EvalSets, top_items
from pipeline.schemas import read_table


_TAG = re.compile(r"<[^>]*>?")


def display_title(title: str | None, asin: str) -> str:
    """The title without HTML tags, entities or line breaks; the asin when nothing is left."""
    text = " ".join(_TAG.sub(" ", html.unescape(title or "")).split())
    return text or asin


def recommend_user(ingest_dir: str | Path, run_dir: str | Path, user_id: str, k: int = 20) -> tuple[int, pl.DataFrame]:
    """The internal id of raw ``user_id`` and its top ``k`` items, training items excluded.

    Columns: rank (1 = best), item, asin, title (:func:`display_title`), brand ("" if unknown), score, held_out
    ("valid"/"test" when the item is one of the user's held-out interactions, else "").
    """
    if k < 1:
        raise UserError(f"-k: expected a positive number of items, got {k}")
    ingest_dir, run_dir = Path(ingest_dir), Path(run_dir)
    users = read_table(ingest_dir / "users.parquet", "users")
    match = users.filter(pl.col("user_id") == user_id)
    if match.height == 0:
        examples = ", ".join(repr(u) for u in users["user_id"].head(3).to_list())
        raise UserError(f"{ingest_dir / 'users.parquet'}: unknown user '{user_id}' (not among the {users.height} users of this dataset, "
                        f"e.g. {examples}: the raw user ids of the reviews file, column user_id of this table)")
    user = int(match["user"][0])
    items = read_table(ingest_dir / "items.parquet", "items")
    inter = read_table(ingest_dir / "interactions.parquet", "interactions", columns=["user", "item", "split"])
    mine = inter.filter(pl.col("user") == user)
    pairs = {
        s: (mine.filter(pl.col("split") == s)["user"].to_numpy().astype(np.int64), mine.filter(pl.col("split") == s)["item"].to_numpy().astype(np.int64))
        for s in ("train", "valid", "test")
    }
    sets = EvalSets(users.height, items.height, pairs["train"], pairs["valid"], pairs["test"])
    user_emb, item_emb = load_embeddings(run_dir / "embeddings.pt", users.height, items.height)
    top, scores = top_items(user_emb, item_emb, sets, [user], k, exclude=("train",))
    keep = top[0] >= 0
    picked = items[top[0][keep].tolist()]
    titles = picked["title"].to_list() if "title" in picked.columns else [None] * picked.height
    held = dict(zip(mine["item"].to_list(), mine["split"].to_list()))
    frame = pl.DataFrame(
        {
            "rank": np.arange(1, int(keep.sum()) + 1, dtype=np.int32),
            "item": picked["item"],
            "asin": picked["asin"],
            "title": [display_title(t, a) for t, a in zip(titles, picked["asin"].to_list())],
            "brand": [b or "" for b in (picked["brand"].to_list() if "brand" in picked.columns else [None] * picked.height)],
            "score": scores[0][keep],
            "held_out": [held.get(i, "") if held.get(i) != "train" else "" for i in picked["item"].to_list()],
        }
    )
    return user, frame
