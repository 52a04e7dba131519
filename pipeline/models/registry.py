"""Model names (as used in params.yaml) -> classes, and building a model from its params.

A params entry with ``variant_of: <model>`` is that model with the listed keys overridden
(the ablations of Figure 3: ``base``, ``base_sga``, ``base_sga_pst``, ``base_sga_apfi``). An entry's
optional ``train`` mapping overrides the ``train`` section for that model (``lr``, ``batch_size``:
a baseline run as its authors run it, e.g. SiReN's lr 5e-3 on batches of 1,024).
Classes are imported lazily so that a model's module is only loaded when it is used.
"""

from __future__ import annotations

import importlib
from typing import Any

import torch

from pipeline.errors import UserError
from pipeline.data import TrainData

MODEL_CLASSES: dict[str, str] = {
    "mf": "pipeline.models.mf:MF",
    "lightgcn": "pipeline.models.lightgcn:LightGCN",
    "siren": "pipeline.models.siren:SiReN",
    "freedom": "pipeline.models.freedom:FREEDOM",
    "lgmrec": "pipeline.models.lgmrec:LGMRec",
    "simgr": "pipeline.models.simgr:SiMGR",
}


TRAIN_OVERRIDES = ("lr", "batch_size")


def _merged(name: str, models_params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    if name not in models_params:
        raise UserError(f"params.yaml: models has no entry '{name}' (known: {sorted(models_params)})")
    cfg = dict(models_params[name] or {})
    parent = cfg.pop("variant_of", None)
    if parent is None:
        return name, cfg
    if parent not in models_params:
        raise UserError(f"params.yaml: models.{name}.variant_of names unknown model '{parent}'")
    merged = dict(models_params[parent] or {})
    merged.pop("variant_of", None)
    train = {**(merged.get("train") or {}), **(cfg.get("train") or {})}
    merged.update(cfg)
    if train:
        merged["train"] = train
    return parent, merged


def resolve_config(name: str, models_params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(class name, merged model config) for a params entry, following ``variant_of`` once
    (the ``train`` overrides are not part of the model's config: :func:`train_overrides`)."""
    kind, cfg = _merged(name, models_params)
    cfg.pop("train", None)
    return kind, cfg


def train_overrides(name: str, models_params: dict[str, Any]) -> dict[str, Any]:
    """The entry's ``train`` overrides (keys of :data:`TRAIN_OVERRIDES`), following ``variant_of``."""
    train = dict(_merged(name, models_params)[1].get("train") or {})
    unknown = sorted(set(train) - set(TRAIN_OVERRIDES))
    if unknown:
        raise UserError(f"params.yaml: models.{name}.train: unknown key(s) {unknown} (known: {list(TRAIN_OVERRIDES)})")
    return train


def model_class(kind: str):
    if kind not in MODEL_CLASSES:
        raise UserError(f"unknown model '{kind}' (known: {sorted(MODEL_CLASSES)})")
    module, cls = MODEL_CLASSES[kind].split(":")
    return getattr(importlib.import_module(module), cls)


def build_model(
    name: str,
    data: TrainData,
    models_params: dict[str, Any],
    emb_dim: int,
    device: torch.device,
    overrides: dict[str, Any] | None = None,
):
    """Instantiate the model named ``name`` in ``models_params`` (the params.yaml ``models`` section).

    ``overrides`` are merged into the resolved config (e.g. the train stage's ``global_delta``).
    """
    kind, cfg = resolve_config(name, models_params)
    cfg.update(overrides or {})
    cls = model_class(kind)
    model = cls(data, cfg, emb_dim, device)
    model.name = name
    return model.to(device)
