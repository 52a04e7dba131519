"""The training groups: models grouped by what they read, so that a change re-trains only the models
that read it. One table, :data:`GROUPS`; the params lists ``run.models_<group>``, dvc.yaml's
``train_<group>`` stages (generated from it: :mod:`pipeline.run.dvcyaml`) and the evaluation and
report run lists all follow from it.

A model's group follows from its class's declaration (``READS`` / ``reads``), its family (the
model whose params entry it varies: SiMGR's Figure-3 variants read ``models.simgr``) and whose
study selects its ``auto`` values (its own, or SiMGR's through ``tune.inherit``). ``simgr check``
says which group a model belongs in when it is listed in another.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.settings.sections import Params

SIMGR = "simgr"


@dataclass(frozen=True)
class Group:
    name: str  # run.models_<name>, dvc.yaml train_<name>
    reads: frozenset[str]  # among pipeline.data.INPUTS
    family: str | None  # the model whose entry its models vary (their stage reads models.<family> too)
    study: str | None  # the study that selects for all its models (None: each model's own)
    what: str  # one line for dvc.yaml and the docs

    @property
    def key(self) -> str:
        return f"models_{self.name}"


GROUPS: tuple[Group, ...] = (
    Group("cf", frozenset(), None, None, "interactions only"),
    Group("mm", frozenset({"features", "knn"}), None, None, "+ item features and item kNN lists"),
    Group("base", frozenset({"features"}), SIMGR, None, "SiMGR's multimodal base (its own study)"),
    Group("sga", frozenset({"features", "delta"}), SIMGR, SIMGR, "SiMGR's variants signing edges by the global delta"),
    Group("pst", frozenset({"features", "thresholds"}), SIMGR, SIMGR, "... by PST's thresholds"),
    Group("apfi", frozenset({"features", "delta", "pseudo"}), SIMGR, SIMGR, "... by the global delta, with APFI's pseudo edges"),
    Group("signed", frozenset({"features", "thresholds", "pseudo"}), SIMGR, SIMGR, "... by PST's thresholds, with APFI's pseudo edges (SiMGR)"),
)
BY_NAME = {g.name: g for g in GROUPS}
#: the params keys of the run lists, in group order
RUN_KEYS = tuple(g.key for g in GROUPS)


def group_of(reads: frozenset[str], family: str | None) -> Group:
    """The group of a model of ``family`` reading ``reads``: the one reading exactly that, else the
    smallest one reading more (LGMRec reads features only and trains with the kNN readers)."""
    same = [g for g in GROUPS if g.family == family]
    exact = [g for g in same if g.reads == reads]
    wider = sorted((g for g in same if reads <= g.reads), key=lambda g: len(g.reads))
    if not (exact or wider):
        raise ValueError(f"no training group of family {family!r} reads {sorted(reads)}: add one to pipeline.run.groups.GROUPS")
    return (exact or wider)[0]


def run_models(params: Params) -> list[tuple[str, Group]]:
    """(model, group) of every model in the ``run.models_*`` lists, in group then list order."""
    return [(m, g) for g in GROUPS for m in getattr(params.run, g.key)]


def run_list(params: Params) -> list[tuple[str, int]]:
    """(model, seed) of every run of params ``run``: the groups' models in order, then the seeds."""
    return [(m, int(s)) for m, _ in run_models(params) for s in params.run.seeds]
