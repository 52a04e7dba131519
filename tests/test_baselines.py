"""The baselines SiReN, FREEDOM and LGMRec: shared behaviour (mixin) and their own pieces by hand."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from model_mixin import PARAMS, RecommenderTestMixin, hyperparameters
from pipeline.errors import UserError
from pipeline.models.freedom import FREEDOM, degree_sensitive_prune, item_item_graph, knn_graph, prune_weights
from pipeline.models.lgmrec import LGMRec, hyperedge_nce, hypergraph_pass
from pipeline.models.negatives import negative_scores
from pipeline.models.siren import SiReN, sign_aware_bpr
from planted import planted_data


class TestSiReN(RecommenderTestMixin):
    model_name = "siren"


class TestFREEDOM(RecommenderTestMixin):
    model_name = "freedom"


class TestLGMRec(RecommenderTestMixin):
    model_name = "lgmrec"


def _text_only():
    data = planted_data()
    return replace(data, features={"text": data.features["text"]}, knn={"text": data.knn["text"]})


# -- SiReN ---------------------------------------------------------------------------------


def test_sign_aware_bpr_hand_values_and_sign_flip():
    # <u,i> = 2, <u,n> = 1: sign +1 gives -ln s(2 - 1), sign -1 gives -ln s(-2 - 1)
    pos, neg = torch.tensor([2.0]), torch.tensor([[1.0]])
    plus = sign_aware_bpr(pos, neg, torch.tensor([1.0]))
    minus = sign_aware_bpr(pos, neg, torch.tensor([-1.0]))
    assert plus.item() == pytest.approx(math.log1p(math.exp(-1.0)))  # 0.3133
    assert minus.item() == pytest.approx(math.log1p(math.exp(3.0)))  # 3.0486
    # gradient w.r.t. the positive score: positive edges push it up, negative edges push it down
    for sign, direction in ((1.0, -1), (-1.0, 1)):
        score = torch.tensor([2.0], requires_grad=True)
        sign_aware_bpr(score, neg, torch.tensor([sign])).backward()
        assert torch.sign(score.grad).item() == direction


def test_the_released_codes_coefficient_is_one_on_positive_and_two_on_negative_edges():
    from pipeline.models.siren import code_coefficient

    assert code_coefficient(torch.tensor([1.0, -1.0])).tolist() == [1.0, 2.0]
    # with it a negative edge is still pushed above the sampled negatives: -ln s(2 * 2 - 1) = ln(1 + e^-3)
    pos, neg = torch.tensor([2.0]), torch.tensor([[1.0]])
    assert sign_aware_bpr(pos, neg, code_coefficient(torch.tensor([-1.0]))).item() == pytest.approx(math.log1p(math.exp(-3.0)))
    model = SiReN(planted_data(), hyperparameters("siren", loss="code", n_neg=2), 8, "cpu")
    model.loss(torch.from_numpy(planted_data().train.user[:8]), torch.from_numpy(planted_data().train.item[:8]), torch.zeros(8, dtype=torch.int64))


def test_sign_aware_bpr_sums_negatives_and_averages_batch():
    pos = torch.tensor([0.0, 1.0])
    neg = torch.tensor([[0.0, 1.0], [1.0, 1.0]])
    sign = torch.tensor([1.0, 1.0])
    sp = lambda x: math.log1p(math.exp(-x))  # -ln sigmoid(x)
    expected = ((sp(0.0) + sp(-1.0)) + (sp(0.0) + sp(0.0))) / 2
    assert sign_aware_bpr(pos, neg, sign).item() == pytest.approx(expected)


@pytest.mark.parametrize("n_items", [6, 300])  # dense product path and gather path (K = 1)
def test_negative_scores_match_brute_force(n_items):
    g = torch.Generator().manual_seed(3)
    user = torch.randn(5, 4, generator=g)
    items = torch.randn(n_items, 4, generator=g)
    negs = torch.randint(n_items, (5, 1), generator=g)
    expected = torch.stack([(user[b] * items[negs[b, 0]]).sum() for b in range(5)]).unsqueeze(1)
    torch.testing.assert_close(negative_scores(user, items, negs), expected)


def test_siren_positive_graph_holds_only_ratings_above_offset():
    data = planted_data()
    model = SiReN(data, hyperparameters("siren"), 8, "cpu")
    n_pos = int((data.train.rating > 3.5).sum())
    assert 0 < n_pos < len(data.train)
    assert model.adj._nnz() == 2 * n_pos
    users = torch.from_numpy(data.train.user[:20])
    found, sign = model.pairs.lookup(users, torch.from_numpy(data.train.item[:20]))
    assert found.all()
    np.testing.assert_array_equal(sign.numpy(), np.sign(data.train.rating[:20] - 3.5))


def test_siren_negatives_avoid_training_items_and_are_seeded():
    data = planted_data()
    model = SiReN(data, hyperparameters("siren"), 8, "cpu")
    users = torch.arange(data.n_users)
    model.pre_epoch(0, torch.Generator().manual_seed(5))
    first = model.sample_negatives(users, 40)
    model.pre_epoch(0, torch.Generator().manual_seed(5))
    second = model.sample_negatives(users, 40)
    assert first.shape == (data.n_users, 40)
    assert torch.equal(first, second)
    train = set(zip(data.train.user.tolist(), data.train.item.tolist()))
    assert not any((u, int(i)) in train for u in range(data.n_users) for i in first[u])


def test_siren_negatives_follow_degree_to_the_075_among_free_items():
    data = planted_data()
    model = SiReN(data, hyperparameters("siren"), 8, "cpu")
    model.pre_epoch(0, torch.Generator().manual_seed(11))
    n = 60000
    drawn = model.sample_negatives(torch.zeros(1, dtype=torch.int64), n).numpy().ravel()
    degree = np.bincount(data.train.item, minlength=data.n_items).astype(np.float64)
    free = np.ones(data.n_items, bool)
    free[data.train.item[data.train.user == 0]] = False
    p = np.where(free, degree**0.75, 0.0)
    p /= p.sum()
    counts = np.bincount(drawn, minlength=data.n_items)
    assert counts[~free].sum() == 0
    assert np.all(np.abs(counts - n * p) <= 5 * np.sqrt(n * p * (1 - p)) + 1)  # every item within 5 binomial std


def test_alias_table_gives_the_distribution():
    from pipeline.models.negatives import alias_table

    w = np.array([1.0, 3.0, 0.0, 4.0])
    prob, alias = alias_table(w)
    # probability of item j = (prob[j] + sum over i with alias i -> j of (1 - prob[i])) / n
    p = prob.copy()
    for i in range(4):
        p[alias[i]] += 1.0 - prob[i]
    np.testing.assert_allclose(p / 4, w / w.sum(), atol=1e-12)


def test_fast_dropout_keeps_the_expectation():
    from pipeline.models.siren import fast_dropout

    torch.manual_seed(0)
    x = torch.ones(200_000)
    y = fast_dropout(x, 0.5, True)
    assert set(torch.unique(y).tolist()) == {0.0, 2.0} and abs(float(y.mean()) - 1.0) < 0.01
    assert fast_dropout(x, 0.5, False) is x


def test_per_model_train_overrides_follow_variants():
    from pipeline.run.models import model_entry
    from pipeline.settings import validate_params
    from pipeline.settings.sections import Params

    raw = {"models": {"siren": {"n_layers": 4, "train": {"lr": 0.005}}, "siren_b": {"variant_of": "siren", "train": {"batch_size": 512}}}}
    params = PARAMS.model_copy(update={"models": Params.model_validate(raw).models})
    entry = model_entry(params, "siren_b")
    assert entry.train == {"lr": 0.005, "batch_size": 512}
    assert entry.kind == "siren" and entry.values["n_layers"] == 4 and "train" not in entry.values
    with pytest.raises(UserError, match="unknown key"):
        validate_params({"models": {"x": {"train": {"epochs": 3}}}})


def test_siren_loss_rejects_pairs_outside_training():
    data = planted_data()
    model = SiReN(data, hyperparameters("siren", n_neg=2), 8, "cpu")
    u, i = int(data.train.user[0]), int(data.train.item[0])
    missing = next(j for j in range(data.n_items) if not ((data.train.user == u) & (data.train.item == j)).any())
    with pytest.raises(ValueError, match="not training interactions"):
        model.loss(torch.tensor([u]), torch.tensor([missing]), torch.tensor([i]))


# -- FREEDOM -------------------------------------------------------------------------------


def test_knn_graph_keeps_top_k_by_score_row_normalised():
    item = np.array([0, 0, 0, 1, 2, 2])
    neighbor = np.array([1, 2, 3, 0, 0, 3])
    score = np.array([0.1, 0.9, 0.5, 0.3, 0.2, 0.8], np.float32)
    # MMRec's topk over a cosine row includes the item itself (the row's maximum): self + k - 1 others
    rows, cols, vals = knn_graph(item, neighbor, score, n_items=4, k=3)
    assert list(zip(rows.tolist(), cols.tolist())) == [(0, 0), (0, 2), (0, 3), (1, 1), (1, 0), (2, 2), (2, 3), (2, 0)]
    np.testing.assert_allclose(vals, [1 / 3, 1 / 3, 1 / 3, 0.5, 0.5, 1 / 3, 1 / 3, 1 / 3])
    rows, cols, vals = knn_graph(item, neighbor, score, n_items=4, k=1)  # the item alone
    assert list(zip(rows.tolist(), cols.tolist())) == [(0, 0), (1, 1), (2, 2)] and vals.tolist() == [1.0, 1.0, 1.0]


def test_item_item_graph_rows_sum_to_one_and_mix_modalities():
    data = planted_data()
    mixed = item_item_graph(data.knn, data.n_items, 10, 0.1, "cpu").to_dense()
    np.testing.assert_allclose(mixed.sum(1).numpy(), np.ones(data.n_items), rtol=1e-6)
    image = item_item_graph({"image": data.knn["image"]}, data.n_items, 10, 0.1, "cpu").to_dense()
    text = item_item_graph({"text": data.knn["text"]}, data.n_items, 10, 0.1, "cpu").to_dense()
    np.testing.assert_allclose(torch.unique(image).numpy(), [0.0, 0.1])  # binary / k
    torch.testing.assert_close(mixed, 0.1 * image + 0.9 * text)
    with pytest.raises(UserError, match="knn"):
        item_item_graph({"audio": data.knn["text"]}, data.n_items, 10, 0.1, "cpu")


def test_degree_sensitive_prune_counts_is_seeded_and_prefers_low_degree():
    # edge 0 joins two degree-1 nodes (weight 1); edges 1..8 join a degree-8 user to degree-1 items
    users = np.array([0] + [1] * 8)
    items = np.arange(9)
    weights = torch.from_numpy(prune_weights(users, items))
    assert weights.tolist() == pytest.approx([1.0] + [1 / math.sqrt(8)] * 8)
    first = degree_sensitive_prune(weights, 0.34, torch.Generator().manual_seed(0))
    again = degree_sensitive_prune(weights, 0.34, torch.Generator().manual_seed(0))
    assert len(first) == int(9 * 0.34) == 3 and len(set(first.tolist())) == 3
    assert torch.equal(first, again) and first.tolist() == sorted(first.tolist())
    g = torch.Generator().manual_seed(1)
    kept0 = sum(0 in degree_sensitive_prune(weights, 1 / 9, g).tolist() for _ in range(400))
    # P(edge 0) = 1 / (1 + 8 / sqrt(8)) = 0.261 vs 0.092 for each other edge
    assert 0.20 < kept0 / 400 < 0.33


def test_freedom_prunes_in_training_and_uses_full_graph_in_eval():
    data = planted_data()
    torch.manual_seed(0)
    model = FREEDOM(data, hyperparameters("freedom", dropout=0.5), 8, "cpu")
    model.train()
    model.pre_epoch(0, torch.Generator().manual_seed(0))
    assert model.masked_adj._nnz() == 2 * int(len(data.train) * 0.5)
    assert not list(model.features) and not list(model.proj)  # reg 0: the raw features are no parameters
    with torch.no_grad():
        train_u, _ = model.embeddings()
        model.eval()
        eval_u, eval_i = model.embeddings()
        full_u, full_i = model._forward(model.full_adj)
    assert not torch.allclose(train_u, eval_u)
    assert torch.equal(eval_u, full_u) and torch.equal(eval_i, full_i)


def test_freedom_text_only_and_modal_loss_part():
    data = _text_only()
    torch.manual_seed(0)
    model = FREEDOM(data, hyperparameters("freedom", reg=1e-3), 8, "cpu")
    assert list(model.features) == ["text"]
    parts = model.loss(torch.tensor([0, 1]), torch.from_numpy(data.train.item[:2]), torch.tensor([3, 4]))
    assert set(parts) == {"bpr", "modal_bpr"}


# -- LGMRec --------------------------------------------------------------------------------


def test_hypergraph_pass_hand_case():
    item_assign = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])  # items 0, 2 in edge 0; item 1 in edge 1
    user_assign = torch.tensor([[0.5, 0.5]])
    emb = torch.tensor([[1.0], [2.0], [3.0]])
    users, items = hypergraph_pass(item_assign, user_assign, emb, n_layers=1)
    # hyperedge sums: [1 + 3, 2] = [4, 2]; items read their edge, the user half of each
    torch.testing.assert_close(items, torch.tensor([[4.0], [2.0], [4.0]]))
    torch.testing.assert_close(users, torch.tensor([[3.0]]))


def test_hyperedge_nce_matches_brute_force():
    g = torch.Generator().manual_seed(2)
    a, b = torch.randn(3, 4, generator=g), torch.randn(5, 4, generator=g)
    pos_rows = torch.tensor([0, 2, 4])
    cos = lambda x, y: float(x @ y / (x.norm() * y.norm()))
    expected = sum(
        -math.log(math.exp(cos(a[r], b[pos_rows[r]]) / 0.2) / sum(math.exp(cos(a[r], b[c]) / 0.2) for c in range(5)))
        for r in range(3)
    )
    assert hyperedge_nce(a, b[pos_rows], b, 0.2).item() == pytest.approx(expected, rel=1e-5)


def test_lgmrec_eval_is_deterministic_and_training_is_noisy():
    data = planted_data()
    torch.manual_seed(0)
    model = LGMRec(data, hyperparameters("lgmrec"), 8, "cpu")
    with torch.no_grad():
        model.eval()
        first, second = model.embeddings(), model.embeddings()
        model.train()
        noisy = model.embeddings()
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    assert not torch.allclose(first[1], noisy[1])


@pytest.mark.parametrize("text_only", [False, True])
def test_lgmrec_loss_parts_by_number_of_modalities(text_only):
    data = _text_only() if text_only else planted_data()
    torch.manual_seed(0)
    model = LGMRec(data, hyperparameters("lgmrec"), 8, "cpu")
    parts = model.loss(torch.tensor([0, 1]), torch.from_numpy(data.train.item[:2]), torch.tensor([3, 4]))
    assert set(parts) == ({"bpr", "reg"} if text_only else {"bpr", "reg", "cl"})
    assert not model.state_dict().keys() & {"feat_text", "feat_image"}  # frozen features stay out of checkpoints


def test_lgmrec_declares_cl_weight_inert_exactly_when_its_loss_ignores_it():
    assert LGMRec.inert_keys(hyperparameters("lgmrec"), ["text"]) == {"cl_weight"} and LGMRec.inert_keys(hyperparameters("lgmrec"), ["image", "text"]) == frozenset()
    losses = {}
    for text_only in (True, False):
        data = _text_only() if text_only else planted_data()
        for weight in (1e-4, 1e-1):
            torch.manual_seed(0)
            model = LGMRec(data, hyperparameters("lgmrec", cl_weight=weight), 8, "cpu")
            parts = model.loss(torch.tensor([0, 1]), torch.from_numpy(data.train.item[:2]), torch.tensor([3, 4]))
            losses[text_only, weight] = sum(parts.values()).item()
    assert losses[True, 1e-4] == losses[True, 1e-1]      # one modality: the weight multiplies nothing
    assert losses[False, 1e-4] != losses[False, 1e-1]
