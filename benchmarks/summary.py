"""The markdown summary of benchmark results: timings, ratios to the MMRec reference, targets.

Reference figures (issue 7): MMRec on the project's 2-core CPU machine, Amazon Baby.
Ratios "vs MMRec" are reference / measured (above 1 = faster than MMRec); ratios "of target" are
measured / target (at most 1 = target met).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: MMRec on the 2-core reference machine, Baby: seconds per training epoch and per evaluation pass (valid + test)
REFERENCE = {"lightgcn": {"epoch": 2.9, "eval_pass": 2.5}, "freedom": {"epoch": 14.0, "eval_pass": 2.3}}
#: issue 7 targets at Baby size: (model or "*", measure, seconds, where)
TARGETS = (
    ("lightgcn", "epoch", 1.0, "2-core CPU"),
    ("simgr", "epoch", 3.0, "2-core CPU"),
    ("*", "eval_pass", 1.0, "2-core CPU"),
    ("simgr", "epoch", 0.5, "H100 GPU"),
)


def _f(x: Any, digits: int = 2) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def _stage_rows(steps: dict[str, dict]) -> list[str]:
    rows = ["| step | status | seconds | peak RSS (MB) | RSS after imports (MB) | load avg (before, after) |",
            "|---|---|---:|---:|---:|---|"]
    for name, s in steps.items():
        if name.startswith(("train:", "fit:")):
            continue
        status = "ok" if s["status"] == "ok" else f"failed: {s.get('error', '')[:120]}"
        rows.append(f"| {name} | {status} | {_f(s.get('seconds', {}).get('total'))} | {_f(s.get('peak_rss_mb'), 0)} "
                    f"| {_f(s.get('baseline_rss_mb'), 0)} | {s.get('loadavg_1min', '')} |")
    return rows


def _eval_rank(sec: dict[str, Any]) -> float | None:
    """Seconds of the valid + test ranking; results written before the shared ranking timed valid and test apart."""
    if sec.get("eval_rank") is not None:
        return sec["eval_rank"]
    parts = [sec.get("eval_valid"), sec.get("eval_test")]
    return None if None in parts else sum(parts)


def _model_rows(steps: dict[str, dict], baby: bool) -> list[str]:
    rows = ["| model | status | epoch (s) | epochs timed (s) | of which sampling (s) | eval pass (s): embeddings + ranking (valid + test) "
            "| peak RSS (MB) | peak CUDA (MB) | epoch vs MMRec | eval vs MMRec |",
            "|---|---|---:|---|---:|---|---:|---:|---:|---:|"]
    for name, s in steps.items():
        if not name.startswith("train:"):
            continue
        model = name.split(":", 1)[1]
        if s["status"] != "ok":
            rows.append(f"| {model} | failed: {s.get('error', '')[:160]} | | | | | | | | |")
            continue
        sec = s["seconds"]
        ref = REFERENCE.get(model, {}) if baby else {}  # the reference figures are for Baby size
        vs_epoch = f"{ref['epoch'] / sec['epoch']:.2f}x" if "epoch" in ref else "—"
        vs_eval = f"{ref['eval_pass'] / sec['eval_pass']:.2f}x" if "eval_pass" in ref else "—"
        rows.append(
            f"| {model} | ok | {_f(sec['epoch'])} | {', '.join(_f(x) for x in sec['epochs'])} | {_f(sec.get('sampling_per_epoch'))} "
            f"| {_f(sec['eval_pass'])} = {_f(sec.get('eval_embeddings'))} + {_f(_eval_rank(sec))} "
            f"| {_f(s.get('peak_rss_mb'), 0)} | {_f(s.get('peak_cuda_mb'), 0)} | {vs_epoch} | {vs_eval} |"
        )
    return rows


def _target_rows(steps: dict[str, dict], gpu: bool) -> list[str]:
    rows = ["| target | where | measured (s) | of target | met |", "|---|---|---:|---:|---|"]
    for model, measure, limit, where in TARGETS:
        if ("GPU" in where) != gpu:
            continue
        names = [n.split(":", 1)[1] for n in steps if n.startswith("train:")] if model == "*" else [model]
        for m in names:
            s = steps.get(f"train:{m}")
            if not s or s["status"] != "ok":
                rows.append(f"| {m} {measure} <= {limit} s | {where} | not measured | | |")
                continue
            value = s["seconds"][measure]
            rows.append(f"| {m} {measure} <= {limit} s | {where} | {_f(value)} | {value / limit:.2f} | {'yes' if value <= limit else 'no'} |")
    return rows


def _growth_rows(runs: dict[str, dict]) -> list[str]:
    scales = sorted(runs, key=lambda k: runs[k]["scale"])
    head = "| step | " + " | ".join(f"{k} s | {k} peak RSS MB" for k in scales) + " |"
    rows = [head, "|---|" + "---:|---:|" * len(scales)]
    names: list[str] = []
    for k in scales:
        names += [n for n in runs[k]["steps"] if n not in names]
    for name in names:
        cells = []
        for k in scales:
            s = runs[k]["steps"].get(name)
            if not s or s["status"] != "ok":
                cells += ["—", "—"]
                continue
            sec = s["seconds"]
            value = sec.get("epoch") if name.startswith("train:") else sec.get("total")
            cells += [_f(value), _f(s.get("peak_rss_mb"), 0)]
        label = f"{name} (epoch)" if name.startswith("train:") else name
        rows.append(f"| {label} | " + " | ".join(cells) + " |")
    evals = [n for n in names if n.startswith("train:")]
    for name in evals:
        cells = []
        for k in scales:
            s = runs[k]["steps"].get(name)
            cells += ([_f(s["seconds"]["eval_pass"]), ""] if s and s["status"] == "ok" else ["—", ""])
        rows.append(f"| {name.split(':', 1)[1]} eval pass | " + " | ".join(cells) + " |")
    return rows


def render(results: dict[str, Any]) -> str:
    lines = [f"# Benchmark results: {results['machine']}", "",
             "Generated by `python benchmarks/run.py`; synthetic Amazon-2014-format data (`pipeline.ingest.synth`) at "
             "multiples of Baby (19,445 users, 7,050 items, 160,792 ratings, 4096-d images). "
             "Ratios vs MMRec are reference / measured (above 1 = faster; reference: MMRec on the 2-core "
             "machine, LightGCN 2.9 s/epoch and 2.5 s/eval pass, FREEDOM 14 s/epoch and 2.3 s/eval pass). "
             "'of target' is measured / target (at most 1 = met). Epoch = fastest of the timed epochs "
             "(the trainer's batch loop without its per-epoch validation); eval pass = final embeddings + full "
             "ranking for valid + test (one call, as the evaluate stage: one ranking shared by both splits under "
             "the mmrec protocol).", ""]
    runs = results["runs"]
    for key in sorted(runs, key=lambda k: runs[k]["scale"]):
        run = runs[key]
        env = run["environment"]
        gpu = bool(env.get("cuda")) and env.get("device_requested") != "cpu"
        sizes = run["sizes"]
        lines += [
            f"## {key}: {sizes['n_users']:,} users, {sizes['n_items']:,} items, {sizes['n_interactions']:,} ratings",
            "",
            f"{env['date']}; {env['platform']}; {env['cpu_count']} CPUs ({env.get('memory_gb', '?')} GB), torch "
            f"{env['torch']} ({run.get('threads', env['torch_threads'])} threads per step, OMP_WAIT_POLICY {env.get('omp_wait_policy', 'not recorded')}), faiss {env.get('faiss')}, device "
            f"{env.get('cuda') or 'cpu'}. Load average (1, 5, 15 min) at start {run['loadavg_start']}, at end "
            f"{run['loadavg_end']} (the machine was shared: timings are pessimistic when these exceed the CPU count). "
            f"Text features: {'a hashed bag-of-words stand-in (384-d), not the sentence model' if run['text_encoder'] == 'hashed' else 'the sentence model of params.yaml'}.",
            "",
            "### Stages", "", *_stage_rows(run["steps"]), "",
            "### Models: one training epoch and one evaluation pass", "", *_model_rows(run["steps"], run["scale"] == 1), "",
        ]
        if run["scale"] == 1:  # the targets are for Baby size
            lines += ["### Targets", "", *_target_rows(run["steps"], gpu), ""]
        fits = {n: s for n, s in run["steps"].items() if n.startswith("fit:")}
        if fits:
            stages_s = sum(run["steps"][k]["seconds"]["total"] for k in ("synth", "ingest", "features", "neighbors", "graph")
                           if run["steps"].get(k, {}).get("status") == "ok")
            lines += ["### Complete runs: train stage (seed 1, early stopping as configured) + evaluate stage", "",
                      "| model | status | train (s) | evaluate (s) | epochs (best) | raw files to metrics (s) | test recall@20 | peak RSS (MB) |",
                      "|---|---|---:|---:|---|---:|---:|---:|"]
            for n, s in fits.items():
                sec = s.get("seconds", {})
                test = (s.get("metrics") or {}).get("test", {}).get("recall@20")
                lines.append(f"| {n.split(':', 1)[1]} | {s['status'] if s['status'] == 'ok' else 'failed: ' + s.get('error', '')[:120]} "
                             f"| {_f(sec.get('train'))} | {_f(sec.get('evaluate'))} | {s.get('epochs', '—')} ({s.get('best_epoch', '—')}) "
                             f"| {_f(stages_s + sec['total']) if 'total' in sec else '—'} | {_f(test, 4)} | {_f(s.get('peak_rss_mb'), 0)} |")
            lines += ["", "Raw files to metrics = the stage timings above (synth included) + train + evaluate.", ""]
    if len(runs) > 1:
        encoders = ", ".join(f"{k}: {'hashed stand-in' if runs[k]['text_encoder'] == 'hashed' else 'sentence model'}"
                             for k in sorted(runs, key=lambda k: runs[k]["scale"]))
        lines += ["## Growth with scale", "",
                  f"Text encoder per run ({encoders}): compare the features row only between runs with the same encoder. "
                  "Epochs: the fastest timed epoch of each run.", "", *_growth_rows(runs), ""]
    return "\n".join(lines)


def write_summary(results: dict[str, Any], path: Path) -> Path:
    path = Path(path)
    path.write_text(render(results))
    return path
