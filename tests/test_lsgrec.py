"""LSGRec: shared behaviour (mixin) and its distinctive pieces by hand (signed propagation, each loss part)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from model_mixin import RecommenderTestMixin, hyperparameters
from pydantic import ValidationError

from pipeline.graph.adjacency import normalized_adjacency
from pipeline.models.lsgrec import (
    LSGRec, cross_loss, negative_bpr, positive_bpr, rating_mse, sign_coefficients, signed_propagation,
)
from planted import planted_data


class TestLSGRec(RecommenderTestMixin):
    model_name = "lsgrec"


def _cfg(**overrides):
    """LSGRec's hyper-parameters of params.yaml (every auto at its default), with ``overrides``."""
    return hyperparameters("lsgrec", **overrides)


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))  # -ln sigmoid(-x)


def test_signed_propagation_on_a_two_by_two_graph():
    # users u0, u1, items i0, i1 (nodes [u0, u1, i0, i1]); positive edges u0-i0, u1-i1, negative edge u0-i1.
    # Every node has degree <= 1 in each graph, so every normalised edge weight is 1.
    a_pos = normalized_adjacency(2, 2, np.array([0, 1]), np.array([0, 1]))
    a_neg = normalized_adjacency(2, 2, np.array([0]), np.array([1]))
    e_pos = torch.tensor([[1.0], [2.0], [3.0], [4.0]])
    e_neg = torch.tensor([[10.0], [20.0], [30.0], [40.0]])
    p, n = signed_propagation(a_pos, a_neg, e_pos, e_neg, n_layers=2)
    # positive: layer 1 = A+ E+ = [3, 4, 1, 2], layer 2 = [1, 2, 3, 4]; P = (E+ + l1 + l2) / 3 = [5, 8, 7, 10] / 3
    torch.testing.assert_close(p, torch.tensor([[5.0], [8.0], [7.0], [10.0]]) / 3)
    # negative: layer 1 = A- E+ (the POSITIVE table over the negative edge) = [4, 0, 0, 1];
    # layer 2 = A+ [4, 0, 0, 1] = [0, 1, 4, 0]; N = (E- + l1 + l2) / 3 = [14, 21, 34, 41] / 3
    torch.testing.assert_close(n, torch.tensor([[14.0], [21.0], [34.0], [41.0]]) / 3)
    p0, n0 = signed_propagation(a_pos, a_neg, e_pos, e_neg, n_layers=0)
    assert torch.equal(p0, e_pos) and torch.equal(n0, e_neg)


def test_sign_coefficients():
    # c+ = -1/2 sign(w) + 3/2, c- = 1/2 sign(w) + 3/2
    c_pos, c_neg = sign_coefficients(torch.tensor([1.5, -1.5, 0.0]))
    assert c_pos.tolist() == [1.0, 2.0, 1.5] and c_neg.tolist() == [2.0, 1.0, 1.5]


def test_positive_and_negative_bpr_by_hand():
    pos, neg, w = torch.tensor([2.0]), torch.tensor([[1.0, 3.0]]), torch.tensor([-1.0])  # a negative pair: c+ = 2, c- = 1
    # positive channel: -ln s(2*2 - 1) - ln s(2*2 - 3) = softplus(-3) + softplus(-1) = 0.04859 + 0.31326
    assert positive_bpr(pos, neg, w).item() == pytest.approx(softplus(-3) + softplus(-1), rel=1e-6)
    # negative channel: -ln s(1 - 1*2) - ln s(3 - 1*2) = softplus(1) + softplus(-1) = 1.31326 + 0.31326
    assert negative_bpr(pos, neg, w).item() == pytest.approx(softplus(1) + softplus(-1), rel=1e-6)
    # a positive pair (c+ = 1, c- = 2), two rows: mean over the batch of the sums over negatives
    pos2, neg2, w2 = torch.tensor([2.0, 0.0]), torch.tensor([[1.0], [0.0]]), torch.tensor([1.5, 0.5])
    assert positive_bpr(pos2, neg2, w2).item() == pytest.approx((softplus(-1) + softplus(0)) / 2, rel=1e-6)
    assert negative_bpr(pos2, neg2, w2).item() == pytest.approx((softplus(3) + softplus(0)) / 2, rel=1e-6)


def test_rating_mse_is_per_pair_not_broadcast():
    pred, w = torch.tensor([[0.5], [1.0]]), torch.tensor([1.5, -1.0])
    # ((0.5 - 1.5)^2 + (1 - (-1))^2) / 2 = (1 + 4) / 2; the code's [B] vs [B, 1] broadcast would give 1.875
    assert rating_mse(pred, w).item() == pytest.approx(2.5)


