"""MGCN: shared behaviour (mixin) and its distinctive pieces by hand (kNN graph, R block, purifier, fuser)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from model_mixin import RecommenderTestMixin, hyperparameters
from pipeline.errors import UserError
from pipeline.graph.adjacency import normalized_adjacency, propagate, spmm
from pipeline.models.losses import bpr_loss, info_nce
from pipeline.models.mgcn import MGCN, TAU, behavior_fuse, purify, similarity_knn_graph, user_item_block
from planted import planted_data


class TestMGCN(RecommenderTestMixin):
    model_name = "mgcn"


class TestMGCNFrozenFeatures(RecommenderTestMixin):
    model_name = "mgcn"
    model_overrides = {"train_features": False}


def _cfg(**overrides):
    """mgcn's hyper-parameters of params.yaml (every auto at its default), with ``overrides``."""
    return hyperparameters("mgcn", **overrides)


def _one_modality(name: str):
    data = planted_data()
    return replace(data, features={name: data.features[name]}, knn={name: data.knn[name]})


def test_similarity_knn_graph_three_items_by_hand():
    # lists (item -> neighbour: cosine): 0 -> 1: 0.8, 2: 0.5; 1 -> 0: 0.8, 2: 0.2; 2 -> 0: 0.5, 1: 0.2
    item = np.array([0, 0, 1, 1, 2, 2])
    neighbor = np.array([1, 2, 0, 2, 0, 1])
    score = np.array([0.8, 0.5, 0.8, 0.2, 0.5, 0.2], np.float32)
    rows, cols, vals = similarity_knn_graph(item, neighbor, score, n_items=3, k=2)
    # k = 2: the item itself (weight 1) + its best neighbour; rows sorted, then cols
    assert list(zip(rows.tolist(), cols.tolist())) == [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 2)]
    # row sums d = [1 + 0.8, 0.8 + 1, 1 + 0.5] = [1.8, 1.8, 1.5]; value w_ij / sqrt(d_i d_j)
    expected = [1 / 1.8, 0.8 / 1.8, 0.8 / 1.8, 1 / 1.8, 0.5 / math.sqrt(1.5 * 1.8), 1 / 1.5]
    np.testing.assert_allclose(vals, expected, rtol=1e-6)
    # directed: 2 -> 0 is an edge (0.5 / sqrt(2.7) = 0.3043), 0 -> 2 is not
    dense = np.zeros((3, 3))
    dense[rows, cols] = vals
    assert dense[2, 0] == pytest.approx(0.30429, abs=1e-5) and dense[0, 2] == 0.0


def test_similarity_knn_graph_k1_is_the_identity_and_skips_self_in_lists():
    item, neighbor, score = np.array([0, 0, 1]), np.array([0, 1, 0]), np.array([1.0, 0.9, 0.9], np.float32)
    rows, cols, vals = similarity_knn_graph(item, neighbor, score, n_items=3, k=1)
    # item 0 listed itself: kept once; item 2 has no list: no row
    assert list(zip(rows.tolist(), cols.tolist())) == [(0, 0), (1, 1)] and vals.tolist() == [1.0, 1.0]
    rows, _, _ = similarity_knn_graph(item, neighbor, score, n_items=3, k=3)
    assert rows.tolist() == [0, 0, 1, 1]  # 0: itself + 1 (its self entry dropped from the list); 1: itself + 0


def test_user_item_block_is_the_normalised_r():
    # edges (u0, i0), (u0, i1), (u1, i1): degrees u0 2, u1 1, i0 1, i1 2
    adj = normalized_adjacency(2, 2, np.array([0, 0, 1]), np.array([0, 1, 1]))
    r = user_item_block(adj, 2).to_dense()
    # R_ui = 1 / sqrt(d_u d_i): [[1/sqrt(2), 1/2], [0, 1/sqrt(2)]]
    torch.testing.assert_close(r, torch.tensor([[1 / math.sqrt(2), 0.5], [0.0, 1 / math.sqrt(2)]]))


def test_purify_gates_the_item_embedding():
    # [2, -1] ⊙ sigmoid([0, ln 3]) = [2 * 0.5, -1 * 0.75]
    out = purify(torch.tensor([[2.0, -1.0]]), torch.tensor([[0.0, math.log(3.0)]]))
    torch.testing.assert_close(out, torch.tensor([[1.0, -0.75]]))


