"""What the reproducibility check rebuilds and what it trusts from the commit.

Stages are classified by the ``python -m stages.<module>`` of their command in ``dvc.lock``:

* data stages (check, synth, download, ingest, features, neighbors, graph) of every dataset: rebuilt;
* training runs: every run of the datasets in ``repro.full`` (the default dataset's whole matrix),
  and for each other dataset one seed per model (so every model of every dataset is retrained on
  each check): the seed whose committed run stopped after the fewest epochs (the cheapest to
  rebuild; CI's budget), or, where the committed epochs are unknown, one drawn with ``repro.seed``;
  their metrics are recomputed;
* the evaluate and report stages of the ``repro.full`` datasets: rebuilt (the other datasets'
  are built from runs not all rebuilt, so they are trusted);
* everything else (the other training runs, hyper-parameter tuning, the other reports): trusted,
  i.e. taken from the commit; the staleness check still requires their code and params to match
  ``dvc.lock``.

The rule is in docs/reproducibility.md; the plan is printed by the check.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

DATA_MODULES = ("check", "download", "ingest", "features", "neighbors", "graph")
_CMD = re.compile(r"python -m stages\.(\w+)((?: \S+)*)")


@dataclass(frozen=True)
class Stage:
    name: str
    module: str  # stages.<module>
    args: tuple[str, ...]

    @property
    def dataset(self) -> str | None:
        return self.args[0] if self.args else None


@dataclass
class Plan:
    data: list[str] = field(default_factory=list)  # in pipeline order
    train: list[str] = field(default_factory=list)
    evaluate: list[str] = field(default_factory=list)  # evaluate@<ds> of the full datasets
    sampled: dict[str, list[str]] = field(default_factory=dict)  # dataset -> runs evaluated alone
    report: list[str] = field(default_factory=list)
    trusted: list[str] = field(default_factory=list)
    unfinished: list[str] = field(default_factory=list)  # sampled runs the time budget left out (trusted)

    @property
    def rebuilt(self) -> list[str]:
        """The ``dvc repro --single-item`` targets, in the order they run."""
        return self.data + self.train + self.evaluate + self.report

    @property
    def required(self) -> list[str]:
        """The training runs that must be rebuilt: those of the full datasets (the rest are sampled)."""
        sampled = {f"{ds}-{run}" for ds, runs in self.sampled.items() for run in runs}
        return [name for name in self.train if name.partition("@")[2] not in sampled]

    def leave_out(self, names: list[str]) -> None:
        """Trust the sampled runs ``names`` from the commit (not retrained within the time budget)."""
        gone = set(names)
        if gone & set(self.required):
            raise ValueError(f"runs of a full dataset cannot be left out: {sorted(gone & set(self.required))}")
        self.train = [n for n in self.train if n not in gone]
        self.unfinished += [n for n in names if n not in self.unfinished]
        self.trusted += [n for n in names if n not in self.trusted]
        done = {n.partition("@")[2] for n in self.train}
        self.sampled = {ds: kept for ds, runs in self.sampled.items() if (kept := [r for r in runs if f"{ds}-{r}" in done])}


def parse_stage(name: str, cmd: str | list[str]) -> Stage:
    """The stage module and arguments of a ``dvc.lock`` entry."""
    text = cmd if isinstance(cmd, str) else " && ".join(cmd)
    m = _CMD.search(text)
    if not m:
        raise ValueError(f"dvc.lock: stage {name!r} does not run 'python -m stages.<module>' ({text!r})")
    return Stage(name, m.group(1), tuple(m.group(2).split()))


def _seed_per_model(dataset: str, runs: list[Stage], seed: int, epochs: Mapping[str, float] | None = None) -> list[Stage]:
    """One run per model of ``dataset``: the one that ran the fewest epochs when committed (``epochs``:
    stage name -> epochs; lowest seed on a tie), so that the check costs what CI allows; where a run's
    epochs are unknown, the seed drawn with a generator seeded by (seed, dataset)."""
    by_model: dict[str, list[Stage]] = {}
    for st in runs:
        by_model.setdefault(st.args[1], []).append(st)
    rng = np.random.default_rng([int(seed), zlib.crc32(dataset.encode())])
    picked = []
    for _, group in sorted(by_model.items()):
        group = sorted(group, key=lambda s: int(s.args[2]))
        drawn = group[int(rng.integers(len(group)))]
        known = epochs is not None and all(s.name in epochs for s in group)
        picked.append(min(group, key=lambda s: (epochs[s.name], int(s.args[2]))) if known else drawn)
    return picked


def make_plan(lock_stages: Mapping[str, Any], full: list[str], seed: int, epochs: Mapping[str, float] | None = None) -> Plan:
    """Classify the stages of a ``dvc.lock`` (``stages`` mapping: name -> entry with ``cmd``); ``epochs``
    (training stage -> epochs it ran when committed) picks the sampled runs (:func:`_seed_per_model`)."""
    stages = [parse_stage(name, entry["cmd"]) for name, entry in lock_stages.items()]
    plan = Plan()
    order = {m: i for i, m in enumerate(DATA_MODULES)}
    plan.data = [s.name for s in sorted((s for s in stages if s.module in order), key=lambda s: order[s.module])]
    train = [s for s in stages if s.module == "train"]
    chosen: list[Stage] = []
    for ds in sorted({s.dataset for s in train}):
        runs = [s for s in train if s.dataset == ds]
        if ds in full:
            chosen += runs
        else:
            picked = _seed_per_model(ds, runs, seed, epochs)
            chosen += picked
            plan.sampled[ds] = [f"{s.args[1]}-{s.args[2]}" for s in picked]
    picked_names = {s.name for s in chosen}
    plan.train = [s.name for s in train if s.name in picked_names]
    plan.evaluate = [s.name for s in stages if s.module == "evaluate" and s.dataset in full]
    plan.report = [s.name for s in stages if s.module == "report" and s.dataset in full]
    rebuilt = set(plan.rebuilt)
    plan.trusted = [s.name for s in stages if s.name not in rebuilt]
    return plan
