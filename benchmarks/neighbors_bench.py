"""Benchmark of the neighbors stage's library functions at the paper's dataset sizes.

    python benchmarks/neighbors_bench.py [--sizes baby sports] [--device auto] [--out benchmarks/results/neighbors.json]

Generates clustered item features (image: 4096-d non-negative, like the Amazon CNN vectors;
text: 384-d) for Baby (7,050 items) and Sports (18,357 items), then times kNN (k = 10) for both
modalities with FAISS, the item groups (eq. 15) and the fused APFI candidate lists (eq. 16,
K = 60), and measures recall against exact float64 brute force on 256 sampled items. Target:
kNN for both modalities + APFI candidates for Baby in under 30 s on a 2-core CPU.
Results (wall and CPU seconds, recall, peak RSS, machine load) go to the output JSON. On a shared
machine the wall time is inflated by other processes; CPU seconds / cores estimates an idle run.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.device import resolve_device  # noqa: E402
from pipeline.neighbors import exact  # noqa: E402
from pipeline.neighbors.candidates import fused_candidates, normalized_modalities  # noqa: E402
from pipeline.neighbors.groups import tail_mask, training_degree  # noqa: E402
from pipeline.neighbors.knn import knn_lists  # noqa: E402
from pipeline.jsonio import write_json  # noqa: E402

SIZES = {"baby": 7050, "sports": 18357, "electronics": 63001}
TARGET_BABY_S = 30.0


def clustered_features(n: int, seed: int = 0, n_clusters: int = 50) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Image (4096-d, ReLU of centroid + noise) and text (384-d) vectors sharing item clusters,
    and Zipf-like training item ids (for the degrees)."""
    rng = np.random.default_rng(seed)
    cluster = rng.integers(0, n_clusters, n)
    out = {}
    for name, dim, noise in (("image", 4096, 1.0), ("text", 384, 0.7)):
        centroids = rng.standard_normal((n_clusters, dim), dtype=np.float32)
        x = centroids[cluster]
        x += noise * rng.standard_normal((n, dim), dtype=np.float32)
        out[name] = np.maximum(x, 0.0) if name == "image" else x
    train_items = (rng.zipf(1.3, 20 * n) - 1) % n
    return out, train_items


def bench(n: int, device: str, k: int = 10, n_candidates: int = 60, xi: float = 0.1, sample: int = 256) -> dict:
    vectors, train_items = clustered_features(n)
    result: dict = {"n_items": n, "dims": {m: int(v.shape[1]) for m, v in vectors.items()}, "seconds": {}, "cpu_seconds": {}}
    sec, cpu = result["seconds"], result["cpu_seconds"]  # wall clock; CPU time of all threads
    lists = {}
    for m in sorted(vectors):
        t0, c0 = time.perf_counter(), time.process_time()
        lists[m], info = knn_lists(vectors[m], k, device=device)
        sec[f"knn_{m}"], cpu[f"knn_{m}"] = round(time.perf_counter() - t0, 2), round(time.process_time() - c0, 2)
        result[f"knn_{m}_backend"] = info["backend"]
    t0, c0 = time.perf_counter(), time.process_time()
    tail = tail_mask(training_degree(train_items, n), xi)
    cands = fused_candidates(vectors, tail, n_candidates, device=device)
    sec["candidates"], cpu["candidates"] = round(time.perf_counter() - t0, 2), round(time.process_time() - c0, 2)
    sec["knn_and_candidates_total"] = round(sum(sec.values()), 2)
    cpu["knn_and_candidates_total"] = round(sum(cpu.values()), 2)

    t0 = time.perf_counter()
    normed, valid = normalized_modalities(vectors)
    rows = exact.sample_rows(np.flatnonzero(valid), sample, seed=0)
    recall = {}
    for m in sorted(vectors):
        ref = exact.exact_lists(exact.exact_scores({m: normed[m]}, rows), rows, valid, k)
        recall[f"knn_{m}"] = round(exact.recall(lists[m], rows, ref), 6)
    scores = exact.exact_scores(normed, rows)
    recall["tail_candidates"] = round(exact.recall(cands.tail, rows, exact.exact_lists(scores, rows, valid & tail, n_candidates)), 6)
    recall["popular_candidates"] = round(
        exact.recall(cands.popular, rows, exact.exact_lists(scores, rows, valid & ~tail, n_candidates, largest=False)), 6
    )
    sec["recall_check"] = round(time.perf_counter() - t0, 2)
    result["recall_vs_exact"] = recall
    result["recall_sample"] = len(rows)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["baby", "sports"], choices=sorted(SIZES))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default="benchmarks/results/neighbors.json")
    args = parser.parse_args()
    device = resolve_device(args.device)
    proc = psutil.Process()
    results = {
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
            "device": device,
        },
        "target": f"baby: knn (image + text) + candidates under {TARGET_BABY_S} s",
        "runs": {},
    }
    if device.startswith("cuda"):
        import torch

        results["machine"]["gpu"] = torch.cuda.get_device_name(0)
    for name in args.sizes:
        print(f"{name}: {SIZES[name]} items ...", flush=True)
        run = bench(SIZES[name], device)
        run["rss_after_mb"] = round(proc.memory_info().rss / 2**20)
        run["peak_rss_so_far_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)  # Linux: KiB
        results["runs"][name] = run
        print(f"  {run['seconds']}  recall {run['recall_vs_exact']}", flush=True)
    if "baby" in results["runs"]:
        total = results["runs"]["baby"]["seconds"]["knn_and_candidates_total"]
        results["baby_meets_target"] = total < TARGET_BABY_S
    results["machine"]["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    write_json(results, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
