"""Golden metric tests in RecBole's style: a 4-user toy hit matrix with hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.evaluation.metrics import (
    map_at,
    mean_metrics,
    ndcg_at,
    per_user_metrics,
    precision_at,
    recall_at,
)

# hits[u, r]: the item at rank r (0 = top) is relevant; n_relevant = |T_u|
HITS = np.array(
    [
        [0, 0, 0],
        [1, 1, 1],
        [1, 0, 1],
        [0, 0, 1],
    ],
    dtype=bool,
)
N_REL = np.array([1, 3, 4, 2])
L2, L3, L4 = 1 / math.log2(2), 1 / math.log2(3), 1 / math.log2(4)

RECALL = [
    [0, 0, 0],
    [1 / 3, 2 / 3, 3 / 3],
    [1 / 4, 1 / 4, 2 / 4],  # not capped at K: 4 relevant items, K = 3 gives at most 3/4
    [0, 0, 1 / 2],
]
NDCG = [
    [0, 0, 0],
    [1, 1, 1],
    [1, L2 / (L2 + L3), (L2 + L4) / (L2 + L3 + L4)],  # IDCG over min(K, 4) = K positions
    [0, 0, L4 / (L2 + L3)],  # IDCG over min(3, 2) = 2 positions
]
PRECISION = [
    [0, 0, 0],
    [1, 1, 1],
    [1, 1 / 2, 2 / 3],
    [0, 0, 1 / 3],
]
MAP = [
    [0, 0, 0],
    [1, 1, 1],
    [1, 1 / 2, (1 + 2 / 3) / 3],
    [0, 0, (1 / 3) / 2],  # normalised by min(3, 2)
]


@pytest.mark.parametrize(
    "fn, expected",
    [(recall_at, RECALL), (ndcg_at, NDCG), (precision_at, PRECISION), (map_at, MAP)],
)
def test_golden_values(fn, expected):
    expected = np.array(expected, dtype=np.float64)
    for k in (1, 2, 3):
        np.testing.assert_allclose(fn(HITS, N_REL, k), expected[:, k - 1], rtol=0, atol=1e-12)


def test_ndcg_idcg_uses_min_k_and_relevant_count():
    # one relevant item found at rank 1: NDCG is 1 whatever K, since IDCG covers min(K, 1) = 1 position
    hits = np.array([[1, 0, 0, 0]], dtype=bool)
    assert ndcg_at(hits, np.array([1]), 4)[0] == pytest.approx(1.0)
    # two relevant at ranks 1 and 3, six relevant in all, K = 4: IDCG over 4 positions
    hits = np.array([[1, 0, 1, 0]], dtype=bool)
    want = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3) + 1 / math.log2(4) + 1 / math.log2(5))
    assert ndcg_at(hits, np.array([6]), 4)[0] == pytest.approx(want, abs=1e-12)


def test_users_without_relevant_items_are_nan_and_left_out_of_means():
    hits = np.vstack([HITS, np.zeros((1, 3), bool)])
    n_rel = np.append(N_REL, 0)
    per_user = per_user_metrics(hits, n_rel, ks=(3, 2))
    assert list(per_user) == [f"{m}@{k}" for m in ("recall", "ndcg", "precision", "map") for k in (2, 3)]
    assert all(math.isnan(v[-1]) for v in per_user.values())
    mean = mean_metrics(per_user, n_rel)
    assert mean["recall@3"] == pytest.approx((0 + 1 + 2 / 4 + 1 / 2) / 4, abs=1e-12)
    assert mean["ndcg@2"] == pytest.approx((0 + 1 + L2 / (L2 + L3) + 0) / 4, abs=1e-12)
    assert all(math.isnan(v) for v in mean_metrics(per_user, np.zeros(5, int)).values())


def _brute(hits_row, n_rel, k):
    """Textbook definitions, one user at a time."""
    top = list(hits_row[:k])
    n_hit = sum(top)
    dcg = sum(1 / math.log2(r + 2) for r, h in enumerate(top) if h)
    idcg = sum(1 / math.log2(r + 2) for r in range(min(k, n_rel)))
    ap = sum(sum(top[: r + 1]) / (r + 1) for r, h in enumerate(top) if h) / min(k, n_rel)
    return n_hit / n_rel, dcg / idcg, n_hit / k, ap


def test_random_matrices_match_brute_force():
    rng = np.random.default_rng(0)
    hits = rng.random((60, 12)) < 0.3
    n_rel = hits.sum(axis=1) + rng.integers(0, 5, 60)
    n_rel[n_rel == 0] = 1
    for k in (1, 5, 12):
        got = np.stack([recall_at(hits, n_rel, k), ndcg_at(hits, n_rel, k), precision_at(hits, n_rel, k), map_at(hits, n_rel, k)], axis=1)
        want = np.array([_brute(hits[u], int(n_rel[u]), k) for u in range(60)])
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_bad_k_is_rejected():
    with pytest.raises(ValueError, match="K=4"):
        recall_at(HITS, N_REL, 4)
    with pytest.raises(ValueError, match="unknown metric"):
        per_user_metrics(HITS, N_REL, (1,), metrics=("mrr",))
