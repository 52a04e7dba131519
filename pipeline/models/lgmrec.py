"""LGMRec: local (collaborative + modality) and global (hypergraph) embeddings, as in MMRec.

Settings are MMRec's (models/lgmrec.py by the LGMRec authors, configs/model/LGMRec.yaml, Baby
column; anchors.md §1.7):

* CGE: LightGCN on the ID tables over the normalised UI graph (``n_ui_layers``, mean over layers);
* MGE per modality: item features = frozen raw features x a learnable projection; user features =
  mean of their items' features; ``n_mm_layers`` propagations over the same graph, last layer kept;
* local = CGE + sum over modalities of normalize(MGE);
* global: per modality, item-to-hyperedge assignment = gumbel_softmax(raw features x H_m, ``tau``)
  with ``hyper_num`` hyperedges, user assignment from the summed logits of their items; the
  assignments pass dropout (``keep_rate``) and ``n_hyper_layers`` HGNN passes (H^T E then H lat)
  over the CGE item embeddings; final = local + ``alpha`` * normalize(sum of the modalities' global);
* loss = BPR + ``cl_weight`` * cross-modal hyperedge InfoNCE (users and positive items, negatives
  = all users / all items, summed, tau) + ``reg`` * (||u|| + ||i|| + ||j||) / batch (MMRec's
  unsquared norms).

Differences from MMRec: in eval mode the assignment is the deterministic softmax(logits / tau)
without Gumbel noise (MMRec samples noise at evaluation too, so its scores are random); with one
modality the model runs local + global over that modality and has no cross-modal InfoNCE (MMRec
falls back to the bare CGE, and breaks, when a modality is missing); Gumbel noise and dropout use
torch's global generator, which the trainer seeds.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pipeline.data import TrainData
from pipeline.errors import UserError
from pipeline.graph.adjacency import normalized_adjacency, propagate, spmm
from pipeline.models.base import ModelParams, Recommender, xavier_embedding
from pipeline.models.losses import bpr_loss, reg_norms
from pipeline.settings.types import KeepRate, NonNegativeFloat, NonNegativeInt, Number, PositiveFloat, PositiveInt


def hypergraph_pass(
    item_assign: torch.Tensor, user_assign: torch.Tensor, item_emb: torch.Tensor, n_layers: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """HGNN: lat = H_i^T x, x = H_i lat (``n_layers`` times); users read the last lat through H_u."""
    x, lat = item_emb, None
    for _ in range(n_layers):
        lat = item_assign.T @ x
        x = item_assign @ lat
    return user_assign @ lat, x


def hyperedge_nce(anchor: torch.Tensor, positive: torch.Tensor, candidates: torch.Tensor, tau: float) -> torch.Tensor:
    """Sum over rows of -ln( exp(cos(a, p)/tau) / sum_c exp(cos(a, c)/tau) ), c over all ``candidates``."""
    a = F.normalize(anchor, dim=-1)
    pos = (a * F.normalize(positive, dim=-1)).sum(-1) / tau
    logits = a @ F.normalize(candidates, dim=-1).T / tau
    return (torch.logsumexp(logits, dim=1) - pos).sum()


class LGMRec(Recommender):
    name = "lgmrec"
    READS = frozenset({"features"})

    class Params(ModelParams):
        """MMRec's LGMRec.yaml (Baby column)."""

        n_ui_layers: NonNegativeInt = 2
        n_mm_layers: NonNegativeInt = 2
        n_hyper_layers: PositiveInt = 1
        hyper_num: PositiveInt = 4
        tau: PositiveFloat = 0.2
        keep_rate: KeepRate = 0.5
        alpha: Number = 0.3
        cl_weight: NonNegativeFloat = 1e-4
        reg: NonNegativeFloat = 1e-6

    @classmethod
    def inert_keys(cls, hp: Params, modalities: Sequence[str]) -> frozenset[str]:
        """The cross-modal hyperedge InfoNCE needs two modalities: with one, ``cl_weight`` weighs nothing."""
        return frozenset({"cl_weight"}) if len(modalities) < 2 else frozenset()

    def __init__(self, data: TrainData, hp: Params, emb_dim: int, device: torch.device):
        super().__init__(data, hp, emb_dim, device)
        self.n_ui_layers = hp.n_ui_layers
        self.n_mm_layers = hp.n_mm_layers
        self.n_hyper_layers = hp.n_hyper_layers
        hyper_num = hp.hyper_num
        self.keep_rate = hp.keep_rate
        self.alpha = hp.alpha
        self.cl_weight = hp.cl_weight
        self.reg = hp.reg
        self.tau = hp.tau
        if not data.features:
            raise UserError(f"{data.name}: LGMRec needs item features (run the features stage)")
        if len(data.features) > 2:
            raise UserError(f"{data.name}: LGMRec takes one or two modalities, got {sorted(data.features)}")

        tr = data.train
        self.adj = normalized_adjacency(self.n_users, self.n_items, tr.user, tr.item, self.device)
        # R (users x items, binary) and 1/degree for the users' mean item features
        self.inter = torch.sparse_coo_tensor(
            torch.from_numpy(np.stack([tr.user, tr.item])),
            torch.ones(len(tr.user)),
            (self.n_users, self.n_items),
            check_invariants=True,
        ).coalesce().to_sparse_csr().to(self.device)
        degree = np.bincount(tr.user, minlength=self.n_users).astype(np.float32)
        inv = np.divide(1.0, degree, out=np.zeros_like(degree), where=degree > 0)
        self.inv_degree = torch.from_numpy(inv).unsqueeze(1).to(self.device)

        self.modalities = sorted(data.features)
        for m in self.modalities:  # frozen, not saved in checkpoints (derived from the features stage)
            self.register_buffer(f"feat_{m}", torch.from_numpy(data.features[m].copy()), persistent=False)
        dims = {m: data.features[m].shape[1] for m in self.modalities}
        self.user_emb = xavier_embedding(self.n_users, emb_dim)
        self.item_emb = xavier_embedding(self.n_items, emb_dim)
        self.proj = nn.ParameterDict({m: nn.Parameter(nn.init.xavier_uniform_(torch.empty(dims[m], emb_dim))) for m in self.modalities})
        self.hyper = nn.ParameterDict({m: nn.Parameter(nn.init.xavier_uniform_(torch.empty(dims[m], hyper_num))) for m in self.modalities})

    def _assign(self, logits: torch.Tensor) -> torch.Tensor:
        """Soft hyperedge assignment: Gumbel-softmax when training, softmax(logits / tau) in eval mode."""
        if self.training:
            return F.gumbel_softmax(logits, tau=self.tau, hard=False, dim=1)
        return torch.softmax(logits / self.tau, dim=1)

    def _forward(self) -> tuple[torch.Tensor, dict[str, tuple[torch.Tensor, torch.Tensor]]]:
        """Final [n_users + n_items, d] embeddings and, per modality, the (user, item) hypergraph embeddings."""
        cge = propagate(self.adj, torch.cat([self.user_emb.weight, self.item_emb.weight]), self.n_ui_layers, symmetric=True)
        local, ghe = cge, 0.0
        hyper: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        drop = 1.0 - self.keep_rate
        for m in self.modalities:
            feat = getattr(self, f"feat_{m}")
            item_f = feat @ self.proj[m]
            user_f = spmm(self.inter, item_f) * self.inv_degree
            mge = propagate(self.adj, torch.cat([user_f, item_f]), self.n_mm_layers, mean=False, symmetric=True)
            local = local + F.normalize(mge)
            item_logits = feat @ self.hyper[m]
            user_logits = spmm(self.inter, item_logits)
            item_h = F.dropout(self._assign(item_logits), drop, self.training)
            user_h = F.dropout(self._assign(user_logits), drop, self.training)
            hyper[m] = hypergraph_pass(item_h, user_h, cge[self.n_users :], self.n_hyper_layers)
            ghe = ghe + torch.cat(hyper[m])
        return local + self.alpha * F.normalize(ghe), hyper

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        final, _ = self._forward()
        return final[: self.n_users], final[self.n_users :]

    def loss(self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> dict[str, torch.Tensor]:
        final, hyper = self._forward()
        u, p, n = final[users], final[self.n_users + pos], final[self.n_users + neg]
        parts = {"bpr": bpr_loss(u, p, n), "reg": self.reg * reg_norms(u, p, n)}
        if len(self.modalities) == 2:
            (uv, iv), (ut, it) = hyper[self.modalities[0]], hyper[self.modalities[1]]
            cl = hyperedge_nce(uv[users], ut[users], ut, self.tau) + hyperedge_nce(iv[pos], it[pos], it, self.tau)
            parts["cl"] = self.cl_weight * cl
        return parts
