"""Per-modality item kNN lists by exact FAISS inner-product search over normalised vectors.

CPU: ``faiss.IndexFlatIP``; GPU (``device`` cuda and a faiss build with GPU support): the same
index moved with ``index_cpu_to_gpu``. Both are exact brute force, so they agree up to float
rounding. Queries go in blocks (results only are held: ``n x (k + 1 + slack)``; never ``n x n``).

Each item's list holds its ``k`` most similar other items, ordered by score descending, then
neighbour id ascending. FAISS fetches ``k + 1 + slack`` candidates per item so that the item
itself and ties at the cut can be resolved by that rule; a tie wider than the slack at the k-th
place is resolved by FAISS's order. Items with a zero vector are left out (as queries and
neighbours) and counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pipeline.errors import UserError
from pipeline.log import get_logger, progress
from pipeline.neighbors.similarity import l2_normalize

log = get_logger(__name__)

SLACK = 8


def _empty(dtype) -> np.ndarray:
    return np.zeros(0, dtype)


@dataclass(frozen=True)
class NeighborLists:
    """Flat, parallel arrays of ranked lists (the ``knn`` / ``candidates`` tables' columns).

    ``cut_item`` / ``cut_score``: for the items whose list was cut, the score of the first entry
    left out (what decides a tie at the cut; the repro fingerprint's margin). Not written to the
    list tables.
    """

    item: np.ndarray  # int32, the query item
    neighbor: np.ndarray  # int32
    score: np.ndarray  # float32
    rank: np.ndarray  # int16, 0 = first
    cut_item: np.ndarray = field(default_factory=lambda: _empty(np.int32))
    cut_score: np.ndarray = field(default_factory=lambda: _empty(np.float32))

    def as_dict(self) -> dict[str, np.ndarray]:
        return {"item": self.item, "neighbor": self.neighbor, "score": self.score, "rank": self.rank}

    def per_item(self, n_items: int) -> list[np.ndarray]:
        """Neighbour ids of each item 0..n_items-1 in rank order (empty for items without a list)."""
        order = np.lexsort((self.rank, self.item))
        item, nb = self.item[order], self.neighbor[order]
        cuts = np.searchsorted(item, np.arange(n_items + 1))
        return [nb[cuts[i] : cuts[i + 1]] for i in range(n_items)]


def faiss_backend(device: str) -> str:
    """``faiss-gpu`` when a CUDA device is asked for and faiss can use a GPU, else ``faiss-cpu``."""
    import faiss

    if device.startswith("cuda") and hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0:
        return "faiss-gpu"
    if device.startswith("cuda"):
        log.warning("device %s asked for, but this faiss build has no GPU support: kNN runs on faiss-cpu", device)
    return "faiss-cpu"


def _index(base: np.ndarray, backend: str, device: str):
    import faiss

    index = faiss.IndexFlatIP(base.shape[1])
    if backend == "faiss-gpu":
        gpu_id = int(device.split(":")[1]) if ":" in device else 0
        resources = faiss.StandardGpuResources()
        index = faiss.index_cpu_to_gpu(resources, gpu_id, index)
        index.referenced_resources = resources  # keep the resources alive as long as the index
    index.add(base)
    return index


def rank_rows(scores: np.ndarray, neighbors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Order each row by (score desc, neighbor asc) and keep ``k``; entries with score ``-inf`` or
    neighbor ``-1`` are invalid. Returns ``(neighbors [b, k], scores [b, k], valid [b, k])``."""
    valid = (neighbors >= 0) & (scores > -np.inf)
    key_scores = np.where(valid, scores, -np.inf)
    key_ids = np.where(valid, neighbors, np.iinfo(np.int64).max)
    order = np.lexsort((key_ids, -key_scores), axis=-1)[:, :k]
    take = lambda a: np.take_along_axis(a, order, axis=1)  # noqa: E731
    return take(neighbors), take(scores), take(valid)


def knn_lists(
    vectors: np.ndarray, k: int, *, device: str = "cpu", block_size: int = 2048, name: str = "features"
) -> tuple[NeighborLists, dict[str, object]]:
    """The ``k`` nearest other items of every item by cosine similarity; also a small report."""
    if k < 1:
        raise UserError(f"params.yaml neighbors.k: must be >= 1, got {k}")
    normed, nonzero = l2_normalize(vectors, name)
    ids = np.flatnonzero(nonzero)
    n_zero = int(len(normed) - len(ids))
    backend = faiss_backend(device)
    report: dict[str, object] = {"backend": backend, "items_zero_vector": n_zero}
    empty = NeighborLists(*(np.zeros(0, t) for t in (np.int32, np.int32, np.float32, np.int16)))
    if len(ids) < 2:
        log.warning("%s: fewer than two non-zero vectors; no kNN lists", name)
        return empty, {**report, "k": 0}
    base = np.ascontiguousarray(normed[ids])
    index = _index(base, backend, device)
    fetch = min(len(ids), k + 1 + SLACK)
    k_eff = min(k, len(ids) - 1)
    if k_eff < k:  # a list holds the other items at most; say so where the lists are described
        report["k"] = k_eff
        log.warning("%s: neighbors.k = %d, but only %d items have a vector: lists of %d neighbours (neighbors.json k)",
                    name, k, len(ids), k_eff)
    out_nb, out_sc, out_valid, out_cut = [], [], [], []
    starts = range(0, len(ids), max(1, block_size))
    for start in progress(starts, desc=f"kNN {name}", unit="block", total=len(starts)):
        pos = np.arange(start, min(start + block_size, len(ids)))
        scores, found = index.search(base[pos], fetch)
        scores = np.where(found == pos[:, None], -np.inf, scores)  # the item itself is not a neighbour
        nb_pos, sc, valid = rank_rows(scores, found.astype(np.int64), k_eff + 1)
        out_cut.append(np.where(valid[:, k_eff], sc[:, k_eff], np.nan) if sc.shape[1] > k_eff else np.full(len(pos), np.nan))
        nb_pos, sc, valid = nb_pos[:, :k_eff], sc[:, :k_eff], valid[:, :k_eff]
        out_nb.append(np.where(valid, ids[np.maximum(nb_pos, 0)], -1))
        out_sc.append(sc)
        out_valid.append(valid)
    nb = np.concatenate(out_nb)
    sc = np.concatenate(out_sc)
    valid = np.concatenate(out_valid)
    cut = np.concatenate(out_cut)
    item = np.repeat(ids, k_eff).reshape(len(ids), k_eff)
    rank = np.broadcast_to(np.arange(k_eff), nb.shape)
    has_cut = np.isfinite(cut)
    lists = NeighborLists(
        item[valid].astype(np.int32),
        nb[valid].astype(np.int32),
        sc[valid].astype(np.float32),
        rank[valid].astype(np.int16),
        ids[has_cut].astype(np.int32),
        cut[has_cut].astype(np.float32),
    )
    log.info("%s: kNN lists of %d items (k=%d, %s, %d zero vectors left out)", name, len(ids), k_eff, backend, n_zero)
    return lists, report
