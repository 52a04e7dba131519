"""Diagnosis of SiMGR's signed part on the validation split (issue: "diagnose the signed part").

Three measurements per dataset, every one on **validation** only (the test split is not read):

1. *Before tuning*: Base, Base+SGA, Base+SGA+PST, Base+SGA+APFI and SiMGR at their ``params.yaml``
   values (no study's selection; the signed graph at the params ``pst`` / ``apfi`` values), one run
   per seed; what each part adds over Base. (*After tuning* is the report's "Diagnosis" section:
   the final runs at the selected values.)
2. *Pseudo-edge quality* of the signed graph at the params values and at SiMGR's selected values:
   how often a pseudo-positive (pseudo-negative) edge is a validation pair, against a random item
   the user has not interacted with (:func:`pipeline.report.diagnosis.pseudo_edge_quality`).
3. *Pseudo edges in the sign loss or only in A+ / A-*: SiMGR at its selected values (every key,
   the graph's too) against the variant ``simgr_sign_observed`` (``pseudo_in_sign_loss: false``)
   at the same values, per seed (paired differences).

Runs are seeded training runs of :class:`pipeline.tuning.trial.TrialRunner` (no files written),
``--jobs`` at a time, one thread each. Reads the ingest and feature outputs and
``tuning/<ds>/simgr/selected.json`` of the committed pipeline. Writes ``--out`` (markdown) and
the same numbers as JSON next to it.

    python benchmarks/diagnose_signed.py --datasets magazine movielens --seeds 1 2 3 --jobs 2
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

ABLATION = ["base", "base_sga", "base_sga_pst", "base_sga_apfi", "simgr"]
METRICS = ("recall@20", "ndcg@20")


def _run(job: tuple[str, str, int, dict[str, Any]]) -> dict[str, Any]:
    dataset, model, seed, values = job
    import torch

    from pipeline.paths import DATA
    from pipeline.settings import load_params
    from pipeline.tuning.trial import TrialRunner

    torch.set_num_threads(1)
    params = load_params()
    started = time.perf_counter()
    # a trial at `values` (the selection, or none: every auto value at its default)
    result = TrialRunner(DATA / dataset, dataset, params, model, seed, params.train.valid_metric, frozenset(values))(values)
    return {"dataset": dataset, "model": model, "seed": seed, "values": values, "valid": result.valid,
            "best_epoch": result.best_epoch, "epochs": result.epochs, "stop_reason": result.stop_reason,
            "seconds": round(time.perf_counter() - started, 1)}


def pseudo_quality(dataset: str, params, values: dict[str, Any]) -> dict[str, Any]:
    from pipeline.data import load_train_data
    from pipeline.graph.build import candidate_settings, signed_graph
    from pipeline.paths import DATA
    from pipeline.report.diagnosis import pseudo_edge_quality
    from pipeline.run.models import resolve_graph
    from pipeline.schemas import read_table

    settings, _ = resolve_graph(params, candidates=values, searched=frozenset(values))
    data = load_train_data(DATA / dataset, frozenset({"features"}), name=dataset)
    interactions = read_table(DATA / dataset / "ingest" / "interactions.parquet", "interactions")
    graph, _ = signed_graph(interactions, data.features, settings, candidate_settings(params.neighbors))
    return pseudo_edge_quality(interactions, graph.pseudo, data.n_items)


def summary(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        out.setdefault(r["model"], {"seeds": [], **{m: [] for m in METRICS}})
        out[r["model"]]["seeds"].append(r["seed"])
        for m in METRICS:
            out[r["model"]][m].append(r["valid"][m])
    return out


def _ms(vals: list[float]) -> str:
    return f"{np.mean(vals):.4f} ± {np.std(vals, ddof=1):.4f}" if len(vals) > 1 else f"{vals[0]:.4f}"


def markdown(results: dict[str, Any]) -> str:
    from pipeline.report.diagnosis import quality_markdown
    from pipeline.report.tables import display

    lines = ["# Diagnosis of SiMGR's signed part (validation only)", "",
             f"`python benchmarks/diagnose_signed.py {' '.join(results['argv'])}`; seeds {results['seeds']}; "
             f"{results['seconds']:.0f} s on {results['jobs']} process(es), one thread each. Cells: validation metric, "
             "mean ± sample std over seeds; in brackets the difference of the means to Base (part 1) or to SiMGR (part 3).", ""]
    for ds, res in results["datasets"].items():
        lines += [f"## {ds}", "", "### 1. Before tuning: each part over Base (params.yaml values)", "",
                  "| Model | valid R@20 | valid N@20 | best epochs |", "|---|---|---|---|"]
        before = summary(res["before"])
        for model in ABLATION:
            if model not in before:
                continue
            cells = []
            for m in METRICS:
                d = np.mean(before[model][m]) - np.mean(before["base"][m])
                cells.append(f"{_ms(before[model][m])} ({'+' if d >= 0 else ''}{d:.4f})")
            epochs = [r["best_epoch"] for r in res["before"] if r["model"] == model]
            lines.append(f"| {display(model)} | {' | '.join(cells)} | {', '.join(map(str, epochs))} |")
        lines += ["", "### 2. Pseudo-edge quality (validation pairs hit)", ""]
        for name, q in res["quality"].items():
            lines += [f"Graph at the {name} values:", "", quality_markdown(q), ""]
        lines += ["### 3. Pseudo edges in the sign loss (SiMGR) or only in A+ / A- (simgr_sign_observed), at SiMGR's selected values", "",
                  f"Selected values: `{json.dumps(res['selected'])}`", "",
                  "| Variant | valid R@20 | valid N@20 | per-seed R@20 difference to SiMGR |", "|---|---|---|---|"]
        sign = summary(res["sign_loss"])
        for model in ("simgr", "simgr_sign_observed"):
            cells = [f"{_ms(sign[model][m])}" for m in METRICS]
            diffs = np.array(sign[model]["recall@20"]) - np.array(sign["simgr"]["recall@20"])
            lines.append(f"| {model} | {' | '.join(cells)} | {', '.join(f'{d:+.4f}' for d in diffs)} (mean {diffs.mean():+.4f}) |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", nargs="+", default=["magazine", "movielens"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--parts", nargs="+", default=["before", "quality", "sign_loss"], choices=["before", "quality", "sign_loss"])
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "diagnosis.md"))
    args = ap.parse_args()
    os.chdir(ROOT)
    os.environ.setdefault("SIMGR_PROGRESS", "0")
    from pipeline.run.selection import SELECTED, read_selected, study_dir
    from pipeline.settings import load_params

    params = load_params()
    started = time.perf_counter()
    selected = {ds: read_selected(study_dir(ds, "simgr") / SELECTED) for ds in args.datasets}
    jobs = []
    if "before" in args.parts:
        jobs += [(ds, model, seed, {}) for ds in args.datasets for model in ABLATION for seed in args.seeds]
    if "sign_loss" in args.parts:
        jobs += [(ds, model, seed, selected[ds]) for ds in args.datasets for model in ("simgr", "simgr_sign_observed") for seed in args.seeds]
    with mp.get_context("spawn").Pool(args.jobs) as pool:
        rows = []
        for i, row in enumerate(pool.imap_unordered(_run, jobs), 1):
            rows.append(row)
            print(f"[{i}/{len(jobs)}] {row['dataset']} {row['model']} seed {row['seed']}: valid R@20 {row['valid']['recall@20']:.4f} "
                  f"(best epoch {row['best_epoch']} of {row['epochs']}, {row['stop_reason']}) {row['seconds']} s", flush=True)
    rows.sort(key=lambda r: (r["dataset"], r["model"], r["seed"]))
    results: dict[str, Any] = {"argv": sys.argv[1:], "seeds": args.seeds, "jobs": args.jobs, "datasets": {}}
    for ds in args.datasets:
        res: dict[str, Any] = {"selected": selected[ds]}
        res["before"] = [r for r in rows if r["dataset"] == ds and not r["values"]]
        res["sign_loss"] = [r for r in rows if r["dataset"] == ds and r["values"]]
        if "quality" in args.parts:
            res["quality"] = {"params.yaml": pseudo_quality(ds, params, {}), "selected": pseudo_quality(ds, params, selected[ds])}
        results["datasets"][ds] = res
    results["seconds"] = time.perf_counter() - started
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(results, indent=1, default=float) + "\n")
    if set(args.parts) == {"before", "quality", "sign_loss"}:
        out.write_text(markdown(results) + "\n")
    print(f"wrote {out.with_suffix('.json')}" + (f" and {out}" if out.exists() else ""))


if __name__ == "__main__":
    main()
