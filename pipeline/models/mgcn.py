"""MGCN: a user-item view, purified item-item views per modality and a behaviour-aware fuser, as in MMRec.

Settings are MMRec's (enoche/MMRec ``src/models/mgcn.py``, contributed by the MGCN authors, and
``src/configs/model/MGCN.yaml``; anchors.md §1.7). Key names follow this project (MMRec's in brackets):

* user-item view: LightGCN on the ID tables over the normalised UI graph D^-1/2 A D^-1/2,
  ``n_ui_layers`` = 2 [n_ui_layers], mean over layers 0..L ("content" embeddings);
* per modality m, an item kNN graph from the cosine similarity of the raw features: each item's
  own row (the item itself, top-1 of its dense cosine row with similarity 1, plus its ``knn_k`` - 1
  = 9 [knn_k] best neighbours) with the *similarity values* as edge weights, normalised
  w_ij / sqrt(d_i d_j) with d = the row sums (MMRec's ``get_sparse_laplacian(..., 'sym')``). The kNN
  lists are directed, so the normalised matrix is not symmetric: it propagates with a plain sparse
  product (never ``symmetric=True``);
* behaviour-guided purifier: x_m = item ID embedding ⊙ sigmoid(W_g Linear_m(raw features) + b_g);
  ``n_mm_layers`` = 1 [n_layers] products with the modality's kNN graph; users read R x_m with R
  the user->item block of the normalised UI graph;
* behaviour-aware fuser: common = softmax attention over the modalities (q^T tanh(W e + b)),
  specific_m = sigmoid(W_m content + b_m) ⊙ (e_m - common), side = (sum_m specific_m + common) / 3,
  final = content + side;
* loss = BPR(final) + ``reg`` [reg_weight] * ½ (||u||² + ||i||² + ||j||²) / batch on the *final*
  embeddings + ``cl_weight`` [cl_loss] * (InfoNCE(side, content) over the batch's positive items +
  InfoNCE(side, content) over its users), tau = 0.2 (hard-coded in MMRec's ``calculate_loss``; the
  ``self.tau = 0.5`` it sets is unused), in-batch negatives, duplicates kept as MMRec does;
* the raw features are trainable when ``train_features`` is true (MMRec loads them with
  ``nn.Embedding.from_pretrained(freeze=False)``); the Linear maps, gates and attention keep
  torch's default init, the ID tables Xavier uniform.

One modality (image or text alone): the purifier and the user read-out are per modality, so they
are unchanged. The fuser degenerates: the softmax over one score is 1, so common = e_m, the
specific part e_m - common is 0 and the preference gates multiply nothing; the model keeps the
same formula with K + 1 parts, side = common / 2, and builds neither the attention query nor the
preference gates (they could not change the model). No params key becomes inert (``inert_keys``
is empty): ``cl_weight``, ``reg``, ``knn_k`` and the layer counts all still act.

Differences from MMRec, each on purpose:

* The kNN lists come from the neighbors stage (exact cosine top-k of the same raw features,
  without the item itself) instead of a dense n_items x n_items similarity inside the model; the
  item's own edge (weight 1, its cosine with itself) is added back, so each row is MMRec's top-k
  row. An item whose features are all zero has no list (MMRec would divide by a zero norm): it
  gets no row, so its modality views are 0.
* A training batch computes the final embeddings at its own rows only (the last UI layer, the
  users' R x_m, the fuser), the same floats as the full forward at those rows; every item's
  purified view is still recomputed per batch, as in MMRec (W_g and the Linear maps train).
* The L2 term divides by the batch's length, not by the configured batch size (they differ on an
  epoch's last, smaller batch only).
* MMRec decays the learning rate by 0.96^(epoch / 50) (``learning_rate_scheduler``); the trainer
  here is the same for every model and keeps the learning rate constant (a 4% difference after
  50 epochs, 8% after 100).
* ``lambda_coeff: 0.9`` in MGCN.yaml is read by no line of mgcn.py: not a key here.
* ``train_features: false`` freezes the raw features (plain attributes, not parameters: not in
  checkpoints, no gradient and no Adam step over n_items x 4096 floats per batch); a speed option,
  not MMRec's default.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from pipeline.data import TrainData
from pipeline.errors import UserError
from pipeline.graph.adjacency import normalized_adjacency, propagate, spmm, spmm_rows, unique_rows
from pipeline.log import get_logger
from pipeline.models.base import ModelParams, Recommender, xavier_embedding
from pipeline.models.losses import bpr_loss, info_nce, l2_reg
from pipeline.settings.types import Flag, NonNegativeFloat, NonNegativeInt, PositiveInt

log = get_logger(__name__)

MODALITIES = ("image", "text")
#: InfoNCE temperature (MMRec's calculate_loss passes 0.2)
TAU = 0.2


def similarity_knn_graph(
    item: np.ndarray, neighbor: np.ndarray, score: np.ndarray, n_items: int, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, cols, values) of MGCN's similarity-weighted kNN graph, rows sorted, then cols.

    Per item with a list: the item itself (weight 1) and its ``k`` - 1 best-scored neighbours
    (weight = their score); values w_ij / sqrt(d_i d_j) with d the row sums of w (MMRec
    utils.build_knn_normalized_graph + get_sparse_laplacian(normalization='sym')). Directed: row i
    holds i's neighbours, so the matrix is not symmetric in general.
    """
    item = np.asarray(item, np.int64)
    neighbor = np.asarray(neighbor, np.int64)
    score = np.asarray(score, np.float64)
    other = neighbor != item  # the item's own edge is added below, with its cosine 1
    item, neighbor, score = item[other], neighbor[other], score[other]
    order = np.lexsort((-score, item))  # by item, then score descending (stable: the lists' tie order)
    item, neighbor, score = item[order], neighbor[order], score[order]
    first = np.searchsorted(item, item, side="left")
    keep = (np.arange(len(item)) - first) < k - 1
    listed = np.unique(item)
    rows = np.concatenate([listed, item[keep]])
    cols = np.concatenate([listed, neighbor[keep]])
    weight = np.concatenate([np.ones(len(listed)), score[keep]])
    order = np.lexsort((cols, rows))
    rows, cols, weight = rows[order], cols[order], weight[order]
    degree = np.bincount(rows, weights=weight, minlength=n_items)  # row sums (MMRec: scatter_add over row)
    inv_sqrt = np.zeros(n_items)
    inv_sqrt[degree > 0] = 1.0 / np.sqrt(degree[degree > 0])  # rows without a list stay 0 (MMRec: inf -> 0)
    return rows, cols, (weight * inv_sqrt[rows] * inv_sqrt[cols]).astype(np.float32)  # D^-1/2 S D^-1/2