def test_cross_loss_by_hand():
    u_p, u_n = torch.tensor([[1.0, 2.0]]), torch.tensor([[3.0, -1.0]])  # <., .> = 1 -> 1
    i_p, i_n = torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([[2.0, 0.0], [0.0, 0.0]])  # [2, 0] -> (4 + 0) / 2
    assert cross_loss(u_p, u_n, i_p, i_n).item() == pytest.approx(3.0)


def test_lsgrec_graphs_and_weights_follow_the_offsets(planted):
    model = LSGRec(planted, _cfg(), 8, "cpu")
    r = planted.train.rating
    assert model.adj_pos._nnz() == 2 * int((r > 2.5).sum()) and model.adj_neg._nnz() == 2 * int((r < 2.5).sum())
    found, w = model.pairs.lookup(torch.from_numpy(planted.train.user[:30]), torch.from_numpy(planted.train.item[:30]))
    assert found.all()
    np.testing.assert_allclose(w.numpy(), r[:30] - 2.5)
    three = LSGRec(planted, _cfg(offset=3.0, offset_neg=3.0), 8, "cpu")  # SiMGR's description of LSGRec's delta
    assert three.adj_pos._nnz() == 2 * int((r > 3).sum())
    with pytest.raises(ValidationError, match="offset_neg"):  # the schema refuses it (params.yaml: one line naming the key)
        LSGRec(planted, _cfg(offset=2.0, offset_neg=3.0), 8, "cpu")


def test_lsgrec_negatives_avoid_training_items_and_are_seeded(planted):
    model = LSGRec(planted, _cfg(), 8, "cpu")
    users = torch.arange(planted.n_users)
    model.pre_epoch(0, torch.Generator().manual_seed(4))
    first = model.sample_negatives(users, 40)
    model.pre_epoch(0, torch.Generator().manual_seed(4))
    assert torch.equal(first, model.sample_negatives(users, 40))
    train = set(zip(planted.train.user.tolist(), planted.train.item.tolist()))
    assert not any((u, int(i)) in train for u in range(planted.n_users) for i in first[u])


def test_lsgrec_loss_parts_match_the_formulas_and_ignore_the_trainer_negative(planted):
    torch.manual_seed(0)
    model = LSGRec(planted, _cfg(n_neg=3, reg=0.01), 8, "cpu")
    users = torch.from_numpy(planted.train.user[:20])
    pos = torch.from_numpy(planted.train.item[:20])
    model.pre_epoch(0, torch.Generator().manual_seed(1))
    parts = model.loss(users, pos, pos)
    model.pre_epoch(0, torch.Generator().manual_seed(1))
    negs = model.sample_negatives(users, 3)
    model.pre_epoch(0, torch.Generator().manual_seed(1))
    assert all(torch.equal(parts[k], v) for k, v in model.loss(users, pos, (pos + 1) % planted.n_items).items())
    assert list(parts) == ["bpr_pos", "bpr_neg", "reg", "mse", "cross"]
    with torch.no_grad():
        p_all, n_all = model.channels()
        m = planted.n_users
        w = torch.from_numpy(planted.train.rating[:20] - 2.5)
        u_p, i_p, k_p = p_all[users], p_all[m + pos], p_all[m + negs]
        u_n, i_n, k_n = n_all[users], n_all[m + pos], n_all[m + negs]
        bpr_pos = positive_bpr((u_p * i_p).sum(-1), (u_p.unsqueeze(1) * k_p).sum(-1), w)
        bpr_neg = negative_bpr((u_n * i_n).sum(-1), (u_n.unsqueeze(1) * k_n).sum(-1), w)
        squares = sum(t.pow(2).sum() for t in (u_p, i_p, k_p, u_n, i_n, k_n))
        mse = ((model.rating_pred(torch.cat([u_p, i_p], 1)).squeeze(1) - w) ** 2).mean()
    torch.testing.assert_close(parts["bpr_pos"], bpr_pos)
    torch.testing.assert_close(parts["bpr_neg"], bpr_neg)
    torch.testing.assert_close(parts["reg"], 0.5 * 0.01 * squares)  # summed over the batch, not averaged
    torch.testing.assert_close(parts["mse"], mse)
    torch.testing.assert_close(parts["cross"], cross_loss(u_p, u_n, i_p, i_n))


def test_lsgrec_ranks_with_the_positive_channel_and_reads_no_features(planted):
    data = replace(planted, features={}, knn={})
    torch.manual_seed(0)
    model = LSGRec(data, _cfg(), 8, "cpu")
    with torch.no_grad():
        u, i = model.embeddings()
        p_all, _ = model.channels()
    assert torch.equal(u, p_all[: data.n_users]) and torch.equal(i, p_all[data.n_users :])
    assert LSGRec.reads(_cfg()) == frozenset() and LSGRec.inert_keys(_cfg(), []) == frozenset()
