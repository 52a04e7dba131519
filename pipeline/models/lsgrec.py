"""LSGRec ("LightSGCN"): one signed light graph convolution for positive and negative preferences.

Liu et al., DASFAA 2025 (arXiv 2403.08246), the signed baseline of SiMGR's Figure 1 and Table 2.
Implemented from the candidate public code VanillaCreamer/LSGRec @ d78c254 (``trainer.py``,
``lightSGCN.py``, ``convols.LightSignedConv``, ``util.py``; anchors.md §3.2) and the paper's
abstract (the only part of the paper we could read): "first-order negative preferences are
captured by the negative links, while high-order negative preferences are propagated along
positive edges ... recommendation results are generated based on positive preferences and
optimized with negative ones ... representations [trained] through different auxiliary tasks".

Settings (the code's; key names follow this project, the code's in brackets):

* sign split with two global thresholds: positive edges rating > ``offset`` = 2.5 [--offset],
  negative edges rating < ``offset_neg`` = 2.5 [offset_n, hard-coded]; every training interaction,
  whatever its rating, is a loss pair with weight w = rating - ``offset``;
* A+ and A-: the symmetric-normalised adjacencies D^-1/2 A D^-1/2 of the positive and of the
  negative edges (PyG ``degree`` on each edge set, both directions);
* two trainable tables E+ (positive) and E- (negative), Xavier normal; signed propagation
  (``n_layers`` = 2 [--num_layer], alpha = 1/(L+1)):
  P = alpha (E+ + sum_l A+^l E+), N = alpha (E- + A- E+ + sum_{l>=2} A+^(l-1) A- E+): layer 1 of
  the negative channel reads the *positive* embeddings over the negative edges, later layers
  propagate it along the positive edges (balance theory); E- enters only N's layer 0;
* loss per batch of (u, i, w) with ``n_neg`` = 40 [--K] negatives per pair, drawn ∝ training
  degree^0.75 among the user's non-interacted items (``util.deg_dist``, SiReN's sampler):
  - positive BPR: -mean_b sum_k ln sigmoid(c+(w) <u+, i+> - <u+, n+_k>), c+(w) = -½ sign(w) + 3/2
    (1 for positive pairs, 2 for negative ones);
  - negative BPR: -mean_b sum_k ln sigmoid(<u-, n-_k> - c-(w) <u-, i->), c-(w) = ½ sign(w) + 3/2;
  - ``reg`` [--reg] * ½ (sum of squared norms of the batch's P and N rows of u, i and the k
    negatives), *summed* over the batch (not averaged: the code's scale, at its batch of 2,048);
  - rating prediction (MSE) of w from Linear_{2d -> 1}([u+, i+]);
  - cross (orthogonality) loss: mean_b <u+, u->² + mean_b <i+, i->²;
* scores: the positive channel only, P_u . P_i (the code's ``gen_top_k(r_hat)``; the variant that
  subtracts the negative channel is commented out there), so :meth:`embeddings` returns P.

Readings where the code and the paper's description differ or the code is ambiguous:

* MSE term: the code calls ``nn.MSELoss()(weights, rating_pred)`` with shapes [B] and [B, 1],
  which broadcasts to [B, B]: every prediction is pulled towards the *batch mean* of w, not
  towards its own pair's w (torch warns about the size mismatch). We take the paper's "auxiliary
  task" reading, one prediction per pair: mean_b (pred_b - w_b)².
* Thresholds: SiMGR's text says its delta = 3 follows "previous works (Liu et al. 2025a ...)",
  the code uses 2.5 for both sides (ratings 1-2 negative, 3-5 positive). We keep the code's
  values; ``offset: 3.0`` (and ``offset_neg``) reproduce SiMGR's description.
* Negatives: the code's K = 40 (the README and run.sh use it everywhere), not the trainer's one
  uniform negative (ignored, as for SiReN).

Differences from the code, each on purpose:

* Optimiser: the trainer here is the same for every model: Adam with a constant learning rate,
  not AdamW (weight decay 0.01) with MultiStepLR (x0.2 after epochs 20 and 200); model selection
  by early stopping on validation Recall@20 (the code reports the best *test* recall over
  evaluations).
* Negatives are drawn per batch with the trainer's generator (the code pre-samples 20 epochs at
  a time, from the same distribution).
* The code's defaults are lr 5e-3 and reg 5e-5 (``argparse``) with 4 layers, but its README and
  run.sh all use 2 layers, lr 5e-4-1e-2 and reg 1e-5-5e-5 by dataset; we take 2 layers and the
  argparse lr / reg as defaults, and the study searches the run.sh values (params.yaml).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import model_validator
from torch import nn

from pipeline.data import TrainData
from pipeline.graph.adjacency import normalized_adjacency, spmm
from pipeline.graph.pairs import PairIndex
from pipeline.log import get_logger
from pipeline.models.base import ModelParams, Recommender
from pipeline.models.negatives import DegreeNegatives, negative_scores
from pipeline.settings.types import NonNegativeFloat, NonNegativeInt, Number, PositiveInt

log = get_logger(__name__)


def signed_propagation(
    adj_pos: torch.Tensor, adj_neg: torch.Tensor, e_pos: torch.Tensor, e_neg: torch.Tensor, n_layers: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(P, N), [M+N, d] each: the positive and negative channels of LightSignedConv (lightSGCN.forward).

    P = alpha (E+ + sum_{l=1..L} A+^l E+); N = alpha (E- + A- E+ + sum_{l=2..L} A+^(l-1) A- E+),
    alpha = 1 / (L + 1). Both adjacencies are symmetric-normalised (``normalized_adjacency``).
    """
    alpha = 1.0 / (n_layers + 1)
    pos, neg = e_pos * alpha, e_neg * alpha
    x_pos = x_neg = e_pos  # the code: ego_embeddings = (ego_pos, ego_pos)
    for layer in range(n_layers):
        # first layer: out_neg over the negative edges from x[0]; later layers: over the positive edges from x[1]
        x_neg = spmm(adj_neg, x_pos, symmetric=True) if layer == 0 else spmm(adj_pos, x_neg, symmetric=True)
        x_pos = spmm(adj_pos, x_pos, symmetric=True)
        pos, neg = pos + alpha * x_pos, neg + alpha * x_neg
    return pos, neg


