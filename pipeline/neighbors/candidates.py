"""APFI candidate lists: for every item q, its most similar tail items and least similar popular
items by the fused similarity S^f (paper eq. 16), found by exact blocked search.

S^f = S^v ⊙ S^t is a product of cosines, not an inner product, so no FAISS index serves it
directly. Instead each block of query rows gets its ``b x N`` block of S^f
(:func:`pipeline.neighbors.similarity.fused_block`: one matrix product per modality, torch on
CPU or GPU) and keeps the K best per row with a deterministic tie-break
(:func:`pipeline.neighbors.topk.topk_rows`: score, then item id). Only a block is ever held,
sized to a memory budget; the search is exact, so its recall is 1 up to float rounding at ties.

Items with a zero vector in any modality have no defined S^f; they are left out as queries and
as candidates (counted). The query item itself is never its own candidate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import torch

from pipeline.errors import UserError
from pipeline.log import get_logger, progress
from pipeline.neighbors.knn import NeighborLists
from pipeline.neighbors.similarity import full_float32, fused_block, l2_normalize
from pipeline.neighbors.topk import topk_rows

log = get_logger(__name__)

MEMORY_BUDGET = 512 * 2**20  # bytes of score blocks held at once


@dataclass(frozen=True)
class Candidates:
    tail: NeighborLists  # most similar tail items first
    popular: NeighborLists  # least similar popular items first
    items_left_out: int  # zero vector in some modality


def normalized_modalities(vectors: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Each modality L2-normalised, and the mask of items non-zero in every modality."""
    if not vectors:
        raise UserError("neighbors: no feature modality (run the features stage first)")
    sizes = {m: len(v) for m, v in vectors.items()}
    if len(set(sizes.values())) != 1:
        raise UserError(f"features: modalities have different item counts {sizes}; expected one row per item in each")
    normed, valid = {}, None
    for m in sorted(vectors):
        normed[m], nonzero = l2_normalize(vectors[m], f"{m}.npy")
        valid = nonzero if valid is None else valid & nonzero
    return normed, valid


def _flatten(queries: np.ndarray, cols: list[np.ndarray], vals: list[np.ndarray], valid: list[np.ndarray], k: int) -> NeighborLists:
    """Rows of the first ``k`` columns; the (k+1)-th column, where valid, is each list's cut score."""
    if not cols:
        return NeighborLists(*(np.zeros(0, t) for t in (np.int32, np.int32, np.float32, np.int16)))
    nb, sc, ok = np.concatenate(cols), np.concatenate(vals), np.concatenate(valid)
    cut_ok = ok[:, k] if nb.shape[1] > k else np.zeros(len(nb), bool)
    cut_score = sc[cut_ok, k] if nb.shape[1] > k else np.zeros(0, np.float32)
    nb, sc, ok = nb[:, :k], sc[:, :k], ok[:, :k]
    item = np.broadcast_to(queries[:, None], nb.shape)
    rank = np.broadcast_to(np.arange(nb.shape[1]), nb.shape)
    return NeighborLists(item[ok].astype(np.int32), nb[ok].astype(np.int32), sc[ok].astype(np.float32), rank[ok].astype(np.int16),
                         queries[cut_ok].astype(np.int32), cut_score.astype(np.float32))


def fused_candidates(
    vectors: Mapping[str, np.ndarray],
    tail: np.ndarray,
    n_candidates: int,
    *,
    device: str = "cpu",
    block_size: int = 2048,
) -> Candidates:
    """Top-``n_candidates`` tail items by S^f (desc) and bottom-``n_candidates`` popular items by
    S^f (asc) for every item with non-zero features; ties by item id ascending."""
    if n_candidates < 1:
        raise UserError(f"params.yaml neighbors.candidates: must be >= 1, got {n_candidates}")
    normed, valid = normalized_modalities(vectors)
    tail = np.asarray(tail, dtype=bool)
    if len(tail) != len(valid):
        raise UserError(f"item groups: {len(tail)} items, features: {len(valid)}; expected the same items")
    queries = np.flatnonzero(valid)
    tail_ids = np.flatnonzero(valid & tail)
    pop_ids = np.flatnonzero(valid & ~tail)
    n_tail = len(tail_ids)
    dev = torch.device(device)
    # columns: the tail items, then the popular ones (each ascending), so both parts are views
    cols = np.concatenate([tail_ids, pop_ids])
    col_mats = {m: torch.from_numpy(np.ascontiguousarray(x[cols])).to(dev) for m, x in normed.items()}
    mods = sorted(normed)
    col_of = np.full(len(valid), -1, dtype=np.int64)  # every query is a column: its rows come from there
    col_of[cols] = np.arange(len(cols))
    n_cols = max(1, len(cols))
    rows_per_block = max(1, min(block_size, MEMORY_BUDGET // (n_cols * 4 * 3)))
    tail_pos_of = np.full(len(valid), -1, dtype=np.int64)
    tail_pos_of[tail_ids] = np.arange(n_tail)
    pop_pos_of = np.full(len(valid), -1, dtype=np.int64)
    pop_pos_of[pop_ids] = np.arange(len(pop_ids))
    out = {"tail": ([], [], []), "popular": ([], [], [])}
    starts = range(0, len(queries), rows_per_block)
    with torch.no_grad(), full_float32():
        for start in progress(starts, desc="APFI candidates", unit="block", total=len(starts)):
            q = queries[start : start + rows_per_block]
            q_t = torch.from_numpy(col_of[q]).to(dev)
            fused = fused_block([col_mats[m].index_select(0, q_t) for m in mods], [col_mats[m] for m in mods])
            rows = torch.arange(len(q), device=dev)
            for part, key, pos_of, ids in (
                ("tail", fused[:, :n_tail], tail_pos_of, tail_ids),
                ("popular", -fused[:, n_tail:], pop_pos_of, pop_ids),
            ):
                self_pos = torch.from_numpy(pos_of[q]).to(dev)
                mine = self_pos >= 0
                key[rows[mine], self_pos[mine]] = float("-inf")  # q is not its own candidate
                c, v, ok = topk_rows(key, n_candidates + 1)  # one more: the cut score of each list
                out[part][0].append(ids[c] if ids.size else c)
                out[part][1].append(v if part == "tail" else 0.0 - v)
                out[part][2].append(ok)
    n_left_out = int(len(valid) - len(queries))
    result = Candidates(_flatten(queries, *out["tail"], n_candidates), _flatten(queries, *out["popular"], n_candidates), n_left_out)
    log.info(
        "APFI candidates: %d queries, %d tail / %d popular candidates, K=%d, %d items left out (zero vector), on %s",
        len(queries), n_tail, len(pop_ids), n_candidates, n_left_out, device,
    )
    return result
