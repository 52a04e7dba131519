"""Neighbour search: the tie-break rule, kNN (FAISS and the exact torch search, on every device)
against numpy brute force and against each other, the tail/popular split of eq. 15, and the fused
(eq. 16) APFI candidates against an independent brute force."""

from __future__ import annotations

import logging
import sys

import numpy as np
import pytest
import torch

from pipeline.errors import UserError
from pipeline.neighbors.build import build_candidates, build_knn
from pipeline.neighbors.candidates import fused_candidates
from pipeline.neighbors.groups import tail_mask, training_degree
from pipeline.neighbors.knn import NeighborLists, knn_backend, knn_lists
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


# --- kNN: FAISS and the torch search --------------------------------------------------------------

TIE = 1e-6  # scores this close are a tie: two exact searches may order them either way
GAP = 2e-6  # data whose adjacent top scores are further apart than this (float32 rounding: ~1e-7) has one right order


def _has_faiss() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def _search(prefer: str, device: str) -> str:
    """The backend ``knn_lists(..., device=device, backend=prefer)`` runs; skips what this machine lacks."""
    if prefer == "faiss":
        if not _has_faiss():
            pytest.skip("faiss is not installed")
        if device != "cpu" and knn_backend(device, "faiss") != "faiss-gpu":
            pytest.skip("this faiss build has no GPU support (faiss-cpu is tested on the cpu device)")
    return knn_backend(device, prefer)


def _score_of(lists: NeighborLists) -> dict[tuple[int, int], float]:
    return {(int(i), int(j)): float(v) for i, j, v in zip(lists.item, lists.neighbor, lists.score)}


def _assert_same_up_to_ties(a: NeighborLists, b: NeighborLists, n: int) -> int:
    """``a`` and ``b`` hold the same lists, except where scores tie within ``TIE``: per item the
    same length and the same scores rank by rank, the same score for a pair in both, and a
    neighbour in one list only scores as the other's last entry (a tie at the cut). The same
    cut items with the same cut scores. Returns how many lists differ."""
    pa, pb = a.per_item(n), b.per_item(n)
    sa, sb = _score_of(a), _score_of(b)
    differ = 0
    for q in range(n):
        x, y = pa[q], pb[q]
        assert len(x) == len(y), q
        if not len(x):
            continue
        ra, rb = np.array([sa[q, int(j)] for j in x]), np.array([sb[q, int(j)] for j in y])
        np.testing.assert_allclose(ra, rb, rtol=0, atol=TIE, err_msg=f"item {q}")
        for j in set(x.tolist()) & set(y.tolist()):
            assert abs(sa[q, j] - sb[q, j]) <= TIE, (q, j)
        for j in set(x.tolist()) - set(y.tolist()):
            assert abs(sa[q, j] - rb[-1]) <= TIE, (q, j)
        for j in set(y.tolist()) - set(x.tolist()):
            assert abs(sb[q, j] - ra[-1]) <= TIE, (q, j)
        differ += not np.array_equal(x, y)
    assert a.cut_item.tolist() == b.cut_item.tolist()
    np.testing.assert_allclose(a.cut_score, b.cut_score, rtol=0, atol=TIE)
    return differ


def _min_gap_at_top(x: np.ndarray, k: int) -> float:
    """Smallest float64 gap between adjacent scores among each item's k + 1 best other items."""
    sim = _cos(x)
    np.fill_diagonal(sim, -np.inf)
    top = -np.sort(-sim, axis=1)[:, : k + 1]
    return float(np.diff(-top, axis=1).min())