def sign_coefficients(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(c+, c-) of each pair: c+ = -½ sign(w) + 3/2, c- = ½ sign(w) + 3/2 (lightSGCN.loss)."""
    s = torch.sign(w)
    return -0.5 * s + 1.5, 0.5 * s + 1.5


def positive_bpr(pos_score: torch.Tensor, neg_score: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """-mean_b sum_k ln sigmoid(c+(w_b) <u,i>_b - <u,n_k>_b); pos_score [B], neg_score [B, K] (positive channel)."""
    c_pos, _ = sign_coefficients(w)
    return -F.logsigmoid((c_pos * pos_score).unsqueeze(1) - neg_score).sum(1).mean()


def negative_bpr(pos_score: torch.Tensor, neg_score: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """-mean_b sum_k ln sigmoid(<u,n_k>_b - c-(w_b) <u,i>_b) (negative channel: sampled items above the observed one)."""
    _, c_neg = sign_coefficients(w)
    return -F.logsigmoid(neg_score - (c_neg * pos_score).unsqueeze(1)).sum(1).mean()


def rating_mse(pred: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """mean_b (pred_b - w_b)², one prediction per pair (our reading; the code's shapes broadcast to [B, B])."""
    return (pred.reshape(-1) - w).pow(2).mean()


def cross_loss(u_pos: torch.Tensor, u_neg: torch.Tensor, i_pos: torch.Tensor, i_neg: torch.Tensor) -> torch.Tensor:
    """mean_b <u+, u->² + mean_b <i+, i->² (the code's "cross loss": the two channels kept orthogonal)."""
    return (u_pos * u_neg).sum(-1).pow(2).mean() + (i_pos * i_neg).sum(-1).pow(2).mean()


def _xavier_normal(n: int, dim: int) -> torch.Tensor:
    return nn.init.xavier_normal_(torch.empty(n, dim))


class LSGRec(Recommender):
    name = "lsgrec"

    class Params(ModelParams):
        """Its candidate code's settings (VanillaCreamer/LSGRec: trainer.py's argparse, README, run.sh)."""

        offset: Number = 2.5  # positive edges: rating > offset; loss weight w = rating - offset
        offset_neg: Number = 2.5  # negative edges: rating < offset_neg (the code's hard-coded offset_n)
        n_layers: NonNegativeInt = 2
        n_neg: PositiveInt = 40  # negatives per interaction, drawn ∝ training degree^0.75 (the code's K)
        reg: NonNegativeFloat = 5e-5

        @model_validator(mode="after")
        def _thresholds_ordered(self) -> "LSGRec.Params":
            if isinstance(self.offset_neg, float) and isinstance(self.offset, float) and self.offset_neg > self.offset:
                raise ValueError(f"offset_neg ({self.offset_neg}) above offset ({self.offset}) would make an edge both "
                                 "positive and negative")
            return self

    def __init__(self, data: TrainData, hp: Params, emb_dim: int, device: torch.device):
        super().__init__(data, hp, emb_dim, device)
        self.offset = hp.offset
        offset_neg = hp.offset_neg
        self.n_layers = hp.n_layers
        self.n_neg = hp.n_neg
        self.reg = hp.reg

        tr = data.train
        positive, negative = tr.rating > self.offset, tr.rating < offset_neg
        log.info("lsgrec: %d positive (rating > %g) and %d negative (rating < %g) edges of %d training interactions",
                 int(positive.sum()), self.offset, int(negative.sum()), offset_neg, len(tr))
        if not negative.any():
            log.warning("lsgrec: no rating below %g: the negative channel has no first-order edges", offset_neg)
        # fixed graphs: built on the device once, plain attributes (not parameters, not checkpointed)
        self.adj_pos = normalized_adjacency(self.n_users, self.n_items, tr.user[positive], tr.item[positive], self.device)
        self.adj_neg = normalized_adjacency(self.n_users, self.n_items, tr.user[negative], tr.item[negative], self.device)
        w = (tr.rating.astype(np.float32) - np.float32(self.offset)).astype(np.float32)
        self.pairs = PairIndex(tr.user, tr.item, self.n_items, self.device, values=w)  # w = rating - offset per training pair
        self.negatives = DegreeNegatives(tr, self.n_users, self.n_items, self.pairs, self.device, data.name)  # util.deg_dist

        # users and items initialised as separate Xavier-normal tables (the code's init), stacked users first
        self.pos_table = nn.Parameter(torch.cat([_xavier_normal(self.n_users, emb_dim), _xavier_normal(self.n_items, emb_dim)]))
        self.neg_table = nn.Parameter(torch.cat([_xavier_normal(self.n_users, emb_dim), _xavier_normal(self.n_items, emb_dim)]))
        self.rating_pred = nn.Linear(2 * emb_dim, 1)

    def pre_epoch(self, epoch: int, generator: torch.Generator) -> None:
        self.negatives.generator = generator

    def channels(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(P, N) of all users then items, [M+N, d] each."""
        return signed_propagation(self.adj_pos, self.adj_neg, self.pos_table, self.neg_table, self.n_layers)

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        pos, _ = self.channels()
        return pos[: self.n_users], pos[self.n_users :]

    def sample_negatives(self, users: torch.Tensor, k: int) -> torch.Tensor:
        """[B, k] items ∝ degree^0.75 among each user's non-interacted items (the trainer's generator)."""
        return self.negatives.sample(users, k)

    def loss(self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> dict[str, torch.Tensor]:
        """``neg`` (the trainer's one uniform negative) is not read: ``n_neg`` degree-based negatives instead."""
        found, w = self.pairs.lookup(users, pos)
        if self.device.type == "cpu" and not bool(found.all()):  # a programming error; not checked on CUDA (a host sync)
            raise ValueError(f"{int((~found).sum())} (user, pos) pair(s) are not training interactions")
        negs = self.sample_negatives(users, self.n_neg)
        p_all, n_all = self.channels()
        parts: dict[str, torch.Tensor] = {}
        rows, squares = [], []
        for channel, table, bpr in (("pos", p_all, positive_bpr), ("neg", n_all, negative_bpr)):
            u_all, i_all = table[: self.n_users], table[self.n_users :]
            u, i = u_all[users], i_all[pos]
            rows.append((u, i))
            parts[f"bpr_{channel}"] = bpr((u * i).sum(-1), negative_scores(u, i_all, negs), w)
            item_sq = i_all.pow(2).sum(-1)
            squares.append(u.pow(2).sum() + item_sq[pos].sum() + item_sq[negs].sum())  # ||u||² + ||i||² + sum_k ||n_k||²
        (u_p, i_p), (u_n, i_n) = rows
        parts["reg"] = 0.5 * self.reg * (squares[0] + squares[1])  # summed over the batch, both channels (the code's scale)
        parts["mse"] = rating_mse(self.rating_pred(torch.cat([u_p, i_p], dim=1)), w)
        parts["cross"] = cross_loss(u_p, u_n, i_p, i_n)
        return parts
