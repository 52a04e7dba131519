"""The one place a training run is set up: from (params, dataset, model, selected or tried values)
to the run's typed settings, its inputs and its model. The train stage, a study's trials and the
benchmarks all go through :func:`prepare` -> :func:`load_data` -> :func:`train`.

What a run reads is what its model's class declares (``reads``); the values it uses follow
:mod:`pipeline.run.models` (params.yaml, ``auto`` -> the owner study's selection or the default),
and :meth:`RunSpec.describe` records them with their sources in ``history.json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from pipeline.data import TrainData, load_train_data
from pipeline.errors import UserError
from pipeline.graph.signed import GraphSettings
from pipeline.models.base import ModelParams, Recommender
from pipeline.paths import DATA
from pipeline.run.models import ModelEntry, model_entry, owner_of, resolve_graph, resolve_values
from pipeline.run.selection import SELECTED, read_selected, study_dir
from pipeline.settings.sections import Params
from pipeline.training.trainer import FitResult, TrainSettings, fit


@dataclass(frozen=True)
class RunSpec:
    """Everything that decides one run except its seed: typed, every value resolved."""

    dataset: str
    model: str  # the params entry (a variant's own name)
    owner: str  # the model whose study selects its auto values
    entry: ModelEntry
    hp: ModelParams  # the model class's Params
    settings: TrainSettings
    reads: frozenset[str]
    delta: float | None = None  # the global sign threshold (pst.delta) for models reading "delta"
    graph: GraphSettings | None = None  # a study trial's signed graph (final runs read the graph stage's files)
    sources: dict[str, str] = field(default_factory=dict)  # dotted key -> where its value came from

    @property
    def cls(self) -> type[Recommender]:
        return self.entry.cls

    def value_of(self, key: str) -> Any:
        """The value this run uses for a dotted key of a study (``train.lr``, ``models.<owner>.reg``, ``pst.nu``)."""
        section, _, name = key.rpartition(".")
        if section == "train":
            return getattr(self.settings, name)
        if section.startswith("models."):
            return getattr(self.hp, name)
        if section in ("pst", "apfi") and self.graph is not None:
            return getattr(getattr(self.graph, section), name)
        raise KeyError(f"{key}: not a value of this run")

    def describe(self) -> dict[str, Any]:
        """What history.json records of the set-up: every value the run used and its source."""
        train = self.settings.model_dump()
        return {"model": self.model, "class": self.entry.kind, "study": self.owner,
                "hyperparameters": dict(self.hp), "train": train,
                **({"delta": self.delta} if self.delta is not None else {}),
                **({"graph": self.graph.describe()} if self.graph is not None else {}),
                "sources": dict(sorted(self.sources.items()))}


def modalities(dataset: str, root: Path | None = None) -> tuple[str, ...]:
    """The feature modalities the dataset's features stage wrote (none for ratings-only data)."""
    vec_dir = (root or DATA / dataset) / "features" / "vectors"
    return tuple(sorted(p.stem for p in vec_dir.glob("*.npy"))) if vec_dir.is_dir() else ()


def prepare(params: Params, dataset: str, model: str, *, selection: Mapping[str, Any] | None = None,
            candidates: Mapping[str, Any] | None = None, searched: frozenset[str] = frozenset(),
            root: Path | None = None) -> RunSpec:
    """The :class:`RunSpec` of ``model`` on ``dataset``.

    A final run passes its owner study's ``selection`` (:func:`final_run` reads it); a study trial its
    ``candidates`` (dotted keys: ``train.lr``, ``models.<owner>.<key>``, ``pst.nu``, ...) and every key
    its study ``searched`` (search and sweeps): a searched key not among the candidates and every
    ``auto`` it does not search are at their defaults, and the trial builds the signed graph it reads."""
    entry = model_entry(params, model)
    owner = owner_of(params, model)
    tuned = params.tune.enabled
    hp, overrides, sources = resolve_values(entry, owner, selection=selection, candidates=candidates, searched=searched,
                                            tuned=tuned, modalities=modalities(dataset, root))
    settings = TrainSettings.model_validate({**params.train.model_dump(), **overrides, "protocol": params.evaluate.protocol})
    reads = entry.cls.reads(hp)
    graph = None
    if candidates is not None and reads & {"thresholds", "pseudo"}:
        graph, graph_sources = resolve_graph(params, selection=selection, candidates=candidates, searched=searched, tuned=tuned)
        sources.update(graph_sources)
    delta = None
    if "delta" in reads:
        delta = float(params.pst.delta)
        sources["pst.delta"] = "params.yaml"
    return RunSpec(dataset, model, owner, entry, hp, settings, reads, delta, graph, sources)


def final_run(params: Params, dataset: str, model: str) -> RunSpec:
    """The :class:`RunSpec` of a final run: the owner study's selection applied to the ``auto`` keys.
    A run with ``auto`` keys whose study has not run on ``dataset`` is one line saying how to run it or do without."""
    owner = owner_of(params, model)
    path = study_dir(dataset, owner) / SELECTED
    entry = model_entry(params, model)
    found = modalities(dataset)
    inert = entry.cls.inert_keys(entry.defaults(), found)
    autos = [k for k in entry.auto_keys() if k.startswith("train.") or k.rpartition(".")[2] not in inert]
    skipped = "features" in entry.reads() and not found  # the train stage skips it (skip_reason)
    selection = {}
    if params.tune.enabled and autos and not skipped:
        if not path.exists():
            raise UserError(f"{path}: not found: {model} takes {', '.join(autos)} (auto) from the study of {owner} on {dataset}, which "
                            f"has not run; run it (simgr tune {dataset} {owner}, or dvc repro), or train without it: give those keys "
                            "values, or set tune.enabled: false (every auto at its default; dvc exp run -S tune.enabled=false)")
        selection = read_selected(path)
    return prepare(params, dataset, model, selection=selection)


def skip_reason(spec: RunSpec, root: Path | None = None) -> str | None:
    """Why ``spec`` cannot run on its dataset (a model reading item features on a dataset without any), else None."""
    if "features" in spec.reads and not modalities(spec.dataset, root):
        return (f"{spec.model} reads item features, and {spec.dataset} has none (no item text, images or feature files): "
                "only the interaction-only models run on it")
    return None


def load_data(spec: RunSpec, root: Path | None = None) -> TrainData:
    """The stage outputs the run reads (``root`` defaults to ``data/<dataset>``)."""
    return load_train_data(root or DATA / spec.dataset, spec.reads, delta=spec.delta, name=spec.dataset)


def build_model(spec: RunSpec, data: TrainData, device: torch.device | str) -> Recommender:
    """The run's model on ``device`` (called by the trainer after seeding, so initialisation is seeded)."""
    model = spec.cls(data, spec.hp, spec.settings.emb_dim, torch.device(device))
    model.run_name = spec.model
    return model.to(device)


def train(spec: RunSpec, data: TrainData, seed: int, *, out_dir: Path | None = None, log_dir: Path | None = None,
          resume: bool = False, on_validation: Callable[[int, float], None] | None = None) -> FitResult:
    """Train the run (:func:`pipeline.training.trainer.fit`), recording its set-up in history.json."""
    return fit(lambda device: build_model(spec, data, device), data, spec.settings, seed, out_dir=out_dir, log_dir=log_dir,
               resume=resume, setup=spec.describe(), on_validation=on_validation)

