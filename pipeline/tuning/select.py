"""A study from params to files: what the tune stage (``simgr tune``) runs for one (dataset, model).

Writes ``tuning/<dataset>/<model>/trials.csv`` (every candidate, in grid order, pruned ones marked)
and ``selected.json`` (the validation argmax; empty without a search space or with
``tune.enabled: false``), both committed; the Optuna journal goes to ``logs/tune/<dataset>/``.
A model that reads item features on a dataset without any, and keys that cannot change the model
on the dataset (:meth:`~pipeline.models.base.Recommender.inert_keys`), are left out of the search,
each with a line saying so.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from pipeline.atomic import atomic_file
from pipeline.errors import UserError
from pipeline.jsonio import write_json
from pipeline.log import get_logger
from pipeline.paths import DATA
from pipeline.run.models import model_entry
from pipeline.run.selection import SELECTED, TRIALS, study_dir
from pipeline.run.setup import modalities, prepare
from pipeline.settings.sections import Params
from pipeline.tuning.space import parse_space, parse_sweeps
from pipeline.tuning.study import run_search, select, trials_table
from pipeline.tuning.trial import TrialRunner

log = get_logger(__name__)


def select_on_validation(params: Params, dataset: str, model: str, *, fresh: bool = True) -> dict[str, Any]:
    """Run the study of ``model`` on ``dataset`` and write its trials table and selection; the selection."""
    entry = model_entry(params, model)
    tune = params.tune
    spec = (tune.spaces or {}).get(model) if tune.enabled else None
    space = parse_space(model, spec, tune.max_trials)
    found = modalities(dataset)
    if space.values and "features" in entry.reads() and not found:
        log.warning("%s / %s: the dataset has no item features: %s cannot run on it, nothing to select", dataset, model, model)
        space = parse_space(model, None, tune.max_trials)
    inert = {f"models.{model}.{k}" for k in entry.cls.inert_keys(entry.defaults(), found)} & set(space.values)
    if inert:
        log.warning("%s / %s: %s cannot change the model on this dataset (%s); left out of the search (auto: the default)",
                    dataset, model, sorted(inert), ", ".join(found) or "no features")
        space = space.without(inert)
    sweeps = parse_sweeps(model, (tune.sweeps or {}).get(model), space) if space.values else {}
    metric = params.train.valid_metric
    out = study_dir(dataset, model)
    out.mkdir(parents=True, exist_ok=True)
    summary = {"dataset": dataset, "model": model, "metric": metric, "seed": tune.seed, "space": space.values,
               "space_size": space.size, "sampler": ("grid" if space.exhaustive else "tpe") if space.values else None,
               "sweeps": sweeps}
    if not space.values:
        log.info("%s / %s: no search space (tune.enabled = %s): auto values take their defaults", dataset, model, tune.enabled)
        with atomic_file(out / TRIALS) as tmp:
            tmp.write_text("")
        selection = {**summary, "trials": 0, "failed": 0, "pruned": 0, "values": {}, "value": None, "trial": None}
        write_json(selection, out / SELECTED)
        return selection
    log.info("%s / %s: %s over %d candidate(s) of %s, %d trial(s), then sweeps of %s; %d worker(s), validation %s", dataset,
             model, summary["sampler"], space.size, sorted(space.values), space.n_trials, list(sweeps) or "none", tune.workers, metric)
    searched = frozenset(space.values) | frozenset(sweeps)
    runner = functools.partial(TrialRunner, DATA / dataset, dataset, params, model, tune.seed, metric, searched)
    start = prepare(params, dataset, model, candidates={}, searched=searched)  # where each swept key starts
    defaults = {key: start.value_of(key) for key in sweeps}
    rows = run_search(runner, space, sweeps, name=f"{dataset}-{model}", storage_spec=tune.storage,
                      journal=Path("logs") / "tune" / dataset / f"{model}.journal", seed=tune.seed, workers=tune.workers,
                      fresh=fresh, defaults=defaults, pruning=tune.pruning)
    best = select(rows)
    if not best:
        raise UserError(f"tune {dataset} {model}: no trial completed (see the log above)")
    # a swept key the best trial did not move ran at its starting point: the selection says so explicitly
    best["values"] = {**{key: defaults[key] for key in sweeps}, **best["values"]}
    table = trials_table(rows, [*space.values, *sweeps], metric)
    with atomic_file(out / TRIALS) as tmp:
        table.write_csv(tmp)
    write_json([{"trial": r["trial"], "phase": r["phase"], "state": r["state"], "values": r["values"], "curve": r.get("curve")}
                for r in rows], Path("logs") / "tune" / dataset / f"{model}-curves.json")  # each trial's validation curve
    states = table["state"].to_list()
    selection = {**summary, "trials": table.height, "failed": states.count("fail"), "pruned": states.count("pruned"), **best}
    write_json(selection, out / SELECTED)
    log.info("%s / %s: selected %s (valid %s %.4f, trial %s); wrote %s and %s", dataset, model, best["values"], metric,
             best["value"], best["trial"], out / TRIALS, out / SELECTED)
    return selection
