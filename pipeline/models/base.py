"""The one interface every recommender implements, and the shape of a model's module.

A model is one module of ``pipeline/models/`` holding one :class:`Recommender` subclass that
declares, next to its code:

* ``name``: its name in params.yaml (``models.<name>``), file names and reports;
* ``Params``: a nested :class:`ModelParams` schema of its own hyper-parameters, with their types,
  ranges and defaults (the reference implementation's); the ``models.<name>`` entry of
  params.yaml is checked against it, and the model receives a validated instance (``self.hp``);
* ``READS`` (or :meth:`reads` when it depends on the hyper-parameters): the inputs it reads
  beyond the training interactions, among :data:`pipeline.data.INPUTS`;
* optionally :meth:`inert_keys`: keys that cannot change it on a dataset (its study skips them).

The registry (:mod:`pipeline.models.registry`) finds the class by its ``name``; nothing else
lists models. ``docs/adding-a-model.md`` walks through adding one.

The trainer calls :meth:`pre_epoch` once per epoch and :meth:`loss` per batch of (user, positive
item, sampled negative item) triples, and sums the returned parts. Scores are inner products of
the final embeddings returned by :meth:`embeddings`, which is all evaluation needs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar, Sequence

import torch
from pydantic import ConfigDict
from torch import nn

from pipeline.data import TrainData
from pipeline.settings.types import Section


class ModelParams(Section):
    """A model's own hyper-parameters (its ``Params``): strict, unknown keys refused, read-only."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Recommender(nn.Module, ABC):
    #: name used in params.yaml (``models.<name>``) and file names
    name: ClassVar[str] = ""
    #: the model's hyper-parameter schema (override with a nested ``class Params(ModelParams)``)
    Params: ClassVar[type[ModelParams]] = ModelParams
    #: inputs beyond the training interactions, among pipeline.data.INPUTS
    READS: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, data: TrainData, hp: ModelParams, emb_dim: int, device: torch.device):
        super().__init__()
        if not isinstance(hp, self.Params):
            raise TypeError(f"{type(self).__name__} takes its {self.Params.__qualname__}, got {type(hp).__name__}")
        self.hp = hp
        self.n_users = data.n_users
        self.n_items = data.n_items
        self.emb_dim = emb_dim
        self.device = torch.device(device)
        self.run_name = self.name  # the params entry trained (a variant's own name); set by the run set-up

    @classmethod
    def reads(cls, hp: ModelParams) -> frozenset[str]:
        """Inputs this configuration reads beyond the interactions (default: ``READS``)."""
        return cls.READS

    @classmethod
    def inert_keys(cls, hp: ModelParams, modalities: Sequence[str]) -> frozenset[str]:
        """Keys of ``Params`` that cannot change this configuration on a dataset with these modalities
        (a study leaves them out of its search). Default: none."""
        return frozenset()

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
