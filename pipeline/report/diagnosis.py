"""Diagnosis of SiMGR's signed part, on the validation split only.

* :func:`ablation_deltas`: what SGA, PST and APFI add over Base (validation metrics of the final
  runs, mean over seeds, and the difference to Base).
* :func:`pseudo_edge_quality`: how often a pseudo-positive (pseudo-negative) edge points at one of
  the user's validation items, against a random item *of the same group* the user has not
  interacted with in training. Pseudo-positive edges go to tail items (eq. 17-19) and
  pseudo-negative ones to popular items (eq. 20-21), and a tail item is rarely a validation item
  whatever its similarity, so the fair baseline draws from the same group: for a user u with V_u
  validation items among the F_u items of the group free for u, a random free item of the group
  is a validation item with probability |V_u ∩ G| / |F_u ∩ G|, averaged with the weights of the
  pseudo edges' users. The whole-catalogue baseline (|V_u| / |F_u|) is reported beside it. A
  pseudo-positive hit rate above the group baseline means APFI picks, among tail items, those
  the user would take; a pseudo-negative rate below it means it avoids them among popular items.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import polars as pl

from pipeline.graph.build import signed_graph
from pipeline.graph.signed import GraphSettings
from pipeline.report.tables import display, fmt


def _random_rate(n_valid: np.ndarray, free: np.ndarray) -> np.ndarray:
    return np.divide(n_valid, free, out=np.zeros(len(free)), where=free > 0)


def pseudo_edge_quality(interactions: pl.DataFrame, pseudo: pl.DataFrame, n_items: int,
                        tail: np.ndarray | None = None) -> dict[str, dict[str, Any]]:
    """``{"pseudo_positive": {...}, "pseudo_negative": {...}}``: edges, users, validation hits, hit rate,
    the random baselines (a free item of the same group: tail for pseudo-positive, popular for
    pseudo-negative, when ``tail`` (bool per item, eq. 15) is given; and of the whole catalogue) and
    the hit rate's ratio to each (``interactions``: the ingest table; ``pseudo``: the ``pseudo_edges`` table)."""
    train = interactions.filter(pl.col("split") == "train")
    valid = interactions.filter(pl.col("split") == "valid")
    n_users = int(interactions["user"].max()) + 1 if interactions.height else 0
    t_user, t_item = train["user"].to_numpy(), train["item"].to_numpy()
    v_user, v_item = valid["user"].to_numpy(), valid["item"].to_numpy()
    catalogue = _random_rate(np.bincount(v_user, minlength=n_users).astype(float), n_items - np.bincount(t_user, minlength=n_users))
    valid_keys = set((valid["user"].cast(pl.Int64) * n_items + valid["item"].cast(pl.Int64)).to_list())
    out = {}
    for name, sign in (("pseudo_positive", 1), ("pseudo_negative", -1)):
        part = pseudo.filter(pl.col("sign") == sign)
        users = part["user"].to_numpy().astype(np.int64)
        keys = users * n_items + part["item"].to_numpy().astype(np.int64)
        hits = int(sum(k in valid_keys for k in keys.tolist()))
        rate = hits / len(keys) if len(keys) else float("nan")
        row: dict[str, Any] = {"edges": int(len(keys)), "users": int(len(np.unique(users))), "valid_hits": hits, "hit_rate": rate}
        if tail is not None:
            group = np.asarray(tail, bool) if sign > 0 else ~np.asarray(tail, bool)
            in_group = np.bincount(v_user[group[v_item]], minlength=n_users).astype(float)
            free = int(group.sum()) - np.bincount(t_user[group[t_item]], minlength=n_users)
            same = float(_random_rate(in_group, free)[users].mean()) if len(users) else float("nan")
            row.update(group="tail" if sign > 0 else "popular", group_rate=same, ratio=rate / same if same else float("nan"))
        whole = float(catalogue[users].mean()) if len(users) else float("nan")
        row.update(random_rate=whole, ratio_catalogue=rate / whole if whole else float("nan"))
        if tail is None:
            row["ratio"] = row["ratio_catalogue"]
        out[name] = row
    return out


