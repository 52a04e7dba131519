"""Optuna studies: run the trials of one (dataset, model) search space and select on validation.

Storage is a parameter (``tune.storage``): ``journal`` (default) is an embedded local journal file
(no server), ``journal:<path>`` a journal file of your choice (for instance on a shared disk), and
anything else an Optuna RDB URL (``sqlite:///tune.db``, ``postgresql://...``). Several worker
processes (``tune.workers``), or several machines given the same storage, run trials of one study
at once; Optuna's storage hands each trial to one worker.

The study is a function of the data and the space: exhaustive grids (``GridSampler``) and seeded
TPE give the same trials, each a seeded training run. A *sweep* (``tune.sweeps.<model>``) follows
the search: one key at a time, in the order listed, every value is tried at the best point so far,
which moves to the best of them (a coordinate search; its trials are the sensitivity curves of
the paper's Figures 4-6). The selection is the completed trial with the highest validation score
over the search and the sweeps, ties broken by the order of the table (search in grid order, then
the sweeps), so it does not depend on which worker ran what. Never the test split: test metrics are
recorded for the figures only.

Pruning (``tune.pruning``): each trial of the search reports its validation score at every
validation, and :class:`OrderedMedianPruner` stops one that is clearly behind: after ``warmup``
validations, a trial whose best score so far is below the median of the earlier trials' best
scores up to the same validation. "Earlier" is grid order, and a trial waits for a running earlier
trial to reach that validation, so what is pruned depends on the trials' curves only, not on which
worker is faster: the same study prunes the same trials on every run. Sweeps are never pruned
(their trials are the sensitivity curves). A pruned trial is a row of the table marked ``pruned``.
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import optuna
import polars as pl
import torch

from pipeline.errors import UserError
from pipeline.log import _progress_enabled, get_logger
from pipeline.settings.sections import Pruning
from pipeline.tuning.space import Space
from pipeline.tuning.trial import TrialResult  # noqa: F401  (what a runner returns)

log = get_logger(__name__)
optuna.logging.set_verbosity(optuna.logging.WARNING)  # one log line per trial is ours

RESULT_FIELDS = ("best_epoch", "epochs", "validations", "stop_reason")
#: how long a trial waits for a running earlier trial to reach a validation (a crashed worker's trial never does)
WAIT_LIMIT_S = 3600.0


class OrderedMedianPruner(optuna.pruners.BasePruner):
    """Optuna's median rule made deterministic: prune a trial whose best validation score up to
    validation ``step`` is below the median of the earlier trials' (lower trial number: grid order)
    best scores up to the same validation, once it has reported ``warmup`` validations and at least
    ``startup_trials`` earlier trials count. An earlier trial that ended before ``step`` counts with
    its final best; a running one is waited for until it reaches ``step`` or ends (waits point to
    lower numbers only, so they cannot deadlock). Failed trials do not count."""

    def __init__(self, warmup: int, startup_trials: int, poll_s: float = 0.5):
        self.warmup, self.startup_trials, self.poll_s = int(warmup), int(startup_trials), poll_s

    @staticmethod
    def _best_up_to(trial: optuna.trial.FrozenTrial, step: int) -> float | None:
        values = [v for s, v in trial.intermediate_values.items() if s <= step]
        return max(values) if values else None

    def earlier_bests(self, study: optuna.Study, number: int, step: int) -> list[float]:
        """The earlier trials' best scores up to ``step`` (waiting for running ones to get there)."""
        waited = time.perf_counter()
        while True:
            bests, pending = [], False
            for t in study.get_trials(deepcopy=False):
                if t.number >= number or t.state == optuna.trial.TrialState.FAIL:
                    continue
                if t.state in (optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.WAITING) and max(t.intermediate_values, default=-1) < step:
                    pending = True
                    continue
                best = self._best_up_to(t, step)
                if best is not None:
                    bests.append(best)
            if not pending:
                return bests
            if time.perf_counter() - waited > WAIT_LIMIT_S:
                log.warning("trial %d: an earlier trial has not reached validation %d in %.0f s; deciding without it "
                            "(this decision may differ between runs)", number, step + 1, WAIT_LIMIT_S)
                return bests
            time.sleep(self.poll_s)

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        step = trial.last_step
        if step is None or step + 1 < self.warmup:
            return False
        bests = self.earlier_bests(study, trial.number, step)
        if len(bests) < max(1, self.startup_trials):
            return False
        mine = self._best_up_to(trial, step)
        return mine is not None and mine < statistics.median(bests)


def pruner(pruning: Pruning | None) -> optuna.pruners.BasePruner:
    if pruning is None or not pruning.enabled:
        return optuna.pruners.NopPruner()
    return OrderedMedianPruner(pruning.warmup, pruning.startup_trials)
#: metrics recorded per trial (valid: the objective's split; test: for the sensitivity figures only)
RECORDED = ("recall@20", "ndcg@20")


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
    """TPE for a space larger than the budget; an exhaustive space's points are all enqueued instead
    (:func:`grid_points`: the storage hands each to one worker, so none runs twice, unlike
    GridSampler's draws under several workers), and the sampler is never asked."""
    return optuna.samplers.RandomSampler(seed=seed) if space.exhaustive else optuna.samplers.TPESampler(seed=seed)


