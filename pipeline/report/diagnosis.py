"""Diagnosis of SiMGR's signed part, on the validation split only.

* :func:`ablation_deltas`: what SGA, PST and APFI add over Base (validation metrics of the final
  runs, mean over seeds, and the difference to Base).
* :func:`pseudo_edge_quality`: how often a pseudo-positive (pseudo-negative) edge points at one of
  the user's validation items, against a random item the user has not interacted with in
  training: for a user u with V_u validation items among F_u items free for u, a random free item
  is a validation item with probability |V_u| / |F_u|; the baseline is that probability averaged
  with the weights of the pseudo edges' users. A pseudo-positive hit rate above the baseline
  means APFI adds edges the user would take; a pseudo-negative rate below it means it avoids them.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import polars as pl

from pipeline.report.tables import display, fmt


def pseudo_edge_quality(interactions: pl.DataFrame, pseudo: pl.DataFrame, n_items: int) -> dict[str, dict[str, Any]]:
    """``{"pseudo_positive": {...}, "pseudo_negative": {...}}``: edges, users, validation hits, hit
    rate, random baseline and their ratio (``interactions``: the ingest table; ``pseudo``: the
    ``pseudo_edges`` table)."""
    train = interactions.filter(pl.col("split") == "train")
    valid = interactions.filter(pl.col("split") == "valid")
    n_users = int(interactions["user"].max()) + 1 if interactions.height else 0
    free = n_items - np.bincount(train["user"].to_numpy(), minlength=n_users)
    n_valid = np.bincount(valid["user"].to_numpy(), minlength=n_users)
    p_random = np.divide(n_valid, free, out=np.zeros(n_users), where=free > 0)
    valid_keys = set((valid["user"].cast(pl.Int64) * n_items + valid["item"].cast(pl.Int64)).to_list())
    out = {}
    for name, sign in (("pseudo_positive", 1), ("pseudo_negative", -1)):
        part = pseudo.filter(pl.col("sign") == sign)
        users = part["user"].to_numpy().astype(np.int64)
        keys = users * n_items + part["item"].to_numpy().astype(np.int64)
        hits = int(sum(k in valid_keys for k in keys.tolist()))
        rate = hits / len(keys) if len(keys) else float("nan")
        baseline = float(p_random[users].mean()) if len(users) else float("nan")
        out[name] = {"edges": int(len(keys)), "users": int(len(np.unique(users))), "valid_hits": hits, "hit_rate": rate,
                     "random_rate": baseline, "ratio": rate / baseline if baseline else float("nan")}
    return out


def quality_markdown(quality: Mapping[str, Mapping[str, Any]]) -> str:
    lines = ["| pseudo edges | edges | users | validation hits | hit rate | random uninteracted item | ratio |",
             "|---|---|---|---|---|---|---|"]
    for name, q in quality.items():
        lines.append(f"| {name.replace('_', '-')} | {q['edges']} | {q['users']} | {q['valid_hits']} | {q['hit_rate']:.4f} | "
                     f"{q['random_rate']:.4f} | {q['ratio']:.2f} |")
    return "\n".join(lines)


def ablation_deltas(runs: Mapping[str, Sequence[dict]], base: str, models: Sequence[str],
                    metrics: Sequence[str] = ("recall@20", "ndcg@20")) -> pl.DataFrame:
    """Validation metrics (mean and sample std over seeds) of each of ``models`` and the difference
    of the means to ``base``."""
    rows = []
    base_means = {m: float(np.mean([r["valid"][m] for r in runs[base]])) for m in metrics} if base in runs else {}
    for model in models:
        if model not in runs:
            continue
        row: dict[str, Any] = {"model": model, "n_seeds": len(runs[model])}
        for m in metrics:
            vals = [r["valid"][m] for r in runs[model]]
            row[f"{m}_mean"] = float(np.mean(vals))
            row[f"{m}_std"] = float(np.std(vals, ddof=1)) if len(vals) > 1 else None
            row[f"{m}_vs_base"] = row[f"{m}_mean"] - base_means[m] if base_means else None
        rows.append(row)
    return pl.DataFrame(rows, infer_schema_length=None)


def deltas_markdown(frame: pl.DataFrame, metrics: Sequence[str] = ("recall@20", "ndcg@20")) -> str:
    lines = ["| Model | seeds | " + " | ".join(f"valid {m.replace('recall', 'R').replace('ndcg', 'N')} (vs Base)" for m in metrics) + " |",
             "|---|---|" + "---|" * len(metrics)]
    for row in frame.iter_rows(named=True):
        cells = []
        for m in metrics:
            std = f" ± {fmt(row[f'{m}_std'])}" if row[f"{m}_std"] is not None else ""
            delta = row[f"{m}_vs_base"]
            cells.append(f"{fmt(row[f'{m}_mean'])}{std} ({'+' if delta >= 0 else ''}{fmt(delta)})" if delta is not None else fmt(row[f"{m}_mean"]))
        lines.append(f"| {display(row['model'])} | {row['n_seeds']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def diagnosis_markdown(deltas: pl.DataFrame, quality: Mapping[str, Mapping[str, Any]] | None, base: str) -> str:
    """The report's "Diagnosis" section: validation ablation deltas and pseudo-edge quality."""
    lines = ["## Diagnosis of the signed part (validation only)", "",
             f"What each of SGA, PST and APFI adds over {display(base)} on the **validation** split (final runs, "
             "mean ± std over seeds; in brackets the difference of the means to Base):", "", deltas_markdown(deltas), ""]
    if quality:
        lines += ["Pseudo edges of the committed graph (`data/<dataset>/graph/pseudo_edges.parquet`): how often a "
                  "pseudo edge (u, i) is one of u's validation items, against a random item u has not "
                  "interacted with in training (ratio > 1: more often than chance).", "", quality_markdown(quality), ""]
    return "\n".join(lines)