def test_behavior_fuse_two_modalities_by_hand():
    views = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]])  # image [1, 0], text [0, 1], one node
    scores = torch.tensor([[0.0], [math.log(3.0)]])  # softmax -> [1/4, 3/4]
    prefer = torch.tensor([[[1.0, 1.0]], [[0.5, 0.5]]])
    # common = [0.25, 0.75]; specific image = 1 * ([1, 0] - common) = [0.75, -0.75],
    # specific text = 0.5 * ([0, 1] - common) = [-0.125, 0.125]; side = ([0.75, -0.75] + [-0.125, 0.125] + [0.25, 0.75]) / 3
    side = behavior_fuse(views, scores, prefer)
    torch.testing.assert_close(side, torch.tensor([[0.875 / 3, 0.125 / 3]]))


def test_behavior_fuse_one_modality_is_half_the_view():
    view = torch.tensor([[[2.0, -4.0]]])
    # softmax over one score = 1: common = view, specific = 0; side = common / (1 + 1)
    torch.testing.assert_close(behavior_fuse(view, torch.tensor([[5.0]]), None), torch.tensor([[1.0, -2.0]]))
    torch.testing.assert_close(behavior_fuse(view, torch.tensor([[5.0]]), torch.ones(1, 1, 2)), torch.tensor([[1.0, -2.0]]))


def test_mgcn_item_graphs_are_similarity_weighted_and_directed(planted):
    model = MGCN(planted, _cfg(), 8, "cpu")
    for m in ("image", "text"):
        dense = model.item_graph[m].to_dense()
        assert int((dense > 0).sum(1).max()) == 10  # itself + 9 neighbours per row
        item, neighbor, score = planted.knn[m]
        row_sum = 1.0 + np.array([np.sort(score[item == i])[::-1][:9].sum() for i in range(planted.n_items)])
        # the self edge: 1 / d_i
        np.testing.assert_allclose(torch.diagonal(dense).numpy(), 1.0 / row_sum, rtol=1e-5)
        assert not torch.allclose(dense, dense.T)


def _batch(data, n=48):
    users = torch.from_numpy(data.train.user[:n])
    pos = torch.from_numpy(data.train.item[:n])
    return users, pos, (pos + 7) % data.n_items


@pytest.mark.parametrize("modalities", [("image", "text"), ("image",), ("text",)])
def test_mgcn_batch_rows_match_the_full_forward(modalities):
    """The loss computes the batch's rows only; its BPR and InfoNCE equal those of the full forward."""
    data = planted_data() if len(modalities) == 2 else _one_modality(modalities[0])
    torch.manual_seed(0)
    model = MGCN(data, _cfg(cl_weight=0.1), 8, "cpu")
    users, pos, neg = _batch(data)
    parts = model.loss(users, pos, neg)
    assert set(parts) == {"bpr", "reg", "cl"}
    with torch.no_grad():
        u_all, i_all = model.embeddings()
        content = propagate(model.adj, model.embedding, 2, symmetric=True)
        views = [torch.cat([spmm(model.inter, v), v]) for v in model.item_views()]
        side = model.side(views, content)
    m = data.n_users
    torch.testing.assert_close(parts["bpr"], bpr_loss(u_all[users], i_all[pos], i_all[neg]))
    cl = info_nce(side[m + pos], content[m + pos], TAU) + info_nce(side[users], content[users], TAU)
    torch.testing.assert_close(parts["cl"], 0.1 * cl)
    if len(modalities) == 1:  # no attention, no preference gates: side = view / 2
        assert model.query is None and not list(model.prefer.parameters())
        torch.testing.assert_close(side, views[0] / 2)


def test_mgcn_trains_the_raw_features_only_when_asked(planted):
    users, pos, neg = _batch(planted)
    torch.manual_seed(0)
    trained = MGCN(planted, _cfg(), 8, "cpu")
    sum(trained.loss(users, pos, neg).values()).backward()
    assert {"features.image", "features.text"} <= set(trained.state_dict())
    assert trained.features["image"].grad.abs().sum() > 0  # MMRec: from_pretrained(freeze=False)
    torch.manual_seed(0)
    frozen = MGCN(planted, _cfg(train_features=False), 8, "cpu")
    assert not any(k.startswith("features") for k in frozen.state_dict())  # plain attributes: not in checkpoints
    # the same model at initialisation: the same loss
    torch.testing.assert_close(sum(frozen.loss(users, pos, neg).values()), sum(trained.loss(users, pos, neg).values()))


def test_mgcn_needs_knn_lists_for_its_modalities(planted):
    with pytest.raises(UserError, match="knn"):
        MGCN(replace(planted, knn={"text": planted.knn["text"]}), _cfg(), 8, "cpu")
    assert MGCN.inert_keys(_cfg(), ["text"]) == frozenset() and MGCN.reads(_cfg()) == {"features", "knn"}
