"""Speed benchmark of the whole pipeline on Baby-sized synthetic data (issue 7).

    python benchmarks/run.py [--scale 1] [--out benchmarks/results] [--text-encoder model|hashed]
                             [--models mf,lightgcn,...] [--epochs 2] [--device auto|cpu|cuda]
                             [--fit simgr] [--profile] [--machine NAME] [--step-timeout S]

1. generates Amazon-2014-format raw files of ``scale`` x Baby (19,445 users, 7,050 items,
   160,792 ratings, 4096-d images) with :func:`pipeline.ingest.synth.write_synthetic` into
   ``benchmarks/work/scale-<s>/`` (gitignored; laid out like the repository root, with its own
   ``params.yaml`` = the repository's with one dataset ``bench``);
2. runs the stages ingest, features, neighbors, graph there (``stages.<name>.main``), and times
   the neighbors stage's kNN search alone on the image vectors (step ``knn``);
3. for each model of ``pipeline.models.registry.model_classes()``: ``--epochs`` training epochs and
   one full evaluation pass (valid + test), each timed; ``--fit simgr`` also times the train
   stage's complete run (early stopping as configured);
4. writes ``<out>/<machine>.json`` (results of every scale measured so far, merged) and
   ``<out>/<machine>.md`` (timings with their ratios to the MMRec reference and to the targets).

Every step runs in its own process (``benchmarks/steps.py``), so peak RSS is per step and a
failing step (a model that does not import, say) is recorded with its error, not fatal; so is a
step that runs past ``--step-timeout``. The results files are rewritten after every step, so a
run that is stopped keeps what it measured.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.summary import write_summary  # noqa: E402

BABY = {"n_users": 19_445, "n_items": 7_050, "n_interactions": 160_792}
DATASET = "bench"
STAGES = ("ingest", "features", "neighbors", "graph")


def scaled(scale: float) -> dict[str, int]:
    """Baby's sizes times ``scale``."""
    return {k: int(round(v * scale)) for k, v in BABY.items()}


def default_models() -> list[str]:
    from pipeline.models.registry import model_classes

    return list(model_classes())


def machine_name(device: str) -> str:
    """``cpu-2core`` or the GPU's name (``nvidia-h100-80gb-hbm3``)."""
    if device != "cpu":
        try:
            import torch

            if torch.cuda.is_available():
                return re.sub(r"[^a-z0-9]+", "-", torch.cuda.get_device_name(0).lower()).strip("-")
        except ImportError:
            pass
    return f"cpu-{os.cpu_count()}core"


