"""FREEDOM: a frozen item-item graph and a denoised (pruned) user-item graph, as in MMRec.

Settings are MMRec's (models/freedom.py, configs/model/FREEDOM.yaml; anchors.md §1.7):

* item-item graph from the neighbors stage's kNN lists: MMRec's ``topk`` of each row of the dense
  cosine matrix, whose diagonal (1) is its maximum, so the item itself plus its ``knn_k`` - 1 most
  similar other items, binary weights, row-normalised (MMRec's "symmetric" normalisation uses row
  sums only, so every edge gets 1/k); image and text mixed as w * image + (1 - w) * text with
  ``mm_image_weight`` = w when both exist, the single modality's graph otherwise; frozen;
* degree-sensitive edge pruning before each epoch: keep (1 - ``dropout``) of the training edges,
  sampled without replacement with probability ∝ 1/sqrt(d_u d_i), then re-normalise; the full graph
  is used in eval mode;
* item = LightGCN(UI graph, ``n_ui_layers``, mean over layers) + mm_adj^``n_mm_layers`` · item ID table;
* loss = BPR(fused) + ``reg`` * sum over modalities of BPR(user, Linear(raw features)), where the
  raw features are trainable (MMRec loads them with ``freeze=False``) and the Linear maps to emb_dim.
  With ``reg`` = 0 that term is absent, so the raw features are fixed inputs (not parameters, not
  checkpointed) and there is no Linear: the same model, without 2 x 4096 x n_items idle state.

Differences from MMRec: the kNN lists come from the neighbors stage (same cosine top-k of the raw
features) instead of a dense n_items^2 similarity inside the model; sampling uses the trainer's
generator; the pruned graph is built on the training device.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from pipeline.data import TrainData
from pipeline.errors import UserError
from pipeline.graph.adjacency import bipartite_adjacency, normalized_adjacency, propagate
from pipeline.log import get_logger
from pipeline.models.base import ModelParams, Recommender, xavier_embedding
from pipeline.models.losses import bpr_loss
from pipeline.settings.types import DropoutRate, Fraction, NonNegativeFloat, NonNegativeInt, PositiveInt

log = get_logger(__name__)

MODALITIES = ("image", "text")


def knn_graph(item: np.ndarray, neighbor: np.ndarray, score: np.ndarray, n_items: int, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, cols, values) of MMRec's row-normalised binary kNN graph: per item with a list, the
    item itself (the top of its own cosine row) and its ``k`` - 1 best-scored neighbours."""
    item = np.asarray(item, np.int64)
    neighbor = np.asarray(neighbor, np.int64)
    order = np.lexsort((-np.asarray(score, np.float64), item))  # by item, then score descending (stable)
    item, neighbor = item[order], neighbor[order]
    first = np.searchsorted(item, item, side="left")
    keep = (np.arange(len(item)) - first) < k - 1
    listed = np.unique(item)
    rows = np.concatenate([listed, item[keep]])
    cols = np.concatenate([listed, neighbor[keep]])
    order = np.lexsort((np.concatenate([np.zeros(len(listed)), np.arange(1, keep.sum() + 1)]), rows))  # self first
    rows, cols = rows[order], cols[order]
    count = np.bincount(rows, minlength=n_items)
    return rows, cols, (1.0 / count[rows]).astype(np.float32)


def item_item_graph(
    knn: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
    n_items: int,
    k: int,
    image_weight: float,
    device: torch.device,
) -> torch.Tensor:
    """FREEDOM's frozen mm_adj: the modalities' kNN graphs mixed image_weight : 1 - image_weight, sparse CSR."""
    unknown = sorted(set(knn) - set(MODALITIES))
    if unknown or not knn:
        raise UserError(f"FREEDOM needs knn lists of modalities {list(MODALITIES)}, got {sorted(knn)}")
    mix = {m: 1.0 for m in knn} if len(knn) == 1 else {"image": image_weight, "text": 1.0 - image_weight}
    rows, cols, vals = [], [], []
    for m in sorted(knn):
        item, neighbor, score = knn[m]
        bad = (item < 0) | (item >= n_items) | (neighbor < 0) | (neighbor >= n_items)
        if bad.any():
            raise UserError(f"knn_{m}.parquet: {int(bad.sum())} row(s) with item/neighbor outside 0..{n_items - 1}")
        r, c, v = knn_graph(item, neighbor, score, n_items, k)
        rows.append(r)
        cols.append(c)
        vals.append(v * np.float32(mix[m]))
    coo = torch.sparse_coo_tensor(
        torch.from_numpy(np.stack([np.concatenate(rows), np.concatenate(cols)])),
        torch.from_numpy(np.concatenate(vals)),
        (n_items, n_items),
        check_invariants=True,
    ).coalesce()  # sums an edge present in both modalities
    log.info("freedom: item-item graph of %d edges over %d items from knn %s (k = %d)", coo._nnz(), n_items, sorted(knn), k)
    return coo.to_sparse_csr().to(device)


