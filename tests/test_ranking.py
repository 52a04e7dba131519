"""Full ranking: masking protocols, evaluated users, batching, short item lists, against brute force;
one shared ranking for valid + test (``evaluate_splits``), equal to the per-split rankings bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.evaluation.metrics import map_at, ndcg_at, precision_at, recall_at
from pipeline.evaluation import ranking
from pipeline.evaluation.ranking import SCORE_BLOCK, EvalSets, evaluate, evaluate_splits


def _random_sets(seed: int = 0, n_users: int = 40, n_items: int = 30, one_split: bool = False):
    """Each user gets disjoint train/valid/test items; user 0 has no train, user 1 no valid/test;
    with ``one_split``, users 5k + 2 have no valid item and users 5k + 3 no test item."""
    rng = np.random.default_rng(seed)
    split = {"train": ([], []), "valid": ([], []), "test": ([], [])}
    for u in range(n_users):
        items = rng.permutation(n_items)[: rng.integers(4, 15)]
        n_tr, n_va = max(1, len(items) - 4), 2
        parts = {"train": items[:n_tr], "valid": items[n_tr : n_tr + n_va], "test": items[n_tr + n_va :]}
        if u == 0:
            parts["train"] = items[:0]
        if u == 1:
            parts["valid"] = parts["test"] = items[:0]
        if one_split and u % 5 in (2, 3):
            parts["valid" if u % 5 == 2 else "test"] = items[:0]
        for name, its in parts.items():
            split[name][0].extend([u] * len(its))
            split[name][1].extend(its.tolist())
    arr = {k: (np.array(v[0], np.int64), np.array(v[1], np.int64)) for k, v in split.items()}
    return EvalSets(n_users, n_items, arr["train"], arr["valid"], arr["test"])


def _embeddings(n_users, n_items, seed=0, d=8):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n_users, d, generator=g), torch.randn(n_items, d, generator=g)


def _brute_force(user_emb, item_emb, sets, split, protocol, k):
    """Per-user Python reference: sort all unmasked items, mark hits, textbook metrics."""
    scores = (user_emb @ item_emb.T).numpy()
    pairs = {name: set(zip(*[a.tolist() for a in getattr(sets, name)])) for name in ("train", "valid", "test")}
    masked = pairs["train"] | (pairs["valid"] if protocol == "strict" and split == "test" else set())
    out = {}
    for u in range(sets.n_users):
        rel = {i for (uu, i) in pairs[split] if uu == u}
        if not rel or not any(uu == u for (uu, _) in pairs["train"]):
            continue
        cand = [i for i in range(sets.n_items) if (u, i) not in masked]
        ranked = sorted(cand, key=lambda i: (-scores[u, i], i))[:k]
        out[u] = (ranked, [i in rel for i in ranked], len(rel))
    return out


@pytest.mark.parametrize("protocol", ["mmrec", "strict"])
@pytest.mark.parametrize("split", ["valid", "test"])
def test_matches_brute_force(protocol, split):
    sets = _random_sets()
    ue, ie = _embeddings(sets.n_users, sets.n_items)
    res = evaluate(ue, ie, sets, split=split, ks=(5, 10), protocol=protocol, batch_size=7)
    ref = _brute_force(ue, ie, sets, split, protocol, 10)
    assert res.users.tolist() == sorted(ref)
    assert 0 not in ref and 1 not in ref  # no train items / no held-out items
    assert res.n_dropped_no_train == 1
    hits = np.array([ref[u][1] for u in res.users])
    n_rel = np.array([ref[u][2] for u in res.users])
    assert res.topk_items.tolist() == [ref[u][0] for u in res.users]
    assert res.n_relevant.tolist() == n_rel.tolist()
    for k in (5, 10):
        for name, fn in (("recall", recall_at), ("ndcg", ndcg_at), ("precision", precision_at), ("map", map_at)):
            np.testing.assert_allclose(res.per_user[f"{name}@{k}"], fn(hits, n_rel, k), atol=1e-12)
            assert res.mean[f"{name}@{k}"] == pytest.approx(float(fn(hits, n_rel, k).mean()), abs=1e-12)


def test_training_items_never_recommended_and_batched_equals_unbatched():
    sets = _random_sets(seed=3)
    ue, ie = _embeddings(sets.n_users, sets.n_items, seed=3)
    full = evaluate(ue, ie, sets, split="test", ks=(10, 20), batch_size=10_000)
    small = evaluate(ue, ie, sets, split="test", ks=(10, 20), batch_size=3)
    np.testing.assert_array_equal(full.topk_items, small.topk_items)
    np.testing.assert_array_equal(full.topk_scores, small.topk_scores)  # fixed-shape score GEMMs: same bits
    assert full.mean == small.mean
    tu, ti = sets.train
    train = set(zip(tu.tolist(), ti.tolist()))
    for row, u in enumerate(full.users):
        assert not any((int(u), int(i)) in train for i in full.topk_items[row])


def _one_user_sets(train, valid, test, n_items=6):
    a = lambda items: (np.zeros(len(items), np.int64), np.array(items, np.int64))  # noqa: E731
    return EvalSets(1, n_items, a(train), a(valid), a(test))


def test_validation_item_masked_only_under_strict():
    # item scores equal their id / 10: item 5 (validation) ranks first unless masked
    sets = _one_user_sets(train=[0], valid=[5], test=[4])
    ue = torch.ones(1, 1)
    ie = torch.arange(6, dtype=torch.float32)[:, None] / 10
    mm = evaluate(ue, ie, sets, split="test", ks=(1, 2), protocol="mmrec")
    st = evaluate(ue, ie, sets, split="test", ks=(1, 2), protocol="strict")
    assert mm.topk_items.tolist() == [[5, 4]]  # validation item rankable under mmrec ...
    assert mm.mean["recall@1"] == 0.0 and mm.mean["recall@2"] == 1.0
    assert mm.mean["ndcg@2"] == pytest.approx(1 / np.log2(3))
    assert st.topk_items.tolist() == [[4, 3]]  # ... masked under strict
    assert st.mean["recall@1"] == 1.0 and st.mean["ndcg@1"] == 1.0
    # on the validation split both protocols mask training items only
    va = evaluate(ue, ie, sets, split="valid", ks=(1,), protocol="strict")
    assert va.topk_items.tolist() == [[5]] and va.mean["recall@1"] == 1.0


def test_fewer_rankable_items_than_k():
    # 6 items, 4 in training: only items 4 and 5 can be ranked; ranks 2.. are empty, never hits
    sets = _one_user_sets(train=[0, 1, 2, 3], valid=[4], test=[5])
    ue = torch.ones(1, 1)
    ie = -torch.arange(6, dtype=torch.float32)[:, None]  # training items score highest
    res = evaluate(ue, ie, sets, split="test", ks=(5, 10), protocol="mmrec")
    assert res.topk_items.tolist() == [[4, 5] + [-1] * 8]
    assert np.isneginf(res.topk_scores[0, 2:]).all()
    assert res.per_user["precision@5"].tolist() == [1 / 5]
    assert res.mean["recall@10"] == 1.0
    assert res.mean["ndcg@5"] == pytest.approx(1 / np.log2(3))
    strict = evaluate(ue, ie, sets, split="test", ks=(5,), protocol="strict")
    assert strict.topk_items.tolist() == [[5, -1, -1, -1, -1]] and strict.mean["ndcg@5"] == 1.0


def test_ties_are_broken_by_item_id():
    sets = _one_user_sets(train=[1], valid=[], test=[3], n_items=6)
    res = evaluate(torch.ones(1, 1), torch.ones(6, 1), sets, split="test", ks=(5,))
    assert res.topk_items.tolist() == [[0, 2, 3, 4, 5]]
    assert res.per_user["recall@5"].tolist() == [1.0]


def test_from_data_and_bad_input():
    class Split:
        def __init__(self, u, i):
            self.user, self.item = np.array(u), np.array(i)

    class Data:
        n_users, n_items = 2, 3
        train, valid, test = Split([0, 1], [0, 1]), Split([0], [2]), Split([1], [2])

    sets = EvalSets.from_data(Data())
    ue, ie = torch.eye(2, 2), torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    res = evaluate(ue, ie, sets, split="test", ks=(1,))
    assert res.users.tolist() == [1] and res.topk_items.tolist() == [[2]]
    with pytest.raises(ValueError, match="protocol"):
        evaluate(ue, ie, sets, protocol="loose")
    with pytest.raises(ValueError, match="embeddings cover"):
        evaluate(ue[:1], ie, sets)
    with pytest.raises(ValueError, match="NaN"):
        evaluate(ue * float("nan"), ie, sets)
    with pytest.raises(ValueError, match="item ids"):
        EvalSets(2, 3, ([0], [3]), ([], []), ([], []))


# --- evaluate_splits: one ranking per mask -------------------------------------------------------


def _same(a, b):
    """Two EvalResults are equal bit for bit."""
    assert (a.split, a.protocol, a.ks, a.n_dropped_no_train) == (b.split, b.protocol, b.ks, b.n_dropped_no_train)
    for name in ("users", "n_relevant", "topk_items", "topk_scores"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
        assert getattr(a, name).dtype == getattr(b, name).dtype
    assert a.per_user.keys() == b.per_user.keys()
    for name in a.per_user:
        np.testing.assert_array_equal(a.per_user[name], b.per_user[name], err_msg=name)
    assert a.mean == b.mean


def _four_users():
    """6 items, item i scores i / 10 for every user; user 0 has valid and test items, user 1 test only,
    user 2 valid only, user 3 no training item (dropped from both splits)."""
    pair = lambda *ui: (np.array([u for u, _ in ui], np.int64), np.array([i for _, i in ui], np.int64))  # noqa: E731
    sets = EvalSets(4, 6, train=pair((0, 0), (1, 5), (2, 1)), valid=pair((0, 5), (2, 4), (3, 2)),
                    test=pair((0, 4), (0, 3), (1, 4), (3, 1)))
    return sets, torch.ones(4, 1), torch.arange(6, dtype=torch.float32)[:, None] / 10


def _count_rankings(monkeypatch):
    calls = []
    real = ranking._rank_batch

    def spy(user_emb, item_emb, batch, mask_csr, k, buffer=None):
        calls.append((batch.tolist(), len(mask_csr)))
        return real(user_emb, item_emb, batch, mask_csr, k, buffer)

    monkeypatch.setattr(ranking, "_rank_batch", spy)
    return calls


def test_mmrec_ranks_valid_and_test_once(monkeypatch):
    sets, ue, ie = _four_users()
    calls = _count_rankings(monkeypatch)
    res = evaluate_splits(ue, ie, sets, ks=(1, 3), protocol="mmrec")
    assert calls == [([0, 1, 2], 1)]  # the union of both splits' users, training items masked, one batch
    va, te = res["valid"], res["test"]
    assert list(res) == ["valid", "test"] and va.split == "valid" and te.split == "test"
    assert va.users.tolist() == [0, 2] and te.users.tolist() == [0, 1]  # user 1 only in test, 2 only in valid
    assert va.n_dropped_no_train == te.n_dropped_no_train == 1  # user 3
    # training items masked: user 0 loses item 0, user 1 item 5, user 2 item 1
    assert va.topk_items.tolist() == [[5, 4, 3], [5, 4, 3]]
    assert te.topk_items.tolist() == [[5, 4, 3], [4, 3, 2]]
    assert va.topk_items[0].tolist() == te.topk_items[0].tolist()  # one ranking of user 0 serves both splits
    np.testing.assert_array_equal(te.topk_scores[1], np.float32([0.4, 0.3, 0.2]))
    assert va.per_user["recall@1"].tolist() == [1.0, 0.0] and va.per_user["recall@3"].tolist() == [1.0, 1.0]
    assert te.per_user["recall@1"].tolist() == [0.0, 1.0] and te.per_user["recall@3"].tolist() == [1.0, 1.0]
    assert te.n_relevant.tolist() == [2, 1]
    assert te.per_user["ndcg@3"][0] == pytest.approx((1 / np.log2(3) + 1 / np.log2(4)) / (1 + 1 / np.log2(3)))


def test_strict_ranks_test_separately_with_validation_items_masked(monkeypatch):
    sets, ue, ie = _four_users()
    calls = _count_rankings(monkeypatch)
    res = evaluate_splits(ue, ie, sets, ks=(1, 3), protocol="strict")
    assert calls == [([0, 2], 1), ([0, 1], 2)]  # valid: train masked; test: train + valid masked
    assert res["valid"].topk_items.tolist() == [[5, 4, 3], [5, 4, 3]]
    assert res["test"].topk_items.tolist() == [[4, 3, 2], [4, 3, 2]]  # user 0's validation item 5 masked
    assert res["test"].per_user["recall@1"].tolist() == [0.5, 1.0]
    assert res["test"].per_user["ndcg@3"].tolist() == [1.0, 1.0]


def test_one_split_ranks_its_users_only(monkeypatch):
    sets, ue, ie = _four_users()
    calls = _count_rankings(monkeypatch)
    va = evaluate(ue, ie, sets, split="valid", ks=(3,))  # the trainer's per-epoch validation
    te = evaluate_splits(ue, ie, sets, splits="test", ks=(3,))
    assert calls == [([0, 2], 1), ([0, 1], 1)]
    assert va.users.tolist() == [0, 2] and list(te) == ["test"] and te["test"].users.tolist() == [0, 1]


@pytest.mark.parametrize("protocol", ["mmrec", "strict"])
def test_joint_equals_separate_and_brute_force(protocol):
    sets = _random_sets(seed=5, n_users=700, n_items=90, one_split=True)
    ue, ie = _embeddings(sets.n_users, sets.n_items, seed=5, d=16)
    joint = evaluate_splits(ue, ie, sets, ("valid", "test"), ks=(5, 20), protocol=protocol, batch_size=64)
    assert list(joint) == ["valid", "test"]
    union = np.union1d(joint["valid"].users, joint["test"].users)
    assert len(union) > max(len(joint["valid"].users), len(joint["test"].users))  # some users in one split only
    for split in ("valid", "test"):
        # bit for bit the same as ranking the split's users alone, whatever the batch size
        for batch_size in (1, 7, 64, 5000):
            _same(joint[split], evaluate(ue, ie, sets, split=split, ks=(5, 20), protocol=protocol, batch_size=batch_size))
        _same(joint[split], evaluate_splits(ue, ie, sets, (split,), ks=(5, 20), protocol=protocol, batch_size=64)[split])
        # and as sorting the full score matrix by (score desc, item asc)
        ref = _brute_force(ue, ie, sets, split, protocol, 20)
        res = joint[split]
        assert res.users.tolist() == sorted(ref)
        assert res.topk_items.tolist() == [ref[u][0] for u in res.users]
        hits, n_rel = np.array([ref[u][1] for u in res.users]), np.array([ref[u][2] for u in res.users])
        np.testing.assert_allclose(res.per_user["ndcg@20"], ndcg_at(hits, n_rel, 20), atol=1e-12)
        np.testing.assert_allclose(res.per_user["recall@5"], recall_at(hits, n_rel, 5), atol=1e-12)
        full = (ue @ ie.T).numpy()
        rows = res.users[:, None].repeat(20, 1)
        np.testing.assert_allclose(res.topk_scores, full[rows, res.topk_items], rtol=0, atol=1e-5)
    # the splits' order is the caller's; duplicates are ignored
    again = evaluate_splits(ue, ie, sets, ("test", "valid", "test"), ks=(5, 20), protocol=protocol, batch_size=64)
    assert list(again) == ["test", "valid"]
    for split in again:
        _same(again[split], joint[split])


def test_scores_do_not_depend_on_the_batch():
    g = torch.Generator().manual_seed(0)
    ue, ie = torch.randn(1000, 64, generator=g), torch.randn(333, 64, generator=g)
    full = ranking._scores(ue, ie, torch.arange(1000))
    rng = np.random.default_rng(0)
    for n in (1, 2, 3, 7, SCORE_BLOCK - 1, SCORE_BLOCK, SCORE_BLOCK + 1, 999):
        batch = torch.from_numpy(rng.choice(1000, n, replace=False))
        assert torch.equal(ranking._scores(ue, ie, batch), full[batch]), n
    np.testing.assert_allclose(full.numpy(), (ue @ ie.T).numpy(), rtol=0, atol=1e-4)


def test_ordered_topk_breaks_ties_by_item_only_where_needed():
    scores = torch.tensor([[0.1, 0.9, 0.5, 0.3, 0.7],  # no tie
                           [0.2, 0.2, 0.8, 0.1, 0.8],  # ties inside the top 4
                           [-torch.inf, 0.4, -torch.inf, -torch.inf, 0.4]])  # tie + -inf tail
    s, it = ranking._ordered_topk(scores, 4)
    assert it[:2].tolist() == [[1, 4, 2, 3], [2, 4, 0, 1]]
    assert it[2, :2].tolist() == [1, 4] and s[2, 2:].isneginf().all()
    s1, it1 = ranking._ordered_topk(scores[:1], 4)  # a batch without ties takes the fast path
    assert torch.equal(s1, s[:1]) and torch.equal(it1, it[:1])


def test_hits_match_set_membership():
    sets = _random_sets(seed=2, n_users=50, n_items=40)
    indptr, indices = sets.on_device("test", torch.device("cpu"))
    batch = torch.tensor([3, 9, 0, 17, 1, 44])  # any order, users without items included
    items = torch.randint(-1, 40, (6, 12), generator=torch.Generator().manual_seed(2))
    tu, ti = sets.test
    held = set(zip(tu.tolist(), ti.tolist()))
    want = [[i >= 0 and (int(u), i) in held for i in row] for u, row in zip(batch.tolist(), items.tolist())]
    assert ranking._hits(indptr, indices, batch, items, 40).tolist() == want
    assert not ranking._hits(indptr, indices, batch[:0], items[:0], 40).numel()


def test_evaluate_splits_bad_input():
    sets, ue, ie = _four_users()
    with pytest.raises(ValueError, match="split must be one of"):
        evaluate_splits(ue, ie, sets, ("valid", "train"))
    with pytest.raises(ValueError, match="at least one"):
        evaluate_splits(ue, ie, sets, ())
    with pytest.raises(ValueError, match="batch_size"):
        evaluate_splits(ue, ie, sets, batch_size=0)
    with pytest.raises(ValueError, match="protocol"):
        evaluate_splits(ue, ie, sets, protocol="loose")
    with pytest.raises(ValueError, match="split must be one of"):
        evaluate(ue, ie, sets, split="train")