def _with_planted_ties(n: int, dim: int, seed: int) -> np.ndarray:
    """Random vectors, a fifth of them replaced by 0/1 vectors (many equal cosines), and copies
    scaled by 2 or 4 (the same direction to the last bit: cosine 1 ties) of a tenth of them."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim)).astype(np.float32)
    binary = rng.choice(n, n // 5, replace=False)
    x[binary] = (rng.random((len(binary), dim)) < 0.3).astype(np.float32)
    x[binary[np.abs(x[binary]).sum(1) == 0], 0] = 1.0
    src = rng.choice(n, n // 10, replace=False)
    dst = rng.choice(np.setdiff1d(np.arange(n), src), n // 10, replace=False)
    x[dst] = x[src] * rng.choice(np.array([2.0, 4.0], np.float32), (len(src), 1))
    return x


@pytest.mark.parametrize("prefer", ["faiss", "torch"])
@pytest.mark.parametrize(("dim", "seed"), [(8, 8), (96, 5)])
def test_knn_equals_numpy_brute_force(dim, seed, prefer, device):
    backend = _search(prefer, device)
    x = np.random.default_rng(seed).standard_normal((300, dim)).astype(np.float32)
    x[17] = 0.0  # a zero vector: no list of its own, never a neighbour
    assert _min_gap_at_top(np.delete(x, 17, axis=0), 10) > GAP  # no near-ties: one right order
    lists, info = knn_lists(x, 10, block_size=64, device=device, backend=prefer)
    assert info == {"backend": backend, "items_zero_vector": 1}
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
    # the cut: every list is cut, at the 11th best score
    assert lists.cut_item.tolist() == [q for q in range(300) if q != 17]
    eleventh = [sorted((sim[q, j] for j in range(300) if nonzero[j] and j != q), reverse=True)[10] for q in lists.cut_item]
    np.testing.assert_allclose(lists.cut_score, eleventh, atol=1e-5)


@pytest.mark.parametrize("planted_ties", [False, True], ids=["no-ties", "planted-ties"])
def test_torch_knn_gives_the_faiss_lists(planted_ties, device):
    """The torch search on each device against FAISS on the CPU: identical lists on data without
    near-ties, identical up to ties within 1e-6 with planted ties."""
    if not _has_faiss():
        pytest.skip("faiss is not installed")
    n, dim, k = 500, 48, 10
    if planted_ties:
        x = _with_planted_ties(n, dim, seed=3)
        sim = _cos(x)
        np.fill_diagonal(sim, -np.inf)
        kth = -np.sort(-sim, axis=1)[:, k - 1 : k + 1]
        assert (kth[:, 0] == kth[:, 1]).sum() >= 10  # ties at the cut, in exact arithmetic too
    else:
        x = np.random.default_rng(2).standard_normal((n, dim)).astype(np.float32)
    x[[7, 300]] = 0.0
    if not planted_ties:
        assert _min_gap_at_top(np.delete(x, [7, 300], axis=0), k) > GAP
    ref, ref_info = knn_lists(x, k, block_size=128, backend="faiss")
    got, info = knn_lists(x, k, block_size=128, device=device, backend="torch")
    assert ref_info["backend"] == "faiss-cpu" and info["backend"] == f"torch-{device}"
    assert info["items_zero_vector"] == ref_info["items_zero_vector"] == 2
    differ = _assert_same_up_to_ties(got, ref, n)
    if not planted_ties:
        assert differ == 0
        assert (got.item == ref.item).all() and (got.neighbor == ref.neighbor).all() and (got.rank == ref.rank).all()


@pytest.mark.parametrize("prefer", ["faiss", "torch"])
def test_knn_on_duplicates_breaks_ties_by_neighbor_id(prefer, device):
    _search(prefer, device)
    # items 0, 2, 5 are the same direction (scores tie at 1), item 3 is close, the rest far
    x = np.array([[1, 0, 0], [0, 1, 0], [2, 0, 0], [1, 0.1, 0], [0, 0, 1], [5, 0, 0]], np.float32)
    lists, _ = knn_lists(x, 3, device=device, backend=prefer)
    got = lists.per_item(6)
    assert got[0].tolist() == [2, 5, 3] and got[5].tolist() == [0, 2, 3] and got[3].tolist() == [0, 2, 5]
    assert got[1].tolist() == [3, 0, 2]  # 3 has cosine 0.0995 with item 1; the rest tie at 0
    # the cut of item 1's list is the first tie left out (item 4 or 5, both at cosine 0)
    assert dict(zip(lists.cut_item.tolist(), lists.cut_score.tolist()))[1] == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize("prefer", ["faiss", "torch"])
def test_knn_with_fewer_items_than_k(prefer, device):
    _search(prefer, device)
    lists, _ = knn_lists(np.eye(3, dtype=np.float32) + 0.1, 10, device=device, backend=prefer)
    assert [len(v) for v in lists.per_item(3)] == [2, 2, 2]
    assert len(lists.cut_item) == 0  # every other item is listed: nothing is left out, no cut


class _Records(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_knn_without_faiss_runs_the_torch_search_and_says_so(monkeypatch, device):
    monkeypatch.setitem(sys.modules, "faiss", None)  # `import faiss` raises ImportError, as where it is not installed
    records = _Records()
    logger = logging.getLogger("simgr.neighbors.knn")
    logger.addHandler(records)
    try:
        x = np.random.default_rng(0).standard_normal((60, 5)).astype(np.float32)
        lists, info = knn_lists(x, 4, device=device)
    finally:
        logger.removeHandler(records)
    assert info["backend"] == f"torch-{device}"
    assert any("faiss is not installed" in m and f"torch-{device}" in m for m in records.messages)
    expected = _brute_lists(_cos(x), np.ones(60, bool), 4, largest=True)
    assert [v.tolist() for v in lists.per_item(60)] == expected
    with pytest.raises(UserError, match="faiss is not installed"):
        knn_lists(x, 4, device=device, backend="faiss")


def test_knn_backend_choice(monkeypatch):
    # decided without touching a GPU: only the names and what faiss offers
    assert knn_backend("cpu", "torch") == "torch-cpu" and knn_backend("cuda:1", "torch") == "torch-cuda"
    if _has_faiss():
        import faiss

        assert knn_backend("cpu") == "faiss-cpu"
        if not hasattr(faiss, "StandardGpuResources"):  # faiss-cpu on a CUDA device: the torch search runs there
            assert knn_backend("cuda") == "torch-cuda"
            assert knn_backend("cuda", "faiss") == "faiss-cpu"
    monkeypatch.setitem(sys.modules, "faiss", None)
    assert knn_backend("cpu") == "torch-cpu" and knn_backend("cuda") == "torch-cuda"
    with pytest.raises(ValueError, match="prefer"):
        knn_backend("cpu", "annoy")


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
def test_fused_candidates_equal_brute_force(modalities, device):
    n = 200
    vecs = {m: v for m, v in _random_modalities(n, 5).items() if m in modalities}
    vecs[modalities[0]][11] = 0.0  # zero vector: no S^f, left out everywhere
    tail = np.zeros(n, dtype=bool)
    tail[np.random.default_rng(1).choice(n, 30, replace=False)] = True
    fused = np.ones((n, n))
    for v in vecs.values():
        fused *= _cos(v)  # eq. 16 written independently
    valid = np.linalg.norm(vecs[modalities[0]], axis=1) > 0
    cands = fused_candidates(vecs, tail, 12, block_size=37, device=device)
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


def test_short_candidate_lists_when_few_tail_items(device):
    vecs = _random_modalities(20, 2)
    tail = np.zeros(20, dtype=bool)
    tail[[3, 8]] = True
    cands = fused_candidates(vecs, tail, 5, device=device)
    per = cands.tail.per_item(20)
    assert per[3].tolist() == [8] and per[8].tolist() == [3]  # only the other tail item
    assert all(len(per[q]) == 2 for q in range(20) if q not in (3, 8))
    assert all(len(v) == 5 for v in cands.popular.per_item(20))


def test_build_reports_recall_at_default_settings(device):
    n = 400
    vecs = _random_modalities(n, 9)
    train_items = np.random.default_rng(0).zipf(1.5, 5000) % n
    knn = build_knn(vecs, k=10, recall_sample=100, seed=0, device=device)
    assert knn.report["modalities"] == ["image", "text"] and sorted(knn.tables) == ["knn_image", "knn_text"]
    assert knn.report["device"] == device and knn.report["knn"]["image"]["backend"] == knn_backend(device)
    assert knn.report["knn"]["image"]["recall_vs_exact"] >= 0.99 and knn.report["knn"]["text"]["recall_vs_exact"] >= 0.99
    res = build_candidates(vecs, train_items, n_candidates=60, xi=0.1, recall_sample=100, seed=0, device=device)
    rep = res.report
    assert rep["n_tail"] == 40 and rep["n_popular"] == 360
    assert rep["tail_candidates"]["recall_vs_exact"] >= 0.99
    assert rep["popular_candidates"]["recall_vs_exact"] >= 0.99
    assert rep["tail_candidates"]["rows"] == 40 * 39 + 360 * 40 and rep["popular_candidates"]["rows"] == n * 60
    assert sorted(res.tables) == ["item_groups", "popular_candidates", "tail_candidates"]
    groups = res.tables["item_groups"][1]
    assert groups["degree"].sum() == 5000 and groups["tail"].sum() == 40
    parts = set(res.fingerprint["part"]) | set(knn.fingerprint["part"])
    assert parts == {"knn_image", "knn_text", "tail_candidates", "popular_candidates", "item_groups"}


def test_k_beyond_the_catalogue_is_recorded_as_the_list_length():
    vecs = _random_modalities(12, 4)
    res = build_knn(vecs, k=500, recall_sample=12, seed=0)
    assert res.report["k"] == 11 and res.report["k_requested"] == 500  # neighbors.json says what the lists hold
    assert res.report["knn"]["image"]["k"] == 11 and res.report["knn"]["text"]["k"] == 11
    assert res.tables["knn_text"][1].group_by("item").len()["len"].to_list() == [11] * 12
    full = build_knn(vecs, k=5, recall_sample=12, seed=0).report
    assert full["k"] == 5 and "k_requested" not in full and "k" not in full["knn"]["text"]  # unchanged bytes otherwise