def grid_points(space: Space) -> list[dict[str, Any]]:
    """Every point of the grid, in grid order (the last key varies fastest)."""
    return [dict(zip(space.values, combo)) for combo in itertools.product(*space.values.values())]


def objective(runner: Callable[[dict[str, Any]], TrialResult], space: Space) -> Callable[[optuna.Trial], float]:
    def run(trial: optuna.Trial) -> float:
        if space.exhaustive and not _enqueued(trial):
            # every grid point was enqueued and taken by some worker: this one was sampled past them (a race)
            trial.study.stop()
            raise optuna.TrialPruned("no grid point left for this worker")
        values = {key: trial.suggest_categorical(key, options) for key, options in space.values.items()}
        t0 = time.perf_counter()

        def report(index: int, score: float) -> None:
            trial.report(score, index)
            if trial.should_prune():
                trial.set_user_attr("validations", index + 1)
                trial.set_user_attr("seconds", round(time.perf_counter() - t0, 1))
                raise optuna.TrialPruned(f"validation {index + 1}: behind the median of the earlier trials")

        result = runner(values, report)
        for key in RESULT_FIELDS:
            trial.set_user_attr(key, getattr(result, key))
        for split in ("valid", "test"):
            for metric in RECORDED:
                trial.set_user_attr(f"{split}_{metric}", getattr(result, split).get(metric))
        trial.set_user_attr("curve", [round(v, 6) for v in result.curve])
        trial.set_user_attr("seconds", round(time.perf_counter() - t0, 1))
        return result.value

    return run


def _enqueued(trial: optuna.Trial) -> bool:
    """Did this trial come from the queue of grid points (its params fixed by enqueue_trial)?"""
    frozen = next(t for t in trial.study.get_trials(deepcopy=False) if t.number == trial.number)
    return "fixed_params" in frozen.system_attrs


def _log_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    best = max((t.value for t in done), default=float("nan"))
    a = trial.user_attrs
    if trial.state == optuna.trial.TrialState.PRUNED:
        if trial.intermediate_values:  # not a worker's surplus draw (pruned before it ran)
            log.info("trial %d: %s -> pruned at validation %d (best %.4f so far), %.1f s", trial.number, trial.params,
                     trial.last_step + 1, max(trial.intermediate_values.values()), a.get("seconds", float("nan")))
        return
    if trial.state == optuna.trial.TrialState.COMPLETE:
        log.info("trial %d: %s -> valid %.4f (best %.4f of %d), best epoch %s of %s (%s), %.1f s", trial.number,
                 trial.params, trial.value, best, len(done), a.get("best_epoch"), a.get("epochs"), a.get("stop_reason"),
                 a.get("seconds", float("nan")))
    else:
        log.warning("trial %d: %s -> %s", trial.number, trial.params, trial.state.name)


def optimize(study: optuna.Study, runner, space: Space) -> None:
    """Run trials in this process until the study's budget (the grid, or ``space.n_trials``) is spent
    (counting the trials other workers run, so no worker starts one past it)."""
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL, optuna.trial.TrialState.RUNNING,
              optuna.trial.TrialState.PRUNED)
    done = optuna.study.MaxTrialsCallback(space.n_trials, states=states)
    study.optimize(objective(runner, space), n_trials=space.n_trials, catch=(UserError,), callbacks=[done, _log_trial],
                   show_progress_bar=_progress_enabled())


def _worker(make_runner: Callable[[], Any], space: Space, storage_spec: str, journal: str, name: str, seed: int, threads: int,
            pruning: Pruning | None) -> None:
    torch.set_num_threads(threads)
    study = optuna.load_study(study_name=name, storage=storage(storage_spec, Path(journal)), sampler=sampler(space, seed),
                              pruner=pruner(pruning))
    optimize(study, make_runner(), space)


