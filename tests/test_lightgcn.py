"""LightGCN: the shared behavioural tests and propagation (eq. 2) against dense numpy."""

import numpy as np
import torch

from model_mixin import RecommenderTestMixin


class TestLightGCN(RecommenderTestMixin):
    model_name = "lightgcn"


def test_lightgcn_init_is_xavier_per_table():
    from pipeline.models.lightgcn import LightGCN
    from planted import planted_data

    data = planted_data()
    torch.manual_seed(0)
    w = LightGCN(data, LightGCN.Params(n_layers=2, reg=0.0), emb_dim=8, device="cpu").embedding.detach()
    # Xavier uniform bounds sqrt(6 / (fan_in + fan_out)) of the 120 x 8 user and 80 x 8 item tables
    assert w.shape == (200, 8)
    assert w[:120].abs().max() <= (6 / 128) ** 0.5 and w[:120].abs().max() > 0.9 * (6 / 128) ** 0.5
    assert w[120:].abs().max() <= (6 / 88) ** 0.5 and w[120:].abs().max() > 0.9 * (6 / 88) ** 0.5


def test_lightgcn_embeddings_match_dense_numpy():
    from pipeline.models.lightgcn import LightGCN
    from planted import planted_data

    data = planted_data()
    torch.manual_seed(0)
    model = LightGCN(data, LightGCN.Params(n_layers=2, reg=0.0), emb_dim=8, device="cpu")
    m, n = data.n_users, data.n_items
    r = np.zeros((m, n))
    r[data.train.user, data.train.item] = 1.0
    a = np.block([[np.zeros((m, m)), r], [r.T, np.zeros((n, n))]])
    deg = a.sum(1)
    inv = np.where(deg > 0, deg ** -0.5, 0.0)
    norm = inv[:, None] * a * inv[None, :]
    e0 = model.embedding.detach().numpy().astype(np.float64)
    e1 = norm @ e0
    e2 = norm @ e1
    expected = (e0 + e1 + e2) / 3
    with torch.no_grad():
        u, i = model.embeddings()
    np.testing.assert_allclose(u.numpy(), expected[:m], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(i.numpy(), expected[m:], rtol=1e-5, atol=1e-6)


def test_lightgcn_gradient_matches_dense_autograd():
    """The symmetric sparse backward gives the same gradients as dense autograd."""
    from pipeline.models.lightgcn import LightGCN
    from planted import planted_data

    data = planted_data()
    torch.manual_seed(0)
    model = LightGCN(data, LightGCN.Params(n_layers=2, reg=1e-3), emb_dim=8, device="cpu")
    users, pos, neg = torch.tensor([0, 1, 2]), torch.tensor([3, 4, 5]), torch.tensor([6, 7, 8])
    sum(model.loss(users, pos, neg).values()).backward()
    dense = model.adj.to_dense()
    ego = model.embedding.detach().double().requires_grad_(True)
    out = (ego + dense.double() @ ego + dense.double() @ (dense.double() @ ego)) / 3
    u, it = out[: data.n_users], out[data.n_users :]
    bpr = -torch.nn.functional.logsigmoid((u[users] * it[pos]).sum(-1) - (u[users] * it[neg]).sum(-1)).mean()
    reg = 1e-3 * (ego[users].pow(2).sum() + ego[data.n_users + pos].pow(2).sum() + ego[data.n_users + neg].pow(2).sum()) / (2 * 3)
    (bpr + reg).backward()
    torch.testing.assert_close(model.embedding.grad.double(), ego.grad, rtol=1e-4, atol=1e-7)
