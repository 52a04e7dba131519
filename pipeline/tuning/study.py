"""Optuna studies: run the trials of one (dataset, model) search space and select on validation.

Storage is a parameter (``tune.storage``): ``journal`` (default) is an embedded local journal file
(no server), ``journal:<path>`` a journal file of your choice (for instance on a shared disk), and
anything else an Optuna RDB URL (``sqlite:///tune.db``, ``postgresql://...``). Several worker
processes (``tune.workers``), or several machines given the same storage, run trials of one study
at once; Optuna's storage hands each trial to one worker.

The study is a function of the data and the space: exhaustive grids (``GridSampler``) and seeded
TPE give the same trials, each a seeded training run. The selection is the completed trial with
the highest validation score, ties broken by the grid order of the values (so it does not depend
on which worker ran what). Never the test split.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from pathlib import Path
from typing import Any, Callable

import optuna
import polars as pl
import torch

from pipeline.errors import UserError
from pipeline.log import _progress_enabled, get_logger
from pipeline.tuning.space import Space
from pipeline.tuning.trial import TrialResult  # noqa: F401  (what a runner returns)

log = get_logger(__name__)
optuna.logging.set_verbosity(optuna.logging.WARNING)  # one log line per trial is ours

RESULT_FIELDS = ("best_epoch", "epochs", "validations", "stop_reason")


def storage(spec: str, journal: Path):
    """The Optuna storage of ``tune.storage`` (``journal`` = ``journal`` next to the study's logs)."""
    spec = str(spec)
    if spec == "journal" or spec.startswith("journal:"):
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        path = journal if spec == "journal" else Path(spec.split(":", 1)[1])
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    if "://" not in spec:
        raise UserError(f"params.yaml: tune.storage: expected 'journal', 'journal:<path>' or a database URL, got {spec!r}")
    return spec


def sampler(space: Space, seed: int) -> optuna.samplers.BaseSampler:
    if space.exhaustive:
        return optuna.samplers.GridSampler(space.values, seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def objective(runner: Callable[[dict[str, Any]], TrialResult], space: Space) -> Callable[[optuna.Trial], float]:
    def run(trial: optuna.Trial) -> float:
        values = {key: trial.suggest_categorical(key, options) for key, options in space.values.items()}
        t0 = time.perf_counter()
        result = runner(values)
        for key in RESULT_FIELDS:
            trial.set_user_attr(key, getattr(result, key))
        trial.set_user_attr("seconds", round(time.perf_counter() - t0, 1))
        return result.value

    return run


def _log_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    best = max((t.value for t in done), default=float("nan"))
    a = trial.user_attrs
    if trial.state == optuna.trial.TrialState.COMPLETE:
        log.info("trial %d: %s -> valid %.4f (best %.4f of %d), best epoch %s of %s (%s), %.1f s", trial.number,
                 trial.params, trial.value, best, len(done), a.get("best_epoch"), a.get("epochs"), a.get("stop_reason"),
                 a.get("seconds", float("nan")))
    else:
        log.warning("trial %d: %s -> %s", trial.number, trial.params, trial.state.name)


def optimize(study: optuna.Study, runner, space: Space) -> None:
    """Run trials in this process until the study's budget (the grid, or ``space.n_trials``) is spent."""
    done = optuna.study.MaxTrialsCallback(space.n_trials, states=(optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL))
    study.optimize(objective(runner, space), n_trials=space.n_trials, catch=(UserError,), callbacks=[done, _log_trial],
                   show_progress_bar=_progress_enabled())


def _worker(make_runner: Callable[[], Any], space: Space, storage_spec: str, journal: str, name: str, seed: int, threads: int) -> None:
    torch.set_num_threads(threads)
    study = optuna.load_study(study_name=name, storage=storage(storage_spec, Path(journal)), sampler=sampler(space, seed))
    optimize(study, make_runner(), space)


def run_study(make_runner: Callable[[], Any], space: Space, *, name: str, storage_spec: str, journal: Path, seed: int,
              workers: int = 1, fresh: bool = True) -> optuna.Study:
    """Create (``fresh``: replacing a previous one) and run the study with ``workers`` processes."""
    if fresh and storage_spec == "journal" and journal.exists():
        journal.unlink()
    store = storage(storage_spec, journal)
    if fresh and storage_spec != "journal":
        try:
            optuna.delete_study(study_name=name, storage=store)
        except KeyError:
            pass
    study = optuna.create_study(study_name=name, storage=store, sampler=sampler(space, seed), direction="maximize", load_if_exists=True)
    threads = max(1, torch.get_num_threads() // max(1, workers))
    extra = []
    if workers > 1:
        ctx = mp.get_context("spawn")
        extra = [ctx.Process(target=_worker, args=(make_runner, space, storage_spec, str(journal), name, seed + w, threads))
                 for w in range(1, workers)]
        for p in extra:
            p.start()
    torch.set_num_threads(threads)
    optimize(study, make_runner(), space)
    for p in extra:
        p.join()
        if p.exitcode != 0:
            raise UserError(f"tune: worker process {p.pid} of study {name} exited with {p.exitcode}")
    return study


def _grid_key(space: Space, values: dict[str, Any]) -> tuple[int, ...]:
    return tuple(space.values[k].index(values[k]) if values.get(k) in space.values[k] else len(space.values[k]) for k in space.values)


def trials_table(study: optuna.Study, space: Space, metric: str) -> pl.DataFrame:
    """One row per distinct candidate (a grid point a worker ran twice counts once), in grid order."""
    rows, seen = [], set()
    for t in sorted(study.trials, key=lambda t: t.number):
        if t.state not in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL) or len(t.params) != len(space.values):
            continue
        key = _grid_key(space, t.params)
        if key in seen:
            continue
        seen.add(key)
        done = t.state == optuna.trial.TrialState.COMPLETE
        rows.append({"trial": t.number, "state": t.state.name.lower(), **{k: t.params[k] for k in space.values},
                     f"valid_{metric}": t.value if done else None, **{k: t.user_attrs.get(k) for k in RESULT_FIELDS}})
    rows.sort(key=lambda r: _grid_key(space, r))
    return pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame()


def select(table: pl.DataFrame, space: Space, metric: str) -> dict[str, Any]:
    """The validation argmax of a trials table (ties: the first in grid order); {} without completed trials."""
    col = f"valid_{metric}"
    if not table.height or col not in table.columns:
        return {}
    done = table.filter(pl.col("state") == "complete")
    if not done.height:
        return {}
    best = done.sort(col, descending=True, maintain_order=True).row(0, named=True)  # the table is in grid order
    return {"values": {k: best[k] for k in space.values}, "value": best[col], "trial": best["trial"]}
