"""BM3: bootstrapped latent representations without negative sampling, as in MMRec.

Settings are MMRec's (enoche/MMRec ``src/models/bm3.py``, by the BM3 authors, and
``src/configs/model/BM3.yaml``). Key names follow this project (MMRec's in brackets):

* online embeddings: LightGCN on the ID tables over the normalised UI graph, ``n_layers``
  [n_layers], mean over layers 0..L; the item ID embedding is added once more to the items
  (u = GCN_u, i = GCN_i + e_i);
* a shared predictor (Linear d -> d, Xavier-normal weight) maps the online embeddings, and each
  modality's projection Linear_m(raw features) (d_m -> d, Xavier-normal weight);
* targets: the online embeddings (and projections) passed through dropout with rate ``dropout``
  [dropout], without gradient (BM3's "dropout as the target-network augmentation");
* loss = (1 - cos(pred(u), target(i))) + (1 - cos(pred(i), target(u))) (means over the batch's
  (user, item) pairs) + ``reg`` [reg_weight] * (||U||_F + ||I||_F) / n_items, the *unsquared*
  Frobenius norms of the full online user and item matrices (MMRec's EmbLoss divides by the
  first dimension of its last argument) + ``cl_weight`` [cl_weight] * sum over modalities of
  (1 - cos(pred(h_m), target(i))) + (1 - cos(pred(h_m), target(h_m))) at the batch's items;
* scores: pred(u) . pred(i) (MMRec's full_sort_predict), so :meth:`embeddings` returns the
  predicted embeddings;
* the raw features are trainable when ``train_features`` is true (MMRec loads them with
  ``nn.Embedding.from_pretrained(freeze=False)``).

No negative sampling (MMRec: ``use_neg_sampling: False``): :meth:`loss` reads the trainer's
users and positive items and ignores its ``neg``. The batches are the same (user, item) training
pairs MMRec's loader yields.

One modality (image or text alone): the modal term sums over the modalities present (MMRec adds
``loss_t``/``loss_tv`` and ``loss_v``/``loss_vt`` only for the features it has), so the model runs
unchanged with one; ``cl_weight`` still weighs that modality's two terms (no key is inert).

Differences from MMRec, each on purpose:

* Targets, predictor and projections are computed at the batch's distinct users / items only,
  not for every node (MMRec computes them for all nodes and then indexes the batch); the dropout
  mask is drawn per distinct node, so a user repeated in a batch sees one mask, as in MMRec. The
  floats are the same up to which random numbers the masks use (torch's global generator, seeded
  by the trainer). Each batch still propagates the whole graph: the regulariser reads the full
  matrices.
* ``train_features: false`` freezes the raw features (plain attributes, not parameters: not in
  checkpoints, and no Adam step over n_items x 4096 floats per batch); a speed option, not MMRec's
  default.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pipeline.data import TrainData
from pipeline.errors import UserError
from pipeline.graph.adjacency import normalized_adjacency, propagate, unique_rows
from pipeline.models.base import ModelParams, Recommender, xavier_embedding
from pipeline.models.losses import reg_norms
from pipeline.settings.types import DropoutRate, Flag, NonNegativeFloat, NonNegativeInt


def cosine_loss(online: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - mean over rows of cos(online, target), the target without gradient (MMRec bm3.py: 1 - cosine_similarity(...).mean())."""
    return 1.0 - F.cosine_similarity(online, target.detach(), dim=-1).mean()


def alignment_loss(u_online: torch.Tensor, i_online: torch.Tensor, u_target: torch.Tensor, i_target: torch.Tensor) -> torch.Tensor:
    """BM3's user-item alignment: (1 - cos(pred(u), target(i))) + (1 - cos(pred(i), target(u))) (MMRec: loss_ui + loss_iu)."""
    return cosine_loss(u_online, i_target) + cosine_loss(i_online, u_target)