def csr(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, shape: tuple[int, int], device: torch.device | str) -> torch.Tensor:
    """A float32 sparse CSR tensor from (rows, cols, values) sorted by row."""
    crow = np.zeros(shape[0] + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=shape[0]), out=crow[1:])
    return torch.sparse_csr_tensor(
        torch.from_numpy(crow), torch.from_numpy(np.asarray(cols, np.int64)), torch.from_numpy(np.asarray(vals, np.float32)),
        size=shape, device=device, check_invariants=False,  # built valid above
    )


def user_item_block(adj: torch.Tensor, n_users: int) -> torch.Tensor:
    """R = rows 0..M-1, columns M.. of a bipartite CSR adjacency (users first): the [M, N] user->item block."""
    crow = adj.crow_indices()[: n_users + 1].clone()
    end = int(crow[-1])
    return torch.sparse_csr_tensor(
        crow, adj.col_indices()[:end] - n_users, adj.values()[:end].clone(), size=(n_users, adj.shape[1] - n_users),
        check_invariants=False,
    )


def purify(item_id: torch.Tensor, gate_logits: torch.Tensor) -> torch.Tensor:
    """Behaviour-guided purifier: item ID embedding ⊙ sigmoid(gate logits) (MMRec: item_id * gate_v(image_feats))."""
    return item_id * torch.sigmoid(gate_logits)


