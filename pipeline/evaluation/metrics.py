"""Top-K ranking metrics from a boolean hit matrix, exactly as RecBole / MMRec compute them.

Inputs are ``hits`` ``[n_users, K_max]`` (``hits[u, r]``: the item ranked ``r`` (0 = top) for user
``u`` is one of the user's held-out items) and ``n_relevant`` ``[n_users]`` (``|T_u|``, the user's
number of held-out items, *not* capped at K). All metrics of every K come from one ranking.

- Recall@K    = hits@K / |T_u|
- Precision@K = hits@K / K
- NDCG@K      = DCG@K / IDCG@K, binary gains, discount 1 / log2(rank + 1) (rank from 1), IDCG over
  min(K, |T_u|) positions
- MAP@K       = sum over hit ranks r <= K of Precision@r, divided by min(K, |T_u|)

Per-user values of users with ``n_relevant == 0`` are NaN (undefined); :func:`mean_metrics`
averages over users with ``n_relevant >= 1`` only.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

METRICS: tuple[str, ...] = ("recall", "ndcg", "precision", "map")


def _check(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    hits = np.asarray(hits, dtype=bool)
    n_relevant = np.asarray(n_relevant, dtype=np.int64)
    if hits.ndim != 2 or n_relevant.shape != (hits.shape[0],):
        raise ValueError(f"hits must be [n_users, K_max] and n_relevant [n_users]; got {hits.shape}, {n_relevant.shape}")
    if not 1 <= k <= hits.shape[1]:
        raise ValueError(f"K={k} outside 1..{hits.shape[1]} (the hit matrix has {hits.shape[1]} ranks)")
    return hits, n_relevant


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den as float64, NaN where den == 0."""
    out = np.full(num.shape, np.nan, dtype=np.float64)
    ok = den > 0
    out[ok] = num[ok] / den[ok]
    return out


def _discounts(k_max: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, k_max + 2, dtype=np.float64))  # 1/log2(rank+1), rank = 1..K


def recall_at(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """Recall@K = |top-K ∩ T_u| / |T_u| per user."""
    hits, n_relevant = _check(hits, n_relevant, k)
    return _safe_div(hits[:, :k].sum(axis=1).astype(np.float64), n_relevant)


def precision_at(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """Precision@K = |top-K ∩ T_u| / K per user (NaN where |T_u| = 0)."""
    hits, n_relevant = _check(hits, n_relevant, k)
    out = hits[:, :k].sum(axis=1) / float(k)
    return np.where(n_relevant > 0, out, np.nan)


def ndcg_at(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """NDCG@K with binary gains; IDCG sums the discounts of the first min(K, |T_u|) ranks."""
    hits, n_relevant = _check(hits, n_relevant, k)
    disc = _discounts(k)
    dcg = (hits[:, :k] * disc).sum(axis=1)
    ideal = np.concatenate([[0.0], np.cumsum(disc)])  # ideal[n] = IDCG with n relevant in the top
    idcg = ideal[np.minimum(n_relevant, k)]
    return _safe_div(dcg, idcg)


def map_at(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """MAP@K: sum of Precision@r over hit ranks r <= K, divided by min(K, |T_u|)."""
    hits, n_relevant = _check(hits, n_relevant, k)
    h = hits[:, :k]
    prec = np.cumsum(h, axis=1) / np.arange(1, k + 1, dtype=np.float64)
    return _safe_div((prec * h).sum(axis=1), np.minimum(n_relevant, k).astype(np.float64))


_FUNCS = {"recall": recall_at, "ndcg": ndcg_at, "precision": precision_at, "map": map_at}


def per_user_metrics(
    hits: np.ndarray,
    n_relevant: np.ndarray,
    ks: Iterable[int],
    metrics: Sequence[str] = METRICS,
) -> dict[str, np.ndarray]:
    """``{"recall@10": [n_users], ...}``, metric-major then by increasing K."""
    ks = sorted(set(int(k) for k in ks))
    unknown = [m for m in metrics if m not in _FUNCS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; known: {list(_FUNCS)}")
    return {f"{m}@{k}": _FUNCS[m](hits, n_relevant, k) for m in metrics for k in ks}


def mean_metrics(per_user: dict[str, np.ndarray], n_relevant: np.ndarray) -> dict[str, float]:
    """Mean of each per-user metric over users with ``n_relevant >= 1`` (NaN when there are none)."""
    keep = np.asarray(n_relevant) >= 1
    if not keep.any():
        return {name: float("nan") for name in per_user}
    return {name: float(values[keep].mean()) for name, values in per_user.items()}
