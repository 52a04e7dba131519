"""Evaluating trained runs from their exported embeddings: what the evaluate stage does for each run.

For a run ``<model>-<seed>`` of a dataset: reads ``models/<ds>/<run>/{embeddings.pt, history.json}``
and writes ``metrics/<ds>/<run>.json`` (valid and test metrics, best epoch, protocol; no timings),
``eval/<ds>/<run>/recommendations.parquet`` (top max(K) of every test user) and
``eval/<ds>/<run>/user_metrics.parquet`` (per-user valid and test metrics). A skipped run
(:mod:`pipeline.skipped`) has no files to read: its metrics file says why it was skipped.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from pipeline.atomic import atomic_dir
from pipeline.errors import UserError
from pipeline.evaluation.outputs import load_embeddings, recommendations_frame, user_metrics_frame
from pipeline.evaluation.ranking import EvalSets, evaluate_splits
from pipeline.jsonio import read_json, write_json
from pipeline.log import get_logger
from pipeline.paths import eval_dir, metrics_file, model_dir, stage_dir
from pipeline.schemas import read_table, write_table
from pipeline.skipped import skipped

log = get_logger(__name__)


def load_sets(dataset: str) -> EvalSets:
    """Train/valid/test (user, item) pairs of a dataset's ingest outputs."""
    root = stage_dir(dataset, "ingest")
    inter = read_table(root / "interactions.parquet", "interactions", columns=["user", "item", "split"])
    n_users = read_table(root / "users.parquet", "users", columns=["user"]).height
    n_items = read_table(root / "items.parquet", "items", columns=["item"]).height
    pairs = {}
    for split in ("train", "valid", "test"):
        part = inter.filter(pl.col("split") == split)
        pairs[split] = (part["user"].to_numpy().astype(np.int64), part["item"].to_numpy().astype(np.int64))
    log.info("read %s: %d users, %d items, %d/%d/%d train/valid/test interactions", root, n_users, n_items,
             *(len(pairs[s][0]) for s in ("train", "valid", "test")))
    return EvalSets(n_users, n_items, pairs["train"], pairs["valid"], pairs["test"])


def _history(path) -> dict[str, Any]:
    hist = read_json(path)
    for key in ("best_epoch", "epochs"):
        if not isinstance(hist, dict) or not isinstance(hist.get(key), int):
            raise UserError(f"{path}: missing integer field '{key}' (written by the train stage)")
    return hist


def evaluate_run(dataset: str, model: str, seed: int, sets: EvalSets, protocol: str, ks: tuple[int, ...],
                 batch_size: int, device: str) -> dict[str, Any]:
    """Evaluate one run and write its metrics, recommendations and per-user metrics; return the metrics."""
    src = model_dir(dataset, model, seed)
    reason = skipped(src)
    if reason is not None:
        log.warning("%s-%s: skipped (%s)", model, seed, reason)
        metrics = {"skipped": reason, "protocol": protocol}
        write_json(metrics, metrics_file(dataset, model, seed))
        return metrics
    hist = _history(src / "history.json")
    user_emb, item_emb = load_embeddings(src / "embeddings.pt", sets.n_users, sets.n_items, device)
    res = evaluate_splits(user_emb, item_emb, sets, ("valid", "test"), ks, protocol, batch_size)  # one ranking under mmrec
    valid, test = res["valid"], res["test"]
    if not len(test.users):
        raise UserError(f"data/{dataset}/ingest/interactions.parquet: no test user has a training interaction; nothing to evaluate")
    recs, n_empty = recommendations_frame(test)
    out = eval_dir(dataset, model, seed)
    with atomic_dir(out) as staging:  # both files or neither, the old folder replaced as a whole
        write_table(recs, "recommendations", staging / "recommendations.parquet")
        write_table(user_metrics_frame([valid, test]), "user_metrics", staging / "user_metrics.parquet")
    metrics = {
        "test": test.mean,
        "valid": valid.mean,
        "best_epoch": hist["best_epoch"],
        "epochs": hist["epochs"],
        "max_validations": hist.get("max_validations"),
        "validations": hist.get("validations"),
        "valid_every": hist.get("valid_every"),
        "stop_reason": hist.get("stop_reason"),
        "protocol": protocol,
        "n_test_users": len(test.users),
        "n_valid_users": len(valid.users),
        "n_dropped_no_train": {"valid": valid.n_dropped_no_train, "test": test.n_dropped_no_train},
        "n_empty_ranks": n_empty,
    }
    write_json(metrics, metrics_file(dataset, model, seed))
    trainer_valid = (hist.get("valid") or {}).get("recall@20")
    if isinstance(trainer_valid, (int, float)) and "recall@20" in valid.mean and abs(trainer_valid - valid.mean["recall@20"]) > 1e-4:
        log.warning("%s-%s: valid recall@20 %.6f differs from the trainer's %.6f (protocol or data changed?)",
                    model, seed, valid.mean["recall@20"], trainer_valid)
    log.info("%s-%s: test recall@20 %.4f ndcg@20 %.4f over %d users (%d empty ranks); wrote %s, %s",
             model, seed, test.mean.get("recall@20", float("nan")), test.mean.get("ndcg@20", float("nan")),
             len(test.users), n_empty, out, metrics_file(dataset, model, seed))
    return metrics


