"""Iterated k-core on the user-item bipartite graph.

Each round removes, at once, every interaction whose user or item has fewer than ``k``
interactions left; rounds repeat until nothing changes. The fixpoint is the maximal k-core
(unique: the union of all sub-graphs in which every user and item has degree >= ``k``), so the
order of removals does not matter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.errors import UserError


@dataclass(frozen=True)
class KCoreResult:
    keep: np.ndarray  # bool, one per input interaction
    rounds: list[dict[str, int]]  # counts after each round that removed something


def kcore(users: np.ndarray, items: np.ndarray, k: int, source: str = "dataset") -> KCoreResult:
    """Keep-mask of the ``k``-core of the interactions ``(users[j], items[j])`` (integer codes).

    Raises :class:`UserError` when nothing survives, with the counts after each round.
    """
    users = np.asarray(users, dtype=np.int64)
    items = np.asarray(items, dtype=np.int64)
    keep = np.ones(users.shape[0], dtype=bool)
    rounds: list[dict[str, int]] = []
    if k <= 1 or users.size == 0:
        return KCoreResult(keep, rounds)
    n_users = int(users.max()) + 1
    n_items = int(items.max()) + 1
    while True:
        deg_u = np.bincount(users[keep], minlength=n_users)
        deg_i = np.bincount(items[keep], minlength=n_items)
        if rounds:  # counts after the previous round's removals
            rounds[-1].update(users=int(np.count_nonzero(deg_u)), items=int(np.count_nonzero(deg_i)))
        remove = keep & ((deg_u[users] < k) | (deg_i[items] < k))
        if not remove.any():
            break
        keep &= ~remove
        rounds.append({"round": len(rounds) + 1, "interactions": int(keep.sum())})
        if not keep.any():
            rounds[-1].update(users=0, items=0)
            history = "; ".join(f"round {r['round']}: {r['interactions']} interactions, {r['users']} users, {r['items']} items" for r in rounds)
            raise UserError(f"{source}: nothing is left after the {k}-core filter (from {users.size} interactions; {history})")
    return KCoreResult(keep, rounds)
