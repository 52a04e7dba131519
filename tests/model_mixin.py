"""Behavioural tests every recommender inherits (in the spirit of implicit's RecommenderBaseTestMixin).

Use::

    from model_mixin import RecommenderTestMixin

    class TestLightGCN(RecommenderTestMixin):
        model_name = "lightgcn"            # a key of params.yaml `models`
        model_overrides = {"n_layers": 1}  # optional: hyper-parameters replaced in the resolved ones

The model's hyper-parameters come from the real params.yaml's entry (:func:`hyperparameters`: through
``variant_of``, every ``auto`` value at the model's default, as a study's starting point), and a
model reading the global delta gets params ``pst.delta`` in its data, as the run set-up gives it.
Data: the planted-cluster set of :mod:`planted`. Training uses a
small budget (``train_settings``; override ``train_overrides`` if a model needs more) and is
cached per class and device, so the whole mixin costs one short training run plus one rerun per
model and device.

Every test runs once per device of ``conftest.DEVICES`` (the ``device`` fixture: cpu, and cuda
where torch sees a GPU). What is asserted is the same on each, except that a CUDA run promises
no bit-reproducibility (CUDA's sparse kernels and atomics have no deterministic mode;
``docs/reproducibility.md``): there the same seed must give the same validation score within
``CUDA_RERUN_TOL``, not the same bits.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from pipeline.evaluation.ranking import EvalSets, evaluate
from pipeline.models.base import ModelParams, Recommender
from pipeline.run.models import model_entry, resolve_values
from pipeline.settings import load_params
from pipeline.training.trainer import FitResult, TrainSettings, fit
from planted import planted_data

PARAMS = load_params(Path(__file__).resolve().parents[1] / "params.yaml")


def hyperparameters(name: str, params=None, **overrides: Any) -> ModelParams:
    """The hyper-parameters of the entry ``name`` of ``params`` (default: the repository's params.yaml),
    every ``auto`` at its default, with ``overrides``."""
    entry = model_entry(params or PARAMS, name)
    hp, _, _ = resolve_values(entry, name, candidates={}, tuned=False)
    return entry.cls.Params(**{**dict(hp), **overrides})


def build(name: str, data, device: torch.device | str = "cpu", emb_dim: int = 32, params=None, **overrides: Any) -> Recommender:
    """The model of the entry ``name`` (of ``params``, default params.yaml) on ``data`` (with the global delta when it reads it)."""
    params = params or PARAMS
    entry = model_entry(params, name)
    hp = hyperparameters(name, params, **overrides)
    if "delta" in entry.cls.reads(hp) and data.delta is None:
        data = replace(data, delta=float(params.pst.delta))
    model = entry.cls(data, hp, emb_dim, torch.device(device))
    model.run_name = name
    return model.to(device)
_FITS: dict[tuple, FitResult] = {}
#: on CUDA, how far two runs with the same seed may be apart in best validation Recall@20
CUDA_RERUN_TOL = 0.05


def popularity_recall(data, k: int = 10, split: str = "test") -> float:
    """Recall@k of ranking items by training degree (ties by item id), training items masked."""
    degree = np.bincount(data.train.item, minlength=data.n_items).astype(np.float32)
    users = torch.ones(data.n_users, 1)
    items = torch.from_numpy(degree)[:, None]
    return evaluate(users, items, EvalSets.from_data(data), split=split, ks=(k,)).mean[f"recall@{k}"]


class RecommenderTestMixin:
    model_name: ClassVar[str] = ""
    model_overrides: ClassVar[dict[str, Any]] = {}
    #: the params the model's entry comes from (None: the repository's params.yaml)
    params: ClassVar[Any] = None
    #: TrainSettings fields for the short training runs (merged over the defaults below)
    train_overrides: ClassVar[dict[str, Any]] = {}
    #: how far above popularity's test Recall@10 the trained model must be
    margin: ClassVar[float] = 0.1

    # -- helpers -------------------------------------------------------------------------
    @classmethod
    def data(cls):
        params = cls.params or PARAMS
        data = planted_data()
        if "delta" in model_entry(params, cls.model_name).cls.reads(hyperparameters(cls.model_name, params, **cls.model_overrides)):
            data = replace(data, delta=float(params.pst.delta))
        return data

    @classmethod
    def settings(cls, device: str = "cpu") -> TrainSettings:
        base = dict(max_validations=30, valid_every_steps=1, patience=10, lr=0.01, batch_size=256, emb_dim=32, eval_batch_size=512,
                    device=device)
        base.update(cls.train_overrides)
        return TrainSettings(**base)

    @classmethod
    def build(cls, device: torch.device | str = "cpu"):
        return build(cls.model_name, cls.data(), device, cls.settings(str(device)).emb_dim, cls.params, **cls.model_overrides)

    @classmethod
    def train(cls, seed: int = 1, cached: bool = True, device: str = "cpu", **paths) -> FitResult:
        settings = cls.settings(device)
        key = (cls.model_name, repr(sorted(cls.model_overrides.items())), repr(settings), seed)
        if cached and not paths and key in _FITS:
            return _FITS[key]
        result = fit(lambda dev: cls.build(dev), cls.data(), settings, seed, **paths)
        if cached and not paths:
            _FITS[key] = result
        return result

    # -- tests ---------------------------------------------------------------------------
    def test_embedding_and_score_shapes(self, device):
        data = self.data()
        torch.manual_seed(0)
        model = self.build(device)
        model.eval()
        with torch.no_grad():
            u, i = model.embeddings()
            assert u.shape == (data.n_users, self.settings().emb_dim)
            assert i.shape == (data.n_items, self.settings().emb_dim)
            assert u.device.type == i.device.type == device
            assert torch.isfinite(u).all() and torch.isfinite(i).all()
            users = torch.tensor([0, 5, 7], device=device)
            scores = model.scores(users)
            assert scores.shape == (3, data.n_items)
            torch.testing.assert_close(scores, u[users] @ i.T)

    def test_loss_parts_are_finite_scalars_that_backpropagate(self, device):
        data = self.data()
        torch.manual_seed(0)
        model = self.build(device)
        model.train()
        model.pre_epoch(1, torch.Generator(device=device).manual_seed(0))  # the trainer's generator lives on the device
        users = torch.from_numpy(data.train.user[:64]).to(device)
        pos = torch.from_numpy(data.train.item[:64]).to(device)
        neg = (pos + 1) % data.n_items
        parts = model.loss(users, pos, neg)
        assert isinstance(parts, dict) and parts
        for name, value in parts.items():
            assert isinstance(value, torch.Tensor) and value.dim() == 0, name
            assert torch.isfinite(value), name
        torch.stack(list(parts.values())).sum().backward()
        grads = [p.grad for p in model.parameters() if p.requires_grad]
        assert grads and any(g is not None and g.abs().sum() > 0 for g in grads)

    def test_training_items_are_never_recommended(self, device):
        data = self.data()
        res = self.train(device=device)
        sets = EvalSets.from_data(data)
        for split in ("valid", "test"):
            out = evaluate(res.user_emb, res.item_emb, sets, split=split, ks=(50,))
            train_keys = set((data.train.user * data.n_items + data.train.item).tolist())
            listed = out.users[:, None] * data.n_items + out.topk_items
            listed = listed[out.topk_items >= 0]
            assert not train_keys.intersection(listed.tolist())
            # every user has 80 - 11 = 69 unmasked items, so all 50 ranks are filled
            assert (out.topk_items >= 0).all()

    def test_same_seed_same_result(self, device):
        first = self.train(seed=1, device=device)
        second = self.train(seed=1, cached=False, device=device)
        if device == "cpu":
            assert first.history == second.history
            assert torch.equal(first.user_emb, second.user_emb)
            assert torch.equal(first.item_emb, second.item_emb)
        else:  # CUDA: the metrics band, not the bits
            metric = self.settings(device).valid_metric
            a, b = first.history["valid"][metric], second.history["valid"][metric]
            assert abs(a - b) <= CUDA_RERUN_TOL, f"{self.model_name} on {device}: valid {metric} {a:.4f} vs {b:.4f}"

    def test_beats_popularity_on_planted_clusters(self, device):
        data = self.data()
        res = self.train(device=device)
        model_recall = evaluate(res.user_emb, res.item_emb, EvalSets.from_data(data), split="test", ks=(10,)).mean["recall@10"]
        pop = popularity_recall(data)
        assert model_recall > pop + self.margin, f"{self.model_name} on {device}: recall@10 {model_recall:.3f} vs popularity {pop:.3f}"
