"""The one interface every recommender implements.

A model is built from a :class:`~pipeline.data.TrainData`, its own section of
``params.yaml`` (``cfg``), the embedding size and a device. The trainer calls :meth:`pre_epoch`
once per epoch and :meth:`loss` per batch of (user, positive item, sampled negative item)
triples, and sums the returned parts. Scores are inner products of the final embeddings
returned by :meth:`embeddings`, which is all evaluation needs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Sequence

import torch
from torch import nn

from pipeline.errors import UserError
from pipeline.data import TrainData


class Recommender(nn.Module, ABC):
    #: short name used in params.yaml and file names
    name: ClassVar[str] = "recommender"
    #: inputs beyond the interactions: any of pipeline.data.INPUTS
    needs: ClassVar[frozenset[str]] = frozenset()
    #: one-line paper reference shown in reports
    reference: ClassVar[str] = ""

    def __init__(self, data: TrainData, cfg: dict[str, Any], emb_dim: int, device: torch.device):
        super().__init__()
        self.n_users = data.n_users
        self.n_items = data.n_items
        self.cfg = dict(cfg)
        self.emb_dim = emb_dim
        self.device = torch.device(device)

    @classmethod
    def inputs(cls, cfg: dict[str, Any]) -> frozenset[str]:
        """Inputs this configuration reads beyond interactions (default: the class's ``needs``)."""
        return cls.needs

    @classmethod
    def inert_keys(cls, modalities: Sequence[str]) -> frozenset[str]:
        """Keys of its params section that cannot change this model on a dataset with these
        modalities (a study leaves them out of its search). Default: none."""
        return frozenset()

    def param(self, key: str, default: Any = ...) -> Any:
        """A hyper-parameter of this model's params section (UserError naming a missing key)."""
        if key in self.cfg:
            return self.cfg[key]
        if default is ...:
            raise UserError(f"params.yaml: models.{self.name} has no key '{key}'")
        return default

    @abstractmethod
    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Final user [n_users, d] and item [n_items, d] embeddings (scores = U @ I.T)."""

    @abstractmethod
    def loss(self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> dict[str, torch.Tensor]:
        """Named loss parts for one batch; the trainer minimises their sum."""

    def pre_epoch(self, epoch: int, generator: torch.Generator) -> None:
        """Called before each training epoch (edge dropout, resampling, ...). Default: nothing."""

    @torch.no_grad()
    def scores(self, users: torch.Tensor) -> torch.Tensor:
        """Scores of every item for a batch of users, [len(users), n_items]."""
        u, i = self.embeddings()
        return u[users] @ i.T


def xavier_embedding(n: int, dim: int) -> nn.Embedding:
    """An embedding table initialised with Xavier uniform (paper §5.1)."""
    emb = nn.Embedding(n, dim)
    nn.init.xavier_uniform_(emb.weight)
    return emb
