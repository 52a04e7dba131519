"""SiReN: sign-aware recommendation with a positive LightGCN, a negative MLP and attention.

Settings follow the paper and its official code (cw-seo/SiReN-reco, the 2021-08 commits), including
the code's training setup: 4 LightGCN layers, ``n_neg`` = 40 negatives per interaction drawn with
probability ∝ training degree^0.75 among the user's non-interacted items, Adam with lr 5e-3 on
batches of 1,024 (``models.siren.train`` overrides ``train.lr`` / ``train.batch_size``):

* one GLOBAL threshold ``offset`` (3.5 as the code's default): ratings > offset are positive edges;
* positive branch: LightGCN over the positive edges only, with its own embedding table, mean over
  layers 0..L (``n_layers``);
* negative branch: a second embedding table through ``mlp_layers`` Linear+ReLU+dropout layers (no
  message passing; the paper argues negative edges are disassortative);
* attention fusion w = q^T tanh(W z + b) per branch, softmax over the two (dropout on tanh as in
  the code);
* the sign-aware BPR loss of the PAPER, c(w) = sign(w) with w = rating - offset, over ``n_neg``
  negatives per interaction (``loss: code``: the released code's later c(w) = 1 on positive, 2 on
  negative edges, see anchors.md §3.1), plus ``reg`` * squared norms of the final embeddings of
  (u, i, negatives).

Differences from the official code, each kept on purpose: negatives are drawn per batch with the
trainer's generator (the code pre-samples 20 epochs at a time, the same distribution); the
trainer's own uniform negative is not used (all ``n_neg`` come from the degree distribution); the
loss is averaged (not summed) over the batch, which keeps the code's reg/BPR ratio and only
rescales the step of Adam (scale-invariant); model selection is by early stopping on validation
Recall@20, as for every model here (the code reports test every 20 epochs, with no validation
split); the sign threshold ``offset`` stays global (3.5), as in the code, not PST.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pipeline.data import TrainData
from pipeline.graph.adjacency import normalized_adjacency, propagate
from pipeline.graph.pairs import PairIndex
from pipeline.log import get_logger
from pipeline.models.base import ModelParams, Recommender
from pipeline.models.negatives import DegreeNegatives, negative_scores
from pipeline.settings.types import DropoutRate, NonNegativeFloat, NonNegativeInt, Number, PositiveInt

log = get_logger(__name__)


def sign_aware_bpr(pos_score: torch.Tensor, neg_score: torch.Tensor, sign: torch.Tensor) -> torch.Tensor:
    """SiReN's sign-aware BPR: -sum_k ln sigmoid(c(w) <u,i> - <u,n_k>), mean over the batch, with c(w) =
    ``sign`` (the paper's sign(w), or :func:`code_coefficient`'s).

    ``pos_score``: [B] = <u, i>; ``neg_score``: [B, K] = <u, n_k>; ``sign``: [B] in {-1, 0, +1}.
    """
    return -F.logsigmoid((sign * pos_score).unsqueeze(1) - neg_score).sum(1).mean()


def code_coefficient(sign: torch.Tensor) -> torch.Tensor:
    """c(w) of the authors' released code (cw-seo/SiReN-reco HEAD dd80133): -½ sign(w) + 3/2, i.e. 1 on
    positive and 2 on negative edges (the paper and the 2021-08 commits: c(w) = sign(w))."""
    return -0.5 * sign + 1.5


def fast_dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Inverted dropout from a uniform draw (torch's global generator, as F.dropout): the same
    distribution as F.dropout, ~3x faster on CPU than its Bernoulli kernel."""
    if not training or p == 0.0:
        return x
    return x * (torch.rand(x.shape, device=x.device) >= p) * (1.0 / (1.0 - p))


