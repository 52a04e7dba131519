"""Comparisons of a rebuilt output with the committed one, by the rule of its kind.

Each function returns a :class:`Finding`: what was compared, whether the contract holds, and
what moved by how much (``-`` when nothing did). Pure functions over values already read, so the
rules are tested on small fixtures (tests/test_repro.py).
"""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import numpy as np
import polars as pl

from pipeline.repro import contract


@dataclass(frozen=True)
class Finding:
    output: str
    kind: str
    rule: str
    ok: bool
    moved: str = "-"


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: obj}


def compare_md5(path: str, committed: str | None, rebuilt: str | None) -> Finding:
    """Exact outputs cached by DVC: the md5 of ``dvc.lock`` before and after the rebuild."""
    rule = "md5 in dvc.lock"
    if committed is None:
        return Finding(path, "exact", rule, False, "not in the committed dvc.lock")
    if rebuilt is None:
        return Finding(path, "exact", rule, False, "not rebuilt")
    return Finding(path, "exact", rule, committed == rebuilt, "-" if committed == rebuilt else f"md5 {committed[:8]} -> {rebuilt[:8]}")


def compare_bytes(path: str, committed: bytes | None, rebuilt: bytes | None) -> Finding:
    rule = "committed bytes"
    if committed is None or rebuilt is None:
        return Finding(path, "exact", rule, False, "missing " + ("in the commit" if committed is None else "after the rebuild"))
    return Finding(path, "exact", rule, committed == rebuilt, "-" if committed == rebuilt else "bytes differ")


def compare_json(path: str, committed: Any, rebuilt: Any, tie_fields: Iterable[str] = ()) -> Finding:
    """Exact JSON values, except the ``tie_fields`` (dotted, ``*`` wildcards) that float ties decide."""
    ties = tuple(tie_fields)
    rule = "committed JSON values" + (" (but fields set by float ties)" if ties else "")
    a, b = _flatten(committed), _flatten(rebuilt)
    is_tie = lambda key: any(fnmatch.fnmatchcase(key, t) for t in ties)  # noqa: E731
    changed = sorted(k for k in set(a) | set(b) if a.get(k, "<missing>") != b.get(k, "<missing>"))
    broken = [k for k in changed if not is_tie(k)]
    moved_ties = [k for k in changed if is_tie(k)]
    if broken:
        k = broken[0]
        more = f" (+{len(broken) - 1} more)" if len(broken) > 1 else ""
        return Finding(path, "exact", rule, False, f"{k}: {a.get(k, '<missing>')} -> {b.get(k, '<missing>')}{more}")
    if moved_ties:
        return Finding(path, "exact", rule, True, "at ties: " + ", ".join(f"{k} {a.get(k)} -> {b.get(k)}" for k in moved_ties[:3]))
    return Finding(path, "exact", rule, True)


def compare_sketch(path: str, committed: pl.DataFrame, rebuilt: pl.DataFrame, tol: float = contract.FEATURE_TOL) -> Finding:
    """Feature sketches: the same (modality, item) rows, every norm and coordinate within ``tol``."""
    rule = f"sketch within {tol:g}"
    keys = ["modality", "item"]
    if not committed.select(keys).sort(keys).equals(rebuilt.select(keys).sort(keys)):
        mods = sorted(set(committed["modality"].unique()) ^ set(rebuilt["modality"].unique()))
        what = f"modalities {mods} differ" if mods else f"{committed.height} -> {rebuilt.height} item rows"
        return Finding(path, "sketch", rule, False, what)
    joined = committed.join(rebuilt, on=keys, suffix="_new")
    cols = [c for c in committed.columns if c not in keys]
    diff = np.max(np.abs(np.stack([joined[c].to_numpy().astype(np.float64) - joined[f"{c}_new"].to_numpy() for c in cols]))) if joined.height else 0.0
    ok = bool(diff <= tol)
    return Finding(path, "sketch", rule, ok, "-" if diff == 0 else f"max |d| {diff:.2e}")


def compare_fingerprint(path: str, committed: pl.DataFrame, rebuilt: pl.DataFrame, tol: float = contract.SCORE_TOL) -> Finding:
    """Lists / edge sets: the same (part, key) rows and counts; equal hashes, or a tie (a margin
    within ``tol`` on either side); score sums within ``tol`` per entry. Parts with margin NaN
    are exact."""
    rule = f"equal up to ties (margin <= {tol:g})"
    keys = ["part", "key"]
    joined = committed.join(rebuilt, on=keys, how="full", suffix="_new", coalesce=True)
    missing = joined.filter(pl.col("n").is_null() | pl.col("n_new").is_null())
    if missing.height:
        row = missing.row(0, named=True)
        side = "rebuilt" if row["n"] is None else "committed"
        return Finding(path, "ties", rule, False, f"{missing.height} (part, key) rows only in one side, e.g. {row['part']} {row['key']} (not in the {side})")
    count = joined.filter(pl.col("n") != pl.col("n_new"))
    exact = pl.col("margin").is_nan() & pl.col("margin_new").is_nan()
    tie = pl.min_horizontal(pl.col("margin").fill_nan(None), pl.col("margin_new").fill_nan(None)) <= tol
    differ = joined.filter(pl.col("hash") != pl.col("hash_new"))
    broken = differ.filter(exact | ~tie.fill_null(False))
    ties = differ.height - broken.height
    count_broken = count.join(differ.filter(tie.fill_null(False) & ~exact).select(keys), on=keys, how="anti")
    same = joined.filter(pl.col("hash") == pl.col("hash_new"))
    drift = (same["score_sum"] - same["score_sum_new"]).abs() / same["n"].cast(pl.Float64).clip(lower_bound=1)
    worst = float(drift.max()) if same.height else 0.0
    worst = 0.0 if worst is None or math.isnan(worst) else worst
    parts: list[str] = []
    if ties:
        parts.append(f"{ties} of {joined.height} differ at ties")
    if worst > 0:
        parts.append(f"max score |d| {worst:.1e}")
    if broken.height or count_broken.height:
        bad = broken if broken.height else count_broken
        row = bad.row(0, named=True)
        why = "exact part differs" if math.isnan(row["margin"]) else f"no tie (margins {row['margin']:.2e} / {row['margin_new']:.2e})"
        return Finding(path, "ties", rule, False, f"{bad.height} of {joined.height} differ beyond ties, e.g. {row['part']} {row['key']}: {why}")
    if worst > tol:
        return Finding(path, "ties", rule, False, f"score sums moved by {worst:.1e} per entry (> {tol:g})")
    return Finding(path, "ties", rule, True, "; ".join(parts) or "-")


