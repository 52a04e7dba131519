"""The report of a GPU run (``benchmarks/gpu.sh``): the issue's targets against what was measured
and against the CPU figures, peak CUDA memory, the CUDA tests and the CPU-vs-GPU list check.

    python benchmarks/gpu_report.py --work benchmarks/work/gpu --kind nvidia-h200 [--out benchmarks/results]

Reads what gpu.sh left in ``--work`` (``phases.tsv``, ``nvidia-smi.txt``, ``tests.xml``,
``gpu_check.json``, ``results/<kind>.json`` of ``benchmarks/run.py``) and the CPU figures of
``benchmarks/results/cpu-2core.json`` (the data of ``cpu-2core.md``; the kNN search alone, which
that run did not time separately, from ``benchmarks/results/neighbors.json``); writes
``<out>/gpu-<kind>.json`` and ``.md``. Ratios: "of target" = measured / target (at most 1 = met),
"CPU / GPU" = the CPU figure / the GPU one (the speed-up).
"""

from __future__ import annotations

import argparse
import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.summary import render  # noqa: E402

#: issue 14's targets on the H200, at Baby size: (key, what, seconds)
TARGETS = (
    ("simgr_epoch", "SiMGR training epoch", 0.3),
    ("lightgcn_epoch", "LightGCN training epoch", 0.1),
    ("simgr_eval_pass", "evaluation pass (valid + test), SiMGR", 0.1),
    ("lightgcn_eval_pass", "evaluation pass (valid + test), LightGCN", 0.1),
    ("knn", "exact kNN, 7,050 x 4096 image vectors", 1.0),
    ("pipeline", "SiMGR from raw files to metrics", 300.0),
)
PIPELINE_STAGES = ("synth", "ingest", "features", "neighbors", "graph")


def _ok(steps: dict[str, dict], name: str) -> dict | None:
    step = steps.get(name)
    return step if step and step.get("status") == "ok" else None


def pipeline_seconds(steps: dict[str, dict], model: str = "simgr", skip: tuple[str, ...] = ()) -> float | None:
    """Raw files to metrics: the stages (synth included) + the complete train run + the evaluate
    stage, as benchmarks/summary.py adds them; None if a part did not run."""
    parts = [_ok(steps, s) for s in PIPELINE_STAGES if s not in skip] + [_ok(steps, f"fit:{model}")]
    if any(p is None for p in parts):
        return None
    return sum(p["seconds"]["total"] for p in parts)


def measures(steps: dict[str, dict]) -> dict[str, float | None]:
    """Each target's seconds in one run's steps (None where not measured)."""
    def sec(name: str, key: str) -> float | None:
        step = _ok(steps, name)
        return step["seconds"].get(key) if step else None

    return {
        "simgr_epoch": sec("train:simgr", "epoch"),
        "lightgcn_epoch": sec("train:lightgcn", "epoch"),
        "simgr_eval_pass": sec("train:simgr", "eval_pass"),
        "lightgcn_eval_pass": sec("train:lightgcn", "eval_pass"),
        "knn": sec("knn", "total"),
        "pipeline": pipeline_seconds(steps),
    }


def cpu_figures(results_dir: Path) -> tuple[dict[str, float | None], dict[str, str]]:
    """The CPU figures of each target (Baby size, ``cpu-2core``) and where each comes from."""
    cpu_file = results_dir / "cpu-2core.json"
    steps = json.loads(cpu_file.read_text())["runs"]["x1"]["steps"] if cpu_file.exists() else {}
    figures = measures(steps)
    source = {k: "cpu-2core.md" for k, v in figures.items() if v is not None}
    nb_file = results_dir / "neighbors.json"
    if figures["knn"] is None and nb_file.exists():
        baby = json.loads(nb_file.read_text())["runs"].get("baby", {})
        figures["knn"] = baby.get("seconds", {}).get("knn_image")
        if figures["knn"] is not None:
            source["knn"] = f"neighbors.json ({baby.get('knn_image_backend', 'faiss-cpu')}, 2 cores)"
    return figures, source


def target_rows(gpu: dict[str, float | None], cpu: dict[str, float | None], source: dict[str, str]) -> list[dict[str, Any]]:
    rows = []
    for key, what, limit in TARGETS:
        value, ref = gpu.get(key), cpu.get(key)
        rows.append({
            "target": key, "what": what, "limit_s": limit, "measured_s": value,
            "of_target": None if value is None else round(value / limit, 3),
            "met": None if value is None else value <= limit,
            "cpu_s": ref, "cpu_source": source.get(key),
            "cpu_over_gpu": None if value is None or ref is None or value <= 0 else round(ref / value, 1),
        })
    return rows