class SiReN(Recommender):
    name = "siren"

    class Params(ModelParams):
        """The defaults of its authors' code (cw-seo/SiReN-reco, 2021-08)."""

        offset: Number = 3.5
        n_layers: NonNegativeInt = 4
        mlp_layers: PositiveInt = 2
        dropout: DropoutRate = 0.5
        n_neg: PositiveInt = 40
        reg: NonNegativeFloat = 0.05
        # c(w) of the sign-aware BPR: "paper" sign(w) (the paper, the 2021-08 code), or "code" -½ sign(w) + 3/2
        # (the released code's HEAD: a negative edge still ranks above sampled negatives, with weight 2)
        loss: Literal["paper", "code"] = "paper"

    def __init__(self, data: TrainData, hp: Params, emb_dim: int, device: torch.device):
        super().__init__(data, hp, emb_dim, device)
        self.offset = hp.offset
        self.n_layers = hp.n_layers
        self.dropout = hp.dropout
        self.n_neg = hp.n_neg
        self.reg = hp.reg
        mlp_layers = hp.mlp_layers

        tr = data.train
        positive = tr.rating > self.offset
        log.info("siren: %d of %d training interactions are positive edges (rating > %g)", int(positive.sum()), len(tr), self.offset)
        if not positive.any():
            log.warning("siren: no rating above offset %g: the positive LightGCN branch has no edges", self.offset)
        self.adj = normalized_adjacency(self.n_users, self.n_items, tr.user[positive], tr.item[positive], self.device)
        sign = np.sign(tr.rating.astype(np.float64) - self.offset).astype(np.float32)
        self.pairs = PairIndex(tr.user, tr.item, self.n_items, self.device, values=sign)  # sign(w) per training pair
        self.negatives = DegreeNegatives(tr, self.n_users, self.n_items, self.pairs, self.device, data.name)  # the code's deg_dist

        n = self.n_users + self.n_items
        self.pos_table = nn.Parameter(nn.init.xavier_normal_(torch.empty(n, emb_dim)))
        self.neg_table = nn.Parameter(nn.init.xavier_normal_(torch.empty(n, emb_dim)))
        self.mlp = nn.ModuleList(nn.Linear(emb_dim, emb_dim) for _ in range(mlp_layers))
        for layer in self.mlp:
            nn.init.xavier_normal_(layer.weight)
        self.attn = nn.Linear(emb_dim, emb_dim)
        self.q = nn.Linear(emb_dim, 1, bias=False)

    def pre_epoch(self, epoch: int, generator: torch.Generator) -> None:
        self.negatives.generator = generator

    def _final(self) -> torch.Tensor:
        """Z = a_p z_p + a_n z_n for all users then items, [n_users + n_items, d]."""
        z_p = propagate(self.adj, self.pos_table, self.n_layers, symmetric=True)
        z_n = self.neg_table
        for layer in self.mlp:
            z_n = fast_dropout(F.relu(layer(z_n)), self.dropout, self.training)
        branches = torch.stack([z_p, z_n], dim=1)  # [n, 2, d]
        w = self.q(fast_dropout(torch.tanh(self.attn(branches)), self.dropout, self.training))  # [n, 2, 1]
        return (torch.softmax(w, dim=1) * branches).sum(1)

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        z = self._final()
        return z[: self.n_users], z[self.n_users :]

    def sample_negatives(self, users: torch.Tensor, k: int) -> torch.Tensor:
        """[B, k] items ∝ degree^0.75 among each user's non-interacted items (the trainer's generator)."""
        return self.negatives.sample(users, k)

    def loss(self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> dict[str, torch.Tensor]:
        found, sign = self.pairs.lookup(users, pos)
        if self.device.type == "cpu" and not bool(found.all()):  # a programming error; not checked on CUDA (a host sync)
            raise ValueError(f"{int((~found).sum())} (user, pos) pair(s) are not training interactions")
        negs = self.sample_negatives(users, self.n_neg)
        u_all, i_all = self.embeddings()
        u, p = u_all[users], i_all[pos]
        c = sign if self.hp.loss == "paper" else code_coefficient(sign)
        bpr = sign_aware_bpr((u * p).sum(-1), negative_scores(u, i_all, negs), c)
        item_sq = i_all.pow(2).sum(-1)
        reg = (u.pow(2).sum(-1) + item_sq[pos] + item_sq[negs].sum(1)).mean()  # ||u||^2 + ||i||^2 + sum_k ||n_k||^2
        return {"bpr": bpr, "reg": self.reg * reg}
