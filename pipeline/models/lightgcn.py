"""LightGCN (He et al. 2020): ID embeddings smoothed over the normalised user-item graph (eq. 2).

E^l = D^-1/2 A D^-1/2 E^(l-1) over the training interactions, final embedding = mean of layers
0..L (L = ``n_layers``). The adjacency is built once, on the device; each training batch runs one
full-graph propagation (the standard way: every batch sees the current tables).
Loss: BPR (eq. 1) on the propagated embeddings + ``reg`` * L2 of the batch's ego (layer-0) embeddings.
"""

from __future__ import annotations

import torch
from torch import nn

from pipeline.data import TrainData
from pipeline.graph.adjacency import normalized_adjacency, propagate, propagate_with_ego
from pipeline.models.base import ModelParams, Recommender, xavier_embedding
from pipeline.models.losses import bpr_loss, l2_reg
from pipeline.settings.types import NonNegativeFloat, NonNegativeInt


class LightGCN(Recommender):
    name = "lightgcn"

    class Params(ModelParams):
        n_layers: NonNegativeInt = 2
        reg: NonNegativeFloat = 1e-4

    def __init__(self, data: TrainData, hp: Params, emb_dim: int, device: torch.device):
        super().__init__(data, hp, emb_dim, device)
        self.n_layers = hp.n_layers
        self.reg = hp.reg
        # one (M+N) x d table, users first: no concatenation per batch. Users and items are
        # initialised as two Xavier tables (MMRec's init), then stacked.
        ego = torch.cat([xavier_embedding(self.n_users, emb_dim).weight, xavier_embedding(self.n_items, emb_dim).weight])
        self.embedding = nn.Parameter(ego.detach())
        # built on the device once; not a parameter or buffer (rebuilt from the data, not checkpointed)
        self.adj = normalized_adjacency(self.n_users, self.n_items, data.train.user, data.train.item, device=self.device)

    def propagated(self) -> torch.Tensor:
        """Final embeddings of all users then all items, [M+N, d] (eq. 2)."""
        return propagate(self.adj, self.embedding, self.n_layers, mean=True, symmetric=True)

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.propagated()
        return out[: self.n_users], out[self.n_users :]

    def loss(self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> dict[str, torch.Tensor]:
        # one gather for the whole batch (each gather's backward fills a full-size gradient)
        rows = torch.cat([users, pos + self.n_users, neg + self.n_users])
        final, ego = propagate_with_ego(self.adj, self.embedding, self.n_layers, rows, symmetric=True)  # eq. 2
        u, p, n = final.chunk(3)
        eu, ep, en = ego.chunk(3)
        return {"bpr": bpr_loss(u, p, n), "reg": self.reg * l2_reg(eu, ep, en)}