def behavior_fuse(views: torch.Tensor, scores: torch.Tensor, prefer: torch.Tensor | None) -> torch.Tensor:
    """MGCN's behaviour-aware fuser over K modality views [K, n, d] with attention scores [K, n].

    common = sum_m softmax_m(scores) e_m; specific_m = prefer_m ⊙ (e_m - common) (prefer [K, n, d],
    the sigmoid preference gates; None: no specific parts, what K = 1 gives anyway);
    side = (sum_m specific_m + common) / (K + 1) (MMRec: (sep_image + sep_text + common) / 3).
    """
    weights = torch.softmax(scores, dim=0)  # MMRec: softmax over [query(image), query(text)]
    common = (weights.unsqueeze(-1) * views).sum(dim=0)
    side = common
    if prefer is not None:
        side = side + (prefer * (views - common)).sum(dim=0)
    return side / (views.shape[0] + 1)


class MGCN(Recommender):
    name = "mgcn"
    READS = frozenset({"features", "knn"})

    class Params(ModelParams):
        """MMRec's MGCN.yaml (its key names in the comments)."""

        n_ui_layers: NonNegativeInt = 2
        n_mm_layers: NonNegativeInt = 1  # n_layers: products with each modality's item kNN graph
        knn_k: PositiveInt = 10  # the item itself + its k - 1 most cosine-similar items, similarity-weighted
        reg: NonNegativeFloat = 1e-4  # reg_weight
        cl_weight: NonNegativeFloat = 0.01  # cl_loss: MMRec gives the grid [0.001, 0.01, 0.1] only; its middle
        train_features: Flag = True  # MMRec trains the raw features (freeze=False); false: frozen, faster

    def __init__(self, data: TrainData, hp: Params, emb_dim: int, device: torch.device):
        super().__init__(data, hp, emb_dim, device)
        self.n_ui_layers = hp.n_ui_layers
        self.n_mm_layers = hp.n_mm_layers
        knn_k = hp.knn_k
        self.reg = hp.reg
        self.cl_weight = hp.cl_weight
        self.train_features = hp.train_features
        if not data.features:
            raise UserError(f"{data.name}: MGCN needs item features (run the features stage)")
        self.modalities = sorted(data.features)
        unknown = sorted(set(self.modalities) - set(MODALITIES))
        missing = sorted(set(self.modalities) - set(data.knn))
        if unknown or missing:
            raise UserError(f"{data.name}: MGCN takes modalities {list(MODALITIES)} with their knn lists; "
                            f"features {self.modalities}, knn {sorted(data.knn)}")

        tr = data.train
        # fixed graphs: built on the device once, plain attributes (not parameters or buffers, not checkpointed)
        self.adj = normalized_adjacency(self.n_users, self.n_items, tr.user, tr.item, self.device)
        self.inter = user_item_block(self.adj, self.n_users)  # MMRec's self.R
        self.item_graph: dict[str, torch.Tensor] = {}
        for m in self.modalities:
            item, neighbor, score = data.knn[m]
            bad = (item < 0) | (item >= self.n_items) | (neighbor < 0) | (neighbor >= self.n_items)
            if bad.any():
                raise UserError(f"knn_{m}.parquet: {int(bad.sum())} row(s) with item/neighbor outside 0..{self.n_items - 1}")
            rows, cols, vals = similarity_knn_graph(item, neighbor, score, self.n_items, knn_k)
            self.item_graph[m] = csr(rows, cols, vals, (self.n_items, self.n_items), self.device)
            log.info("mgcn: %s item graph of %d edges over %d items (k = %d, self included)", m, len(rows), self.n_items, knn_k)

        # one (M+N) x d ID table, users first (two Xavier tables, MMRec's init, stacked)
        ego = torch.cat([xavier_embedding(self.n_users, emb_dim).weight, xavier_embedding(self.n_items, emb_dim).weight])
        self.embedding = nn.Parameter(ego.detach())
        feats = {m: torch.from_numpy(np.ascontiguousarray(data.features[m], np.float32)) for m in self.modalities}
        self.features = nn.ParameterDict({m: nn.Parameter(f.clone()) for m, f in feats.items()} if self.train_features else {})
        self.fixed_features = {} if self.train_features else {m: f.to(self.device) for m, f in feats.items()}
        self.proj = nn.ModuleDict({m: nn.Linear(feats[m].shape[1], emb_dim) for m in self.modalities})  # image_trs / text_trs
        self.gate = nn.ModuleDict({m: nn.Linear(emb_dim, emb_dim) for m in self.modalities})  # gate_v / gate_t
        self.query: nn.Module | None = None
        self.prefer = nn.ModuleDict()
        if len(self.modalities) > 1:  # with one modality the attention and the preference gates change nothing
            self.query = nn.Sequential(nn.Linear(emb_dim, emb_dim), nn.Tanh(), nn.Linear(emb_dim, 1, bias=False))
            self.prefer = nn.ModuleDict({m: nn.Linear(emb_dim, emb_dim) for m in self.modalities})

    def _feature(self, m: str) -> torch.Tensor:
        return self.features[m] if self.train_features else self.fixed_features[m]

    def item_views(self) -> list[torch.Tensor]:
        """Per modality, the purified item embeddings after ``n_mm_layers`` products with its kNN graph, [N, d]."""
        item_id = self.embedding[self.n_users :]
        views = []
        for m in self.modalities:
            x = purify(item_id, self.gate[m](self.proj[m](self._feature(m))))  # item_id ⊙ sigmoid(W_g Linear(h) + b)
            for _ in range(self.n_mm_layers):
                x = spmm(self.item_graph[m], x)  # directed kNN graph: no symmetric shortcut
            views.append(x)
        return views

    def side(self, views: list[torch.Tensor], content: torch.Tensor) -> torch.Tensor:
        """The fuser's side embeddings at the rows of ``views`` (each [n, d]) and ``content`` [n, d]."""
        stacked = torch.stack(views, dim=0)
        if self.query is None:
            return behavior_fuse(stacked, torch.zeros(stacked.shape[:2], device=stacked.device), None)
        scores = self.query(stacked).squeeze(-1)  # [K, n]
        prefer = torch.stack([torch.sigmoid(self.prefer[m](content)) for m in self.modalities], dim=0)
        return behavior_fuse(stacked, scores, prefer)

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        content = propagate(self.adj, self.embedding, self.n_ui_layers, symmetric=True)
        views = [torch.cat([spmm(self.inter, v), v], dim=0) for v in self.item_views()]  # users: R x_m
        final = content + self.side(views, content)
        return final[: self.n_users], final[self.n_users :]

    def loss(self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> dict[str, torch.Tensor]:
        batch = len(users)
        rows = torch.cat([users, pos + self.n_users, neg + self.n_users])
        content = propagate(self.adj, self.embedding, self.n_ui_layers, symmetric=True, rows=rows)
        distinct, inverse = unique_rows(users, self.n_users)
        views = [torch.cat([spmm_rows(self.inter, v, distinct)[inverse], v[pos], v[neg]], dim=0) for v in self.item_views()]
        side = self.side(views, content)
        u, p, n = (content + side).chunk(3)
        cl = info_nce(side[batch : 2 * batch], content[batch : 2 * batch], TAU) + info_nce(side[:batch], content[:batch], TAU)
        return {"bpr": bpr_loss(u, p, n), "reg": self.reg * l2_reg(u, p, n), "cl": self.cl_weight * cl}