def dropout_target(x: torch.Tensor, rate: float) -> torch.Tensor:
    """The target view: inverted dropout of a detached copy (MMRec: F.dropout(x.clone(), p) under no_grad)."""
    with torch.no_grad():
        return F.dropout(x.detach(), rate, training=True)


class BM3(Recommender):
    name = "bm3"
    READS = frozenset({"features"})

    class Params(ModelParams):
        """MMRec's BM3.yaml (it gives grids for n_layers, dropout and reg_weight: their first values)."""

        n_layers: NonNegativeInt = 1
        dropout: DropoutRate = 0.3
        reg: NonNegativeFloat = 0.1  # reg_weight, on the unsquared norms of the full embedding matrices
        cl_weight: NonNegativeFloat = 2.0
        train_features: Flag = True  # MMRec trains the raw features (freeze=False); false: frozen, faster

    def __init__(self, data: TrainData, hp: Params, emb_dim: int, device: torch.device):
        super().__init__(data, hp, emb_dim, device)
        self.n_layers = hp.n_layers
        self.dropout = hp.dropout
        self.reg = hp.reg
        self.cl_weight = hp.cl_weight
        self.train_features = hp.train_features
        if not data.features:
            raise UserError(f"{data.name}: BM3 needs item features (run the features stage)")
        self.modalities = sorted(data.features)

        # built on the device once; not a parameter or buffer (rebuilt from the data, not checkpointed)
        self.adj = normalized_adjacency(self.n_users, self.n_items, data.train.user, data.train.item, self.device)
        ego = torch.cat([xavier_embedding(self.n_users, emb_dim).weight, xavier_embedding(self.n_items, emb_dim).weight])
        self.embedding = nn.Parameter(ego.detach())
        self.predictor = nn.Linear(emb_dim, emb_dim)
        nn.init.xavier_normal_(self.predictor.weight)
        feats = {m: torch.from_numpy(np.ascontiguousarray(data.features[m], np.float32)) for m in self.modalities}
        self.features = nn.ParameterDict({m: nn.Parameter(f.clone()) for m, f in feats.items()} if self.train_features else {})
        self.fixed_features = {} if self.train_features else {m: f.to(self.device) for m, f in feats.items()}
        self.proj = nn.ModuleDict({m: nn.Linear(feats[m].shape[1], emb_dim) for m in self.modalities})  # text_trs / image_trs
        for layer in self.proj.values():
            nn.init.xavier_normal_(layer.weight)

    def _feature(self, m: str) -> torch.Tensor:
        return self.features[m] if self.train_features else self.fixed_features[m]

    def online(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The online user [M, d] and item [N, d] embeddings: LightGCN mean, items + their ID embedding."""
        h = propagate(self.adj, self.embedding, self.n_layers, symmetric=True)
        return h[: self.n_users], h[self.n_users :] + self.embedding[self.n_users :]

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        u, i = self.online()
        return self.predictor(u), self.predictor(i)

    def loss(self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> dict[str, torch.Tensor]:
        """``neg`` is not read: BM3 trains without negative samples."""
        u_all, i_all = self.online()
        du, u_inv = unique_rows(users, self.n_users)
        di, i_inv = unique_rows(pos, self.n_items)
        u_rows, i_rows = u_all[du], i_all[di]
        u_target = dropout_target(u_rows, self.dropout)[u_inv]
        i_target = dropout_target(i_rows, self.dropout)[i_inv]
        parts = {
            "align": alignment_loss(self.predictor(u_rows)[u_inv], self.predictor(i_rows)[i_inv], u_target, i_target),
            "reg": self.reg * reg_norms(u_all, i_all),  # (||U||_F + ||I||_F) / n_items (MMRec's EmbLoss)
        }
        modal = []
        for m in self.modalities:
            h = self.proj[m](self._feature(m)[di])
            h_online = self.predictor(h)[i_inv]
            modal.append(cosine_loss(h_online, i_target) + cosine_loss(h_online, dropout_target(h, self.dropout)[i_inv]))
        parts["modal"] = self.cl_weight * torch.stack(modal).sum()
        return parts
