"""Seconds per training epoch on a small shipped dataset (the issue's MovieLens targets).

    python benchmarks/small_data.py [--dataset movielens] [--models lightgcn,simgr,...] [--threads 1,2]
                                    [--epochs 10] [--repeats 3] [--profile]

One epoch here is what a run pays per epoch when it validates every epoch: the training batches
plus one full-ranking validation pass. Each measurement is a seeded run of the trainer (`fit`,
no files written) at the model's *selected* hyper-parameters (``tuning/<ds>/<model>/selected.json``
when present, else params.yaml), with validation forced to every epoch and a budget of
``--epochs`` validations; its seconds per epoch are train seconds / epochs. The fastest of
``--repeats`` runs is reported (timings on a shared VM drift by +-20%). Reads the committed
pipeline outputs of the dataset (ingest, features, kNN lists, graph), so run ``dvc repro`` (or
``dvc checkout``) first. Writes ``benchmarks/results/small-data-<machine>.{json,md}``; with
``--profile``, one more run per model and thread count under cProfile, its 30 costliest functions
in ``benchmarks/results/profiles/small-<dataset>-<model>-<threads>t.txt``.

Targets (issue "A benchmark that can tell the models apart", item 7): MovieLens, LightGCN
<= 0.25 s and SiMGR <= 0.6 s per epoch on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGETS = {("movielens", "lightgcn"): 0.25, ("movielens", "simgr"): 0.6}


def measure(dataset: str, model: str, threads: int, epochs: int) -> dict:
    import torch

    from pipeline.run.setup import final_run, load_data, train
    from pipeline.settings import load_params

    params = load_params()
    spec = final_run(params, dataset, model)  # the model's values as the benchmark runs it (its study's selection)
    settings = spec.settings.model_copy(update=dict(valid_every_steps=1, max_validations=epochs, patience=epochs + 1, threads=threads))
    spec = replace(spec, settings=settings)
    data = load_data(spec)
    started = time.perf_counter()
    result = train(spec, data, 1)
    wall = time.perf_counter() - started
    h = result.history
    values = {k: v for k, v in spec.sources.items() if v == "selected on validation"}
    return {"dataset": dataset, "model": model, "threads": threads, "epochs": h["epochs"], "values": values,
            "batch_size": settings.batch_size, "steps_per_epoch": -(-len(data.train) // settings.batch_size),
            "seconds_per_epoch": result.timing["train_seconds"] / h["epochs"], "wall_seconds": wall,
            "torch_threads": torch.get_num_threads()}


def profile(dataset: str, model: str, threads: int, epochs: int) -> None:
    import cProfile
    import io
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    measure(dataset, model, threads, epochs)
    prof.disable()
    text = io.StringIO()
    pstats.Stats(prof, stream=text).sort_stats("tottime").print_stats(30)
    out = ROOT / "benchmarks" / "results" / "profiles" / f"small-{dataset}-{model}-{threads}t.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text.getvalue().replace(str(ROOT) + "/", ""))
    print(f"wrote {out}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default="movielens")
    ap.add_argument("--models", default="mf,lightgcn,siren,freedom,lgmrec,base,simgr")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--machine", default=f"cpu-{os.cpu_count()}core")
    ap.add_argument("--profile", action="store_true", help="cProfile one more run per model and thread count")
    args = ap.parse_args()
    os.chdir(ROOT)
    os.environ.setdefault("SIMGR_PROGRESS", "0")
    import logging

    logging.getLogger("simgr").setLevel(logging.WARNING)
    rows = []
    for model in args.models.split(","):
        for threads in (int(t) for t in args.threads.split(",")):
            runs = [measure(args.dataset, model, threads, args.epochs) for _ in range(args.repeats)]
            best = min(runs, key=lambda r: r["seconds_per_epoch"])
            best["all_seconds_per_epoch"] = [round(r["seconds_per_epoch"], 4) for r in runs]
            rows.append(best)
            print(f"{args.dataset} {model} threads {threads}: {best['seconds_per_epoch']:.3f} s/epoch "
                  f"(runs {best['all_seconds_per_epoch']})", flush=True)
            if args.profile:
                profile(args.dataset, model, threads, args.epochs)
    import torch

    meta = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "platform": platform.platform(),
            "cpus": os.cpu_count(), "torch": torch.__version__, "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(unset)"),
            "load_average_end": list(os.getloadavg()), "argv": sys.argv[1:]}
    out = ROOT / "benchmarks" / "results" / f"small-data-{args.machine}"
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    lines = [f"# Seconds per epoch on {args.dataset} ({args.machine})", "",
             f"`python benchmarks/small_data.py {' '.join(sys.argv[1:])}`; {meta['date']}; {meta['platform']}; torch "
             f"{meta['torch']}; OMP_WAIT_POLICY {meta['omp_wait_policy']}; load average at the end {meta['load_average_end']}.",
             "", "One epoch = the training batches + one full-ranking validation pass, at the model's selected "
             "hyper-parameters; fastest of the repeats.", "",
             "| model | threads | batch | steps / epoch | s / epoch | repeats (s) | target | met |", "|---|---:|---:|---:|---:|---|---:|---|"]
    for r in rows:
        target = TARGETS.get((r["dataset"], r["model"]))
        met = "" if target is None else ("yes" if r["seconds_per_epoch"] <= target else "no")
        lines.append(f"| {r['model']} | {r['threads']} | {r['batch_size']} | {r['steps_per_epoch']} | {r['seconds_per_epoch']:.3f} | "
                     f"{', '.join(map(str, r['all_seconds_per_epoch']))} | {target or ''} | {met} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out}.json and .md")


if __name__ == "__main__":
    main()