def modality_quality(interactions: pl.DataFrame, vectors: Mapping[str, np.ndarray], settings: GraphSettings,
                     candidates: Mapping[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """Pseudo-edge quality (:func:`pseudo_edge_quality`, group-matched) of the signed graph built at
    ``settings`` from each modality alone and from all of them fused (eq. 16): ``{"text": ..., "image": ...,
    "fused": ...}``. With one modality, only that one (it is the fused similarity)."""
    subsets = {m: [m] for m in sorted(vectors)} if len(vectors) > 1 else {}
    subsets["fused" if len(vectors) > 1 else next(iter(vectors))] = sorted(vectors)
    n_items = next(iter(vectors.values())).shape[0]
    out = {}
    for name, modalities in subsets.items():
        graph, cands = signed_graph(interactions, {m: vectors[m] for m in modalities}, settings, candidates)
        tail = cands.tables["item_groups"][1].sort("item")["tail"].to_numpy()
        out[name] = pseudo_edge_quality(interactions, graph.pseudo, n_items, tail)
    return out


def modality_markdown(by_modality: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> str:
    lines = ["| similarity | pseudo edges | edges | hit rate | random free item of its group | ratio |", "|---|---|---|---|---|---|"]
    for name, quality in by_modality.items():
        for kind, q in quality.items():
            lines.append(f"| {name} | {kind.replace('_', '-')} | {q['edges']} | {q['hit_rate']:.4f} | "
                         f"{q['group_rate']:.4f} ({q['group']}) | {q['ratio']:.2f} |")
    return "\n".join(lines)


def quality_markdown(quality: Mapping[str, Mapping[str, Any]]) -> str:
    lines = ["| pseudo edges | edges | users | validation hits | hit rate | random free item of its group | ratio | "
             "random free item (any) | ratio |", "|---|---|---|---|---|---|---|---|---|"]
    for name, q in quality.items():
        group = f"{q['group_rate']:.4f} ({q['group']})" if "group_rate" in q else "-"
        ratio = f"{q['ratio']:.2f}" if "group_rate" in q else "-"
        lines.append(f"| {name.replace('_', '-')} | {q['edges']} | {q['users']} | {q['valid_hits']} | {q['hit_rate']:.4f} | "
                     f"{group} | {ratio} | {q['random_rate']:.4f} | {q['ratio_catalogue']:.2f} |")
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


def diagnosis_markdown(deltas: pl.DataFrame, quality: Mapping[str, Mapping[str, Any]] | None, base: str,
                       by_modality: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None) -> str:
    """The report's "Diagnosis" section: validation ablation deltas, pseudo-edge quality, and with
    several modalities the quality of the pseudo edges each modality alone would give."""
    lines = ["## Diagnosis of the signed part (validation only)", "",
             f"What each of SGA, PST and APFI adds over {display(base)} on the **validation** split (final runs, "
             "mean ± std over seeds; in brackets the difference of the means to Base):", "", deltas_markdown(deltas), ""]
    if quality:
        lines += ["Pseudo edges of the committed graph (`data/<dataset>/graph/pseudo_edges.parquet`): how often a "
                  "pseudo edge (u, i) is one of u's validation items, against a random item u has not interacted with "
                  "in training, drawn from the same group (tail items for pseudo-positive edges, popular items for "
                  "pseudo-negative ones, eq. 15: a tail item is rarely a validation item whatever its similarity) and, "
                  "for comparison, from the whole catalogue (ratio > 1: more often than chance).", "", quality_markdown(quality), ""]
    if by_modality and len(by_modality) > 1:
        lines += ["The pseudo edges APFI would add at the same settings from each modality's similarity alone and from the "
                  "fused one (eq. 16, what the graph uses), against a random free item of the same group:", "",
                  modality_markdown(by_modality), ""]
    return "\n".join(lines)
