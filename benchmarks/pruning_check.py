"""Pruned studies against the unpruned ones (issue 18, item 2): same selection, or how far off.

For each study of a dataset present both in the working tree (``tuning/<ds>/<model>/``, written with
``tune.pruning.enabled: true``) and at a git revision whose studies ran unpruned (``--base``), it
reads the two ``trials.csv`` and ``selected.json`` and reports:

* the selected values of each, and whether they agree;
* the unpruned study's best validation Recall@20, the validation score the unpruned study gave the
  pruned study's selection (same grid point; the trials are seeded runs of the same grid), and the
  gap between them in units of the seed standard deviation of the model's final runs (validation
  Recall@20 over the seeds of ``metrics/<ds>/<model>-<seed>.json`` at the base revision);
* the training epochs each study spent (the sum of ``epochs`` over its trials; a pruned trial counts
  the epochs it ran before it was stopped, ``validations x`` its validation interval) and the share
  the pruning saved.

Only the grid search phase is compared (the sweeps are never pruned). Reading only: it trains
nothing. Writes ``--out`` (markdown) and the same numbers as JSON next to it.

    python benchmarks/pruning_check.py --dataset magazine --base 1126860 --out benchmarks/results/pruning-magazine.md

Studies that were only ever committed pruned (MovieLens' two-modality ones) have no unpruned revision:
run them again with ``tune.pruning.enabled: false`` (``python -m stages.tune <ds> <model>`` in a scratch
clone), copy their ``tuning/<ds>/<model>/`` folders under one directory and pass it as ``--base-dir``
(the seed standard deviations then come from this tree's ``metrics/``); ``--models`` limits the
comparison to the studies re-run.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
METRIC = "valid_recall@20"


def _git(rev: str, path: str) -> str | None:
    done = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=ROOT, capture_output=True, text=True)
    return done.stdout if done.returncode == 0 else None


def _trials(text: str) -> pl.DataFrame:
    return pl.read_csv(io.StringIO(text), infer_schema_length=None)


def _keys(selected: dict[str, Any]) -> list[str]:
    return list(selected["space"])


def _point(row: dict[str, Any], keys: list[str]) -> tuple:
    return tuple(float(row[k]) for k in keys)


def _epochs(trials: pl.DataFrame, every: float) -> float:
    """Epochs a study trained: a finished trial's ``epochs``; a pruned one stopped after ``validations``."""
    total = 0.0
    for row in trials.iter_rows(named=True):
        if row["state"] == "pruned":
            total += float(row["validations"] or 0) * every
        elif row["epochs"] is not None:
            total += float(row["epochs"])
    return total


def _every(trials: pl.DataFrame) -> float:
    """Epochs between two validations, read off the finished trials (epochs / validations)."""
    done = trials.filter(pl.col("state") == "complete").filter(pl.col("validations") > 0)
    if done.is_empty():
        return 0.0
    return statistics.median(float(e) / float(v) for e, v in zip(done["epochs"], done["validations"]))


class Base:
    """Where the unpruned studies are: a git revision, or a directory of ``<model>/{trials.csv, selected.json}``."""

    def __init__(self, rev: str | None, directory: Path | None):
        self.rev, self.directory = rev, directory

    @property
    def label(self) -> str:
        return f"committed at `{self.rev}`" if self.rev else f"re-run unpruned into `{self.directory}` (this tree's code)"

    def study_file(self, dataset: str, model: str, name: str) -> str | None:
        if self.rev:
            return _git(self.rev, f"tuning/{dataset}/{model}/{name}")
        path = self.directory / model / name
        return path.read_text() if path.exists() else None

    def metrics_file(self, dataset: str, model: str, seed: int) -> str | None:
        if self.rev:
            return _git(self.rev, f"metrics/{dataset}/{model}-{seed}.json")
        path = ROOT / "metrics" / dataset / f"{model}-{seed}.json"
        return path.read_text() if path.exists() else None


def _seed_std(dataset: str, model: str, base: Base) -> float | None:
    scores = []
    for seed in range(1, 11):
        text = base.metrics_file(dataset, model, seed)
        if text is not None:
            scores.append(json.loads(text)["valid"]["recall@20"])
    return statistics.stdev(scores) if len(scores) >= 2 else None


