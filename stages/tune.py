"""Stage `tune_*`: select one model's hyper-parameters on validation for one dataset (Optuna).

    python -m stages.tune <dataset> <model> [--resume]

Reads params ``tune`` (the search space ``tune.spaces.<model>`` and SiMGR's ``tune.sweeps.simgr``,
``max_trials``, ``seed``, ``storage``, ``workers``), ``train``, ``models``, ``pst`` / ``apfi`` / ``neighbors`` (SiMGR's study
builds the signed graph of each candidate), and the dataset's ingest and feature outputs. Each
trial is one seeded training run scored by ``train.valid_metric`` on the validation split (never
test). Writes tuning/<dataset>/<model>/trials.csv (every candidate, in grid order) and
selected.json (the validation argmax; empty without a search space), both committed; the final
runs read selected.json. The Optuna journal and timings go to logs/tune/ (not DVC outputs).
"""

from __future__ import annotations

import functools
import time
from pathlib import Path

from pipeline.errors import UserError
from pipeline.log import get_logger
from pipeline.params import get, load_params, write_json
from pipeline.paths import DATA
from pipeline.tuning.selection import SELECTED, TRIALS, study_dir
from pipeline.tuning.space import parse_space, parse_sweeps
from pipeline.tuning.study import run_search, select, trials_table
from pipeline.tuning.trial import TrialRunner, inert_keys, model_inputs
from stages._main import run_stage

log = get_logger(__name__)


def main(dataset: str, model: str, *flags: str) -> None:
    unknown = [f for f in flags if f != "--resume"]
    if unknown:
        raise UserError(f"tune: unknown option(s) {unknown} (known: --resume)")
    params = load_params()
    if model not in get(params, "models"):
        raise UserError(f"params.yaml: models has no entry '{model}' (known: {sorted(get(params, 'models'))})")
    enabled = bool(get(params, "tune.enabled"))
    space = parse_space(model, get(params, f"tune.spaces.{model}", None) if enabled else None, int(get(params, "tune.max_trials")))
    vec_dir = DATA / dataset / "features" / "vectors"
    if space.values and "features" in model_inputs(model, params) and not any(vec_dir.glob("*.npy")):
        log.warning("%s / %s: the dataset has no item features (%s is empty): %s cannot run on it, nothing to select",
                    dataset, model, vec_dir, model)
        space = parse_space(model, None, space.max_trials)
    inert = {f"models.{model}.{k}" for k in inert_keys(model, params, sorted(p.stem for p in vec_dir.glob("*.npy")))} & set(space.values)
    if inert:
        log.warning("%s / %s: %s cannot change the model on this dataset (%s); left out of the search at its params.yaml value",
                    dataset, model, sorted(inert), ", ".join(sorted(p.stem for p in vec_dir.glob("*.npy"))) or "no features")
        space = space.without(inert)
    sweeps = parse_sweeps(model, get(params, f"tune.sweeps.{model}", None), space) if space.values else {}
    metric = str(get(params, "train.valid_metric"))
    out = study_dir(dataset, model)
    out.mkdir(parents=True, exist_ok=True)
    seed = int(get(params, "tune.seed"))
    started = time.perf_counter()
    summary = {"dataset": dataset, "model": model, "metric": metric, "seed": seed, "space": space.values,
               "space_size": space.size, "sampler": ("grid" if space.exhaustive else "tpe") if space.values else None,
               "sweeps": sweeps}
    if not space.values:
        log.info("%s / %s: no search space (tune.enabled = %s): the model runs at its params.yaml values", dataset, model, enabled)
        (out / TRIALS).write_text("")
        write_json({**summary, "trials": 0, "failed": 0, "values": {}, "value": None, "trial": None}, out / SELECTED)
        return
    workers = int(get(params, "tune.workers"))
    log.info("%s / %s: %s over %d candidate(s) of %s, %d trial(s), then sweeps of %s; %d worker(s), validation %s", dataset,
             model, summary["sampler"], space.size, sorted(space.values), space.n_trials, list(sweeps) or "none", workers, metric)
    runner = functools.partial(TrialRunner, DATA / dataset, dataset, params, model, seed, metric)
    logs = Path("logs") / "tune" / dataset
    rows = run_search(runner, space, sweeps, name=f"{dataset}-{model}", storage_spec=str(get(params, "tune.storage")),
                      journal=logs / f"{model}.journal", seed=seed, workers=workers, fresh="--resume" not in flags,
                      defaults={key: get(params, key) for key in sweeps})
    best = select(rows)
    if not best:
        raise UserError(f"tune {dataset} {model}: no trial completed (see the log above)")
    table = trials_table(rows, [*space.values, *sweeps], metric)
    table.write_csv(out / TRIALS)
    n_failed = int((table["state"] != "complete").sum())
    write_json({**summary, "trials": table.height, "failed": n_failed, **best}, out / SELECTED)
    seconds = time.perf_counter() - started
    write_json({"seconds": round(seconds, 1), "trials": table.height, "workers": workers}, logs / f"{model}.timing.json")
    log.info("%s / %s: selected %s (valid %s %.4f, %s trial %d; %d candidates, %d failed) in %.0f s; wrote %s, %s", dataset,
             model, best["values"], metric, best["value"], best["phase"], best["trial"], table.height, n_failed, seconds,
             out / TRIALS, out / SELECTED)


if __name__ == "__main__":
    run_stage(main)
