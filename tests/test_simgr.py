"""SiMGR: the shared behavioural tests for the full model and its ablations, plus hand-checked
parts: eq. 10-11 attention, eq. 9 negative branch, eq. 5-8 positive branch, the modality graph
embedding (§3) against dense numpy, the fusion, and the ablation switches' effect on A+ / A-."""

from __future__ import annotations

import logging
import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from pydantic import ValidationError

from model_mixin import RecommenderTestMixin
from pipeline.errors import UserError
from pipeline.models.modality import attention_fuse, normalize_rows, user_mean_matrix
from pipeline.models.sga import SignedGraphAugmentation, fuse_signed, linear_attention
from pipeline.models.simgr import SiMGR, binary_adjacency
from pipeline.data import SignedEdges
from pipeline.graph.signed import model_edges
from planted import planted_data

CFG = dict(
    n_layers=2, mm_layers=2, reg=1e-4, lambda_s=0.1, gamma=1.0, psi=0.0, beta_cl=0.01, tau=0.5,
    mlp_layers=2, sga=True, pst=True, apfi=True,
)  # fmt: skip


class TestSiMGR(RecommenderTestMixin):
    model_name = "simgr"


class TestBase(RecommenderTestMixin):
    model_name = "base"


class TestBaseSGA(RecommenderTestMixin):
    model_name = "base_sga"


def build(data=None, global_delta: float | None = 3.0, **over) -> SiMGR:
    """SiMGR with CFG + ``over`` on ``data`` (planted), the global delta in the data as the run set-up gives it."""
    torch.manual_seed(0)
    data = replace(data if data is not None else planted_data(), delta=global_delta)
    return SiMGR(data, SiMGR.Params(**{**CFG, **over}), emb_dim=8, device="cpu")


def dense_norm_adj(m: int, n: int, users, items) -> np.ndarray:
    r = np.zeros((m, n))
    r[np.asarray(users), np.asarray(items)] = 1.0
    a = np.block([[np.zeros((m, m)), r], [r.T, np.zeros((n, n))]])
    deg = a.sum(1)
    inv = np.divide(1.0, np.sqrt(deg), out=np.zeros_like(deg), where=deg > 0)
    return inv[:, None] * a * inv[None, :]


# ------------------------------------------------------------------ eq. 10-11
def test_linear_attention_and_fusion_hand_case():
    e_pos = torch.tensor([[1.0, 0.0], [0.0, 2.0], [-2.0, 0.0]])
    e_neg = torch.tensor([[0.0, 1.0], [1.0, 1.0], [0.0, -1.0]])
    w_pos, w_neg = torch.tensor([1.0, 1.0]), torch.tensor([2.0, 0.0])
    # s+ = [1, 2, -2], s- = [0, 2, 0] -> a+ = [1, 0.5, 1], a- = [0, 0.5, 0]
    att = linear_attention(e_pos, e_neg, w_pos, w_neg)
    hi, lo = math.e / (math.e + 1), 1 / (math.e + 1)  # softmax([1, 0])
    torch.testing.assert_close(att, torch.tensor([[hi, lo], [0.5, 0.5], [hi, lo]]))
    e_ig = torch.tensor([[1.0, 1.0], [-1.0, 0.0], [3.0, 3.0]])
    out = fuse_signed(e_ig, e_pos, e_neg, att)
    # node 0: ReLU([hi, lo]); node 1: ReLU(0.5 [0, 2] + 0.5 [1, 1]) = [0.5, 1.5]; node 2: ReLU(negative) = 0
    torch.testing.assert_close(out, torch.tensor([[1 + hi, 1 + lo], [-0.5, 1.5], [3.0, 3.0]]))


def test_linear_attention_guards_a_zero_denominator():
    e_pos, e_neg = torch.tensor([[1.0, 0.0]]), torch.tensor([[-0.5, 0.0]])
    att = linear_attention(e_pos, e_neg, torch.tensor([1.0, 0.0]), torch.tensor([2.0, 0.0]))  # s+ + s- = 0
    assert torch.isfinite(att).all()
    torch.testing.assert_close(att, torch.tensor([[1.0, 0.0]]))