def compare(dataset: str, model: str, base: Base) -> dict[str, Any] | None:
    here = ROOT / "tuning" / dataset / model
    old_csv, old_sel = base.study_file(dataset, model, "trials.csv"), base.study_file(dataset, model, "selected.json")
    if not (here / "trials.csv").exists() or old_csv is None or old_sel is None:
        return None
    new_sel, old_sel_d = json.loads((here / "selected.json").read_text()), json.loads(old_sel)
    if new_sel["space"] != old_sel_d["space"]:
        return {"model": model, "comparable": False, "why": "the grid changed"}
    keys = _keys(new_sel)
    new, old = (t.filter(pl.col("phase") == "search") for t in (_trials((here / "trials.csv").read_text()), _trials(old_csv)))
    old_scores = {_point(r, keys): r[METRIC] for r in old.iter_rows(named=True)}
    chosen = tuple(float(new_sel["values"][k]) for k in keys)
    best_old = max(v for v in old_scores.values() if v is not None)
    at_chosen = old_scores.get(chosen)
    std = _seed_std(dataset, model, base)
    every = _every(old) or _every(new)
    e_new, e_old = _epochs(new, every), _epochs(old, every)
    return {
        "model": model, "comparable": True, "trials": new.height,
        "pruned": int((new["state"] == "pruned").sum()),
        "selected_unpruned": {k: old_sel_d["values"][k] for k in keys},
        "selected_pruned": {k: new_sel["values"][k] for k in keys},
        "same_selection": tuple(float(old_sel_d["values"][k]) for k in keys) == chosen,
        "best_valid_unpruned": best_old, "unpruned_valid_at_pruned_selection": at_chosen,
        "seed_std": std,
        "gap_in_std": None if (at_chosen is None or not std) else (best_old - at_chosen) / std,
        "epochs_unpruned": e_old, "epochs_pruned": e_new,
        "saved": None if not e_old else 1.0 - e_new / e_old,
    }


def markdown(dataset: str, base: Base, rows: list[dict[str, Any]]) -> str:
    out = [f"# Pruned studies against unpruned ones: {dataset}", "",
           f"Unpruned: the studies {base.label} (grid search phase, seed 1); pruned: this tree's "
           "(`tune.pruning`: median rule at the same validation, warm-up 5 validations, 4 startup trials). "
           "Gap: unpruned best validation R@20 minus the unpruned study's score at the pruned selection, "
           f"in seed standard deviations of the model's final runs (validation R@20, 5 seeds, {'base revision' if base.rev else 'this tree'}). "
           "Epochs: training epochs the grid search spent (a pruned trial: up to where it was stopped).", "",
           "| model | trials (pruned) | unpruned selection | pruned selection | same | gap (std) | epochs unpruned | epochs pruned | saved |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if not r["comparable"]:
            out.append(f"| {r['model']} | - | - | - | - | - | - | - | {r['why']} |")
            continue
        fmt = lambda d: ", ".join(f"{k.split('.')[-1]} {v:g}" for k, v in d.items())  # noqa: E731
        gap = "-" if r["gap_in_std"] is None else f"{r['gap_in_std']:.2f}"
        saved = "-" if r["saved"] is None else f"{100 * r['saved']:.0f}%"
        out.append(f"| {r['model']} | {r['trials']} ({r['pruned']}) | {fmt(r['selected_unpruned'])} | {fmt(r['selected_pruned'])} | "
                   f"{'yes' if r['same_selection'] else 'no'} | {gap} | {r['epochs_unpruned']:.0f} | {r['epochs_pruned']:.0f} | {saved} |")
    done = [r for r in rows if r["comparable"] and r["epochs_unpruned"]]
    if done:
        e_old, e_new = sum(r["epochs_unpruned"] for r in done), sum(r["epochs_pruned"] for r in done)
        out += ["", f"All compared studies: {e_new:.0f} epochs pruned against {e_old:.0f} unpruned ({100 * (1 - e_new / e_old):.0f}% saved)."]
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", required=True)
    where = ap.add_mutually_exclusive_group(required=True)
    where.add_argument("--base", help="git revision whose committed studies ran unpruned")
    where.add_argument("--base-dir", type=Path, help="directory of unpruned studies: <model>/{trials.csv, selected.json}")
    ap.add_argument("--models", default=None, help="comma-separated models to compare (default: every study of the dataset)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    if args.base_dir is not None and not args.base_dir.is_dir():
        sys.exit(f"pruning_check: --base-dir {args.base_dir}: not a directory")
    base = Base(args.base, args.base_dir)
    models = sorted(p.name for p in (ROOT / "tuning" / args.dataset).iterdir() if p.is_dir())
    if args.models:
        wanted = [m.strip() for m in args.models.split(",") if m.strip()]
        unknown = sorted(set(wanted) - set(models))
        if unknown:
            sys.exit(f"pruning_check: --models: no study of {args.dataset} for {', '.join(unknown)} (have: {', '.join(models)})")
        models = wanted
    rows = [r for m in models if (r := compare(args.dataset, m, base)) is not None]
    if not rows:
        sys.exit(f"pruning_check: no study of {args.dataset} both here and in the base ({base.label})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(markdown(args.dataset, base, rows))
    record = {"dataset": args.dataset, "base": args.base or str(args.base_dir), "studies": rows}
    args.out.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    print(args.out.read_text())


if __name__ == "__main__":
    main()
