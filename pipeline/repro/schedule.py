"""Which training run starts first when runs go N at a time (the reproducibility check, ``train-all``).

Runs handed to a pool in ``dvc.lock`` order finish late when a long one comes last: on the committed
benchmark the reproducibility check's slowest run (MovieLens' LGMRec, ~29 min on 2 cores) started
after most of the others, and the pool then ran it alone. Starting the longest first (the classic
longest-processing-time rule, within 4/3 of the best possible order) bounds the wall time by about
max(longest run, total / N).

A run's expected cost is a hint, never a result: it orders the runs and changes nothing they compute.

    cost = epochs it ran when committed (metrics/<ds>/<run>-<seed>.json)
           x training interactions of its dataset (data/<ds>/ingest/stats.json)
           x its model's seconds per epoch at Baby size (benchmarks/results/cpu-2core.json)

A variant (``variant_of`` in params.yaml's models) costs as its model. Whatever is unknown (a run not
committed yet, a model not benchmarked) takes the largest known value, so it starts early rather
than late.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from pipeline.repro.plan import parse_stage

EPOCH_BENCHMARK = Path("benchmarks") / "results" / "cpu-2core.json"


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def model_epoch_seconds(repo: Path) -> dict[str, float]:
    """Model -> seconds per training epoch at Baby size (x1) from the CPU benchmark, or {}."""
    data = _json(repo / EPOCH_BENCHMARK)
    try:
        steps = data["runs"]["x1"]["steps"]
    except (TypeError, KeyError):
        return {}
    out: dict[str, float] = {}
    for name, step in steps.items():
        seconds = (step.get("seconds") or {}).get("epoch") if isinstance(step, dict) else None
        if name.startswith("train:") and isinstance(seconds, (int, float)) and seconds > 0:
            out[name.removeprefix("train:")] = float(seconds)
    return out


def _run_epochs(repo: Path, ds: str, run: str, seed: int | str) -> float | None:
    """The epochs the committed run ``<run>-<seed>`` of ``ds`` ran (``metrics/<ds>/<run>-<seed>.json``), or None."""
    metrics = _json(Path(repo) / "metrics" / ds / f"{run}-{seed}.json")
    value = metrics.get("epochs") if isinstance(metrics, dict) else None
    return float(value) if isinstance(value, (int, float)) and value > 0 else None


def committed_epochs(commands: Mapping[str, str | list[str]], repo: Path) -> dict[str, float]:
    """Training stage -> the epochs its committed run ran, where known."""
    out = {}
    for name, cmd in commands.items():
        args = parse_stage(name, cmd).args
        value = _run_epochs(repo, *args[:3]) if len(args) >= 3 else None
        if value is not None:
            out[name] = value
    return out


def expected_costs(runs: Mapping[str, tuple[str, str, int]], repo: Path,
                   models: Mapping[str, Any] | None = None) -> dict[str, float]:
    """Stage name -> expected cost (arbitrary unit) of each training run ``(dataset, run, seed)``.
    ``models`` is params.yaml's ``models`` section (for ``variant_of``)."""
    models = models or {}
    per_epoch = model_epoch_seconds(repo)
    epochs: dict[str, float | None] = {}
    n_train: dict[str, float | None] = {}
    for name, (ds, run, seed) in runs.items():
        epochs[name] = _run_epochs(repo, ds, run, seed)
        if ds not in n_train:
            stats = _json(repo / "data" / ds / "ingest" / "stats.json")
            try:
                n_train[ds] = float(stats["splits"]["train"])
            except (TypeError, KeyError, ValueError):
                n_train[ds] = None

    def known_max(values: Any) -> float:
        known = [v for v in values if v is not None]
        return max(known) if known else 1.0

    max_epochs, max_train, max_epoch_s = known_max(epochs.values()), known_max(n_train.values()), known_max(per_epoch.values())

    def model_of(run: str) -> str:
        entry = models.get(run)
        return str(entry.get("variant_of") or run) if isinstance(entry, Mapping) else run

    out = {}
    for name, (ds, run, _seed) in runs.items():
        e = epochs[name] if epochs[name] is not None else max_epochs
        t = n_train[ds] if n_train[ds] is not None else max_train
        out[name] = e * t * per_epoch.get(model_of(run), max_epoch_s)
    return out


def longest_first(costs: Mapping[str, float]) -> list[str]:
    """The names by decreasing cost; equal costs in name order (the order is the same on every machine)."""
    return sorted(costs, key=lambda name: (-costs[name], name))


def _costs(commands: Mapping[str, str | list[str]], repo: Path, models: Mapping[str, Any] | None) -> dict[str, float]:
    runs = {}
    for name, cmd in commands.items():
        args = parse_stage(name, cmd).args
        runs[name] = (args[0], args[1], int(args[2])) if len(args) >= 3 and args[2].isdigit() else (args[0] if args else "", name, 0)
    return expected_costs(runs, Path(repo), models)


def order_runs(commands: Mapping[str, str | list[str]], repo: Path, models: Mapping[str, Any] | None = None) -> list[str]:
    """The training stages of ``commands`` (name -> ``python -m stages.train <ds> <run> <seed>`` command),
    longest expected first."""
    return longest_first(_costs(commands, repo, models))


def order_within_budget(required: Mapping[str, str | list[str]], optional: Mapping[str, str | list[str]], repo: Path,
                        models: Mapping[str, Any] | None = None, first: tuple[str, ...] = ()) -> list[str]:
    """The order under a time budget: the ``required`` runs longest first (all of them must finish, in
    the least wall time), then the ``optional`` ones cheapest first (as many as the time left allows),
    those of the models in ``first`` (the proposed model: the claim under test) ahead of the rest;
    equal costs in name order."""
    costs = _costs(optional, repo, models)
    model = {name: (parse_stage(name, cmd).args[1:2] or ("",))[0] for name, cmd in optional.items()}
    return order_runs(required, repo, models) + sorted(costs, key=lambda name: (model[name] not in first, costs[name], name))
