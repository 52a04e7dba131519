"""Per-modality item kNN lists by exact inner-product search over normalised vectors.

Backends, all exact brute force (they agree up to float rounding, so up to ties):

* ``faiss-cpu``: ``faiss.IndexFlatIP`` (the CPU install, ``pip install '.[cpu]'``);
* ``faiss-gpu``: the same index moved with ``index_cpu_to_gpu`` (device cuda and a faiss build
  with GPU support, ``pip install '.[gpu]'``);
* ``torch-cuda`` / ``torch-cpu``: blocked matrix products of the normalised vectors in torch and
  a row-wise top-k (:func:`pipeline.neighbors.topk.topk_rows`), what a flat index does; used on
  cuda when faiss has no GPU support, and wherever ``faiss`` is not importable at all.

:func:`knn_backend` picks one (and logs why when it is not faiss). Queries go in blocks (FAISS
holds results only, ``n x (k + 1 + slack)``; torch holds one ``b x n`` block of scores sized to
a memory budget; never ``n x n``).

Each item's list holds its ``k`` most similar other items, ordered by score descending, then
neighbour id ascending. FAISS fetches ``k + 1 + slack`` candidates per item so that the item
itself and ties at the cut can be resolved by that rule; a tie wider than the slack at the k-th
place is resolved by FAISS's order (the torch path sees every column and resolves any tie by the
rule). Items with a zero vector are left out (as queries and neighbours) and counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import metadata
from typing import Iterator

import numpy as np
import torch

from pipeline.errors import UserError
from pipeline.log import get_logger, progress
from pipeline.neighbors.similarity import full_float32, l2_normalize
from pipeline.neighbors.topk import topk_rows

log = get_logger(__name__)

SLACK = 8
MEMORY_BUDGET = 512 * 2**20  # bytes of torch score blocks held at once
BACKENDS = ("faiss-cpu", "faiss-gpu", "torch-cpu", "torch-cuda")


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


def _faiss():
    """The ``faiss`` module, or None when it is not importable (no faiss wheel installed)."""
    try:
        import faiss
    except ImportError:
        return None
    gpu = [d for d in ("faiss-gpu", "faiss-gpu-cu12", "faiss-gpu-cu11") if _installed(d)]
    if gpu and _installed("faiss-cpu"):
        log.warning("faiss-cpu and %s are both installed: they ship the same 'faiss' module and overwrite each other; "
                    "keep one (pip uninstall -y faiss-cpu %s, then pip install '.[cpu]' or '.[gpu]')", gpu[0], " ".join(gpu))
    return faiss


def _installed(dist: str) -> bool:
    try:
        metadata.version(dist)
    except metadata.PackageNotFoundError:
        return False
    return True


def knn_backend(device: str, prefer: str = "auto") -> str:
    """The search that runs for ``device`` (one of :data:`BACKENDS`).

    ``prefer``: ``auto`` = faiss where it can serve the device (faiss-gpu on cuda with a GPU build,
    faiss-cpu on cpu), else the exact torch search on the device; ``torch`` = always the torch
    search; ``faiss`` = faiss, on the CPU when it has no GPU support.
    """
    if prefer not in ("auto", "faiss", "torch"):
        raise ValueError(f"knn_backend: prefer must be auto, faiss or torch, got {prefer!r}")
    on_cuda = device.startswith("cuda")
    torch_backend = "torch-cuda" if on_cuda else "torch-cpu"
    if prefer == "torch":
        return torch_backend
    faiss = _faiss()
    if faiss is None:
        if prefer == "faiss":
            raise UserError("kNN: faiss is not installed (pip install '.[cpu]', or '.[gpu]' on a CUDA machine)")
        log.info("faiss is not installed: kNN runs as exact blocked torch search on %s (%s)", device, torch_backend)
        return torch_backend
    gpu_faiss = hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0
    if on_cuda and gpu_faiss:
        return "faiss-gpu"
    if on_cuda and prefer == "auto":
        log.info("this faiss build has no GPU support: kNN runs as exact blocked torch search on %s (torch-cuda)", device)
        return torch_backend
    if on_cuda:
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


def _faiss_blocks(base: np.ndarray, width: int, backend: str, device: str, block_size: int, name: str) -> Iterator[tuple]:
    """Per query block: ``(neighbour positions, scores, valid)``, each ``[b, width]`` (rank_rows' order)."""
    index = _index(base, backend, device)
    fetch = min(len(base), width + SLACK)
    starts = range(0, len(base), max(1, block_size))
    for start in progress(starts, desc=f"kNN {name}", unit="block", total=len(starts)):
        pos = np.arange(start, min(start + block_size, len(base)))
        scores, found = index.search(base[pos], fetch)
        scores = np.where(found == pos[:, None], -np.inf, scores)  # the item itself is not a neighbour
        yield rank_rows(scores, found.astype(np.int64), width)


def _torch_blocks(base: np.ndarray, width: int, device: str, block_size: int, name: str) -> Iterator[tuple]:
    """As :func:`_faiss_blocks`, by exact blocked inner products ``base[block] @ base.T`` + top-k."""
    n = len(base)
    rows = max(1, min(block_size, MEMORY_BUDGET // (n * 4 * 3)))  # the block, its top-k and a sort copy
    dev = torch.device(device)
    with torch.no_grad(), full_float32():
        mat = torch.from_numpy(base).to(dev)
        starts = range(0, n, rows)
        for start in progress(starts, desc=f"kNN {name}", unit="block", total=len(starts)):
            stop = min(start + rows, n)
            key = mat[start:stop] @ mat.T
            key[torch.arange(stop - start, device=dev), torch.arange(start, stop, device=dev)] = float("-inf")
            yield topk_rows(key, width)


def knn_lists(
    vectors: np.ndarray,
    k: int,
    *,
    device: str = "cpu",
    block_size: int = 2048,
    name: str = "features",
    backend: str = "auto",
) -> tuple[NeighborLists, dict[str, object]]:
    """The ``k`` nearest other items of every item by cosine similarity; also a small report
    (``backend``: which search ran, see :func:`knn_backend`; ``backend="torch"`` forces the torch one)."""
    if k < 1:
        raise UserError(f"params.yaml neighbors.k: must be >= 1, got {k}")
    normed, nonzero = l2_normalize(vectors, name)
    ids = np.flatnonzero(nonzero)
    n_zero = int(len(normed) - len(ids))
    chosen = knn_backend(device, backend)
    report: dict[str, object] = {"backend": chosen, "items_zero_vector": n_zero}
    empty = NeighborLists(*(np.zeros(0, t) for t in (np.int32, np.int32, np.float32, np.int16)))
    if len(ids) < 2:
        log.warning("%s: fewer than two non-zero vectors; no kNN lists", name)
        return empty, {**report, "k": 0}
    base = np.ascontiguousarray(normed[ids])
    k_eff = min(k, len(ids) - 1)
    if k_eff < k:  # a list holds the other items at most; say so where the lists are described
        report["k"] = k_eff
        log.warning("%s: neighbors.k = %d, but only %d items have a vector: lists of %d neighbours (neighbors.json k)",
                    name, k, len(ids), k_eff)
    width = k_eff + 1  # one more than kept: the first entry left out is the list's cut score
    if chosen.startswith("faiss"):
        blocks = _faiss_blocks(base, width, chosen, device, block_size, name)
    else:
        blocks = _torch_blocks(base, width, device, block_size, name)
    out_nb, out_sc, out_valid, out_cut = [], [], [], []
    for nb_pos, sc, valid in blocks:
        out_cut.append(np.where(valid[:, k_eff], sc[:, k_eff], np.nan))
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
    log.info("%s: kNN lists of %d items (k=%d, %s, %d zero vectors left out)", name, len(ids), k_eff, chosen, n_zero)
    return lists, report
