"""The small data files behind the default ``dvc plots show`` views, and the compact summary metrics.

The report stage writes, per dataset (paths in :mod:`pipeline.paths`; every file is committed):

``reports/plots/curves/<ds>.csv``
    ``model, name, role, epoch, recall@20, n_seeds``: validation R@20 per epoch, one series per model
    (``role``: proposed, baseline or ablation; the chart draws the proposed model thicker),
    the mean over the seeds that validated at that epoch (:func:`validation_curves`). The epochs
    are those each run's ``history.json`` ``curve`` lists (every epoch, or every N epochs), aligned
    by epoch number; where seeds stopped at different epochs, ``n_seeds`` says how many are in a mean.
``reports/plots/table2/<ds>.csv``, ``reports/plots/ablation/<ds>.csv``
    ``model, name, metric, mean, std, n_seeds``: one row per (model, metric) of Table 2 / of the
    Figure-3 ablation, test metric mean and sample std over seeds (``std`` empty with one seed)
    (:func:`bars_frame`).
``reports/summary/<ds>/<model>.json``
    the DVC metrics: ``{"R@20": mean, "R@20_std": std, "N@20": ..., "N@20_std": ..., "n_seeds": n}``
    of the test split (:func:`summary_metrics`; std ``null`` with one seed). One file per model, so
    that ``dvc metrics show`` prints one row per model, and short keys, so that ``dvc exp show``'s
    ``<file>:<key>`` columns stay narrow (both fit 120 columns; README).

Sensitivity sweeps (Figures 4-6) use :func:`sensitivity_frame`: ``value, valid, test`` per
parameter value, written to ``reports/plots/sweeps/<ds>/<param>.csv`` (:func:`write_csv`), which
the top-level ``plots:`` of ``dvc.yaml`` draws as one chart per file.

Numbers are rounded (:data:`CURVE_DECIMALS`, :data:`pipeline.report.tables.DECIMALS`) so the
files are small and their bytes stable.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import polars as pl

from pipeline.atomic import atomic_file
from pipeline.errors import UserError
from pipeline.report.tables import DECIMALS, Summary, display, short

#: the validation metric drawn per epoch (what the paper's early stopping and Table 2 compare)
CURVE_METRIC = "recall@20"
#: the test metrics of the summary files
SUMMARY_METRICS = ("recall@20", "ndcg@20")
CURVE_DECIMALS = 6


def validation_curves(histories: Mapping[str, Sequence[tuple[str, Any]]], roles: Mapping[str, str] | None = None,
                      metric: str = CURVE_METRIC) -> tuple[pl.DataFrame, int]:
    """Per model and epoch, the mean over seeds of the validation ``metric`` in ``history.json`` curves.

    ``histories``: model -> ``[(source, history), ...]`` (one per seed; ``source`` names the file in
    errors); ``roles``: model -> role (default "baseline"). An epoch row without the metric (a run that did not validate at that epoch) is
    skipped and counted. Returns the ``curves`` frame (models in the given order, epochs
    increasing) and the number of rows skipped.
    """
    roles = roles or {}
    rows: list[tuple[str, str, str, int, float, int]] = []
    skipped = 0
    for model, runs in histories.items():
        per_epoch: dict[int, list[float]] = {}
        for source, history in runs:
            curve = history.get("curve") if isinstance(history, dict) else None
            if not isinstance(curve, list):
                raise UserError(f"{source}: missing list field 'curve' (the per-epoch log written by the train stage)")
            found = 0
            for i, row in enumerate(curve):
                epoch = row.get("epoch") if isinstance(row, dict) else None
                if not isinstance(epoch, int) or isinstance(epoch, bool):
                    raise UserError(f"{source}: curve[{i}] has no integer 'epoch'")
                value = (row.get("valid") or {}).get(metric)
                if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                    skipped += 1
                    continue
                per_epoch.setdefault(epoch, []).append(float(value))
                found += 1
            if not found:
                raise UserError(f"{source}: no epoch of 'curve' has a validation '{metric}'")
        for epoch in sorted(per_epoch):
            values = per_epoch[epoch]
            rows.append((model, display(model), roles.get(model, "baseline"), epoch, round(float(np.mean(values)), CURVE_DECIMALS), len(values)))
    schema = {"model": pl.String, "name": pl.String, "role": pl.String, "epoch": pl.Int64, metric: pl.Float64, "n_seeds": pl.Int64}
    return pl.DataFrame(rows, schema=schema, orient="row"), skipped


def bars_frame(summary: Mapping[str, Mapping[str, Summary]], models: Sequence[str], metrics: Sequence[str]) -> pl.DataFrame:
    """One row per (model, metric), in the given orders: model, name, metric (``R@20``), mean, std, n_seeds."""
    rows = []
    for model in models:
        for metric in metrics:
            s = summary[model][metric]
            rows.append((model, display(model), short(metric), _round(s.mean), _round(s.std), s.n))
    schema = {"model": pl.String, "name": pl.String, "metric": pl.String, "mean": pl.Float64, "std": pl.Float64, "n_seeds": pl.Int64}
    return pl.DataFrame(rows, schema=schema, orient="row")


def summary_metrics(summary: Mapping[str, Summary], metrics: Sequence[str] = SUMMARY_METRICS) -> dict[str, Any]:
    """The summary JSON of one model: ``R@20`` (mean), ``R@20_std`` (None with one seed), ..., ``n_seeds``."""
    out: dict[str, Any] = {}
    for metric in metrics:
        out[short(metric)] = _round(summary[metric].mean)
        out[f"{short(metric)}_std"] = _round(summary[metric].std)
    out["n_seeds"] = summary[metrics[0]].n
    return out


def sensitivity_frame(values: Sequence[float], valid: Sequence[float], test: Sequence[float], what: str = "sweep") -> pl.DataFrame:
    """The plot data of a sensitivity sweep: ``value, valid, test`` (R@20 at each value), sorted by value.

    One row per parameter value; ``what`` names the sweep in errors (e.g. ``"magazine pst.nu"``).
    """
    if not (len(values) == len(valid) == len(test)):
        raise UserError(f"{what}: {len(values)} parameter values but {len(valid)} validation and {len(test)} test means")
    if not len(values):
        raise UserError(f"{what}: no parameter value to plot")
    if len(set(values)) != len(values):
        dup = next(v for v in values if list(values).count(v) > 1)
        raise UserError(f"{what}: parameter value {dup} appears more than once (average its runs first)")
    frame = pl.DataFrame({"value": [float(v) for v in values], "valid": [_round(v) for v in valid], "test": [_round(v) for v in test]},
                         schema={"value": pl.Float64, "valid": pl.Float64, "test": pl.Float64})
    return frame.sort("value")


def write_csv(frame: pl.DataFrame, path: str | Path) -> Path:
    """Write a plot-data frame as CSV (stable bytes; missing values as empty cells)."""
    path = Path(path)
    with atomic_file(path) as tmp:
        frame.write_csv(tmp)
    return path


def _round(x: float) -> float | None:
    return None if x is None or math.isnan(x) else round(float(x), DECIMALS)
