"""Sensitivity of test metrics to one parameter, from the JSON of ``dvc exp show --json``.

``dvc exp show --json`` (DVC 3) is a list of experiment states ``{"rev", "name", "data": {"params":
{"params.yaml": {"data": {...}}}, "metrics": {"<file>": {"data": {...}}}, ...}, "error",
"experiments": [{"revs": [<state>, ...], ...}]}``. :func:`sweep_table` walks every state (workspace,
baselines, their experiments), reads the parameter value (a number, or a one-value list such as
``tune.sweeps.simgr.pst.nu: [0.3]``) and metrics (dotted keys) from DVC
metrics files -- the report stage's ``reports/summary/<ds>/<model>.json``, whose ``R@20`` is
already the mean over seeds -- and returns one row per parameter value.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np
import polars as pl

from pipeline.errors import UserError


def iter_states(exp_show: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every experiment state of ``dvc exp show --json``, depth first."""
    for state in exp_show:
        yield state
        for exp_range in state.get("experiments") or []:
            yield from iter_states(exp_range.get("revs") or [])


def _dotted(data: Any, key: str) -> Any:
    for part in key.split("."):
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return data


def sweep_table(exp_show: list[dict[str, Any]], param: str, metric_files: list[str], metrics: list[str],
                params_file: str = "params.yaml") -> tuple[pl.DataFrame, int]:
    """Rows (``param``, ``n_experiments``, one column per metric) sorted by value, and the number of
    states skipped (failed, queued, or lacking the parameter or a metrics file).

    Each state's metric is the mean over ``metric_files`` of the dotted key ``metric`` (e.g.
    ``R@20`` of a summary file); states sharing a parameter value (the workspace and its
    baseline, reruns) are averaged after removing exact duplicates.
    """
    rows, skipped = [], 0
    for state in iter_states(exp_show):
        data = state.get("data")
        if state.get("error") or not data:
            skipped += 1
            continue
        value = _dotted(((data.get("params") or {}).get(params_file) or {}).get("data"), param)
        if isinstance(value, list) and len(value) == 1:  # a value fixed as a one-value space or sweep
            value = value[0]
        files = data.get("metrics") or {}
        results = [(files.get(f) or {}).get("data") for f in metric_files]
        if not isinstance(value, (int, float)) or isinstance(value, bool) or any(not isinstance(r, dict) for r in results):
            skipped += 1
            continue
        try:
            rows.append((float(value), *(float(np.mean([_dotted(r, m) for r in results])) for m in metrics)))
        except TypeError:  # a metric missing (None) or not a number
            skipped += 1
    if not rows:
        raise UserError(f"dvc exp show output: no experiment has numeric '{param}' and the metrics {metrics} in {metric_files}")
    frame = pl.DataFrame(sorted(set(rows)), schema=[param, *metrics], orient="row")
    table = frame.group_by(param).agg(pl.len().alias("n_experiments"), *(pl.col(m).mean() for m in metrics)).sort(param)
    return table.with_columns(pl.col("n_experiments").cast(pl.Int64)), skipped
