"""Full ranking: masking protocols, evaluated users, batching, short item lists, against brute force."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.evaluation.metrics import map_at, ndcg_at, precision_at, recall_at
from pipeline.evaluation.ranking import EvalSets, evaluate


def _random_sets(seed: int = 0, n_users: int = 40, n_items: int = 30):
    """Each user gets disjoint train/valid/test items; user 0 has no train, user 1 no valid/test."""
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
    np.testing.assert_allclose(full.topk_scores, small.topk_scores, rtol=0, atol=1e-5)  # BLAS rounding differs by shape
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
