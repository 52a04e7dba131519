#!/usr/bin/env bash
# GPU vs CPU check of the neighbors stage's search (kNN per modality + fused APFI candidates).
#
#   benchmarks/gpu_check.sh [dataset]      # run from the repository root
#
# Runs the library functions on CPU and, when a CUDA GPU is visible to torch, on the GPU, for
# generated Baby-size features (7,050 items, 4096-d image + 384-d text) and, if a dataset name is
# given, for data/<dataset>/features/vectors/*.npy. Reports, per list: the share of lists whose
# neighbour ids are identical, whether every difference is a tie (|score gap| <= 1e-5 at the
# place the lists differ), the max |score| difference, and the seconds on each device.
# kNN on the GPU uses faiss-gpu when the faiss build has GPU support (pip install '.[gpu]'), else
# the exact torch search on the GPU (torch-cuda); on the CPU faiss-cpu, or torch-cpu where faiss is
# not installed (pipeline/neighbors/knn.py: knn_backend). The candidates run in torch on either.
# Without a GPU it runs the CPU path once on 500 generated items and prints "no GPU".
# Results: benchmarks/results/gpu_check.json, or $GPU_CHECK_OUT. Python: $PYTHON, else .venv's, else python3.
set -euo pipefail
PY="${PYTHON:-.venv/bin/python3}"
[ -x "$PY" ] || PY=python3
"$PY" -c "import torch" 2>/dev/null || { echo "gpu_check.sh: $PY cannot import torch; set PYTHON to the project's python" >&2; exit 2; }
exec "$PY" - "$@" <<'EOF'
import json, os, sys, time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, ".")
from benchmarks.neighbors_bench import clustered_features
from pipeline.neighbors.candidates import fused_candidates
from pipeline.neighbors.groups import tail_mask, training_degree
from pipeline.neighbors.knn import knn_backend, knn_lists
from pipeline.params import write_json

TIE = 1e-5


def run(vectors, train_items, device):
    out, sec = {}, {}
    for m in sorted(vectors):
        t0 = time.perf_counter()
        out[f"knn_{m}"] = knn_lists(vectors[m], 10, device=device)[0]
        sec[f"knn_{m}"] = round(time.perf_counter() - t0, 3)
    tail = tail_mask(training_degree(train_items, len(next(iter(vectors.values())))), 0.1)
    t0 = time.perf_counter()
    c = fused_candidates(vectors, tail, 60, device=device)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    sec["candidates"] = round(time.perf_counter() - t0, 3)
    out["tail_candidates"], out["popular_candidates"] = c.tail, c.popular
    return out, sec


def compare(a, b, n):
    pa, pb = a.per_item(n), b.per_item(n)
    sa = {(int(i), int(j)): float(s) for i, j, s in zip(a.item, a.neighbor, a.score)}
    sb = {(int(i), int(j)): float(s) for i, j, s in zip(b.item, b.neighbor, b.score)}
    same = sum(np.array_equal(x, y) for x, y in zip(pa, pb))
    only_ties = True
    for q, (x, y) in enumerate(zip(pa, pb)):
        if len(x) != len(y):
            only_ties = False
            continue
        for r in np.flatnonzero(x != y):
            if abs(sa[(q, int(x[r]))] - sb[(q, int(y[r]))]) > TIE:
                only_ties = False
    common = sa.keys() & sb.keys()
    max_diff = max((abs(sa[p] - sb[p]) for p in common), default=0.0)
    return {"lists_identical": f"{same}/{n}", "differences_are_ties": only_ties, "max_score_diff": max_diff}


has_gpu = torch.cuda.is_available()
n_generated = 7050 if has_gpu else 500  # without a GPU: a small CPU-only smoke run
datasets = {f"generated_{n_generated}": clustered_features(n_generated)}
if len(sys.argv) > 1:
    import polars as pl
    from pipeline.schemas import read_table
    ds = sys.argv[1]
    vecs = {p.stem: np.load(p).astype(np.float32) for p in sorted(Path(f"data/{ds}/features/vectors").glob("*.npy"))}
    inter = read_table(f"data/{ds}/ingest/interactions.parquet", "interactions").filter(pl.col("split") == "train")
    datasets[ds] = (vecs, inter["item"].to_numpy())

report = {"gpu": torch.cuda.get_device_name(0) if has_gpu else None, "knn_backend_cpu": knn_backend("cpu"),
          "knn_backend_gpu": knn_backend("cuda") if has_gpu else None, "datasets": {}}
for name, (vectors, train_items) in datasets.items():
    n = len(next(iter(vectors.values())))
    cpu, cpu_sec = run(vectors, train_items, "cpu")
    entry = {"n_items": n, "seconds_cpu": cpu_sec}
    if has_gpu:
        torch.zeros(1, device="cuda")  # start the CUDA context before the clock
        gpu, gpu_sec = run(vectors, train_items, "cuda")
        entry["seconds_gpu"] = gpu_sec
        entry["compare"] = {key: compare(cpu[key], gpu[key], n) for key in cpu}
    report["datasets"][name] = entry
    print(name, json.dumps(entry, indent=1))
if not has_gpu:
    print("no GPU: ran the CPU path only; nothing to compare")
write_json(report, os.environ.get("GPU_CHECK_OUT", "benchmarks/results/gpu_check.json"))
ok = all(c["differences_are_ties"] for e in report["datasets"].values() for c in e.get("compare", {}).values())
print("OK" if ok else "MISMATCH beyond ties")
sys.exit(0 if ok else 1)
EOF