def prune_weights(users: np.ndarray, items: np.ndarray) -> np.ndarray:
    """FREEDOM's degree-sensitive sampling weights 1/sqrt(d_u d_i) of each training edge (float64)."""
    users = np.asarray(users, np.int64)
    items = np.asarray(items, np.int64)
    d_u = np.bincount(users)[users].astype(np.float64)
    d_i = np.bincount(items)[items].astype(np.float64)
    return 1.0 / np.sqrt(d_u * d_i)


def degree_sensitive_prune(weights: torch.Tensor, keep_ratio: float, generator: torch.Generator) -> torch.Tensor:
    """Indices (sorted, on the generator's device) of int(len * keep_ratio) edges drawn without
    replacement ∝ ``weights`` (:func:`prune_weights`)."""
    n_keep = int(len(weights) * keep_ratio)
    if n_keep <= 0:
        return torch.zeros(0, dtype=torch.int64, device=weights.device)
    idx = torch.multinomial(weights, n_keep, replacement=False, generator=generator)
    return torch.sort(idx).values


class FREEDOM(Recommender):
    name = "freedom"
    READS = frozenset({"features", "knn"})

    class Params(ModelParams):
        """MMRec's FREEDOM.yaml (Baby column)."""

        knn_k: PositiveInt = 10
        mm_image_weight: Fraction = 0.1
        dropout: DropoutRate = 0.8
        n_mm_layers: NonNegativeInt = 1
        n_ui_layers: NonNegativeInt = 2
        reg: NonNegativeFloat = 0.0

    def __init__(self, data: TrainData, hp: Params, emb_dim: int, device: torch.device):
        super().__init__(data, hp, emb_dim, device)
        self.dropout = hp.dropout
        self.n_mm_layers = hp.n_mm_layers
        self.n_ui_layers = hp.n_ui_layers
        self.reg = hp.reg
        if not data.features:
            raise UserError(f"{data.name}: FREEDOM needs item features (run the features stage)")
        self.full_adj = normalized_adjacency(self.n_users, self.n_items, data.train.user, data.train.item, self.device)
        self.edge_user = torch.from_numpy(data.train.user.astype(np.int64)).to(self.device)
        self.edge_item = torch.from_numpy(data.train.item.astype(np.int64)).to(self.device)
        self.edge_weight = torch.from_numpy(prune_weights(data.train.user, data.train.item)).to(self.device)
        self.masked_adj: torch.Tensor | None = None
        self.mm_adj = item_item_graph(data.knn, self.n_items, hp.knn_k, hp.mm_image_weight, self.device)
        self.user_emb = xavier_embedding(self.n_users, emb_dim)
        self.item_emb = xavier_embedding(self.n_items, emb_dim)
        # the modal BPR term trains the raw features (MMRec: freeze=False) and their Linear maps; without it
        # (reg = 0) neither exists
        self.features = nn.ParameterDict(
            {m: nn.Parameter(torch.from_numpy(f.copy())) for m, f in sorted(data.features.items())} if self.reg > 0 else {}
        )
        self.proj = nn.ModuleDict({m: nn.Linear(f.shape[1], emb_dim) for m, f in sorted(data.features.items())} if self.reg > 0 else {})

    def pre_epoch(self, epoch: int, generator: torch.Generator) -> None:
        """Degree-sensitive edge pruning: this epoch's training graph."""
        if self.dropout <= 0.0:
            self.masked_adj = self.full_adj
            return
        keep = degree_sensitive_prune(self.edge_weight.to(generator.device), 1.0 - self.dropout, generator).to(self.device)
        self.masked_adj = bipartite_adjacency(self.n_users, self.n_items, self.edge_user[keep], self.edge_item[keep])

    def _forward(self, adj: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = propagate(self.mm_adj, self.item_emb.weight, self.n_mm_layers, mean=False)
        ui = propagate(adj, torch.cat([self.user_emb.weight, self.item_emb.weight]), self.n_ui_layers, symmetric=True)
        return ui[: self.n_users], ui[self.n_users :] + h

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        adj = self.masked_adj if self.training and self.masked_adj is not None else self.full_adj
        return self._forward(adj)

    def loss(self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> dict[str, torch.Tensor]:
        u_all, i_all = self.embeddings()
        u = u_all[users]
        parts = {"bpr": bpr_loss(u, i_all[pos], i_all[neg])}
        if self.reg > 0:
            modal = sum(bpr_loss(u, self.proj[m](f[pos]), self.proj[m](f[neg])) for m, f in self.features.items())
            parts["modal_bpr"] = self.reg * modal
        return parts
