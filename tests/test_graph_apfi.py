"""APFI (eq. 17-21): candidate-list path vs an independent brute force over the dense S^f."""

import numpy as np
import polars as pl
import pytest

from pipeline.errors import UserError
from pipeline.graph.apfi import fused_similarity, pseudo_edges


def lists_from_dense(S: np.ndarray, in_group: np.ndarray, k: int, largest: bool, valid=None) -> pl.DataFrame:
    """Exact candidate lists (what the neighbors stage writes): top/bottom-K of the group, q excluded,
    items with a zero vector (not ``valid``) left out as queries and candidates."""
    valid = np.ones(len(S), bool) if valid is None else valid
    rows = []
    for q in np.flatnonzero(valid):
        cand = [j for j in np.flatnonzero(in_group & valid) if j != q]
        cand.sort(key=lambda j: (-S[q, j] if largest else S[q, j], j))
        rows += [(q, j, float(S[q, j]), r) for r, j in enumerate(cand[:k])]
    q, j, s, r = zip(*rows) if rows else ([], [], [], [])
    return pl.DataFrame(
        {
            "item": pl.Series(q, dtype=pl.Int32),
            "neighbor": pl.Series(j, dtype=pl.Int32),
            "score": pl.Series(s, dtype=pl.Float32),
            "rank": pl.Series(r, dtype=pl.Int16),
        }
    )


def brute_force(S, users, items, in_group, Q, zeta, largest, valid=None):
    """Eq. 17-21 literally: flatten S^f[N_u, :] masked to uninteracted group items, walk it best
    first and keep the first Q distinct items, then apply the zeta condition. Items without S^f
    (not ``valid``) are skipped as rows and columns."""
    valid = np.ones(len(S), bool) if valid is None else valid
    out = {}
    for u in sorted(set(users)):
        n_u = sorted({i for uu, i in zip(users, items) if uu == u})
        flat = [(S[qq, j], j) for qq in n_u if valid[qq] for j in range(len(S)) if in_group[j] and valid[j] and j not in n_u]  # eq. 17 + mask
        flat.sort(key=lambda t: (-t[0] if largest else t[0], t[1]))  # eq. 18 / eq. 20 (top_Q of -PoC)
        chosen = {}
        for w, j in flat:
            if j not in chosen:
                chosen[j] = w
            if len(chosen) == Q:
                break
        out[u] = {j: w for j, w in chosen.items() if (w > zeta if largest else w < zeta)}  # eq. 19 / 21
    return out


def as_dict(res):
    out = {}
    for u, i, w in zip(res.user.tolist(), res.item.tolist(), res.weight.tolist()):
        out.setdefault(u, {})[i] = w
    return out


def dense_factory(S):
    return lambda: (lambda r, c: S[np.ix_(r, c)].astype(np.float32))


def never():
    raise AssertionError("the exact fall-back should not be needed")


# hand case: items 0, 1 tail; 2..5 popular; user 0 interacted with 2 and 3
HAND = np.eye(6, dtype=np.float32)
for (a, b), v in {
    (2, 0): 0.9, (3, 0): 0.7, (2, 1): 0.3, (3, 1): 0.6, (2, 4): 0.15, (3, 4): 0.2,
    (2, 5): 0.3, (3, 5): -0.1, (2, 3): 0.8, (0, 1): 0.2, (4, 5): 0.4, (0, 4): 0.1,
    (0, 5): 0.0, (1, 4): 0.0, (1, 5): 0.0, (0, 2): 0.9,
}.items():
    HAND[a, b] = HAND[b, a] = v
TAIL = np.array([True, True, False, False, False, False])


def run_hand(Q, zeta, largest, k=5):
    group = TAIL if largest else ~TAIL
    return pseudo_edges(
        np.array([0, 0]), np.array([2, 3]), lists_from_dense(HAND, group, k, largest), group,
        q=Q, zeta=zeta, largest=largest, similarity=never,
    )


def test_hand_popi_counts_an_item_once_with_its_best_weight():
    # flattened top-2 is (0.9, item 0), (0.7, item 0): one edge, so item 1 (0.6) is the second
    res = run_hand(2, 0.4, True)
    assert res.user.tolist() == [0, 0] and res.item.tolist() == [0, 1]
    np.testing.assert_allclose(res.weight, [0.9, 0.6], rtol=1e-6)
    assert run_hand(2, 0.7, True).item.tolist() == [0]  # eq. 19: 0.6 is not > 0.7
    assert run_hand(1, 0.4, True).item.tolist() == [0]