def read_tests(path: Path) -> dict[str, Any] | None:
    """Counts and failing test ids of pytest's JUnit XML report."""
    if not path.exists():
        return None
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    out: dict[str, Any] = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
    out["seconds"] = round(sum(float(s.get("time", 0)) for s in suites), 1)
    out["failed"] = [f"{c.get('classname')}::{c.get('name')}" for c in root.iter("testcase")
                     if c.find("failure") is not None or c.find("error") is not None]
    out["passed"] = out["tests"] - out["failures"] - out["errors"] - out["skipped"]
    return out


def read_phases(path: Path) -> list[dict[str, Any]]:
    rows = []
    for line in path.read_text().splitlines() if path.exists() else []:
        name, rc, seconds, limit = line.split("\t")
        rows.append({"phase": name, "rc": rc, "seconds": int(seconds), "limit_s": int(limit)})
    return rows


def build_report(work: Path, kind: str, results_dir: Path = ROOT / "benchmarks" / "results") -> dict[str, Any]:
    bench_file = work / "results" / f"{kind}.json"
    bench = json.loads(bench_file.read_text()) if bench_file.exists() else None
    run = (bench or {}).get("runs", {}).get("x1", {})
    steps = run.get("steps", {})
    cpu, source = cpu_figures(results_dir)
    gpu = measures(steps)
    cpu_steps = json.loads((results_dir / "cpu-2core.json").read_text())["runs"]["x1"]["steps"] \
        if (results_dir / "cpu-2core.json").exists() else {}
    feature_free = {"gpu": pipeline_seconds(steps, skip=("features",)), "cpu": pipeline_seconds(cpu_steps, skip=("features",))}
    fit = _ok(steps, "fit:simgr") or {}
    check_file = work / "gpu_check.json"
    return {
        "kind": kind,
        "nvidia_smi": (work / "nvidia-smi.txt").read_text().strip() if (work / "nvidia-smi.txt").exists() else None,
        "environment": run.get("environment"),
        "text_encoder": run.get("text_encoder"),
        "phases": read_phases(work / "phases.tsv"),
        "targets": target_rows(gpu, cpu, source),
        "pipeline_without_features_s": feature_free,
        "features_s": {"gpu": (_ok(steps, "features") or {}).get("seconds", {}).get("total"),
                       "cpu": (_ok(cpu_steps, "features") or {}).get("seconds", {}).get("total")},
        "simgr_run": {"epochs": fit.get("epochs"), "best_epoch": fit.get("best_epoch"),
                      "test_recall@20": ((fit.get("metrics") or {}).get("test") or {}).get("recall@20")} if fit else None,
        "peak_cuda_mb": {name: s.get("peak_cuda_mb") for name, s in steps.items() if s.get("peak_cuda_mb") is not None},
        "tests": read_tests(work / "tests.xml"),
        "gpu_check": json.loads(check_file.read_text()) if check_file.exists() else None,
        "benchmark": bench,
    }


