"""Stage `evaluate`: full-ranking metrics of every trained run of a dataset, from its embeddings.

For each run ``<model>-<seed>`` in params ``run`` (models_cf + models_mm + models_signed x seeds):
reads ``models/<ds>/<run>/{embeddings.pt, history.json}`` and writes
``metrics/<ds>/<run>.json`` (valid and test metrics, best epoch, protocol; no timings),
``eval/<ds>/<run>/recommendations.parquet`` (top max(K) of every test user) and
``eval/<ds>/<run>/user_metrics.parquet`` (per-user valid and test metrics).

Usage: python -m stages.evaluate <dataset> [--runs model-seed,...]

``--runs`` evaluates only the named runs (the reproducibility check uses it for the training
runs it retrains); the other runs' files are left as they are.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from pipeline.errors import UserError
from pipeline.evaluation.outputs import load_embeddings, recommendations_frame, user_metrics_frame
from pipeline.evaluation.ranking import PROTOCOLS, EvalSets, evaluate_splits
from pipeline.device import resolve_device
from pipeline.log import get_logger
from pipeline.params import get, load_params, read_json, write_json
from pipeline.paths import eval_dir, metrics_file, model_dir, stage_dir
from pipeline.schemas import read_table, write_table
from stages._main import run_stage

log = get_logger(__name__)

#: the training groups of dvc.yaml, by what their models read (params run.models_<group>)
RUN_GROUPS = ("models_cf", "models_mm", "models_sga", "models_pst", "models_apfi", "models_signed")


def run_list(params: dict[str, Any]) -> list[tuple[str, int]]:
    """(model, seed) of every run, in params order: the run.models_* groups (RUN_GROUPS), then seeds."""
    models = [m for key in RUN_GROUPS for m in (get(params, f"run.{key}", None) or [])]
    return [(m, int(s)) for m in models for s in get(params, "run.seeds")]


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


def _settings(params: dict[str, Any]) -> tuple[str, tuple[int, ...], int, str]:
    protocol = get(params, "evaluate.protocol")
    if protocol not in PROTOCOLS:
        raise UserError(f"params.yaml evaluate.protocol: expected one of {list(PROTOCOLS)}, got {protocol!r}")
    ks = get(params, "evaluate.topk")
    if not isinstance(ks, list) or not ks or not all(isinstance(k, int) and k >= 1 for k in ks):
        raise UserError(f"params.yaml evaluate.topk: expected a list of positive integers, got {ks!r}")
    batch_size = get(params, "evaluate.batch_size", 4096)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise UserError(f"params.yaml evaluate.batch_size: expected a positive integer, got {batch_size!r}")
    device = resolve_device(get(params, "evaluate.device", "auto"), "evaluate.device")
    return protocol, tuple(sorted(set(ks))), batch_size, device


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
    hist = _history(src / "history.json")
    user_emb, item_emb = load_embeddings(src / "embeddings.pt", sets.n_users, sets.n_items, device)
    res = evaluate_splits(user_emb, item_emb, sets, ("valid", "test"), ks, protocol, batch_size)  # one ranking under mmrec
    valid, test = res["valid"], res["test"]
    if not len(test.users):
        raise UserError(f"data/{dataset}/ingest/interactions.parquet: no test user has a training interaction; nothing to evaluate")
    recs, n_empty = recommendations_frame(test)
    out = eval_dir(dataset, model, seed)
    write_table(recs, "recommendations", out / "recommendations.parquet")
    write_table(user_metrics_frame([valid, test]), "user_metrics", out / "user_metrics.parquet")
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


def main(dataset: str, *flags: str) -> None:
    params = load_params()
    protocol, ks, batch_size, device = _settings(params)
    runs = run_list(params)
    if flags:
        if len(flags) != 2 or flags[0] != "--runs":
            raise UserError(f"evaluate: expected at most '--runs model-seed,...', got {' '.join(flags)!r}")
        wanted = [r for r in flags[1].split(",") if r]
        known = {f"{m}-{s}": (m, s) for m, s in runs}
        unknown = [r for r in wanted if r not in known]
        if unknown:
            raise UserError(f"evaluate --runs: {unknown} are not runs of params.yaml 'run' (model-seed, e.g. {next(iter(known), 'mf-1')})")
        runs = [known[r] for r in wanted]
    missing = [str(model_dir(dataset, m, s)) for m, s in runs if not model_dir(dataset, m, s).is_dir()]
    if missing:
        raise UserError(f"{missing[0]}: run directory not found ({len(missing)} of {len(runs)} runs missing; train them first)")
    sets = load_sets(dataset)
    log.info("evaluating %d run(s) of %s on %s, protocol %s, K %s", len(runs), dataset, device, protocol, list(ks))
    for model, seed in runs:
        evaluate_run(dataset, model, seed, sets, protocol, ks, batch_size, device)


if __name__ == "__main__":
    run_stage(main)