def prepare_work(work: Path, scale: float, image_dim: int, device: str, fit: list[str]) -> None:
    """``work/params.yaml``: the repository's params with the one dataset ``bench`` (and, for the
    complete runs of ``fit``, those models with seed 1 as the evaluate stage's run list)."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw = f"data/raw/{DATASET}"
    params["datasets"] = {
        DATASET: {
            "format": "amazon2014",
            "source": "synthetic",
            "reviews": f"{raw}/reviews_Synthetic_5.json.gz",
            "meta": f"{raw}/meta_Synthetic.json.gz",
            "images": f"{raw}/image_features_Synthetic.b",
            "image_dim": image_dim,
        }
    }
    params["run"]["datasets"] = [DATASET]
    params.setdefault("repro", {})["full"] = []
    if fit:
        params["run"]["seeds"] = [1]
        for group in ("models_cf", "models_mm", "models_sga", "models_pst", "models_apfi", "models_signed"):
            params["run"][group] = [m for m in params["run"].get(group, []) if m in fit]
    params["synth"] = {**scaled(scale), "n_clusters": 16, "image_dim": image_dim, "seed": 0}
    for section in ("features", "neighbors", "train"):
        if section in params and "device" in params[section]:
            params[section]["device"] = device
    work.mkdir(parents=True, exist_ok=True)
    # no study: the benchmark times every model at its params.yaml values, an `auto` one at its default
    params["tune"]["enabled"] = False
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def run_step(spec: dict, work: Path, label: str, threads: int | None = None, timeout: float | None = None) -> dict:
    """Run one step in a fresh process (``threads`` caps torch / OpenMP / BLAS threads; ``timeout``
    in seconds kills it); return its result."""
    spec_file = work / f"spec-{label}.json"
    result_file = work / f"result-{label}.json"
    spec_file.write_text(json.dumps({**spec, "work": str(work)}))
    result_file.unlink(missing_ok=True)
    started = time.perf_counter()
    env = dict(os.environ)
    if threads:
        env.update({k: str(threads) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")})
    timed_out = False
    try:
        proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "steps.py"), str(spec_file), str(result_file)],
                              cwd=ROOT, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        timed_out = True
        proc = subprocess.CompletedProcess(exc.cmd, -9, _text(exc.stdout), _text(exc.stderr) + f"\nkilled after {timeout:g} s")
    wall = time.perf_counter() - started
    if timed_out:
        result = {"status": "failed", "error": f"timed out: killed after {timeout:g} s (--step-timeout)"}
    elif result_file.exists():
        result = json.loads(result_file.read_text())
    else:
        result = {"status": "failed", "error": f"process exited {proc.returncode} without a result: {proc.stderr.strip()[-500:]}"}
    result["process_wall_s"] = round(wall, 2)
    (work / f"log-{label}.txt").write_text(proc.stdout + proc.stderr)
    shown = result.get("seconds", {}).get("epoch") or result.get("seconds", {}).get("total")
    status = "ok" if result["status"] == "ok" else f"FAILED: {result.get('error', '')[:200]}"
    print(f"  {label:<22} {status}" + (f"  {shown:.2f} s" if shown and result['status'] == 'ok' else "")
          + f"  peak RSS {result.get('peak_rss_mb', float('nan')):.0f} MB", flush=True)
    return result


def _text(out: bytes | str | None) -> str:
    return out.decode(errors="replace") if isinstance(out, bytes) else (out or "")


def environment(device: str) -> dict:
    import numpy
    import torch

    info = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        # how idle OpenMP threads wait: PASSIVE (sleep) vs ACTIVE (spin) moves a LightGCN epoch by ~30% on 2 cores
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "unset (libgomp default: spin, then sleep)"),
        "numpy": numpy.__version__,
        "device_requested": device,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    try:
        import faiss

        info["faiss"] = faiss.__version__
        info["faiss_gpus"] = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
    except ImportError:
        info["faiss"] = None
    try:
        import psutil

        info["memory_gb"] = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        pass
    return info


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=float, default=1, help="multiple of Baby's users, items and ratings (1, 2, 4; 0.1 for a smoke run)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    ap.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "work")
    ap.add_argument("--text-encoder", choices=("model", "hashed"), default="model",
                    help="model = the sentence model of params.yaml; hashed = a fast 384-d bag-of-words stand-in")
    ap.add_argument("--models", default=None, help="comma-separated model names (default: every registered model; '' for none)")
    ap.add_argument("--epochs", type=int, default=2, help="training epochs timed per model (the fastest is reported)")
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda (written to the work params)")
    ap.add_argument("--image-dim", type=int, default=4096)
    ap.add_argument("--fit", default="", help="comma-separated models to train completely (train stage, early stopping) and evaluate (evaluate stage)")
    ap.add_argument("--profile", action="store_true", help="cProfile the training steps into <out>/profiles/")
    ap.add_argument("--skip-stages", action="store_true", help="reuse the work folder's data (no synth / stages)")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch/OpenMP/BLAS threads per step (default: torch's, = the core count); 1 is far faster on a loaded machine")
    ap.add_argument("--machine", default=None, help="results file name (default: cpu-<n>core or the GPU name)")
    ap.add_argument("--step-timeout", type=float, default=None, help="seconds after which a step is killed and recorded as failed")
    args = ap.parse_args(argv)

    import torch

    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    machine = args.machine or machine_name(device)
    work = (args.work / f"scale-{args.scale:g}").resolve()
    out = args.out.resolve()
    print(f"benchmark: {machine}, scale {args.scale} x Baby, device {device}, work {work}", flush=True)
    if not args.skip_stages and work.exists():
        shutil.rmtree(work)
    fit = [m for m in args.fit.split(",") if m]
    prepare_work(work, args.scale, args.image_dim, device, fit)
    load_start = os.getloadavg()
    steps: dict[str, dict] = {}
    out.mkdir(parents=True, exist_ok=True)
    results_file = out / f"{machine}.json"
    results = json.loads(results_file.read_text()) if results_file.exists() else {"machine": machine, "runs": {}}
    key = f"x{args.scale:g}"
    earlier = results["runs"].get(key) if args.skip_stages else None  # a partial rerun: keep the earlier steps of this scale
    env = environment(device)

    def save() -> Path:
        run = {
            "scale": args.scale,
            "sizes": scaled(args.scale) | {"image_dim": args.image_dim},
            "text_encoder": args.text_encoder,
            "epochs_timed": args.epochs,
            "threads": args.threads or torch.get_num_threads(),
            "environment": env,
            "loadavg_start": [round(x, 2) for x in load_start],
            "loadavg_end": [round(x, 2) for x in os.getloadavg()],
            "steps": steps,
        }
        if earlier is not None:
            later = {k: run[k] for k in ("environment", "loadavg_start", "loadavg_end", "threads")} | {"steps": list(steps)}
            run = {**earlier, "steps": {**earlier["steps"], **steps}, "later_runs": [*earlier.get("later_runs", []), later]}
        results["runs"][key] = run
        results_file.write_text(json.dumps(results, indent=2, default=float) + "\n")
        return write_summary(results, out / f"{machine}.md")

    def step(name: str, spec: dict, label: str) -> None:
        steps[name] = run_step({**base, **spec}, work, label, args.threads, args.step_timeout)
        save()

    base = {"dataset": DATASET, "device": device, "threads": args.threads}
    if not args.skip_stages:
        synth = yaml.safe_load((work / "params.yaml").read_text())["synth"]
        step("synth", {"step": "synth", "synth": synth, "raw_dir": str(work / "data/raw" / DATASET)}, "synth")
        for stage in STAGES:
            extra = {"text_encoder": args.text_encoder} if stage == "features" else {}
            step(stage, {"step": stage, **extra}, stage)
        step("knn", {"step": "knn"}, "knn")
    models = default_models() if args.models is None else [m for m in args.models.split(",") if m]
    for model in models:
        profile = str(out / "profiles" / f"{machine}-x{args.scale:g}-{model}.txt") if args.profile else None
        step(f"train:{model}", {"step": "train", "model": model, "epochs": args.epochs, "profile": profile}, f"train-{model}")
    for model in fit:
        step(f"fit:{model}", {"step": "fit", "model": model}, f"fit-{model}")
    md = save()
    print(f"wrote {results_file} and {md}")
    return 0 if all(s["status"] == "ok" for s in steps.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