def _f(x: float | None, digits: int = 2) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def render_report(rep: dict[str, Any]) -> str:
    env = rep.get("environment") or {}
    encoder = "the hashed stand-in" if rep.get("text_encoder") == "hashed" else "the sentence model"
    lines = [f"# GPU run: {rep['kind']}", "",
             f"Written by `benchmarks/gpu.sh` (issue 14). nvidia-smi: {rep.get('nvidia_smi') or '—'}; torch "
             f"{env.get('torch', '—')}, python {env.get('python', '—')}, {env.get('cpu_count', '—')} CPUs, "
             f"faiss {env.get('faiss') or 'not installed'} (kNN: the exact torch search where faiss has no GPU support), "
             f"{env.get('date', '')}. Synthetic data of Baby's shape (19,445 users, 7,050 items, 160,792 ratings, "
             "4096-d images); text features from "
             + ("the hashed 384-d stand-in encoder (the sentence model's weights are not on that machine)."
                if rep.get("text_encoder") == "hashed" else "the sentence model of params.yaml."), "",
             "## Targets", "",
             "| target | GPU (s) | target (s) | of target | met | CPU (s) | CPU / GPU | CPU figure from |",
             "|---|---:|---:|---:|---|---:|---:|---|"]
    for r in rep["targets"]:
        met = "—" if r["met"] is None else ("yes" if r["met"] else "no")
        lines.append(f"| {r['what']} | {_f(r['measured_s'], 3)} | {r['limit_s']:g} | {_f(r['of_target'])} | {met} "
                     f"| {_f(r['cpu_s'])} | {_f(r['cpu_over_gpu'], 1)}{'x' if r['cpu_over_gpu'] is not None else ''} "
                     f"| {r['cpu_source'] or '—'} |")
    nf, feats = rep["pipeline_without_features_s"], rep["features_s"]
    lines += ["", "Epoch = the fastest timed epoch (the trainer's batch loop); evaluation pass = final embeddings + "
              "full ranking for valid + test; kNN = the neighbors stage's search of the image vectors alone (CUDA "
              "context started before the clock, fastest of three); raw files to metrics = the stages (synth "
              "included) + the train stage's complete run (early stopping) + the evaluate stage. The CPU pipeline "
              f"figure includes the sentence model's text features ({_f(feats['cpu'], 1)} s; the GPU run's, with "
              f"{encoder}: {_f(feats['gpu'], 1)} s); without the features stage: CPU {_f(nf['cpu'], 1)} s, GPU "
              f"{_f(nf['gpu'], 1)} s."]
    run = rep.get("simgr_run")
    if run:
        lines += ["", f"SiMGR's complete run: {run['epochs']} epochs (best {run['best_epoch']}), test Recall@20 "
                  f"{_f(run['test_recall@20'], 4)}."]
    lines += ["", "## Peak CUDA memory (torch.cuda.max_memory_allocated, per step process)", "",
              "| step | MB |", "|---|---:|"]
    lines += [f"| {k} | {v:.0f} |" for k, v in rep["peak_cuda_mb"].items()] or ["| — | — |"]
    if rep["peak_cuda_mb"]:
        top = max(rep["peak_cuda_mb"], key=rep["peak_cuda_mb"].get)
        lines += ["", f"Largest: {rep['peak_cuda_mb'][top]:.0f} MB ({top})."]
    t = rep.get("tests")
    lines += ["", "## CUDA tests (pytest -k cuda over the device-parametrised tests)", ""]
    if t:
        lines.append(f"{t['passed']} passed, {t['failures'] + t['errors']} failed, {t['skipped']} skipped in {t['seconds']} s.")
        lines += [f"- failed: `{name}`" for name in t["failed"]]
    else:
        lines.append("Not run (no report).")
    lines += ["", "## CPU vs GPU lists at Baby size (benchmarks/gpu_check.sh)", ""]
    check = rep.get("gpu_check")
    if check:
        lines.append(f"kNN backend: CPU {check.get('knn_backend_cpu')}, GPU {check.get('knn_backend_gpu')}.")
        lines += ["", "| data | list | identical | differences only ties | max score diff | CPU (s) | GPU (s) |",
                  "|---|---|---|---|---:|---:|---:|"]
        for name, entry in check.get("datasets", {}).items():
            for key, c in entry.get("compare", {}).items():
                lines.append(f"| {name} | {key} | {c['lists_identical']} | {'yes' if c['differences_are_ties'] else 'NO'} "
                             f"| {c['max_score_diff']:.1e} | {_f(entry['seconds_cpu'].get(key), 3)} "
                             f"| {_f(entry.get('seconds_gpu', {}).get(key), 3)} |")
    else:
        lines.append("Not run (no report).")
    lines += ["", "## Phases of gpu.sh", "", "| phase | exit status | seconds | limit (s) |", "|---|---|---:|---:|"]
    lines += [f"| {p['phase']} | {p['rc']} | {p['seconds']} | {p['limit_s']} |" for p in rep["phases"]]
    if rep.get("benchmark"):
        body = render(rep["benchmark"]).split("\n", 1)[1]  # without its title
        lines += ["", "## The benchmark's own tables (benchmarks/run.py)", "", *("#" + x if x.startswith("#") else x for x in body.splitlines())]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--kind", required=True, help="the GPU's name as a slug, e.g. nvidia-h200")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args(argv)
    rep = build_report(args.work, args.kind)
    args.out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = args.out / f"gpu-{args.kind}.json", args.out / f"gpu-{args.kind}.md"
    json_path.write_text(json.dumps(rep, indent=2, default=float) + "\n")
    md_path.write_text(render_report(rep))
    print(f"wrote {json_path} and {md_path}")
    for r in rep["targets"]:
        print(f"  {r['what']}: {_f(r['measured_s'], 3)} s (target {r['limit_s']:g} s, CPU {_f(r['cpu_s'])} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
