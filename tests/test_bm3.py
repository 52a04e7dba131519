"""BM3: shared behaviour (mixin) and its distinctive pieces by hand (alignment loss, dropout targets, regulariser)."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from model_mixin import RecommenderTestMixin, hyperparameters
from pipeline.graph.adjacency import propagate
from pipeline.models.bm3 import BM3, alignment_loss, cosine_loss, dropout_target
from pipeline.models.losses import reg_norms
from planted import planted_data


class TestBM3(RecommenderTestMixin):
    model_name = "bm3"


def _cfg(**overrides):
    """bm3's hyper-parameters of params.yaml (every auto at its default), with ``overrides``."""
    return hyperparameters("bm3", **overrides)


def _text_only():
    data = planted_data()
    return replace(data, features={"text": data.features["text"]}, knn={})


def test_alignment_loss_two_rows_by_hand():
    u_online = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    i_target = torch.tensor([[1.0, 0.0], [1.0, 1.0]])  # cos with u_online: [1, 1/sqrt(2)]
    i_online = torch.tensor([[0.0, 2.0], [1.0, 0.0]])
    u_target = torch.tensor([[1.0, 0.0], [1.0, 0.0]])  # cos with i_online: [0, 1]
    # (1 - (1 + 0.70711) / 2) + (1 - (0 + 1) / 2) = 0.14645 + 0.5
    expected = (1 - (1 + 1 / math.sqrt(2)) / 2) + 0.5
    assert alignment_loss(u_online, i_online, u_target, i_target).item() == pytest.approx(expected, rel=1e-6)


def test_cosine_loss_sends_no_gradient_to_the_target():
    online = torch.tensor([[1.0, 1.0]], requires_grad=True)
    target = torch.tensor([[1.0, 0.0]], requires_grad=True)
    loss = cosine_loss(online, target)  # 1 - 1/sqrt(2)
    assert loss.item() == pytest.approx(1 - 1 / math.sqrt(2), rel=1e-6)
    loss.backward()
    assert online.grad is not None and online.grad.abs().sum() > 0 and target.grad is None


def test_dropout_target_keeps_or_scales_and_has_no_gradient():
    x = torch.ones(4000, 4, requires_grad=True)
    torch.manual_seed(0)
    y = dropout_target(x, 0.5)
    assert not y.requires_grad and set(torch.unique(y).tolist()) == {0.0, 2.0}  # kept entries scaled by 1 / (1 - 0.5)
    assert abs(float((y == 0).float().mean()) - 0.5) < 0.02
    assert torch.equal(dropout_target(x, 0.0), x.detach())


def test_reg_is_the_unsquared_norms_of_the_full_matrices_over_n_items():
    # ||[[3, 4]]||_F = 5, ||[[1, 0], [0, 0]]||_F = 1; MMRec's EmbLoss divides by the last argument's rows (2 items)
    assert reg_norms(torch.tensor([[3.0, 4.0]]), torch.tensor([[1.0, 0.0], [0.0, 0.0]])).item() == pytest.approx(3.0)


def test_bm3_scores_with_the_predictor_and_adds_the_item_id_embedding(planted):
    torch.manual_seed(0)
    model = BM3(planted, _cfg(n_layers=2), 8, "cpu")
    model.eval()
    with torch.no_grad():
        u, i = model.embeddings()
        h = propagate(model.adj, model.embedding, 2, symmetric=True)
        m = planted.n_users
        torch.testing.assert_close(u, model.predictor(h[:m]))
        torch.testing.assert_close(i, model.predictor(h[m:] + model.embedding[m:]))
        again = model.embeddings()
    assert torch.equal(u, again[0]) and torch.equal(i, again[1])  # no dropout outside the loss


def test_bm3_ignores_the_negatives_and_its_parts_match_the_formulas(planted):
    torch.manual_seed(0)
    model = BM3(planted, _cfg(dropout=0.0), 8, "cpu")  # no dropout: targets = online embeddings
    users = torch.from_numpy(planted.train.user[:40])
    pos = torch.from_numpy(planted.train.item[:40])
    parts = model.loss(users, pos, (pos + 1) % planted.n_items)
    assert set(parts) == {"align", "reg", "modal"}
    again = model.loss(users, pos, (pos + 5) % planted.n_items)
    assert all(torch.equal(parts[k], again[k]) for k in parts)  # neg is not read
    with torch.no_grad():
        u_all, i_all = model.online()
        u, i = u_all[users], i_all[pos]
        align = alignment_loss(model.predictor(u), model.predictor(i), u, i)
        modal = 0.0
        for name in ("image", "text"):
            h = model.proj[name](model.fixed_features[name] if not model.train_features else model.features[name])[pos]
            modal += cosine_loss(model.predictor(h), i) + cosine_loss(model.predictor(h), h)
        reg = (u_all.norm() + i_all.norm()) / planted.n_items
    torch.testing.assert_close(parts["align"], align)
    torch.testing.assert_close(parts["modal"], 2.0 * modal)  # cl_weight 2
    torch.testing.assert_close(parts["reg"], 0.1 * reg)


def test_bm3_repeated_users_share_one_dropout_mask(planted):
    torch.manual_seed(0)
    model = BM3(planted, _cfg(dropout=0.5), 8, "cpu")
    u_all, _ = model.online()
    from pipeline.graph.adjacency import unique_rows

    users = torch.tensor([3, 3, 5])
    du, inv = unique_rows(users, planted.n_users)
    target = dropout_target(u_all[du], 0.5)[inv]
    assert torch.equal(target[0], target[1])


def test_bm3_with_one_modality_keeps_its_modal_term_weighted():
    data = _text_only()
    users = torch.from_numpy(data.train.user[:30])
    pos = torch.from_numpy(data.train.item[:30])
    values = {}
    for weight in (1.0, 3.0):
        torch.manual_seed(0)
        model = BM3(data, _cfg(cl_weight=weight, dropout=0.0), 8, "cpu")
        assert list(model.proj) == ["text"]
        values[weight] = model.loss(users, pos, pos)["modal"]
    torch.testing.assert_close(values[3.0], 3.0 * values[1.0])
    assert BM3.inert_keys(_cfg(), ["text"]) == frozenset()


def test_bm3_trains_the_raw_features_only_when_asked(planted):
    users = torch.from_numpy(planted.train.user[:30])
    pos = torch.from_numpy(planted.train.item[:30])
    torch.manual_seed(0)
    model = BM3(planted, _cfg(train_features=True), 8, "cpu")
    sum(model.loss(users, pos, pos).values()).backward()
    grad = model.features["text"].grad
    touched = torch.zeros(planted.n_items, dtype=torch.bool)
    touched[pos] = True
    assert grad[touched].abs().sum() > 0 and grad[~touched].abs().sum() == 0  # only the batch's items
    frozen = BM3(planted, _cfg(train_features=False), 8, "cpu")
    assert not any(k.startswith("features") for k in frozen.state_dict())
