"""SiMGR: the multimodal base (§3, eq. 2-3) + Signed Graph Augmentation (§4.1, eq. 5-11), loss eq. 23.

One class covers the ablations of Figure 3 through its config switches:

* ``sga: false`` -> Base: E* = E_ig + E_hat (LightGCN on IDs + modality graph embedding).
* ``sga: true``  -> E* = E_ig(new) + E_hat, E_ig(new) from the signed branches over A+ / A-.
* ``pst: true``  -> observed edges signed by PST's per-user thresholds (reads ``thresholds.parquet``);
  ``pst: false`` -> by the global delta (params ``pst.delta``, ``TrainData.delta``).
* ``apfi: true`` -> APFI's pseudo edges (``pseudo_edges.parquet``) join A+ / A- and the sign loss;
  ``apfi: false`` -> none.

Loss (eq. 23): BPR on E* over the trainer's (user, pos, neg) triples (pos from all training
interactions, eq. 1) + lambda_s * sign loss (eq. 4) on a batch of signed edges drawn alongside
+ beta_cl * InfoNCE (eq. 22) between E_ig(new) and E* for the batch's users and positive items
+ reg * L2 of the batch's ego embeddings. Decisions on the paper's ambiguities: docs/paper-notes.md.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from pydantic import model_validator

from pipeline.data import SignedEdges, TrainData
from pipeline.errors import UserError
from pipeline.graph.adjacency import normalized_adjacency, propagate, unique_rows
from pipeline.graph.signed import model_edges
from pipeline.log import get_logger
from pipeline.models.base import ModelParams, Recommender, xavier_embedding
from pipeline.models.losses import bpr_loss, info_nce, l2_reg, sign_loss
from pipeline.models.modality import ModalityGraphEmbedding, user_mean_matrix
from pipeline.models.sga import SignedGraphAugmentation
from pipeline.settings.types import Flag, NonNegativeFloat, NonNegativeInt, Number, PositiveFloat, PositiveInt, Precision

log = get_logger(__name__)

PRECISIONS = {"float32": torch.float32, "bfloat16": torch.bfloat16}  # of the fixed features' projection
#: keys that shape only the signed branches (inert with sga: false)
SIGNED_KEYS = frozenset({"lambda_s", "gamma", "psi", "mlp_layers", "pseudo_in_sign_loss"})


def binary_adjacency(
    n_users: int, n_items: int, users: np.ndarray, items: np.ndarray, device: torch.device | str
) -> torch.Tensor:
    """Normalised adjacency of the binary graph R_b (duplicate (user, item) pairs count once)."""
    key = np.unique(np.asarray(users, np.int64) * n_items + np.asarray(items, np.int64))
    return normalized_adjacency(n_users, n_items, key // n_items, key % n_items, device=device)


class SiMGR(Recommender):
    name = "simgr"

    class Params(ModelParams):
        """The paper's settings where it gives them (§5.1); its weights lambda_s, beta_cl, gamma, psi,
        P (``mm_layers``) and the MLP depth it does not give (docs/paper-notes.md)."""

        n_layers: NonNegativeInt = 2
        mm_layers: NonNegativeInt = 2
        reg: NonNegativeFloat = 1e-4
        lambda_s: NonNegativeFloat = 0.1
        gamma: Number = 1.0
        psi: Number = 0.0
        beta_cl: NonNegativeFloat = 0.01
        tau: PositiveFloat = 0.5
        mlp_layers: PositiveInt = 2  # eq. 9's MLP: Linear layers (ReLU between)
        feature_precision: Precision = "float32"  # or bfloat16: the raw-feature projection in bf16
        pseudo_in_sign_loss: Flag = True  # eq. 4 over A+ / A-'s edges, pseudo edges included (docs/paper-notes.md)
        sga: Flag = True
        pst: Flag = True
        apfi: Flag = True

        @model_validator(mode="after")
        def _signed_parts_need_sga(self) -> "SiMGR.Params":
            if not self.sga and (self.pst or self.apfi):
                raise ValueError("pst / apfi true need sga: true (they shape the signed graphs A+, A-)")
            return self

    @classmethod
    def reads(cls, hp: Params) -> frozenset[str]:
        """features always; PST's thresholds, the global delta and APFI's pseudo edges only for the
        variants that use them."""
        return frozenset({"features"} | ({"thresholds"} if hp.sga and hp.pst else set())
                         | ({"delta"} if hp.sga and not hp.pst else set()) | ({"pseudo"} if hp.sga and hp.apfi else set()))

    @classmethod
    def inert_keys(cls, hp: Params, modalities: Sequence[str]) -> frozenset[str]:
        """Without SGA the signed branches' keys weigh nothing."""
        return frozenset() if hp.sga else SIGNED_KEYS

    def __init__(self, data: TrainData, hp: Params, emb_dim: int, device: torch.device):
        super().__init__(data, hp, emb_dim, device)
        self.n_layers = hp.n_layers
        self.reg = hp.reg
        self.beta_cl = hp.beta_cl
        self.tau = hp.tau
        self.use_sga, self.use_pst, self.use_apfi = hp.sga, hp.pst, hp.apfi
        if not data.features:
            raise UserError(f"{data.name}: SiMGR needs item features (run the features stage)")

        # eq. 2: ID LightGCN over the binary graph of all training interactions
        self.user_emb = xavier_embedding(self.n_users, emb_dim)
        self.item_emb = xavier_embedding(self.n_items, emb_dim)
        # fixed graphs: built on the device once, plain attributes (not parameters, not checkpointed)
        self.adj = binary_adjacency(self.n_users, self.n_items, data.train.user, data.train.item, self.device)
        user_mean = user_mean_matrix(self.n_users, self.n_items, data.train.user, data.train.item, self.device)
        self.modality = ModalityGraphEmbedding(
            data.features, user_mean, self.adj, emb_dim, hp.mm_layers, self.device, PRECISIONS[hp.feature_precision]
        )
        log.info(
            "SiMGR: %d users, %d items, %d training edges; modalities %s",
            self.n_users,
            self.n_items,
            len(data.train),
            {m: data.features[m].shape[1] for m in sorted(data.features)},
        )

        self.sga: SignedGraphAugmentation | None = None
        self.lambda_s = self.gamma = self.psi = 0.0
        self._sign_order: torch.Tensor | None = None
        self._sign_next = 0
        if self.use_sga:
            self.lambda_s, self.gamma, self.psi = hp.lambda_s, hp.gamma, hp.psi
            self._build_sga(self._signed_edges(data), emb_dim)

    def _build_sga(self, edges: SignedEdges, emb_dim: int) -> None:
        """A+ / A- (eq. 5, 9), the SGA module and the signed edges of the sign loss (eq. 4), on the device."""
        pos, neg = edges.sign > 0, edges.sign < 0
        adj_pos = binary_adjacency(self.n_users, self.n_items, edges.user[pos], edges.item[pos], self.device)
        adj_neg = binary_adjacency(self.n_users, self.n_items, edges.user[neg], edges.item[neg], self.device)
        self.sga = SignedGraphAugmentation(self.n_users, self.n_items, adj_pos, adj_neg, emb_dim, self.n_layers, self.hp.mlp_layers)
        # eq. 4 sums over E+ / E-, which after APFI hold the pseudo edges; `pseudo_in_sign_loss: false` is the
        # other reading (pseudo edges shape A+ / A- only), a diagnosis variant (docs/paper-notes.md)
        in_loss = np.ones(len(edges.user), bool) if self.hp.pseudo_in_sign_loss else ~edges.pseudo
        self.sign_user = torch.from_numpy(edges.user[in_loss]).to(self.device)
        self.sign_item = torch.from_numpy(edges.item[in_loss]).to(self.device)
        self.sign_sign = torch.from_numpy(edges.sign[in_loss].astype(np.float32)).to(self.device)
        log.info(
            "SGA (pst=%s, apfi=%s): A+ %d edges (%d pseudo), A- %d edges (%d pseudo); %d signed edges in the sign loss",
            self.use_pst, self.use_apfi, int(pos.sum()), int((pos & edges.pseudo).sum()),
            int(neg.sum()), int((neg & edges.pseudo).sum()), int(in_loss.sum()),
        )  # fmt: skip

    def _signed_edges(self, data: TrainData) -> SignedEdges:
        """The signed edges this variant uses: PST or global-delta signs, with or without pseudo edges."""
        if not self.use_pst and data.delta is None:
            raise UserError(f"{data.name}: SiMGR with pst: false needs the global delta (params pst.delta)")
        if self.use_pst and data.thresholds is None:
            raise UserError(f"{data.name}: SiMGR with pst: true needs PST's thresholds (run the graph stage)")
        if self.use_apfi and data.pseudo is None:
            raise UserError(f"{data.name}: SiMGR with apfi: true needs APFI's pseudo edges (run the graph stage)")
        known = data.thresholds[np.isfinite(data.thresholds)] if self.use_pst else np.zeros(0)
        if len(known) > 1 and np.all(known == known[0]):
            log.warning("every user's PST threshold is %s (the graph was built with pst.enabled false?) but this variant asks for "
                        "pst: true", known[0])
        if self.use_apfi and not len(data.pseudo.user):
            log.warning("the graph has no pseudo edges (built with apfi disabled?) but this variant asks for apfi: true")
        return model_edges(data.train, thresholds=data.thresholds if self.use_pst else None,
                           delta=None if self.use_pst else data.delta, pseudo=data.pseudo if self.use_apfi else None)

    # ---------------------------------------------------------------- forward
    def ego(self) -> torch.Tensor:
        """E^(0) = E^id, [M+N, d] (users then items)."""
        return torch.cat([self.user_emb.weight, self.item_emb.weight], dim=0)

    def forward_all(self, rows: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(E_ig(new), E*) for all nodes, [M+N, d] each (E_ig(new) = E_ig without SGA).

        With ``rows`` (distinct node indices) both at those rows only: what a training batch
        needs; the last propagation layer and every per-node step run for those rows alone.
        """
        e_ig = propagate(self.adj, self.ego(), self.n_layers, mean=True, symmetric=True, rows=rows)  # eq. 2
        if self.sga is not None:
            e_ig = self.sga(e_ig, rows)  # eq. 10
        return e_ig, e_ig + self.modality(rows)  # eq. 3

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        _, e_star = self.forward_all()
        return e_star[: self.n_users], e_star[self.n_users :]

    # ---------------------------------------------------------------- training
    def pre_epoch(self, epoch: int, generator: torch.Generator) -> None:
        """Shuffle the signed edges for this epoch's sign-loss batches (drawn in order, cyclically)."""
        if self.sga is not None:
            n = len(self.sign_user)
            self._sign_order = torch.randperm(n, generator=generator, device=generator.device).to(self.device)
            self._sign_next = 0

    def _sign_batch(self, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The next ``k`` signed edges of this epoch's order (user, item, sign)."""
        n = len(self.sign_user)
        if self._sign_order is None:  # loss() without pre_epoch (e.g. a direct call): torch's global RNG
            self._sign_order = torch.randperm(n).to(self.device)
            self._sign_next = 0
        pos = (self._sign_next + torch.arange(k, device=self.device)) % n
        self._sign_next = (self._sign_next + k) % n
        idx = self._sign_order[pos]
        return self.sign_user[idx], self.sign_item[idx], self.sign_sign[idx]

    def loss(self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> dict[str, torch.Tensor]:
        m = self.n_users
        want = {"u": users, "p": m + pos, "n": m + neg}
        if self.sga is not None and self.lambda_s > 0 and len(self.sign_user):
            su, si, ss = self._sign_batch(len(users))
            want.update(su=su, si=m + si)
        if self.beta_cl > 0:
            want.update(uu=unique_rows(users, m)[0], ii=m + unique_rows(pos, self.n_items)[0])
        # the final embeddings at the batch's distinct nodes only; at[name] = positions of want[name]
        rows, inverse = unique_rows(torch.cat(list(want.values())), m + self.n_items)
        at = dict(zip(want, torch.split(inverse, [len(v) for v in want.values()])))
        e_ig, e_star = self.forward_all(rows)
        parts = {"bpr": bpr_loss(e_star[at["u"]], e_star[at["p"]], e_star[at["n"]])}  # eq. 1
        if "su" in at:
            parts["sign"] = self.lambda_s * sign_loss(e_star[at["su"]], e_star[at["si"]], ss, self.gamma, self.psi)  # eq. 4
        if "uu" in at:
            uu, ii = at["uu"], at["ii"]
            cl = info_nce(e_ig[uu], e_star[uu], self.tau) + info_nce(e_ig[ii], e_star[ii], self.tau)  # eq. 22
            parts["cl"] = self.beta_cl * cl
        if self.reg > 0:
            ego = [self.user_emb(users), self.item_emb(pos), self.item_emb(neg)]
            if self.sga is not None:
                ego += [self.sga.user_pos[users], self.sga.item_pos[pos], self.sga.item_pos[neg]]
            parts["reg"] = self.reg * l2_reg(*ego)
        return parts