def test_hand_nepi_least_similar_uninteracted_popular():
    # w(4) = min(0.15, 0.2) = 0.15 is not < 0.1; w(5) = min(0.3, -0.1) = -0.1 is kept
    res = run_hand(2, 0.1, False)
    assert res.item.tolist() == [5]
    np.testing.assert_allclose(res.weight, [-0.1], rtol=1e-6)
    assert run_hand(2, 0.2, False).item.tolist() == [4, 5]


def test_hand_matches_brute_force():
    for largest, zeta in ((True, 0.4), (False, 0.1)):
        group = TAIL if largest else ~TAIL
        expected = brute_force(HAND, [0, 0], [2, 3], group, 2, zeta, largest)
        got = as_dict(run_hand(2, zeta, largest))
        assert got.keys() == expected.keys()
        for u in got:
            assert got[u] == pytest.approx(expected[u])


def random_case(seed, n_users=30, n_items=48, max_items=12):
    rng = np.random.default_rng(seed)
    feats = [rng.normal(size=(n_items, 6)).astype(np.float32), rng.normal(size=(n_items, 5)).astype(np.float32)]
    feats[0][7] = 0.0  # a zero vector: similarity 0 with everything
    norm = [f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-30) for f in feats]
    S = ((norm[0].astype(np.float64) @ norm[0].T) * (norm[1].astype(np.float64) @ norm[1].T)).astype(np.float32)
    users, items = [], []
    for u in range(n_users):
        n = int(rng.integers(1, max_items + 1))
        for i in rng.choice(n_items, size=n, replace=False):
            users.append(u)
            items.append(int(i))
    in_group = np.zeros(n_items, bool)
    in_group[rng.choice(n_items, size=n_items // 3, replace=False)] = True
    return feats, S, np.array(users), np.array(items), in_group


@pytest.mark.parametrize("largest", [True, False])
@pytest.mark.parametrize("seed", [0, 3])
def test_lists_with_exact_fallback_equal_brute_force(seed, largest):
    # heavy users and K = Q: many lists are mostly interacted items, so some users need the fall-back
    feats, S, users, items, tail = random_case(seed, max_items=36)
    group = tail if largest else ~tail
    Q, K = 4, 4
    zeta = -0.5 if largest else 0.5
    res = pseudo_edges(
        users, items, lists_from_dense(S, group, K, largest), group,
        q=Q, zeta=zeta, largest=largest, similarity=lambda: fused_similarity(feats), chunk_rows=50,
    )
    expected = brute_force(S, users.tolist(), items.tolist(), group, Q, zeta, largest)
    got = as_dict(res)
    assert {u: sorted(v) for u, v in got.items()} == {u: sorted(v) for u, v in expected.items() if v}
    for u in got:
        for j, w in got[u].items():
            assert w == pytest.approx(float(expected[u][j]), abs=1e-5)
    # both paths are exercised: some users are answered by the lists, some need the fall-back
    assert 0 < res.n_fallback_users < len(set(users.tolist()))


def test_complete_lists_need_no_fallback():
    feats, S, users, items, tail = random_case(3)
    for largest, group in ((True, tail), (False, ~tail)):
        res = pseudo_edges(
            users, items, lists_from_dense(S, group, len(S), largest), group,
            q=5, zeta=0.0, largest=largest, similarity=never,
        )
        assert res.n_fallback_users == 0
        expected = brute_force(S, users.tolist(), items.tolist(), group, 5, 0.0, largest)
        assert {u: sorted(v) for u, v in as_dict(res).items()} == {u: sorted(v) for u, v in expected.items() if v}


def test_pseudo_edges_avoid_interacted_items():
    _, S, users, items, tail = random_case(4)
    seen = set(zip(users.tolist(), items.tolist()))
    for largest, group in ((True, tail), (False, ~tail)):
        res = pseudo_edges(
            users, items, lists_from_dense(S, group, len(S), largest), group,
            q=10, zeta=0.0, largest=largest, similarity=never,
        )
        assert len(res) > 0
        assert not seen & set(zip(res.user.tolist(), res.item.tolist()))
        assert group[res.item].all()


def test_short_lists_rejected():
    _, S, users, items, tail = random_case(5)
    with pytest.raises(UserError, match="apfi.q"):
        pseudo_edges(users, items, lists_from_dense(S, tail, 3, True), tail, q=4, zeta=0.0, largest=True, similarity=never)


def test_foreign_neighbor_rejected():
    _, S, users, items, tail = random_case(6)
    lists = lists_from_dense(S, ~tail, 5, True)  # popular items in a list used as the tail group
    with pytest.raises(UserError, match="not in this list's item group"):
        pseudo_edges(users, items, lists, tail, q=4, zeta=0.0, largest=True, similarity=never)


def test_fused_similarity_is_product_of_cosines():
    a = np.array([[1, 0], [1, 1], [0, 0]], np.float32)
    b = np.array([[0, 2], [3, 0], [1, 1]], np.float32)
    s = fused_similarity([a, b])(np.array([0, 1]), np.array([0, 1, 2]))
    # cos_a(0,1) = 1/sqrt2, cos_b(0,1) = 0; row 1 vs 2: cos_a(1,2) = 0 (zero vector)
    np.testing.assert_allclose(s, [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], atol=1e-6)
    single = fused_similarity([a])(np.array([0]), np.array([1]))
    np.testing.assert_allclose(single, [[2 ** -0.5]], rtol=1e-6)


def test_fallback_recovers_item_hidden_behind_interacted_list():
    # tail = 0..3; the user has 4 (popular), 0 and 1. K = Q = 2: the tail list of item 4 is [0, 1],
    # both interacted, hiding item 2 (0.7); the other lists only reach item 3. Lists alone would
    # answer {3}; the exact answer is {2: 0.7, 3: 0.15}.
    S = np.eye(8, dtype=np.float32)
    for (a, b), v in {
        (4, 0): 0.9, (4, 1): 0.8, (4, 2): 0.7, (4, 3): 0.1,
        (0, 1): 0.2, (0, 2): 0.1, (0, 3): 0.15, (1, 2): 0.05, (1, 3): 0.12, (2, 3): 0.3,
    }.items():
        S[a, b] = S[b, a] = v
    tail = np.arange(8) < 4
    users, items = np.array([0, 0, 0]), np.array([4, 0, 1])
    lists = lists_from_dense(S, tail, 2, True)
    assert lists.filter(pl.col("item") == 4)["neighbor"].to_list() == [0, 1]
    res = pseudo_edges(users, items, lists, tail, q=2, zeta=0.0, largest=True, similarity=dense_factory(S))
    assert res.n_fallback_users == 1
    assert as_dict(res) == {0: pytest.approx({2: 0.7, 3: 0.15})}
    assert as_dict(res) == {0: pytest.approx(brute_force(S, [0, 0, 0], [4, 0, 1], tail, 2, 0.0, True)[0])}


@pytest.mark.parametrize("largest", [True, False])
def test_zero_vector_items_neither_reach_nor_receive_pseudo_edges(largest):
    feats, S, users, items, tail = random_case(0, max_items=36)
    feats[1][11] = 0.0
    S = S.copy()
    S[11, :] = S[:, 11] = 0.0
    valid = np.ones(len(S), bool)
    valid[[7, 11]] = False  # feats[0][7] and feats[1][11] are zero vectors
    group = tail if largest else ~tail
    zeta = -0.5 if largest else 0.5
    res = pseudo_edges(
        users, items, lists_from_dense(S, group, 4, largest, valid), group,
        q=4, zeta=zeta, largest=largest, similarity=lambda: fused_similarity(feats), valid=valid,
    )
    expected = brute_force(S, users.tolist(), items.tolist(), group, 4, zeta, largest, valid)
    got = as_dict(res)
    assert {u: sorted(v) for u, v in got.items()} == {u: sorted(v) for u, v in expected.items() if v}
    assert not np.isin(res.item, [7, 11]).any()
    assert res.n_fallback_users > 0
    assert np.isin(items, [7, 11]).any()  # some users did interact with them


def test_zeta_compares_in_float32():
    # S[0, 1] = float32(0.4) equals zeta = 0.4 and is not kept (eq. 19 needs >), on both paths
    S = np.eye(4, dtype=np.float32)
    for (a, b), v in {(0, 1): 0.4, (0, 2): 0.45, (0, 3): 0.41, (1, 2): 0.1, (2, 3): 0.1, (1, 3): 0.1}.items():
        S[a, b] = S[b, a] = np.float32(v)
    tail = np.array([False, True, True, True])
    users, items = np.array([0, 0]), np.array([0, 2])
    full = pseudo_edges(users, items, lists_from_dense(S, tail, 3, True), tail, q=2, zeta=0.4, largest=True, similarity=never)
    # K = 2: item 0's list [2, 3] holds one uninteracted item, so the user is recomputed exactly
    short = pseudo_edges(users, items, lists_from_dense(S, tail, 2, True), tail, q=2, zeta=0.4, largest=True, similarity=dense_factory(S))
    assert (full.n_fallback_users, short.n_fallback_users) == (0, 1)
    assert full.item.tolist() == short.item.tolist() == [3]