# ------------------------------------------------------------------ eq. 5-9
def test_positive_and_negative_branches_against_dense():
    m, n = 2, 3
    pos_u, pos_i = [0, 0, 1], [0, 1, 1]
    neg_u, neg_i = [1], [2]
    torch.manual_seed(0)
    sga = SignedGraphAugmentation(
        m, n, binary_adjacency(m, n, np.array(pos_u), np.array(pos_i), "cpu"),
        binary_adjacency(m, n, np.array(neg_u), np.array(neg_i), "cpu"), emb_dim=4, n_layers=2, mlp_layers=2,
    )  # fmt: skip
    with torch.no_grad():
        e_pos, e_neg = sga.branches()
        a = dense_norm_adj(m, n, pos_u, pos_i)
        e0 = sga.ego().double().numpy()
        expected_pos = (e0 + a @ e0 + a @ (a @ e0)) / 3  # eq. 6
        np.testing.assert_allclose(e_pos.numpy(), expected_pos, rtol=1e-5, atol=1e-6)
        # A- holds the single edge user 1 - item 2 (node 4) with weight 1/sqrt(1 * 1)
        mlp_zero = sga.mlp(torch.zeros(1, 4))[0]
        for node in (0, 2, 3):  # no negative edge: MLP(0)
            torch.testing.assert_close(e_neg[node], mlp_zero)
        torch.testing.assert_close(e_neg[1], sga.mlp(e_pos[4:5])[0])
        torch.testing.assert_close(e_neg[4], sga.mlp(e_pos[1:2])[0])
    assert e_neg.shape == (m + n, 4)


# ------------------------------------------------------------------ §3 modality graph embedding
def test_user_mean_matrix_hand_case():
    dense = user_mean_matrix(3, 4, np.array([0, 0, 0, 2]), np.array([1, 3, 1, 0])).to_dense()
    torch.testing.assert_close(dense, torch.tensor([[0, 0.5, 0, 0.5], [0, 0, 0, 0], [1.0, 0, 0, 0]]))


def test_attention_fuse_hand_case():
    stacked = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]])
    out = attention_fuse(stacked, torch.tensor([[0.0], [math.log(3.0)]]))
    torch.testing.assert_close(out, torch.tensor([[0.25, 0.75]]))


def test_one_modality_base_matches_dense_computation():
    data = planted_data()
    one = replace(data, features={"text": data.features["text"]})
    model = build(one, sga=False, pst=False, apfi=False)
    assert model.modality.query is None  # one modality: the fusion is the identity
    m, n = data.n_users, data.n_items
    a = dense_norm_adj(m, n, data.train.user, data.train.item)
    w = model.modality.proj[0].detach().double().numpy()
    items = normalize_rows(data.features["text"]).astype(np.float64) @ w
    r = np.zeros((m, n))
    r[data.train.user, data.train.item] = 1.0
    users = (r / r.sum(1, keepdims=True)) @ items
    e_hat = a @ (a @ np.concatenate([users, items]))  # P = 2, last layer
    e_hat /= np.linalg.norm(e_hat, axis=1, keepdims=True)  # every node has a training edge here
    e0 = model.ego().detach().double().numpy()
    e_ig = (e0 + a @ e0 + a @ (a @ e0)) / 3
    with torch.no_grad():
        u, i = model.embeddings()
    np.testing.assert_allclose(np.concatenate([u.numpy(), i.numpy()]), e_ig + e_hat, rtol=1e-4, atol=1e-6)  # eq. 3