def run_study(make_runner: Callable[[], Any], space: Space, *, name: str, storage_spec: str, journal: Path, seed: int,
              workers: int = 1, fresh: bool = True, pruning: Pruning | None = None) -> optuna.Study:
    """Create (``fresh``: replacing a previous one) and run the study with ``workers`` processes."""
    if fresh and storage_spec == "journal" and journal.exists():
        journal.unlink()
    store = storage(storage_spec, journal)
    if fresh and storage_spec != "journal":
        try:
            optuna.delete_study(study_name=name, storage=store)
        except KeyError:
            pass
    study = optuna.create_study(study_name=name, storage=store, sampler=sampler(space, seed), pruner=pruner(pruning),
                                direction="maximize", load_if_exists=True)
    if space.exhaustive and not study.trials:
        for point in grid_points(space):
            study.enqueue_trial(point)
    threads = max(1, torch.get_num_threads() // max(1, workers))  # a run's train.threads, when set, wins in fit()
    extra = []
    if workers > 1:
        ctx = mp.get_context("spawn")
        extra = [ctx.Process(target=_worker, args=(make_runner, space, storage_spec, str(journal), name, seed + w, threads, pruning))
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


def table_rows(study: optuna.Study, space: Space, phase: str) -> list[dict[str, Any]]:
    """One row per distinct candidate of ``study`` (a grid point two workers ran counts once), in grid order."""
    rows, seen = [], set()
    kept = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL, optuna.trial.TrialState.PRUNED)
    for t in sorted(study.trials, key=lambda t: t.number):
        if t.state not in kept or len(t.params) != len(space.values):
            continue
        if t.state == optuna.trial.TrialState.PRUNED and not t.intermediate_values:
            continue  # a worker's surplus draw past the grid, never run
        key = _grid_key(space, t.params)
        if key in seen:
            continue
        seen.add(key)
        done = t.state == optuna.trial.TrialState.COMPLETE
        pruned = t.state == optuna.trial.TrialState.PRUNED
        row = {"phase": phase, "trial": t.number, "state": t.state.name.lower(), "values": dict(t.params),
               "value": t.value if done else None, **{k: t.user_attrs.get(k) for k in RESULT_FIELDS},
               **{f"{split}_{m}": t.user_attrs.get(f"{split}_{m}") for split in ("valid", "test") for m in RECORDED},
               "curve": t.user_attrs.get("curve") if done else [t.intermediate_values[s] for s in sorted(t.intermediate_values)]}
        if pruned:  # what it reached before it was stopped
            row.update(stop_reason="pruned", best_so_far=max(t.intermediate_values.values()))
        rows.append(row)
    rows.sort(key=lambda r: _grid_key(space, r["values"]))
    return rows


def best_row(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The completed row of highest validation score; ties: the first in table order."""
    done = [r for r in rows if r["state"] == "complete" and r["value"] is not None]
    return max(done, key=lambda r: r["value"]) if done else None  # max keeps the first of equal values


def run_search(make_runner, space: Space, sweeps: dict[str, list[Any]], *, name: str, storage_spec: str, journal: Path,
               seed: int, workers: int = 1, fresh: bool = True, defaults: dict[str, Any] | None = None,
               pruning: Pruning | None = None) -> list[dict[str, Any]]:
    """The search over ``space`` (pruned by ``pruning``), then a coordinate sweep over each key of ``sweeps``
    (in order) at the best point so far; every candidate's row (see :func:`table_rows`). ``defaults``: the
    values of the swept keys the search ran at (their schema defaults: where an ``auto`` key starts); a
    sweep's row at the current value is that earlier trial (listed again under the sweep, with its trial
    number), not a new run."""
    defaults = dict(defaults or {})
    rows = table_rows(run_study(make_runner, space, name=name, storage_spec=storage_spec, journal=journal, seed=seed,
                                workers=workers, fresh=fresh, pruning=pruning), space, "search")
    for key, values in sweeps.items():
        best = best_row(rows)
        if best is None:
            break
        current = {**{k: v for k, v in best["values"].items()}}
        now = current.get(key, defaults.get(key))
        todo = [v for v in values if v != now]
        if not todo:
            continue
        fixed = {k: [v] for k, v in current.items() if k != key}
        sweep = Space(space.model, {**fixed, key: todo}, max_trials=len(todo))
        log.info("%s: sweep of %s over %s at the best point so far (valid %.4f, %s = %s)", name, key, todo, best["value"], key, now)
        found = run_study(make_runner, sweep, name=f"{name}-sweep-{key}", storage_spec=storage_spec,
                          journal=journal.with_name(f"{journal.stem}-sweep-{key}{journal.suffix}"), seed=seed, workers=workers, fresh=fresh)
        new = table_rows(found, sweep, f"sweep {key}")
        if now in values:  # the curve's point at the current value: the best trial so far
            new.append({**best, "phase": f"sweep {key}", "values": {**current, key: now}})
            new.sort(key=lambda r: values.index(r["values"][key]))
        rows += new
    return rows


def trials_table(rows: list[dict[str, Any]], keys: list[str], metric: str) -> pl.DataFrame:
    """The committed trials table: one row per candidate (phase, trial, state, each key, the
    validation objective, the recorded metrics, how the run stopped)."""
    if not rows:
        return pl.DataFrame()
    out = []
    for r in rows:
        row = {"phase": r["phase"], "trial": r["trial"], "state": r["state"]}
        row.update({k: r["values"].get(k) for k in keys})
        row[f"valid_{metric}"] = r["value"]
        row.update({k: r[k] for k in (f"{s}_{m}" for s in ("valid", "test") for m in RECORDED) if k != f"valid_{metric}"})
        row.update({k: r[k] for k in RESULT_FIELDS})
        row["best_before_pruning"] = r.get("best_so_far")
        out.append(row)
    return pl.DataFrame(out, infer_schema_length=None)


def select(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The validation argmax of the rows: ``{"values", "value", "trial", "phase"}`` ({} without a completed trial)."""
    best = best_row(rows)
    return {} if best is None else {"values": best["values"], "value": best["value"], "trial": best["trial"], "phase": best["phase"]}
