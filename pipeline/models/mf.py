"""MF-BPR (Rendle et al. 2009): user and item embedding tables scored by their inner product.

Loss: BPR (eq. 1) + ``reg`` * L2 of the batch's user, positive and negative embeddings.
"""

from __future__ import annotations

from typing import Any

import torch

from pipeline.models.base import Recommender, xavier_embedding
from pipeline.models.losses import bpr_loss, l2_reg
from pipeline.data import TrainData


class MF(Recommender):
    name = "mf"
    reference = "Rendle et al. 2009, BPR: Bayesian Personalized Ranking from Implicit Feedback"

    def __init__(self, data: TrainData, cfg: dict[str, Any], emb_dim: int, device: torch.device):
        super().__init__(data, cfg, emb_dim, device)
        self.reg = float(self.param("reg"))
        self.user_emb = xavier_embedding(self.n_users, emb_dim)
        self.item_emb = xavier_embedding(self.n_items, emb_dim)

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.user_emb.weight, self.item_emb.weight

    def loss(self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> dict[str, torch.Tensor]:
        u, p, n = self.user_emb(users), self.item_emb(pos), self.item_emb(neg)
        return {"bpr": bpr_loss(u, p, n), "reg": self.reg * l2_reg(u, p, n)}
