"""Exact float64 brute force on a sample of query items: the reference the stage's recall is
measured against (kNN and APFI candidates), computed in column chunks so no float64 copy of a
whole feature matrix is held.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from pipeline.neighbors.knn import NeighborLists

_CHUNK = 4096


def exact_scores(normed: Mapping[str, np.ndarray], rows: np.ndarray) -> np.ndarray:
    """Fused cosine (product over modalities, eq. 16) of ``rows`` against all items, float64."""
    n = len(next(iter(normed.values())))
    out = np.ones((len(rows), n), dtype=np.float64)
    for x in normed.values():
        q = x[rows].astype(np.float64)
        for c in range(0, n, _CHUNK):
            out[:, c : c + _CHUNK] *= q @ x[c : c + _CHUNK].astype(np.float64).T
    return out


def exact_lists(scores: np.ndarray, rows: np.ndarray, allowed: np.ndarray, k: int, largest: bool = True) -> list[np.ndarray]:
    """For each sampled row, the ``k`` best allowed items other than itself (ties: lower id first)."""
    result = []
    ids = np.flatnonzero(allowed)
    for r, q in enumerate(rows):
        cand = ids[ids != q]
        s = scores[r, cand]
        order = np.lexsort((cand, -s if largest else s))[:k]
        result.append(cand[order])
    return result


def recall(found: NeighborLists, rows: np.ndarray, reference: list[np.ndarray]) -> float:
    """Mean over ``rows`` of |found list ∩ reference list| / |reference list| (rows with an
    empty reference are skipped; 1.0 when none is left)."""
    per_item = found.per_item(int(max(rows.max(initial=-1) + 1, found.item.max(initial=-1) + 1)))
    values = [
        len(np.intersect1d(per_item[q], ref)) / len(ref) for q, ref in zip(rows, reference) if len(ref)
    ]
    return float(np.mean(values)) if values else 1.0


def sample_rows(candidates: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Up to ``n`` of ``candidates`` drawn without replacement with a seeded generator, sorted."""
    if len(candidates) <= n:
        return np.asarray(candidates)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(candidates, size=n, replace=False))