def test_two_modalities_fused_by_per_node_softmax():
    model = build(sga=False, pst=False, apfi=False)
    assert model.modality.modalities == ["image", "text"]
    with torch.no_grad():
        embs = [model.modality.modality_embedding(k) for k in range(2)]
        scores = torch.stack([model.modality.query(e).squeeze(-1) for e in embs])
        weights = torch.softmax(scores, dim=0)
        expected = weights[0, :, None] * embs[0] + weights[1, :, None] * embs[1]
        torch.testing.assert_close(model.modality(), expected)
        assert not torch.allclose(weights[0], weights[0][0].expand_as(weights[0]))  # per node, not global


# ------------------------------------------------------------------ ablation switches
def _entries(adj: torch.Tensor, m: int, users, items) -> np.ndarray:
    dense = adj.to_dense().numpy()
    return dense[np.asarray(users), m + np.asarray(items)]


def _graph(data) -> SignedEdges:
    """The whole signed graph of the planted data: observed edges signed by PST, plus the pseudo edges."""
    return model_edges(data.train, thresholds=data.thresholds, delta=None, pseudo=data.pseudo)


def test_apfi_switch_controls_pseudo_edges_in_a_plus_and_a_minus():
    data = planted_data()
    e, m = _graph(data), data.n_users
    ps_pos = e.pseudo & (e.sign > 0)
    ps_neg = e.pseudo & (e.sign < 0)
    assert ps_pos.sum() == 30 and ps_neg.sum() == 30
    full = build(apfi=True)
    assert (_entries(full.sga.adj_pos, m, e.user[ps_pos], e.item[ps_pos]) > 0).all()
    assert (_entries(full.sga.adj_neg, m, e.user[ps_neg], e.item[ps_neg]) > 0).all()
    assert len(full.sign_user) == len(e.user)
    no_apfi = build(apfi=False)
    assert (_entries(no_apfi.sga.adj_pos, m, e.user[e.pseudo], e.item[e.pseudo]) == 0).all()
    assert (_entries(no_apfi.sga.adj_neg, m, e.user[e.pseudo], e.item[e.pseudo]) == 0).all()
    observed = int((~e.pseudo).sum())
    assert len(no_apfi.sign_user) == observed  # the sign loss sees no pseudo edge either
    nnz = no_apfi.sga.adj_pos._nnz() + no_apfi.sga.adj_neg._nnz()
    assert nnz == 2 * observed  # every observed edge, once, in A+ or A-


def test_pseudo_edges_can_stay_out_of_the_sign_loss_but_keep_shaping_a_plus_and_a_minus():
    data = planted_data()
    e, m = _graph(data), data.n_users
    full, observed_only = build(), build(pseudo_in_sign_loss=False)
    assert len(full.sign_user) == len(e.user)
    keys = set((observed_only.sign_user * 10_000 + observed_only.sign_item).tolist())
    assert keys == set((e.user[~e.pseudo] * 10_000 + e.item[~e.pseudo]).tolist())  # exactly the observed edges
    for adj in ("adj_pos", "adj_neg"):  # the graphs are the same
        a, b = getattr(full.sga, adj), getattr(observed_only.sga, adj)
        assert torch.equal(a.to_dense(), b.to_dense())


def test_pst_switch_uses_global_delta_signs():
    data = planted_data()
    e, m = _graph(data), data.n_users
    obs = ~e.pseudo
    no_pst = build(pst=False, apfi=False, global_delta=3.0)
    neg = obs & (e.weight <= 3.0)  # §3: w - delta <= 0 is negative
    assert no_pst.sga.adj_neg._nnz() == 2 * int(neg.sum())
    assert (_entries(no_pst.sga.adj_neg, m, e.user[neg], e.item[neg]) > 0).all()
    pst = build(pst=True, apfi=False)
    pst_neg = obs & (e.sign < 0)
    assert pst.sga.adj_neg._nnz() == 2 * int(pst_neg.sum())
    assert pst_neg.sum() > neg.sum()  # planted PST thresholds turn some 4-star ratings negative
    # a higher global delta moves every 4-star edge to A-
    strict = build(pst=False, apfi=False, global_delta=4.0)
    assert strict.sga.adj_neg._nnz() == 2 * int((obs & (e.weight <= 4.0)).sum())