def seed_std(runs: Mapping[str, Mapping[int, Mapping[str, Any]]], split: str, metric: str) -> float | None:
    """Pooled standard deviation over seeds: sqrt(mean over models of the sample variance), or None
    when no model has two seeds. ``runs``: model -> seed -> metrics JSON."""
    variances = []
    for seeds in runs.values():
        vals = [m[split][metric] for m in seeds.values() if isinstance(m.get(split, {}).get(metric), (int, float))]
        if len(vals) >= 2:
            variances.append(float(np.var(vals, ddof=1)))
    return math.sqrt(float(np.mean(variances))) if variances else None


def sigmas(runs: Mapping[str, Mapping[int, Mapping[str, Any]]], model: str | None = None) -> dict[tuple[str, str], float | None]:
    """(split, metric) -> the seed std that scales the bands (None: no spread to measure): the
    dataset's pooled seed std, or for ``model`` the larger of that and the model's own seed std (a
    model whose seeds spread more than the others' has a wider band, not more false alarms)."""
    out = {}
    for split in contract.BAND_SPLITS:
        for metric in contract.BAND_METRICS:
            pooled = seed_std(runs, split, metric)
            own = seed_std({model: runs[model]}, split, metric) if model in runs else None
            known = [sd for sd in (pooled, own) if sd is not None]
            out[(split, metric)] = max(known) if known else None
    return out


def bands(runs: Mapping[str, Mapping[int, Mapping[str, Any]]], model: str | None = None) -> dict[tuple[str, str], float]:
    """(split, metric) -> the per-run band of ``model`` among the committed runs ``runs`` of a dataset."""
    return {k: contract.BAND_FLOOR if sd is None else contract.BAND_FACTOR * sd for k, sd in sigmas(runs, model).items()}


def compare_model_means(dataset: str, committed: Mapping[str, Mapping[int, Mapping[str, Any]]],
                        rebuilt: Mapping[str, Mapping[int, Mapping[str, Any]]]) -> list[Finding]:
    """Per model with at least MEAN_MIN_SEEDS rebuilt seeds: the mean over those seeds of
    (rebuilt - committed) within MEAN_FACTOR x sigma x sqrt(2 / n) for every banded metric."""
    rule = f"mean over seeds within {contract.MEAN_FACTOR:g} x sigma x sqrt(2/n)"
    out = []
    for model in sorted(rebuilt):
        seeds = sorted(set(rebuilt[model]) & set(committed.get(model, {})))
        if len(seeds) < contract.MEAN_MIN_SEEDS:
            continue
        worst, what, broken = 0.0, "-", None
        for (split, metric), sd in sigmas(committed, model).items():
            if not sd:
                continue
            width = contract.MEAN_FACTOR * sd * math.sqrt(2 / len(seeds))
            d = float(np.mean([rebuilt[model][s][split][metric] - committed[model][s][split][metric] for s in seeds]))
            if abs(d) / width > worst:
                worst, what = abs(d) / width, f"{split} {metric} mean moved {d:+.4f} ({abs(d) / width:.2f} of {width:.4f})"
            if abs(d) > width and broken is None:
                broken = what
        path = f"metrics/{dataset}/{model}-* ({len(seeds)} seeds)"
        out.append(Finding(path, "band", rule, broken is None, broken or what))
    return out


def compare_metrics(path: str, committed: Mapping[str, Any] | None, rebuilt: Mapping[str, Any] | None,
                    band: Mapping[tuple[str, str], float]) -> Finding:
    """One run's metrics JSON: exact fields equal, each banded metric within its band."""
    rule = f"band ({contract.BAND_FACTOR:g} x seed std sigma)"
    if committed is None or rebuilt is None:
        return Finding(path, "band", rule, False, "missing " + ("in the commit" if committed is None else "after the rebuild"))
    for key in contract.METRICS_EXACT:
        if committed.get(key) != rebuilt.get(key):
            return Finding(path, "band", rule, False, f"{key}: {committed.get(key)} -> {rebuilt.get(key)}")
    worst, what, broken = 0.0, "", None
    for (split, metric), width in band.items():
        a, b = committed[split][metric], rebuilt[split][metric]
        d = abs(b - a)
        ratio = d / width if width > 0 else (math.inf if d > 0 else 0.0)
        if ratio > worst:
            worst, what = ratio, f"{split} {metric} {a:.4f} -> {b:.4f} ({ratio:.2f} of the band {width:.4f})"
        if d > width and broken is None:
            broken = what
    if broken:
        return Finding(path, "band", rule, False, broken)
    return Finding(path, "band", rule, True, what or "-")
