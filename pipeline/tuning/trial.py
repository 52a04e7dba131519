"""One trial of a study: train a model at params + a candidate's values, score it on validation.

The settings of a run, trial or final (:func:`run_settings`): the ``train`` section, then the
model's own ``train`` overrides (a baseline run as its authors run it), then the values selected
or tried, which win. Data is loaded once per study; for SiMGR's study, whose candidates may change
the signed graph (``pst.*``, ``apfi.*``), the graph is built in-process for each distinct graph
setting (cached), exactly as the graph stage builds it (:func:`pipeline.graph.build.signed_graph`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from pipeline.data import SignedEdges, TrainData, load_train_data
from pipeline.evaluation.ranking import EvalSets, evaluate
from pipeline.graph.build import candidate_settings, signed_graph
from pipeline.graph.signed import GraphSettings
from pipeline.models.registry import build_model, model_class, resolve_config, train_overrides
from pipeline.params import get
from pipeline.schemas import read_table
from pipeline.training.trainer import TrainSettings, fit
from pipeline.tuning.selection import GRAPH_PREFIXES, apply


def run_settings(params: dict[str, Any], model: str, values: dict[str, Any]) -> tuple[dict[str, Any], TrainSettings]:
    """(params with ``values`` applied, the run's TrainSettings): train section < the model's
    ``train`` overrides < ``values``."""
    applied = apply(params, values)
    settings = TrainSettings.from_params(applied)
    own = {k: v for k, v in train_overrides(model, applied["models"]).items() if f"train.{k}" not in values}
    return applied, replace(settings, **own)


def model_inputs(model: str, params: dict[str, Any]) -> frozenset[str]:
    kind, cfg = resolve_config(model, params["models"])
    return model_class(kind).inputs(cfg)


def inert_keys(model: str, params: dict[str, Any], modalities: Sequence[str]) -> frozenset[str]:
    """The model's own keys that cannot change it on a dataset with these modalities."""
    return model_class(resolve_config(model, params["models"])[0]).inert_keys(modalities)


@dataclass(frozen=True)
class TrialResult:
    value: float  # the best validation score (the study's objective)
    best_epoch: int
    epochs: int
    validations: int
    stop_reason: str
    valid: dict[str, float]
    test: dict[str, float]  # of the best-validation model: recorded for the sensitivity figures, never selected on


class TrialRunner:
    """Trains ``model`` on one dataset for each candidate ``values`` (one seed, no files written)."""

    def __init__(self, root: str | Path, dataset: str, params: dict[str, Any], model: str, seed: int, metric: str):
        self.root, self.dataset, self.params, self.model = Path(root), dataset, params, model
        self.seed, self.metric = int(seed), metric
        inputs = model_inputs(model, params)
        self.builds_graph = bool(inputs & {"thresholds", "pseudo"})
        # the graph is built here (its settings may be candidates), so only features / kNN lists are read
        self.base = load_train_data(self.root, features="features" in inputs or self.builds_graph, knn="knn" in inputs, name=dataset)
        self._graphs: dict[GraphSettings, tuple[np.ndarray, SignedEdges]] = {}
        self._interactions = None

    def data(self, params: dict[str, Any]) -> TrainData:
        """The study's data with the signed graph of ``params`` (pst / apfi) when the model reads it."""
        if not self.builds_graph:
            return self.base
        settings = GraphSettings.from_params(params)
        if settings not in self._graphs:
            if self._interactions is None:
                self._interactions = read_table(self.root / "ingest" / "interactions.parquet", "interactions")
            graph, _ = signed_graph(self._interactions, self.base.features, settings, candidate_settings(params))
            t = graph.thresholds
            delta = np.full(self.base.n_users, np.nan, np.float32)
            delta[t["user"].to_numpy()] = t["delta"].to_numpy()
            p = graph.pseudo
            pseudo = SignedEdges(p["user"].to_numpy().astype(np.int64), p["item"].to_numpy().astype(np.int64),
                                 p["sign"].to_numpy().astype(np.int8), np.ones(p.height, bool), p["weight"].to_numpy())
            self._graphs[settings] = (delta, pseudo)
        delta, pseudo = self._graphs[settings]
        return replace(self.base, thresholds=delta, pseudo=pseudo)

    def __call__(self, values: dict[str, Any]) -> TrialResult:
        params, settings = run_settings(self.params, self.model, values)
        data = self.data(apply(self.params, {k: v for k, v in values.items() if k.startswith(GRAPH_PREFIXES)}))
        inputs = model_inputs(self.model, params)
        overrides = {"global_delta": float(get(params, "pst.delta"))} if "delta" in inputs else {}
        result = fit(lambda device: build_model(self.model, data, params["models"], settings.emb_dim, device, overrides),
                     data, settings, self.seed)
        h = result.history
        test = evaluate(result.user_emb, result.item_emb, EvalSets.from_data(data), split="test", ks=settings.ks,
                        protocol=settings.protocol, batch_size=settings.eval_batch_size).mean
        return TrialResult(float(h["valid"][self.metric]), h["best_epoch"], h["epochs"], h["validations"], h["stop_reason"],
                           h["valid"], {k: float(v) for k, v in test.items()})