def test_switches_select_inputs_and_loss_parts():
    def reads(**flags):
        return SiMGR.reads(SiMGR.Params(**flags))

    assert reads(sga=False, pst=False, apfi=False) == frozenset({"features"})
    assert reads(sga=True) == frozenset({"features", "thresholds", "pseudo"})
    assert reads(sga=True, pst=False, apfi=False) == frozenset({"features", "delta"})
    assert reads(sga=True, pst=True, apfi=False) == frozenset({"features", "thresholds"})
    assert reads(sga=True, pst=False, apfi=True) == frozenset({"features", "delta", "pseudo"})
    users, pos, neg = torch.tensor([0, 1, 2]), torch.tensor([3, 4, 5]), torch.tensor([6, 7, 8])
    base = build(sga=False, pst=False, apfi=False)
    assert base.sga is None
    assert set(base.loss(users, pos, neg)) == {"bpr", "cl", "reg"}
    assert set(build().loss(users, pos, neg)) == {"bpr", "sign", "cl", "reg"}
    assert set(build(beta_cl=0.0, reg=0.0, lambda_s=0.0).loss(users, pos, neg)) == {"bpr"}
    no_edges = replace(planted_data(), pseudo=None, thresholds=None)
    build(no_edges, sga=False, pst=False, apfi=False)  # Base never reads the graph


def test_bpr_alone_trains_every_parameter():
    """E* feeds BPR through E_ig(new) (SGA: tables, MLP, W+, W-) and E_hat (projections, fusion)."""
    model = build(beta_cl=0.0, reg=0.0, lambda_s=0.0)
    users = torch.from_numpy(planted_data().train.user[:64])
    pos = torch.from_numpy(planted_data().train.item[:64])
    model.loss(users, pos, (pos + 1) % planted_data().n_items)["bpr"].backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("over", [{}, {"sga": False, "pst": False, "apfi": False}])
def test_batch_rows_loss_equals_the_loss_over_the_full_forward(over):
    """loss() computes E* at the batch's distinct nodes only: same values, same gradients as eq. 23
    written over the full forward pass (duplicates in the batch included)."""
    from pipeline.models.losses import bpr_loss, info_nce, l2_reg, sign_loss

    data = planted_data()
    users = torch.from_numpy(data.train.user[:48])
    pos = torch.from_numpy(data.train.item[:48])
    neg = (pos * 7 + 3) % data.n_items
    fast, full = build(**over), build(**over)
    for model in (fast, full):
        model.pre_epoch(1, torch.Generator().manual_seed(3))
    got = fast.loss(users, pos, neg)
    m = full.n_users
    e_id, e_star = full.forward_all()
    want = {"bpr": bpr_loss(e_star[users], e_star[m + pos], e_star[m + neg])}
    if full.sga is not None:
        su, si, ss = full._sign_batch(len(users))
        want["sign"] = full.lambda_s * sign_loss(e_star[su], e_star[m + si], ss, full.gamma, full.psi)
    uu, ii = torch.unique(users), m + torch.unique(pos)
    want["cl"] = full.beta_cl * (info_nce(e_id[uu], e_star[uu], full.tau) + info_nce(e_id[ii], e_star[ii], full.tau))
    ego = [full.user_emb(users), full.item_emb(pos), full.item_emb(neg)]
    if full.sga is not None:
        ego += [full.sga.user_pos[users], full.sga.item_pos[pos], full.sga.item_pos[neg]]
    want["reg"] = full.reg * l2_reg(*ego)
    assert set(got) == set(want)
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=1e-6, atol=1e-7)
    torch.stack(list(got.values())).sum().backward()
    torch.stack(list(want.values())).sum().backward()
    grads = dict(full.named_parameters())
    for name, p in fast.named_parameters():
        torch.testing.assert_close(p.grad, grads[name].grad, rtol=1e-5, atol=1e-7, msg=name)


