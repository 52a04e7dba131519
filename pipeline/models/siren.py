"""SiReN: sign-aware recommendation with a positive LightGCN, a negative MLP and attention.

Settings follow the paper and its official code (cw-seo/SiReN-reco, the 2021-08 commits):

* one GLOBAL threshold ``offset`` (3.5 as the code's default): ratings > offset are positive edges;
* positive branch: LightGCN over the positive edges only, with its own embedding table, mean over
  layers 0..L (``n_layers``);
* negative branch: a second embedding table through ``mlp_layers`` Linear+ReLU+dropout layers (no
  message passing; the paper argues negative edges are disassortative);
* attention fusion w = q^T tanh(W z + b) per branch, softmax over the two (dropout on tanh as in
  the code);
* the sign-aware BPR loss of the PAPER, c(w) = sign(w) with w = rating - offset, over ``n_neg``
  negatives per interaction (the released code later changed c(w) to 1 / 2, see anchors.md §3.1),
  plus ``reg`` * squared norms of the final embeddings of (u, i, negatives).

Differences from the official code: negatives are drawn UNIFORMLY from the user's non-interacted
items (the code samples ∝ degree^0.75 and pre-samples 20 epochs at a time); one of the ``n_neg``
negatives is the trainer's own sample (``neg``), the other n_neg - 1 are drawn here with the
generator given to :meth:`pre_epoch`; the loss is averaged (not summed) over the batch, which
keeps the reg/BPR ratio of the code; lr, batch size and layers come from ``train`` / params as for
every model in this framework.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pipeline.errors import UserError
from pipeline.graph.adjacency import normalized_adjacency, propagate
from pipeline.graph.pairs import PairIndex
from pipeline.log import get_logger
from pipeline.models.base import Recommender
from pipeline.training.data import TrainData

log = get_logger(__name__)


def sign_aware_bpr(pos_score: torch.Tensor, neg_score: torch.Tensor, sign: torch.Tensor) -> torch.Tensor:
    """SiReN's sign-aware BPR: -sum_k ln sigmoid(sign(w) <u,i> - <u,n_k>), mean over the batch.

    ``pos_score``: [B] = <u, i>; ``neg_score``: [B, K] = <u, n_k>; ``sign``: [B] in {-1, 0, +1}.
    """
    return -F.logsigmoid((sign * pos_score).unsqueeze(1) - neg_score).sum(1).mean()


def negative_scores(user: torch.Tensor, items: torch.Tensor, negs: torch.Tensor) -> torch.Tensor:
    """<u_b, items[negs[b, k]]>, [B, K]: one dense product when cheaper than gathering B*K rows."""
    if items.shape[0] <= 200 * negs.shape[1]:  # dense [B, n_items] product beats the [B, K, d] gather on CPU
        return (user @ items.T).gather(1, negs)
    return torch.einsum("bd,bkd->bk", user, items[negs])


class SiReN(Recommender):
    name = "siren"
    needs = frozenset()
    reference = "Seo et al., SiReN: Sign-Aware Recommendation Using Graph Neural Networks, IEEE TNNLS 35(4), 2022"

    def __init__(self, data: TrainData, cfg: dict[str, Any], emb_dim: int, device: torch.device):
        super().__init__(data, cfg, emb_dim, device)
        self.offset = float(self.param("offset"))
        self.n_layers = int(self.param("n_layers"))
        self.dropout = float(self.param("dropout"))
        self.n_neg = int(self.param("n_neg"))
        self.reg = float(self.param("reg"))
        mlp_layers = int(self.param("mlp_layers"))
        if self.n_neg < 1:
            raise UserError(f"params.yaml: models.{self.name}.n_neg must be >= 1, got {self.n_neg}")
        if mlp_layers < 1:
            raise UserError(f"params.yaml: models.{self.name}.mlp_layers must be >= 1, got {mlp_layers}")
        if not 0.0 <= self.dropout < 1.0:
            raise UserError(f"params.yaml: models.{self.name}.dropout must be in [0, 1), got {self.dropout}")

        tr = data.train
        degree = np.bincount(tr.user, minlength=self.n_users)
        if len(degree) and degree.max() >= self.n_items:
            raise UserError(f"{data.name}: a user has interacted with all {self.n_items} items; no negatives to sample")
        positive = tr.rating > self.offset
        log.info("siren: %d of %d training interactions are positive edges (rating > %g)", int(positive.sum()), len(tr), self.offset)
        if not positive.any():
            log.warning("siren: no rating above offset %g: the positive LightGCN branch has no edges", self.offset)
        self.adj = normalized_adjacency(self.n_users, self.n_items, tr.user[positive], tr.item[positive], self.device)
        sign = np.sign(tr.rating.astype(np.float64) - self.offset).astype(np.float32)
        self.pairs = PairIndex(tr.user, tr.item, self.n_items, self.device, values=sign)  # sign(w) per training pair

        n = self.n_users + self.n_items
        self.pos_table = nn.Parameter(nn.init.xavier_normal_(torch.empty(n, emb_dim)))
        self.neg_table = nn.Parameter(nn.init.xavier_normal_(torch.empty(n, emb_dim)))
        self.mlp = nn.ModuleList(nn.Linear(emb_dim, emb_dim) for _ in range(mlp_layers))
        for layer in self.mlp:
            nn.init.xavier_normal_(layer.weight)
        self.attn = nn.Linear(emb_dim, emb_dim)
        self.q = nn.Linear(emb_dim, 1, bias=False)
        self.generator = torch.Generator().manual_seed(0)  # replaced by the trainer's in pre_epoch

    def pre_epoch(self, epoch: int, generator: torch.Generator) -> None:
        self.generator = generator

    def _final(self) -> torch.Tensor:
        """Z = a_p z_p + a_n z_n for all users then items, [n_users + n_items, d]."""
        z_p = propagate(self.adj, self.pos_table, self.n_layers, symmetric=True)
        z_n = self.neg_table
        for layer in self.mlp:
            z_n = F.dropout(F.relu(layer(z_n)), self.dropout, self.training)
        branches = torch.stack([z_p, z_n], dim=1)  # [n, 2, d]
        w = self.q(F.dropout(torch.tanh(self.attn(branches)), self.dropout, self.training))  # [n, 2, 1]
        return (torch.softmax(w, dim=1) * branches).sum(1)

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        z = self._final()
        return z[: self.n_users], z[self.n_users :]

    def sample_negatives(self, users: torch.Tensor, k: int) -> torch.Tensor:
        """[B, k] items drawn uniformly from each user's non-interacted items (rejection, vectorised)."""
        g = self.generator
        cand = torch.randint(self.n_items, (len(users) * k,), generator=g, device=g.device).to(self.device)
        flat_users = users.repeat_interleave(k)
        todo = torch.arange(len(cand), device=self.device)
        while len(todo):
            todo = todo[self.pairs.contains(flat_users[todo], cand[todo])]
            cand[todo] = torch.randint(self.n_items, (len(todo),), generator=g, device=g.device).to(self.device)
        return cand.view(len(users), k)

    def loss(self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> dict[str, torch.Tensor]:
        found, sign = self.pairs.lookup(users, pos)
        if not bool(found.all()):
            raise ValueError(f"{int((~found).sum())} (user, pos) pair(s) are not training interactions")
        negs = neg.unsqueeze(1)
        if self.n_neg > 1:
            negs = torch.cat([negs, self.sample_negatives(users, self.n_neg - 1)], dim=1)
        u_all, i_all = self.embeddings()
        u, p = u_all[users], i_all[pos]
        bpr = sign_aware_bpr((u * p).sum(-1), negative_scores(u, i_all, negs), sign)
        item_sq = i_all.pow(2).sum(-1)
        reg = (u.pow(2).sum(-1) + item_sq[pos] + item_sq[negs].sum(1)).mean()  # ||u||^2 + ||i||^2 + sum_k ||n_k||^2
        return {"bpr": bpr, "reg": self.reg * reg}
