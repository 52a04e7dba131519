"""Adaptive pseudo-feedback injection (APFI, eq. 16-21): pseudo-positive and pseudo-negative edges.

For a user u with training items N_u (all of them, whatever their rating, so pseudo edges do not
depend on the sign thresholds) and an item group G (tail or popular, eq. 15), the candidate
weight of an item j in G that u has *not* interacted with in training is

    w_u(j) = max_{q in N_u} S^f[q, j]   (PoPI, tail items)      or   min_{q in N_u} S^f[q, j]   (NePI, popular items)

i.e. the entry of the flattened |N_u| x N matrix (eq. 17) through which j is reached best; an
item reached through several q counts once (the reading of "top_Q of vec(TaC_u)" without
duplicate edges). PoPI(u) is the Q distinct items of largest w (eq. 18), kept where w > zeta+
(eq. 19); NePI(u) the Q distinct items of smallest w (top_Q of -PoC_u, eq. 20), kept where
w < zeta- (eq. 21, with w the similarity itself, see the design notes). Ties in w are broken by
the smaller item id. The edge weight is w.

The weights are found from the neighbors stage's candidate lists (for each q, the K most similar
tail items / the K least similar popular items, q excluded), with polars joins over users in
chunks; no |N_u| x N matrix is built. The lists give the exact answer for u when, for every
q in N_u, one of these holds (assuming each list is the true top / bottom K of its group, up to
ties in S^f):

  (a) the list of q is complete (it holds all of G except q);
  (b) it holds at least Q items u has not interacted with: anything it hides is no better than
      Q distinct candidates it shows;
  (c) its last score is not above zeta+ (PoPI; not below zeta- for NePI): what it hides could
      not pass eq. 19 / 21;
  (d) its last score is strictly worse than u's Q-th best weight found in the lists.

Every user failing the test (K >= Q + |N_u ∩ G| implies (b), so it is rare) is recomputed
exactly from the item features, row-blocked, and counted. Items with a zero vector in some
modality have no S^f; as in the neighbors stage they neither reach nor receive pseudo edges.
Items never seen in training have
degree 0, so they are tail items unless more than N_tail items are unseen; they may receive
pseudo edges (from features alone: that is the point of APFI for cold items).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import polars as pl
import torch

from pipeline.errors import UserError
from pipeline.log import get_logger, progress
from pipeline.neighbors.similarity import fused_block, l2_normalize

log = get_logger(__name__)

Similarity = Callable[[np.ndarray, np.ndarray], np.ndarray]

#: rows of the (user, q, candidate) join processed at once
CHUNK_ROWS = 4_000_000
#: entries of one dense similarity block in the exact fall-back
BLOCK_ENTRIES = 1 << 24


@dataclass(frozen=True)
class PseudoEdges:
    """Pseudo edges of one kind: parallel arrays, sorted by (user, item).

    ``margin_user`` / ``margin``: for every user with at least one candidate, the smallest change
    of the weights that could change the user's set: min over the Q + 1 best candidates of
    |w - zeta| and the gap between the Q-th and (Q+1)-th weight (the repro fingerprint's tie test).
    """

    user: np.ndarray  # int64
    item: np.ndarray  # int64
    weight: np.ndarray  # float32, the fused similarity S^f
    n_fallback_users: int  # users recomputed exactly from the features
    margin_user: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # sorted
    margin: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))

    def __len__(self) -> int:
        return len(self.user)


def decision_margins(user: np.ndarray, rank: np.ndarray, w: np.ndarray, q: int, zeta: float) -> tuple[np.ndarray, np.ndarray]:
    """Per user, from its best candidates in rank order (ranks 0..q, i.e. up to Q + 1 of them):
    min(|w - zeta|, w_Q - w_(Q+1)) (in absolute value). Returns (sorted users, margins)."""
    user = np.asarray(user, np.int64)
    w = np.asarray(w, np.float64)
    rank = np.asarray(rank, np.int64)
    users, pos = np.unique(user, return_inverse=True)
    margin = np.full(len(users), np.inf)
    np.minimum.at(margin, pos, np.abs(w - zeta))
    qth = np.full(len(users), np.nan)
    after = np.full(len(users), np.nan)
    qth[pos[rank == q - 1]] = w[rank == q - 1]
    after[pos[rank == q]] = w[rank == q]
    gap = np.abs(qth - after)
    return users, np.where(np.isfinite(gap), np.minimum(margin, gap), margin)


def fused_similarity(features: Sequence[np.ndarray]) -> Similarity:
    """S^f = product over modalities of the cosine similarities (eq. 16), as ``sim(rows, cols)``.

    Each modality is L2-normalised once (as the neighbors stage does); the blocks come from the
    neighbors stage's :func:`pipeline.neighbors.similarity.fused_block` (torch, CPU). Returns
    float32 [len(rows), len(cols)] blocks.
    """
    if not features:
        raise UserError("APFI needs at least one item feature modality (run the features stage)")
    normed = [l2_normalize(mat, f"modality {m}")[0] for m, mat in enumerate(features)]

    def sim(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return fused_block([torch.from_numpy(h[rows]) for h in normed], [torch.from_numpy(h[cols]) for h in normed]).numpy()

    return sim


def _best_order(user: np.ndarray, item: np.ndarray, w: np.ndarray, largest: bool) -> np.ndarray:
    """Order by user, then best weight first, then item id."""
    key = -w.astype(np.float64) if largest else w.astype(np.float64)
    return np.lexsort((item, key, user))


def _exact_user(
    queries: np.ndarray, items_u: np.ndarray, group_items: np.ndarray, similarity: Similarity, q: int, largest: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Top-Q distinct group items not in ``items_u``, reached from ``queries``, from dense S^f rows
    (eq. 17-18 / 20). Pass ``q + 1`` to also get the first item left out (for the margins)."""
    if len(queries) == 0 or len(group_items) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    rows_per_block = max(1, BLOCK_ENTRIES // len(group_items))
    best = None
    for start in range(0, len(queries), rows_per_block):
        block = similarity(queries[start : start + rows_per_block], group_items)
        red = block.max(axis=0) if largest else block.min(axis=0)
        best = red if best is None else (np.maximum(best, red) if largest else np.minimum(best, red))
    keep = ~np.isin(group_items, items_u)  # uninteracted only
    cand, w = group_items[keep], best[keep]
    order = _best_order(np.zeros(len(cand), np.int64), cand, w, largest)[:q]
    return cand[order], w[order].astype(np.float32)


def _list_stats(lists: pl.DataFrame, in_group: np.ndarray, valid: np.ndarray, largest: bool, source: str) -> pl.DataFrame:
    """Per query item: list length, last (worst) score, and whether the list is complete.

    ``in_group`` is already restricted to valid items; an invalid query has nothing to list.
    """
    n_items = len(in_group)
    bad = lists.filter((pl.col("q") >= n_items) | (pl.col("j") >= n_items))
    if bad.height:
        raise UserError(f"{source}: item id {max(bad['q'].max(), bad['j'].max())} is outside the {n_items} items of item_groups.parquet")
    group_ids = np.flatnonzero(in_group)
    outside = lists.filter(~pl.col("j").is_in(group_ids.tolist()))
    if outside.height:
        raise UserError(f"{source}: neighbor {outside['j'][0]} of item {outside['q'][0]} is not in this list's item group (stale lists?)")
    invalid_q = lists.filter(~pl.col("q").is_in(np.flatnonzero(valid).tolist()))
    if invalid_q.height:
        raise UserError(f"{source}: item {invalid_q['q'][0]} has a zero feature vector but a candidate list (stale lists?)")
    selfref = lists.filter(pl.col("q") == pl.col("j"))
    if selfref.height:
        raise UserError(f"{source}: item {selfref['q'][0]} lists itself as a candidate (the query must be excluded)")
    last = pl.col("s").min() if largest else pl.col("s").max()
    stats = lists.group_by("q").agg(pl.len().alias("n"), last.alias("last"))
    expected = np.where(valid, len(group_ids) - in_group.astype(np.int64), 0)
    every = pl.DataFrame({"q": pl.Series(np.arange(n_items), dtype=pl.Int32), "expected": expected})
    stats = every.join(stats, on="q", how="left").with_columns(pl.col("n").fill_null(0))
    return stats.with_columns(complete=pl.col("n") >= pl.col("expected")).select("q", "n", "last", "complete")


def pseudo_edges(
    train_user: np.ndarray,
    train_item: np.ndarray,
    lists: pl.DataFrame,
    in_group: np.ndarray,
    *,
    q: int,
    zeta: float,
    largest: bool,
    similarity: Callable[[], Similarity],
    valid: np.ndarray | None = None,
    source: str = "candidate lists",
    chunk_rows: int = CHUNK_ROWS,
) -> PseudoEdges:
    """PoPI (``largest=True``, eq. 17-19) or NePI (``largest=False``, eq. 20-21) for every user.

    ``train_user``/``train_item``: the training interactions (one row per pair). ``lists``: a
    ``candidates`` table (item = query q, neighbor, score, rank) over the group ``in_group``
    (bool per item). ``similarity``: a zero-argument factory of ``sim(rows, cols)`` for the exact
    fall-back (e.g. ``lambda: fused_similarity(features)``), called only when some user needs it.
    ``valid``: items with a non-zero vector in every modality (default all); S^f is undefined for
    the others, so, as in the neighbors stage, they are neither queries nor candidates.
    """
    if q < 1:
        raise UserError(f"params.yaml: apfi.q = {q}, expected a positive integer")
    zeta = float(np.float32(zeta))  # compare float32 scores with the float32 zeta on both paths
    valid = np.ones(len(in_group), bool) if valid is None else np.asarray(valid, dtype=bool)
    in_group = np.asarray(in_group, dtype=bool) & valid
    lists = lists.select(pl.col("item").alias("q"), pl.col("neighbor").alias("j"), pl.col("score").alias("s"))
    stats = _list_stats(lists, in_group, valid, largest, source)
    users_all = np.asarray(train_user, dtype=np.int64)
    items_all = np.asarray(train_item, dtype=np.int64)
    order = np.lexsort((items_all, users_all))
    users_all, items_all = users_all[order], items_all[order]
    used = np.unique(items_all)
    used_stats = stats.filter(pl.col("q").is_in(used.tolist()))
    k = int(stats["n"].max()) if stats.height else 0
    if k < q and not bool(used_stats["complete"].all()):
        raise UserError(f"{source}: lists hold K = {k} candidates per item, fewer than apfi.q = {q}; raise neighbors.candidates to at least {q}")
    empty = PseudoEdges(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32), 0)
    if not in_group.any() or len(users_all) == 0:
        return empty

    # chunk boundaries on user changes so that pairs * K stays under chunk_rows
    starts = np.flatnonzero(np.r_[True, users_all[1:] != users_all[:-1]])
    bounds = [0]
    for s in starts[1:]:
        if (s - bounds[-1]) * max(k, 1) >= chunk_rows:
            bounds.append(int(s))
    bounds.append(len(users_all))

    better = (lambda a, b: a > b) if largest else (lambda a, b: a < b)
    out_u, out_i, out_w, fallback = [], [], [], []
    margins: list[tuple[np.ndarray, np.ndarray]] = []
    for lo, hi in progress(list(zip(bounds[:-1], bounds[1:])), desc=f"APFI {'PoPI' if largest else 'NePI'}", unit="chunk"):
        pairs = pl.DataFrame({"user": users_all[lo:hi], "q": items_all[lo:hi]}, schema={"user": pl.Int64, "q": pl.Int32})
        seen = pairs.rename({"q": "j"})
        cand = pairs.join(lists, on="q", how="inner").join(seen, on=["user", "j"], how="anti")  # uninteracted only
        n_unint = cand.group_by("user", "q").agg(pl.len().alias("n_unint"))
        best = cand.group_by("user", "j").agg(pl.col("s").max() if largest else pl.col("s").min())
        ranked = best.sort(["user", "s", "j"], descending=[False, largest, False]).group_by("user", maintain_order=True).head(q + 1)
        ranked = ranked.with_columns(r=pl.int_range(pl.len()).over("user"))
        top = ranked.filter(pl.col("r") < q)
        qth = top.group_by("user").agg(pl.len().alias("n_top"), pl.col("s").last().alias("qth"))
        qth = qth.with_columns(pl.when(pl.col("n_top") >= q).then(pl.col("qth")).alias("qth"))
        chk = (
            pairs.join(stats, on="q", how="left")
            .join(n_unint, on=["user", "q"], how="left")
            .join(qth.select("user", "qth"), on="user", how="left")
            .with_columns(pl.col("n_unint").fill_null(0))
        )
        safe = (
            pl.col("complete")  # (a)
            | (pl.col("n_unint") >= q)  # (b)
            | (~better(pl.col("last"), zeta)).fill_null(False)  # (c)
            | better(pl.col("qth"), pl.col("last")).fill_null(False)  # (d)
        )
        bad_users = chk.filter(~safe).select("user").unique()
        kept = top.filter(better(pl.col("s"), zeta)).join(bad_users, on="user", how="anti")  # eq. 19 / 21
        exact = ranked.join(bad_users, on="user", how="anti")
        margins.append(decision_margins(exact["user"].to_numpy(), exact["r"].to_numpy(), exact["s"].to_numpy(), q, zeta))
        out_u.append(kept["user"].to_numpy().astype(np.int64))
        out_i.append(kept["j"].to_numpy().astype(np.int64))
        out_w.append(kept["s"].to_numpy().astype(np.float32))
        fallback.append(np.sort(bad_users["user"].to_numpy()).astype(np.int64))

    fallback_users = np.concatenate(fallback)
    if len(fallback_users):
        sim = similarity()
        group_items = np.flatnonzero(in_group)
        starts_u = np.searchsorted(users_all, fallback_users, side="left")
        ends_u = np.searchsorted(users_all, fallback_users, side="right")
        for u, a, b in progress(list(zip(fallback_users, starts_u, ends_u)), desc="APFI exact fall-back", unit="user"):
            items_u = items_all[a:b]
            items, w = _exact_user(items_u[valid[items_u]], items_u, group_items, sim, q + 1, largest)
            if len(w):
                margins.append(decision_margins(np.full(len(w), u), np.arange(len(w)), w, q, zeta))
            items, w = items[:q], w[:q]
            keep = better(w, zeta)  # eq. 19 / 21
            out_u.append(np.full(int(keep.sum()), u, np.int64))
            out_i.append(items[keep].astype(np.int64))
            out_w.append(w[keep])
        log.info("%s: %d user(s) recomputed exactly from the features (lists too short for them)", source, len(fallback_users))

    user, item, weight = (np.concatenate(x) for x in (out_u, out_i, out_w))
    order = np.lexsort((item, user))
    m_user = np.concatenate([m[0] for m in margins]) if margins else np.zeros(0, np.int64)
    m_val = np.concatenate([m[1] for m in margins]) if margins else np.zeros(0)
    m_order = np.argsort(m_user, kind="stable")
    return PseudoEdges(user[order], item[order], weight[order].astype(np.float32), len(fallback_users), m_user[m_order], m_val[m_order])
