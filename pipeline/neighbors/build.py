"""Neighbour searches with their recall against exact float64 brute force on a seeded sample:
the neighbors stage's kNN lists per modality (:func:`build_knn`), and APFI's item groups and
candidate lists (:func:`build_candidates`, run by the graph stage, since they depend on xi).

Each returns tables (polars frames in the ``knn`` / ``candidates`` / ``item_groups`` schemas), a
report (reproducible: no timings), the committed fingerprint rows and the timings separately.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import polars as pl

from pipeline.log import get_logger
from pipeline.neighbors import exact
from pipeline.neighbors.candidates import fused_candidates, normalized_modalities
from pipeline.neighbors.groups import tail_mask, training_degree
from pipeline.neighbors.knn import NeighborLists, knn_lists
from pipeline.repro import fingerprint

log = get_logger(__name__)


@dataclass
class NeighborsResult:
    tables: dict[str, tuple[str, pl.DataFrame]] = field(default_factory=dict)  # file stem -> (schema kind, frame)
    report: dict[str, Any] = field(default_factory=dict)
    fingerprint: pl.DataFrame | None = None  # the committed "fingerprint" table (pipeline.repro)
    seconds: dict[str, float] = field(default_factory=dict)


def _fingerprint(lists: NeighborLists, part: str) -> pl.DataFrame:
    return fingerprint.ranked_lists(part, lists.item, lists.neighbor, lists.score, lists.cut_item, lists.cut_score)


def _frame(lists: NeighborLists) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "item": pl.Series(lists.item, dtype=pl.Int32),
            "neighbor": pl.Series(lists.neighbor, dtype=pl.Int32),
            "score": pl.Series(lists.score, dtype=pl.Float32),
            "rank": pl.Series(lists.rank, dtype=pl.Int16),
        }
    )


def _item_groups(degree: np.ndarray, tail: np.ndarray) -> tuple[str, pl.DataFrame]:
    n_items = len(degree)
    return (
        "item_groups",
        pl.DataFrame(
            {
                "item": pl.Series(np.arange(n_items), dtype=pl.Int32),
                "degree": pl.Series(degree, dtype=pl.Int32),
                "tail": pl.Series(tail, dtype=pl.Boolean),
            }
        ),
    )


def build_knn(
    vectors: Mapping[str, np.ndarray],
    *,
    k: int = 10,
    device: str = "cpu",
    block_size: int = 2048,
    recall_sample: int = 256,
    seed: int = 0,
) -> NeighborsResult:
    """The neighbors stage's work: each modality's item kNN lists (``vectors``: modality ->
    ``[n_items, d]``), with their recall against exact float64 search on a seeded sample."""
    res = NeighborsResult()
    if not vectors:  # a dataset without item features: no lists (the models that need them cannot train)
        log.warning("no item features: no kNN lists")
        res.report = {"modalities": [], "device": device, "k": k, "knn": {}}
        res.fingerprint = fingerprint.empty_fingerprint()
        return res
    normed, _ = normalized_modalities(vectors)
    n_items = len(next(iter(normed.values())))
    rows = exact.sample_rows(np.arange(n_items), recall_sample, seed)
    prints = []
    res.report = {"n_items": n_items, "modalities": sorted(vectors), "device": device, "k": k, "recall_sample": len(rows), "knn": {}}
    for m in sorted(vectors):
        t0 = time.perf_counter()
        lists, info = knn_lists(vectors[m], k, device=device, block_size=block_size, name=f"{m}.npy")
        res.seconds[f"knn_{m}"] = time.perf_counter() - t0
        res.tables[f"knn_{m}"] = ("knn", _frame(lists))
        prints.append(_fingerprint(lists, f"knn_{m}"))
        nonzero = np.linalg.norm(normed[m], axis=1) > 0
        ref_rows = rows[nonzero[rows]]
        ref = exact.exact_lists(exact.exact_scores({m: normed[m]}, ref_rows), ref_rows, nonzero, k)
        res.report["knn"][m] = {**info, "rows": len(lists.item), "recall_vs_exact": round(exact.recall(lists, ref_rows, ref), 6)}
    shorter = [info["k"] for info in res.report["knn"].values() if "k" in info]
    if shorter:  # the longest list any modality holds; "k_requested" only then, so other reports keep their bytes
        res.report.update(k=max(shorter) if len(shorter) == len(vectors) else k, k_requested=k)
    res.fingerprint = pl.concat(prints) if prints else fingerprint.empty_fingerprint()
    return res


def build_candidates(
    vectors: Mapping[str, np.ndarray],
    train_items: np.ndarray,
    *,
    n_candidates: int = 60,
    xi: float = 0.1,
    device: str = "cpu",
    block_size: int = 2048,
    recall_sample: int = 256,
    seed: int = 0,
) -> NeighborsResult:
    """APFI's candidate lists (part of the graph stage): the tail / popular split (eq. 15) by the
    training degree of ``train_items`` and, for every item, its most similar tail and least
    similar popular items by the fused similarity (eq. 16), with their recall against exact
    float64 search on a seeded sample."""
    res = NeighborsResult()
    normed, valid = normalized_modalities(vectors)
    n_items = len(valid)
    rows = exact.sample_rows(np.arange(n_items), recall_sample, seed)
    t0 = time.perf_counter()
    degree = training_degree(train_items, n_items)
    tail = tail_mask(degree, xi)  # eq. 15
    res.tables["item_groups"] = _item_groups(degree, tail)
    cands = fused_candidates(vectors, tail, n_candidates, device=device, block_size=block_size)
    res.seconds["candidates"] = time.perf_counter() - t0
    res.tables["tail_candidates"] = ("candidates", _frame(cands.tail))
    res.tables["popular_candidates"] = ("candidates", _frame(cands.popular))
    group_keys = (np.arange(n_items, dtype=np.int64) << 33) | (degree.astype(np.int64) << 1) | tail.astype(np.int64)
    res.fingerprint = pl.concat([_fingerprint(cands.tail, "tail_candidates"), _fingerprint(cands.popular, "popular_candidates"),
                                 fingerprint.exact_part("item_groups", group_keys)])

    ref_rows = rows[valid[rows]]
    scores = exact.exact_scores(normed, ref_rows)
    ref_tail = exact.exact_lists(scores, ref_rows, valid & tail, n_candidates, largest=True)
    ref_pop = exact.exact_lists(scores, ref_rows, valid & ~tail, n_candidates, largest=False)
    res.report = {
        "fused_similarity": " * ".join(f"cos_{m}" for m in sorted(vectors)),
        "candidates": n_candidates,
        "recall_sample": len(ref_rows),
        "xi": xi,
        "n_tail": int(tail.sum()),
        "n_popular": int(n_items - tail.sum()),
        "tail_max_degree": int(degree[tail].max()) if tail.any() else None,
        "popular_min_degree": int(degree[~tail].min()) if (~tail).any() else None,
        "items_without_training_interactions": int((degree == 0).sum()),
        "candidate_items_left_out_zero_vector": cands.items_left_out,
        "tail_candidates": {"rows": len(cands.tail.item), "recall_vs_exact": round(exact.recall(cands.tail, ref_rows, ref_tail), 6)},
        "popular_candidates": {"rows": len(cands.popular.item), "recall_vs_exact": round(exact.recall(cands.popular, ref_rows, ref_pop), 6)},
    }
    return res
