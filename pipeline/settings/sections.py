"""The sections of params.yaml, one class each, and :class:`Params`, the whole file.

A key without a default is one the pipeline needs (a stage reads it with no fallback); a key
with a default may be left out, and the default is the one the reading code uses. Adding a key is
one field in its section; adding a section is one class here plus one field of :class:`Params`
(and, when every run needs it, its name in :data:`REQUIRED`).
"""

from __future__ import annotations

from typing import Annotated, Any, Optional

from pydantic import Field

from pipeline.errors import UserError

from pipeline.settings.datasets import DatasetEntry
from pipeline.settings.models import ModelEntry
from pipeline.settings.types import (
    Device, Flag, Fraction, Metric, Name, Names, NonNegativeInt, Number, OnError, PositiveFloat, PositiveInt, Protocol,
    Section, Seed, Seeds, Similarity, SplitMethod, Text, auto_or, closest,
)

TopK = Annotated[list[PositiveInt], Field(min_length=1, description="a non-empty list of positive integers")]
Metrics = Annotated[list[Metric], Field(min_length=1, description="a non-empty list of <metric>@<k>")]


class Run(Section):
    """What ``dvc repro`` runs: the stage matrix; the models by training group (pipeline.run.groups:
    what each group's dvc.yaml stage reads)."""

    datasets: Annotated[list[Name], Field(min_length=1, description="a non-empty list of datasets entries")]
    seeds: Seeds
    models_cf: Names = []
    models_mm: Names = []
    models_base: Names = []
    models_sga: Names = []
    models_pst: Names = []
    models_apfi: Names = []
    models_signed: Names = []


class Synth(Section):
    """The synthetic Amazon-2014-format files (:func:`pipeline.ingest.synth.write_synthetic`)."""

    n_users: PositiveInt
    n_items: PositiveInt
    n_interactions: PositiveInt
    n_clusters: PositiveInt
    image_dim: PositiveInt = 4096
    seed: Seed = 0


class Ingest(Section):
    """Cleaning, k-core and split (:func:`pipeline.ingest.dataset.ingest`; `simgr ingest` takes the same keys as options)."""

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
    """Personalised sign thresholds (eq. 12-14). A key set to ``auto`` is selected on validation by
    SiMGR's study; its default below (the paper's Baby setting) is where that study's search runs
    before sweeping it, and the value ``auto`` falls back to with ``tune.enabled: false``."""

    enabled: Flag = True
    nu: auto_or(Fraction) = 0.5  # type: ignore[valid-type]
    delta: Number = 3.0


class APFI(Section):
    """Pseudo-edge injection (eq. 15-21); ``auto`` and the defaults as for :class:`PST`."""

    enabled: Flag = True
    xi: auto_or(Fraction) = 0.1  # type: ignore[valid-type]
    q: auto_or(PositiveInt) = 20  # type: ignore[valid-type]
    zeta_pos: auto_or(Similarity) = 0.4  # type: ignore[valid-type]
    zeta_neg: auto_or(Similarity) = 0.1  # type: ignore[valid-type]


class Train(Section):
    """How every model trains (:class:`pipeline.training.trainer.TrainSettings` extends it with the
    evaluation protocol; ``models.<name>.train`` overrides ``lr`` / ``batch_size`` per model)."""

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


class Pruning(Section):
    """Stopping trials that are clearly behind (Optuna's median rule, :mod:`pipeline.tuning.study`)."""

    enabled: Flag = True
    warmup: NonNegativeInt = Field(5, description="an integer >= 0: validations a trial reports before it may be pruned")
    startup_trials: NonNegativeInt = Field(4, description="an integer >= 0: trials completed before any is pruned")


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
    pruning: Pruning = Pruning()


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
    models: Optional[dict[Name, ModelEntry]] = None
    report: Optional[Report] = None
    tune: Optional[Tune] = None
    repro: Optional[Repro] = None

    def dataset(self, name: str) -> Any:
        """The ``datasets.<name>`` entry, or one line naming the known datasets."""
        entries = self.datasets or {}
        if name not in entries:
            hint = closest(name, entries)
            raise UserError(f"params.yaml: unknown dataset {name!r}" + (f" (did you mean {hint!r}?)" if hint else "")
                            + f" (datasets: {', '.join(entries) or 'none'})")
        return entries[name]


REQUIRED = ("run", "datasets", "synth", "ingest", "features", "neighbors", "pst", "apfi", "train", "evaluate", "models", "report",
            "tune")
