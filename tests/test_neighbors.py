"""Neighbour search: the tie-break rule, FAISS kNN against numpy brute force, the tail/popular
split of eq. 15, and the fused (eq. 16) APFI candidates against an independent brute force."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.errors import UserError
from pipeline.neighbors.build import build_neighbors
from pipeline.neighbors.candidates import fused_candidates
from pipeline.neighbors.groups import tail_mask, training_degree
from pipeline.neighbors.knn import knn_lists
from pipeline.neighbors.similarity import fused_block, l2_normalize
from pipeline.neighbors.topk import topk_rows


def _cos(x: np.ndarray) -> np.ndarray:
    """Dense float64 cosine matrix, zero rows -> 0 (test-only brute force)."""
    x = x.astype(np.float64)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    x = np.divide(x, n, out=np.zeros_like(x), where=n > 0)
    return x @ x.T


def _brute_lists(sim: np.ndarray, allowed: np.ndarray, k: int, largest: bool) -> list[list[int]]:
    """Per row: the k best allowed columns other than the row itself, ties by lower id (plain loops)."""
    out = []
    for q in range(len(sim)):
        cand = [(-sim[q, j] if largest else sim[q, j], j) for j in range(len(sim)) if allowed[j] and j != q]
        out.append([j for _, j in sorted(cand)[:k]])
    return out


# --- top-k and normalisation ---------------------------------------------------------------------


def test_topk_rows_breaks_ties_by_lower_column_and_marks_excluded():
    key = torch.tensor(
        [
            [0.5, 0.9, 0.5, 0.5, 0.1],  # tie across the cut at k=2: columns 0 and 2 and 3 share 0.5
            [0.2, 0.2, 0.2, 0.2, 0.2],  # all equal
            [float("-inf"), 0.3, float("-inf"), float("-inf"), float("-inf")],  # one valid entry
        ]
    )
    cols, vals, ok = topk_rows(key, 2)
    assert cols.tolist() == [[1, 0], [0, 1], [1, 0]]
    assert vals[0].tolist() == pytest.approx([0.9, 0.5])
    assert ok.tolist() == [[True, True], [True, True], [True, False]]
    cols, _, _ = topk_rows(key, 4)
    assert cols[0].tolist() == [1, 0, 2, 3]


def test_l2_normalize_keeps_zero_rows_zero_and_rejects_nan():
    x = np.array([[3.0, 4.0], [0.0, 0.0]], np.float32)
    normed, nonzero = l2_normalize(x)
    np.testing.assert_allclose(normed, [[0.6, 0.8], [0.0, 0.0]], rtol=1e-6)
    assert nonzero.tolist() == [True, False]
    with pytest.raises(UserError, match=r"image.npy: 2 row\(s\) hold NaN or infinite values \(row = item id\): 0, 2$"):
        l2_normalize(np.array([[np.nan, 1.0], [1.0, 1.0], [1.0, -np.inf]]), "image.npy")


def test_fused_block_is_the_product_of_per_modality_cosines():
    a = torch.tensor([[1.0, 0.0], [0.6, 0.8]])  # unit rows
    b = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    # cos_a = [[1, 0.6], [0.6, 1]], cos_b = [[1, 0], [0, 1]]
    torch.testing.assert_close(fused_block([a, b], [a, b]), torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    torch.testing.assert_close(fused_block([a[1:]], [a]), torch.tensor([[0.6, 1.0]]))  # one modality: its cosine
    with pytest.raises(ValueError, match="expected the same"):
        fused_block([a], [a, b])


# --- FAISS kNN -------------------------------------------------------------------------------------


@pytest.mark.parametrize("dim", [8, 96])
def test_faiss_knn_equals_numpy_brute_force(dim):
    x = np.random.default_rng(dim).standard_normal((300, dim)).astype(np.float32)
    x[17] = 0.0  # a zero vector: no list of its own, never a neighbour
    lists, info = knn_lists(x, 10, block_size=64)
    assert info["items_zero_vector"] == 1 and info["backend"] == "faiss-cpu"
    sim = _cos(x)
    nonzero = np.linalg.norm(x, axis=1) > 0
    expected = _brute_lists(sim, nonzero, 10, largest=True)
    got = lists.per_item(300)
    assert len(got[17]) == 0
    for q in range(300):
        if q == 17:
            continue
        assert got[q].tolist() == expected[q], q  # random data: no ties, exact order
    rows = lists.item.astype(int), lists.neighbor.astype(int)
    np.testing.assert_allclose(lists.score, sim[rows], atol=1e-5)
    assert (lists.rank == np.tile(np.arange(10), 299)).all()


def test_knn_on_duplicates_breaks_ties_by_neighbor_id():
    # items 0, 2, 5 are the same direction (scores tie at 1), item 3 is close, the rest far
    x = np.array([[1, 0, 0], [0, 1, 0], [2, 0, 0], [1, 0.1, 0], [0, 0, 1], [5, 0, 0]], np.float32)
    lists, _ = knn_lists(x, 3)
    got = lists.per_item(6)
    assert got[0].tolist() == [2, 5, 3] and got[5].tolist() == [0, 2, 3] and got[3].tolist() == [0, 2, 5]
    assert got[1].tolist() == [3, 0, 2]  # 3 has cosine 0.0995 with item 1; the rest tie at 0


def test_knn_with_fewer_items_than_k():
    lists, _ = knn_lists(np.eye(3, dtype=np.float32) + 0.1, 10)
    assert [len(v) for v in lists.per_item(3)] == [2, 2, 2]


# --- eq. 15 ----------------------------------------------------------------------------------------


def test_tail_split_by_training_degree_with_ties():
    # item:    0  1  2  3  4  5  6  7  8  9
    # degree:  3  1  0  1  5  1  2  7  1  4
    train_items = [0, 0, 0, 1, 3, 4, 4, 4, 4, 4, 5, 6, 6, 7, 7, 7, 7, 7, 7, 7, 8, 9, 9, 9, 9]
    degree = training_degree(np.array(train_items), 10)
    assert degree.tolist() == [3, 1, 0, 1, 5, 1, 2, 7, 1, 4]
    # ascending degree, ties by id: 2 (0), 1, 3, 5, 8 (1), 6 (2), 0 (3), 9, 4, 7
    assert np.flatnonzero(tail_mask(degree, 0.3)).tolist() == [1, 2, 3]  # floor(0.3 * 10) = 3
    assert np.flatnonzero(tail_mask(degree, 0.45)).tolist() == [1, 2, 3, 5]  # floor(4.5) = 4
    assert np.flatnonzero(tail_mask(degree, 0.6)).tolist() == [1, 2, 3, 5, 6, 8]
    assert not tail_mask(degree, 0.05).any() and tail_mask(degree, 1.0).all()
    assert tail_mask(np.zeros(100), 0.29).sum() == 29  # 0.29 * 100 = 28.999999999999996 in floats
    with pytest.raises(UserError, match="apfi.xi"):
        tail_mask(degree, 1.5)
    with pytest.raises(UserError, match="item ids must lie in 0..9"):
        training_degree(np.array([10]), 10)


# --- eq. 16 candidates -----------------------------------------------------------------------------


def _random_modalities(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "image": rng.random((n, 24), dtype=np.float32),  # non-negative, like CNN features
        "text": rng.standard_normal((n, 12)).astype(np.float32),
    }


@pytest.mark.parametrize("modalities", [("image", "text"), ("text",)])
def test_fused_candidates_equal_brute_force(modalities):
    n = 200
    vecs = {m: v for m, v in _random_modalities(n, 5).items() if m in modalities}
    vecs[modalities[0]][11] = 0.0  # zero vector: no S^f, left out everywhere
    tail = np.zeros(n, dtype=bool)
    tail[np.random.default_rng(1).choice(n, 30, replace=False)] = True
    fused = np.ones((n, n))
    for v in vecs.values():
        fused *= _cos(v)  # eq. 16 written independently
    valid = np.linalg.norm(vecs[modalities[0]], axis=1) > 0
    cands = fused_candidates(vecs, tail, 12, block_size=37)
    assert cands.items_left_out == 1
    exp_tail = _brute_lists(fused, valid & tail, 12, largest=True)
    exp_pop = _brute_lists(fused, valid & ~tail, 12, largest=False)
    got_tail, got_pop = cands.tail.per_item(n), cands.popular.per_item(n)
    for q in range(n):
        if q == 11:
            assert len(got_tail[q]) == 0 and len(got_pop[q]) == 0
            continue
        assert got_tail[q].tolist() == exp_tail[q], q
        assert got_pop[q].tolist() == exp_pop[q], q
    pairs = cands.tail.item.astype(int), cands.tail.neighbor.astype(int)
    np.testing.assert_allclose(cands.tail.score, fused[pairs], atol=1e-5)
    pairs = cands.popular.item.astype(int), cands.popular.neighbor.astype(int)
    np.testing.assert_allclose(cands.popular.score, fused[pairs], atol=1e-5)


def test_short_candidate_lists_when_few_tail_items():
    vecs = _random_modalities(20, 2)
    tail = np.zeros(20, dtype=bool)
    tail[[3, 8]] = True
    cands = fused_candidates(vecs, tail, 5)
    per = cands.tail.per_item(20)
    assert per[3].tolist() == [8] and per[8].tolist() == [3]  # only the other tail item
    assert all(len(per[q]) == 2 for q in range(20) if q not in (3, 8))
    assert all(len(v) == 5 for v in cands.popular.per_item(20))


def test_build_reports_recall_at_default_settings():
    n = 400
    vecs = _random_modalities(n, 9)
    train_items = np.random.default_rng(0).zipf(1.5, 5000) % n
    res = build_neighbors(vecs, train_items, k=10, n_candidates=60, xi=0.1, recall_sample=100, seed=0)
    rep = res.report
    assert rep["n_tail"] == 40 and rep["n_popular"] == 360 and rep["modalities"] == ["image", "text"]
    assert rep["knn"]["image"]["recall_vs_exact"] >= 0.99 and rep["knn"]["text"]["recall_vs_exact"] >= 0.99
    assert rep["tail_candidates"]["recall_vs_exact"] >= 0.99
    assert rep["popular_candidates"]["recall_vs_exact"] >= 0.99
    assert rep["tail_candidates"]["rows"] == 40 * 39 + 360 * 40 and rep["popular_candidates"]["rows"] == n * 60
    assert sorted(res.tables) == ["item_groups", "knn_image", "knn_text", "popular_candidates", "tail_candidates"]
    groups = res.tables["item_groups"][1]
    assert groups["degree"].sum() == 5000 and groups["tail"].sum() == 40


def test_k_beyond_the_catalogue_is_recorded_as_the_list_length():
    vecs = _random_modalities(12, 4)
    res = build_neighbors(vecs, np.arange(12), k=500, n_candidates=5, xi=0.25, recall_sample=12, seed=0)
    assert res.report["k"] == 11 and res.report["k_requested"] == 500  # neighbors.json says what the lists hold
    assert res.report["knn"]["image"]["k"] == 11 and res.report["knn"]["text"]["k"] == 11
    assert res.tables["knn_text"][1].group_by("item").len()["len"].to_list() == [11] * 12
    full = build_neighbors(vecs, np.arange(12), k=5, n_candidates=5, xi=0.25, recall_sample=12, seed=0).report
    assert full["k"] == 5 and "k_requested" not in full and "k" not in full["knn"]["text"]  # unchanged bytes otherwise