def test_sign_batches_cycle_through_an_epoch_permutation():
    model = build()
    n = len(model.sign_user)
    model.pre_epoch(0, torch.Generator().manual_seed(5))
    drawn = [model._sign_batch(100) for _ in range(math.ceil(n / 100))]
    keys = torch.cat([u * 1000 + i for u, i, _ in drawn])[:n]
    all_keys = model.sign_user * 1000 + model.sign_item
    assert sorted(keys.tolist()) == sorted(all_keys.tolist())  # each edge exactly once per epoch
    again = build()
    again.pre_epoch(0, torch.Generator().manual_seed(5))
    u2, i2, s2 = again._sign_batch(100)
    assert torch.equal(u2, drawn[0][0]) and torch.equal(i2, drawn[0][1]) and torch.equal(s2, drawn[0][2])
    idx = [(model.sign_user == u) & (model.sign_item == i) for u, i in zip(u2[:5], i2[:5])]
    assert all(model.sign_sign[k].item() == s for k, s in zip(idx, s2[:5].tolist()))


# ------------------------------------------------------------------ errors and warnings
def test_configuration_errors_are_user_errors():
    data = planted_data()
    with pytest.raises(UserError, match="pseudo edges"):
        build(replace(data, pseudo=None), sga=True)
    with pytest.raises(UserError, match="thresholds"):
        build(replace(data, thresholds=None), sga=True)
    with pytest.raises(UserError, match="global delta"):
        build(pst=False, global_delta=None)
    with pytest.raises(ValidationError, match="need sga: true"):  # params.yaml's entries: test_settings
        build(sga=False, pst=True, apfi=False)
    with pytest.raises(UserError, match="item features"):
        build(replace(data, features={}))
    with pytest.raises(ValidationError, match="mlp_layer"):
        SiMGR.Params(**{k: v for k, v in CFG.items() if k != "mlp_layers"}, mlp_layer=2)
    with pytest.raises(TypeError, match="takes its SiMGR.Params"):
        SiMGR(data, dict(CFG), 8, "cpu")


class _Records(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_warns_when_the_graph_lacks_what_the_variant_asks_for():
    data = planted_data()
    handler = _Records()
    logger = logging.getLogger("simgr.models.simgr")
    logger.addHandler(handler)
    try:
        no_pst_graph = replace(data, thresholds=np.full(data.n_users, 3.0, np.float32))
        build(no_pst_graph, pst=True)
        none = np.zeros(0, np.int64)
        no_apfi_graph = replace(data, pseudo=SignedEdges(none, none, none.astype(np.int8), none.astype(bool), none.astype(np.float32)))
        build(no_apfi_graph, apfi=True)
        build(data)  # the planted graph has PST thresholds and pseudo edges: no warning
    finally:
        logger.removeHandler(handler)
    warnings = [msg for msg in handler.messages if "asks for" in msg]
    assert len(warnings) == 2
    assert "pst: true" in warnings[0] and "apfi: true" in warnings[1]


def test_bfloat16_feature_precision_stays_close_to_float32():
    """The bf16 projection of the fixed features (an opt-in for speed) moves E* by bf16 rounding only."""
    users = torch.from_numpy(planted_data().train.user[:32])
    pos = torch.from_numpy(planted_data().train.item[:32])
    full, half = build(), build(feature_precision="bfloat16")
    assert all(f.dtype == torch.bfloat16 for f in half.modality.features)
    e32, e16 = full.modality(), half.modality()  # same seed, same weights
    assert e16.dtype == torch.float32
    torch.testing.assert_close(e16, e32, rtol=0.05, atol=0.02)
    half.loss(users, pos, (pos + 1) % planted_data().n_items)["bpr"].backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in half.modality.proj)
    with pytest.raises(ValidationError, match="feature_precision"):  # the schema of the model's keys says so
        build(feature_precision="float16")
