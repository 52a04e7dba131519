"""The sections of params.yaml, one class each, and :class:`Params`, the whole file.

A key without a default is one the pipeline needs (a stage reads it with no fallback); a key
with a default may be left out, and the default is the one the reading code uses. Adding a key is
one field in its section; adding a section is one class here plus one field of :class:`Params`
(and, when every run needs it, its name in :data:`REQUIRED`).
"""

from __future__ import annotations

from typing import Annotated, Any, Optional

from pydantic import Field

from pipeline.settings.datasets import DatasetEntry
from pipeline.settings.models import ModelsSection
from pipeline.settings.types import (
    Device, Flag, Fraction, Metric, Name, Names, NonNegativeInt, Number, OnError, PositiveFloat, PositiveInt, Protocol,
    Section, Seed, Seeds, Similarity, SplitMethod, Text,
)

TopK = Annotated[list[PositiveInt], Field(min_length=1, description="a non-empty list of positive integers")]
Metrics = Annotated[list[Metric], Field(min_length=1, description="a non-empty list of <metric>@<k>")]


class Run(Section):
    """What ``dvc repro`` runs: the stage matrix (the model groups of dvc.yaml's training stages)."""

    datasets: Annotated[list[Name], Field(min_length=1, description="a non-empty list of datasets entries")]
    seeds: Seeds
    models_cf: Names = []
    models_mm: Names = []
    models_sga: Names = []
    models_pst: Names = []
    models_apfi: Names = []
    models_signed: Names = []


class Synth(Section):
    """The synthetic Amazon-2014-format files (:func:`pipeline.synth.write_synthetic`)."""

    n_users: PositiveInt
    n_items: PositiveInt
    n_interactions: PositiveInt
    n_clusters: PositiveInt
    image_dim: PositiveInt = 4096
    seed: Seed = 0


class Ingest(Section):
    """Cleaning, k-core and split (:class:`pipeline.ingest.dataset.IngestConfig`)."""

    kcore: NonNegativeInt = 5
    rating_min: Number = 1.0
    rating_max: Number = 5.0
    split: SplitMethod = "random"
    seed: Seed = 999
    on_error: OnError = "raise"


class Features(Section):
    text_model: Text
    batch_size: PositiveInt
    device: Device


class Neighbors(Section):
    k: PositiveInt
    candidates: PositiveInt
    device: Device
    block_size: PositiveInt
    recall_sample: NonNegativeInt
    seed: Seed


class PST(Section):
    enabled: Flag
    nu: Fraction
    delta: Number


class APFI(Section):
    enabled: Flag
    xi: Fraction
    q: PositiveInt
    zeta_pos: Similarity
    zeta_neg: Similarity


class Train(Section):
    """:class:`pipeline.training.trainer.TrainSettings` (same keys, same defaults)."""

    device: Device = "auto"
    valid_every_steps: PositiveInt = 50
    max_validations: PositiveInt = 1000
    threads: NonNegativeInt = 1
    patience: NonNegativeInt = 20
    lr: PositiveFloat = 1e-3
    batch_size: PositiveInt = 2048
    emb_dim: PositiveInt = 64
    eval_batch_size: PositiveInt = 4096
    valid_metric: Metric = "recall@20"


class Evaluate(Section):
    protocol: Protocol
    topk: TopK
    batch_size: PositiveInt = 4096
    device: Device = "auto"


class Report(Section):
    metrics: Metrics
    proposed: Name
    ablation: Names = []


Values = Annotated[list[Any], Field(min_length=1, description="a non-empty list of values")]


class SpaceSections(Section):
    """``tune.spaces.<model>``: per section, the keys searched and their values."""

    train: Annotated[Optional[dict[Name, Values]], Field(description="train keys -> lists of values")] = None
    model: Annotated[Optional[dict[Name, Values]], Field(description="the model's own keys -> lists of values")] = None
    pst: Annotated[Optional[dict[Name, Values]], Field(description="pst keys -> lists of values")] = None
    apfi: Annotated[Optional[dict[Name, Values]], Field(description="apfi keys -> lists of values")] = None


class Tune(Section):
    """Hyper-parameter selection on validation (:mod:`pipeline.tuning`)."""

    enabled: Flag
    seed: Seed
    max_trials: PositiveInt
    storage: Text
    workers: PositiveInt = 1
    inherit: Annotated[dict[Name, Name], Field(description="a mapping of model -> the model whose study it uses")] = {}
    spaces: Annotated[dict[Name, SpaceSections], Field(description="a mapping of model -> its search space")] = {}
    sweeps: Annotated[dict[Name, SpaceSections], Field(description="a mapping of model -> keys swept one at a time after its search")] = {}


class Repro(Section):
    """What ``make repro-check`` rebuilds (read by the check, not by a stage)."""

    full: Names = []
    seed: Seed = 0
    jobs: PositiveInt = 2


class Params(Section):
    """The whole params.yaml. Sections are optional here; :data:`REQUIRED` lists those a full
    check (``simgr check``, the ``check`` stage) asks for."""

    run: Optional[Run] = None
    datasets: Optional[dict[Name, DatasetEntry]] = None
    synth: Optional[Synth] = None
    ingest: Optional[Ingest] = None
    features: Optional[Features] = None
    neighbors: Optional[Neighbors] = None
    pst: Optional[PST] = None
    apfi: Optional[APFI] = None
    train: Optional[Train] = None
    evaluate: Optional[Evaluate] = None
    models: Optional[ModelsSection] = None  # type: ignore[valid-type]
    report: Optional[Report] = None
    tune: Optional[Tune] = None
    repro: Optional[Repro] = None


REQUIRED = ("run", "datasets", "synth", "ingest", "features", "neighbors", "pst", "apfi", "train", "evaluate", "models", "report",
            "tune")
