"""One trial of a study: train a model at a candidate's values, score it on validation.

A trial is set up as any run (:func:`pipeline.run.setup.prepare` with the candidate's values: every
key the study searches at its candidate, every ``auto`` it does not search at its default, the
rest as params.yaml writes it). Data is loaded once per study; for SiMGR's study, whose
candidates may change the signed graph (``pst.*``, ``apfi.*``), the graph is built in-process for
each distinct graph setting (cached), exactly as the graph stage builds it
(:func:`pipeline.graph.build.signed_graph`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from pipeline.data import SignedEdges, TrainData, load_train_data, pseudo_edges, thresholds_array
from pipeline.evaluation.ranking import EvalSets, evaluate
from pipeline.graph.build import candidate_settings, signed_graph
from pipeline.graph.signed import GraphSettings
from pipeline.run.models import model_entry
from pipeline.run.setup import RunSpec, prepare, train
from pipeline.schemas import read_table
from pipeline.settings.sections import Params


@dataclass(frozen=True)
class TrialResult:
    value: float  # the best validation score (the study's objective)
    best_epoch: int
    epochs: int
    validations: int
    stop_reason: str
    valid: dict[str, float]
    test: dict[str, float]  # of the best-validation model: recorded for the sensitivity figures, never selected on
    curve: tuple[float, ...] = ()  # the validation score at each validation


class TrialRunner:
    """Trains ``model`` on one dataset for each candidate ``values`` (one seed, no files written)."""

    def __init__(self, root: str | Path, dataset: str, params: Params, model: str, seed: int, metric: str,
                 searched: frozenset[str] = frozenset()):
        self.root, self.dataset, self.params, self.model = Path(root), dataset, params, model
        self.seed, self.metric, self.searched = int(seed), metric, frozenset(searched)
        reads = model_entry(params, model).reads()
        self.builds_graph = bool(reads & {"thresholds", "pseudo"})
        # the graph is built here (its settings may be candidates), so only the features / kNN lists are read
        files = (reads - {"thresholds", "pseudo", "delta"}) | ({"features"} if self.builds_graph else set())
        self.base = load_train_data(self.root, frozenset(files), name=dataset)
        self._graphs: dict[GraphSettings, tuple[np.ndarray, SignedEdges]] = {}
        self._interactions = None

    def data(self, spec: RunSpec) -> TrainData:
        """The study's data with what this trial reads: the global delta, the signed graph of its settings."""
        data = replace(self.base, delta=spec.delta)
        if spec.graph is None:
            return data
        if spec.graph not in self._graphs:
            if self._interactions is None:
                self._interactions = read_table(self.root / "ingest" / "interactions.parquet", "interactions")
            graph, _ = signed_graph(self._interactions, self.base.features, spec.graph, candidate_settings(self.params.neighbors))
            self._graphs[spec.graph] = (thresholds_array(graph.thresholds, self.base.n_users), pseudo_edges(graph.pseudo))
        thresholds, pseudo = self._graphs[spec.graph]
        return replace(data, thresholds=thresholds if "thresholds" in spec.reads else None,
                       pseudo=pseudo if "pseudo" in spec.reads else None)

    def __call__(self, values: dict[str, Any], report: Callable[[int, float], None] | None = None) -> TrialResult:
        """Train at ``values``; ``report(index, score)`` after each validation (a pruner may stop the run there)."""
        spec = prepare(self.params, self.dataset, self.model, candidates=values, searched=self.searched, root=self.root)
        data = self.data(spec)
        result = train(spec, data, self.seed, on_validation=report)
        h, settings = result.history, spec.settings
        test = evaluate(result.user_emb, result.item_emb, EvalSets.from_data(data), split="test", ks=settings.ks,
                        protocol=settings.protocol, batch_size=settings.eval_batch_size).mean
        return TrialResult(float(h["valid"][self.metric]), h["best_epoch"], h["epochs"], h["validations"], h["stop_reason"],
                           h["valid"], {k: float(v) for k, v in test.items()},
                           tuple(float(row["valid"][self.metric]) for row in h["curve"]))
