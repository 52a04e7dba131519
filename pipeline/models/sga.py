"""Signed Graph Augmentation (§4.1, eq. 5-11): a positive and a negative branch fused by linear attention.

The positive branch is LightGCN on its own trainable table over the normalised A+ (eq. 5-8);
the negative branch propagates the final positive embedding once over the normalised A- and
refines it with an MLP (eq. 9); eq. 10-11 weigh the two per node and add them to E_ig.
"""

from __future__ import annotations

import torch
from torch import nn

from pipeline.graph.adjacency import propagate, spmm, spmm_rows


def linear_attention(
    e_pos: torch.Tensor, e_neg: torch.Tensor, w_pos: torch.Tensor, w_neg: torch.Tensor, eps: float = 1e-6
) -> torch.Tensor:
    """Per-node weights a = softmax([a+, a-]) of eq. 11, shape [n, 2].

    a+ = s+ / (s+ + s-), a- = s- / (s+ + s-) with s+ = E+ W+, s- = E- W- (one scalar per node).
    A denominator within ``eps`` of zero is replaced by ``eps`` with its sign (+ for exactly 0).
    """
    s_pos = e_pos @ w_pos
    s_neg = e_neg @ w_neg
    denom = s_pos + s_neg
    sign = torch.where(denom < 0, -1.0, 1.0).to(denom.dtype)
    denom = torch.where(denom.abs() < eps, sign * eps, denom)
    ratios = torch.stack([s_pos / denom, s_neg / denom], dim=-1)  # eq. 11
    return torch.softmax(ratios, dim=-1)


def fuse_signed(e_ig: torch.Tensor, e_pos: torch.Tensor, e_neg: torch.Tensor, att: torch.Tensor) -> torch.Tensor:
    """E_ig(new) = E_ig + ReLU(a[0] * E+ + a[1] * E-) (eq. 10-11)."""
    weighted_pos = att[:, :1] * e_pos  # w+ of eq. 10: the attention-weighted positive embedding
    weighted_neg = att[:, 1:] * e_neg
    return e_ig + torch.relu(weighted_pos + weighted_neg)  # eq. 10


def mlp(dim: int, n_layers: int) -> nn.Sequential:
    """``n_layers`` Linear(dim, dim) layers with ReLU between them (eq. 9's MLP), Xavier-initialised."""
    if n_layers < 1:
        raise ValueError(f"the negative-branch MLP needs at least one layer, got {n_layers}")
    layers: list[nn.Module] = []
    for k in range(n_layers):
        lin = nn.Linear(dim, dim)
        nn.init.xavier_uniform_(lin.weight)
        nn.init.zeros_(lin.bias)
        layers.append(lin)
        if k < n_layers - 1:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class SignedGraphAugmentation(nn.Module):
    """The SGA module: positive table, negative-branch MLP and the attention vectors W+, W-.

    ``adj_pos`` / ``adj_neg`` are the normalised (M+N) x (M+N) adjacencies of A+ and A-
    (users first, then items). They are fixed, so they are plain attributes, not parameters.
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        adj_pos: torch.Tensor,
        adj_neg: torch.Tensor,
        emb_dim: int,
        n_layers: int,
        mlp_layers: int,
    ):
        super().__init__()
        self.n_users = n_users
        self.n_layers = n_layers
        self.adj_pos = adj_pos
        self.adj_neg = adj_neg
        # the positive branch's own trainable E+^(0) (eq. 5-7), users then items
        self.user_pos = nn.Parameter(torch.empty(n_users, emb_dim))
        self.item_pos = nn.Parameter(torch.empty(n_items, emb_dim))
        nn.init.xavier_uniform_(self.user_pos)
        nn.init.xavier_uniform_(self.item_pos)
        self.mlp = mlp(emb_dim, mlp_layers)
        self.w_pos = nn.Parameter(torch.empty(emb_dim, 1))
        self.w_neg = nn.Parameter(torch.empty(emb_dim, 1))
        nn.init.xavier_uniform_(self.w_pos)
        nn.init.xavier_uniform_(self.w_neg)

    def ego(self) -> torch.Tensor:
        """E+^(0), [M+N, d]."""
        return torch.cat([self.user_pos, self.item_pos], dim=0)

    def branches(self, rows: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(E+, E-): the mean-pooled positive embedding (eq. 5-8) and the negative one (eq. 9).

        With ``rows`` (distinct) both are returned at those rows only: E+ still propagates over
        the whole of A+ (A- reaches any node), E- and its MLP run for the rows alone.
        """
        e_pos = propagate(self.adj_pos, self.ego(), self.n_layers, mean=True, symmetric=True)  # eq. 6, 8
        if rows is None:
            agg = spmm(self.adj_neg, e_pos, symmetric=True)
        else:
            agg, e_pos = spmm_rows(self.adj_neg, e_pos, rows), e_pos[rows]
        return e_pos, self.mlp(agg)  # eq. 9

    def attention(self, e_pos: torch.Tensor, e_neg: torch.Tensor) -> torch.Tensor:
        """Per-node [n, 2] weights of eq. 11."""
        return linear_attention(e_pos, e_neg, self.w_pos.squeeze(-1), self.w_neg.squeeze(-1))

    def forward(self, e_ig: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        """E_ig(new) of eq. 10 from E_ig [M+N, d] (or from E_ig at the distinct ``rows``)."""
        e_pos, e_neg = self.branches(rows)
        return fuse_signed(e_ig, e_pos, e_neg, self.attention(e_pos, e_neg))
