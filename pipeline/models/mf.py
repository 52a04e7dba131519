"""MF-BPR (Rendle et al. 2009): user and item embedding tables scored by their inner product.

Loss: BPR (eq. 1) + ``reg`` * L2 of the batch's user, positive and negative embeddings.
"""

from __future__ import annotations

import torch

from pipeline.data import TrainData
from pipeline.models.base import ModelParams, Recommender, xavier_embedding
from pipeline.models.losses import bpr_loss, l2_reg
from pipeline.settings.types import NonNegativeFloat


class MF(Recommender):
    name = "mf"

    class Params(ModelParams):
        reg: NonNegativeFloat = 1e-4

    def __init__(self, data: TrainData, hp: Params, emb_dim: int, device: torch.device):
        super().__init__(data, hp, emb_dim, device)
        self.reg = hp.reg
        self.user_emb = xavier_embedding(self.n_users, emb_dim)
        self.item_emb = xavier_embedding(self.n_items, emb_dim)

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.user_emb.weight, self.item_emb.weight

    def loss(self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> dict[str, torch.Tensor]:
        u, p, n = self.user_emb(users), self.item_emb(pos), self.item_emb(neg)
        return {"bpr": bpr_loss(u, p, n), "reg": self.reg * l2_reg(u, p, n)}
