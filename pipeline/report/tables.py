"""Table 2 and Figure 3 of the paper from per-run metrics: mean ± std over seeds, marks, RelImp.

Every number shown is recomputable from ``metrics/<ds>/<model>-<seed>.json``: the mean and the
sample standard deviation (ddof = 1) over seeds of each test metric, rounded to :data:`DECIMALS`
places; a model run with one seed shows its plain value (no spread to report). Best (bold) and second best (underlined) are marked per column
on the *rounded* means, among the rows of the table, ties sharing a mark. RelImp is
``(proposed / best other - 1) * 100`` on the unrounded means, per column, where "other" excludes the
proposed model's ablation variants.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl

DECIMALS = 4
PCT_DECIMALS = 3

DISPLAY = {
    "mf": "MF-BPR",
    "lightgcn": "LightGCN",
    "siren": "SiReN",
    "freedom": "FREEDOM",
    "lgmrec": "LGMRec",
    "mgcn": "MGCN",
    "bm3": "BM3",
    "lsgrec": "LSGRec",
    "base": "Base",
    "base_sga": "Base+SGA",
    "base_sga_pst": "Base+SGA+PST",
    "base_sga_apfi": "Base+SGA+APFI",
    "simgr": "SiMGR",
}
SHORT = {"recall": "R", "ndcg": "N", "precision": "P", "map": "MAP"}


def display(model: str) -> str:
    return DISPLAY.get(model, model)


def short(metric: str) -> str:
    """``recall@20`` -> ``R@20``."""
    name, _, k = metric.partition("@")
    return f"{SHORT.get(name, name)}@{k}"


@dataclass(frozen=True)
class Summary:
    """Mean and sample std over seeds of one model's metric."""

    mean: float
    std: float  # NaN with one seed
    n: int


def summarize(values: list[float]) -> Summary:
    arr = np.asarray(values, dtype=np.float64)
    std = float(arr.std(ddof=1)) if len(arr) > 1 else math.nan
    return Summary(float(arr.mean()), std, len(arr))


def summarize_runs(runs: dict[str, list[dict]], metrics: list[str], split: str = "test") -> dict[str, dict[str, Summary]]:
    """``runs``: model -> list of metrics JSON dicts (one per seed). Returns model -> metric -> Summary."""
    return {model: {m: summarize([r[split][m] for r in rs]) for m in metrics} for model, rs in runs.items()}


def fmt(x: float, decimals: int = DECIMALS) -> str:
    return "-" if math.isnan(x) else f"{x:.{decimals}f}"


def marks(values: dict[str, float]) -> dict[str, str]:
    """Per row: "best", "second" or "" from the rounded values (ties share a mark)."""
    rounded = {k: round(v, DECIMALS) for k, v in values.items() if not math.isnan(v)}
    levels = sorted(set(rounded.values()), reverse=True)
    out = {k: "" for k in values}
    for k, v in rounded.items():
        if v == levels[0]:
            out[k] = "best"
        elif len(levels) > 1 and v == levels[1]:
            out[k] = "second"
    return out


def rel_imp(summary: dict[str, dict[str, Summary]], proposed: str, others: list[str], metric: str) -> tuple[float, str | None]:
    """RelImp (%) of ``proposed`` over the best of ``others`` on ``metric``, and that best model."""
    if proposed not in summary or not others:
        return math.nan, None
    best = max(others, key=lambda m: summary[m][metric].mean)
    base = summary[best][metric].mean
    if base == 0:
        return math.nan, best
    return (summary[proposed][metric].mean / base - 1.0) * 100.0, best


def cell(s: Summary, mark: str = "") -> str:
    """``mean ± std``, or the plain value when there is no spread (one seed)."""
    text = fmt(s.mean) if math.isnan(s.std) else f"{fmt(s.mean)} ± {fmt(s.std)}"
    if mark == "best":
        return f"**{text}**"
    if mark == "second":
        return f"<u>{text}</u>"
    return text


def markdown_table(summary: dict[str, dict[str, Summary]], models: list[str], metrics: list[str],
                   extra_rows: list[list[str]] | None = None) -> str:
    """A markdown table, one row per model, best bold and second best underlined per column."""
    col_marks = {m: marks({model: summary[model][m].mean for model in models}) for m in metrics}
    lines = ["| Model | " + " | ".join(short(m) for m in metrics) + " |", "|---|" + "---|" * len(metrics)]
    for model in models:
        cells = [cell(summary[model][m], col_marks[m][model]) for m in metrics]
        lines.append(f"| {display(model)} | " + " | ".join(cells) + " |")
    for row in extra_rows or []:
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def csv_frame(summary: dict[str, dict[str, Summary]], models: list[str], metrics: list[str], roles: dict[str, str]) -> pl.DataFrame:
    """One row per model: model, name, role, n_seeds, then <metric>_mean and <metric>_std (rounded)."""
    cols: dict[str, list] = {"model": models, "name": [display(m) for m in models], "role": [roles[m] for m in models],
                             "n_seeds": [summary[m][metrics[0]].n for m in models]}
    for metric in metrics:
        cols[f"{metric}_mean"] = [round(summary[m][metric].mean, DECIMALS) for m in models]
        cols[f"{metric}_std"] = [None if math.isnan(summary[m][metric].std) else round(summary[m][metric].std, DECIMALS) for m in models]
    return pl.DataFrame(cols, schema_overrides={f"{m}_std": pl.Float64 for m in metrics})
