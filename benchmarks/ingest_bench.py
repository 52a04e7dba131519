"""Ingest throughput: generate a ratings CSV (Amazon 2014 ``ratings_<Cat>.csv`` shape), ingest it,
and write rows/s and peak memory to ``benchmarks/results/ingest.json``.

    .venv/bin/python benchmarks/ingest_bench.py                 # 10 million rows
    .venv/bin/python benchmarks/ingest_bench.py --rows 1000000

The generated file and the ingest outputs go to ``benchmarks/work/`` (git-ignored). Users and items
are drawn with long-tailed (Zipf-like) popularity, so k-core and de-duplication have work to do.
Peak memory is the process's maximum resident set size (``ru_maxrss``), which includes generation;
generation runs in a child process so it does not inflate the ingest figure.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / "work"
RESULTS = ROOT / "benchmarks" / "results" / "ingest.json"


def generate(path: Path, rows: int, seed: int = 0) -> None:
    """A headerless ``user,item,rating,unix time`` CSV with ``rows`` lines (repeated pairs included)."""
    rng = np.random.default_rng(seed)
    n_users, n_items = max(rows // 10, 10), max(rows // 40, 10)
    chunk = 2_000_000
    with path.open("wb") as fh:
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            users = (rng.pareto(1.2, n) * n_users / 20).astype(np.int64) % n_users
            items = (rng.pareto(1.0, n) * n_items / 50).astype(np.int64) % n_items
            frame = pl.DataFrame(
                {
                    "user": pl.Series(users).cast(pl.String).str.pad_start(9, "0").str.replace(r"^", "A"),
                    "item": pl.Series(items).cast(pl.String).str.pad_start(10, "0"),
                    "rating": rng.integers(1, 6, n).astype(np.float64),
                    "time": rng.integers(946_684_800, 1_530_000_000, n),
                }
            )
            frame.write_csv(fh, include_header=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--kcore", type=int, default=5)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    csv = WORK / f"ratings_{args.rows}.csv"
    if not args.child:
        if not csv.exists():
            t0 = time.perf_counter()
            generate(csv, args.rows)
            print(f"generated {csv} ({csv.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        # ingest in a fresh process so its peak RSS is the ingest's alone
        subprocess.run([sys.executable, __file__, "--rows", str(args.rows), "--kcore", str(args.kcore), "--child"], check=True)
        return

    sys.path.insert(0, str(ROOT))
    from pipeline.ingest.dataset import IngestConfig, ingest

    t0 = time.perf_counter()
    stats = ingest({"format": "amazon2014", "reviews": str(csv)}, IngestConfig(kcore=args.kcore), WORK / "out")
    seconds = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    result = {
        "rows": args.rows,
        "file_mb": round(csv.stat().st_size / 1e6, 1),
        "seconds": round(seconds, 2),
        "rows_per_second": round(args.rows / seconds),
        "peak_rss_mb": round(peak_mb),
        "kcore": args.kcore,
        "kept": {k: stats[k] for k in ("n_users", "n_items", "n_interactions")},
        "dropped": stats["dropped"],
        "kcore_rounds": len(stats["kcore"]["rounds"]),
        "machine": {"python": platform.python_version(), "polars": pl.__version__, "cpus": __import__("os").cpu_count()},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
