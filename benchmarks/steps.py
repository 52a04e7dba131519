"""One measured benchmark step, run in its own process so its peak memory is its own.

    python benchmarks/steps.py <spec.json> <result.json>

The spec names the step (``synth``, a stage name, ``knn``, ``train``, ``fit``), the work folder
(which holds a ``params.yaml`` and ``data/``, laid out like the repository root) and its options.
The result holds wall-clock seconds of each timed part, peak RSS (``ru_maxrss``), the RSS after
imports (``baseline_rss_mb``), where the step used CUDA ``torch.cuda.max_memory_allocated``
(``peak_cuda_mb``), and the load average.
Any exception is recorded as ``{"status": "failed", "error": ...}`` instead of a result.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
import traceback
import zlib
from pathlib import Path
from typing import Any, Callable

import numpy as np

HASHED_TEXT_DIM = 384


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


class HashedTextEncoder:
    """A stand-in for the sentence encoder: the normalised sum of one fixed random vector per word.

    Deterministic (each word's vector is seeded by its CRC32) and fast; items that share words
    (the synthetic clusters' vocabularies) get similar vectors, as with the real encoder.
    """

    def __init__(self, dim: int = HASHED_TEXT_DIM):
        self.dim = dim
        self._cache: dict[str, np.ndarray] = {}

    def _word(self, word: str) -> np.ndarray:
        vec = self._cache.get(word)
        if vec is None:
            vec = np.random.default_rng(zlib.crc32(word.encode())).standard_normal(self.dim).astype(np.float32)
            self._cache[word] = vec
        return vec

    def get_sentence_embedding_dimension(self) -> int:
        return self.dim

    def encode(self, sentences, batch_size: int = 64, show_progress_bar: bool = False, convert_to_numpy: bool = True, **_):
        out = np.zeros((len(sentences), self.dim), np.float32)
        for row, sentence in enumerate(sentences):
            for word in sentence.lower().split():
                out[row] += self._word(word)
        norm = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norm, 1e-12)


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn: Callable[[], Any], device=None) -> tuple[Any, float]:
    if device is not None:
        _sync(device)
    t0 = time.perf_counter()
    out = fn()
    if device is not None:
        _sync(device)
    return out, time.perf_counter() - t0


def step_synth(spec: dict) -> dict:
    from pipeline.ingest.synth import write_synthetic

    args = spec["synth"]
    paths, seconds = _timed(lambda: write_synthetic(Path(spec["raw_dir"]), **args))
    return {"seconds": {"total": seconds}, "bytes": {k: p.stat().st_size for k, p in paths.items()}}


def step_features(spec: dict) -> dict:
    """The features stage; with ``text_encoder: hashed`` the sentence encoder is swapped for
    :class:`HashedTextEncoder` (everything else, the image matching included, is the stage's code)."""
    if spec.get("text_encoder", "model") != "hashed":
        return step_stage(spec)
    from pipeline.features.build import build_features
    from pipeline.jsonio import write_json
    from pipeline.paths import stage_dir
    from pipeline.schemas import read_table
    from pipeline.settings import load_params

    params = load_params()
    dataset = spec["dataset"]

    def run():
        items = read_table(stage_dir(dataset, "ingest") / "items.parquet", "items")
        out = stage_dir(dataset, "features")
        report = build_features(
            items, params.dataset(dataset).model_dump(exclude_none=True), out / "vectors", text_model="hashed-bag-of-words",
            batch_size=params.features.batch_size, device="cpu", dataset=dataset,
            load_encoder=lambda name, device: HashedTextEncoder(),
        )
        write_json(report, out / "features.json")

    _, seconds = _timed(run)
    return {"seconds": {"total": seconds}, "text_encoder": "hashed bag of words (384-d), not the sentence model"}


def step_stage(spec: dict) -> dict:
    """``stages.<name>.main(dataset)``, exactly what ``dvc repro`` runs for that stage."""
    import importlib

    module = importlib.import_module(f"stages.{spec['step']}")
    _, seconds = _timed(lambda: module.main(spec["dataset"]))
    out: dict[str, Any] = {"seconds": {"total": seconds}}
    if spec["step"] == "features":
        out["text_encoder"] = "sentence model from params (features.text_model)"
    return out


def step_knn(spec: dict) -> dict:
    """The neighbors stage's kNN search alone on the image vectors the features stage wrote
    (Baby: 7,050 x 4096), on the stage's device and backend (:func:`pipeline.neighbors.knn.knn_backend`).
    On CUDA the context is started before the clock and the search timed three times (the fastest
    is reported, as for epochs); on the CPU once."""
    import torch

    from pipeline.device import resolve_device
    from pipeline.neighbors.knn import knn_lists
    from pipeline.settings import load_params

    params = load_params()
    device = resolve_device(spec.get("device") or params.neighbors.device, "neighbors.device")
    dev = torch.device(device)
    x = np.load(Path("data") / spec["dataset"] / "features" / "vectors" / "image.npy")
    k, block = params.neighbors.k, params.neighbors.block_size
    if dev.type == "cuda":
        torch.zeros(1, device=dev)  # CUDA context and allocator warm, not timed
    runs, info = [], {}
    for _ in range(3 if dev.type == "cuda" else 1):
        (lists, info), seconds = _timed(lambda: knn_lists(x, k, device=device, block_size=block, name="image.npy"), dev)
        runs.append(round(seconds, 4))
    return {"seconds": {"total": min(runs), "runs": runs}, "backend": info["backend"], "shape": list(x.shape), "k": k,
            "rows": int(len(lists.item))}


def step_train(spec: dict) -> dict:
    """Build one model, time ``epochs`` training epochs (the trainer's batch loop: shuffled
    batches, vectorised negatives, Adam on the summed loss parts) and one full evaluation pass
    (final embeddings + ranking of all items for valid and for test)."""
    import torch

    from pipeline.evaluation.ranking import EvalSets, evaluate_splits
    from pipeline.run.setup import build_model, load_data, prepare
    from pipeline.settings import load_params
    from pipeline.training.sampler import NegativeSampler, epoch_batches
    from pipeline.training.trainer import deterministic, resolve_device, seed_everything, train_epoch

    params = load_params()
    name = spec["model"]
    run_spec = prepare(params, spec["dataset"], name, candidates={})  # every auto value at its default
    settings = run_spec.settings
    device = torch.device(resolve_device(spec.get("device") or settings.device, "train.device"))
    kind = run_spec.entry.kind
    data, load_s = _timed(lambda: load_data(run_spec))
    seconds: dict[str, Any] = {"load_data": load_s}
    profile = spec.get("profile")
    with deterministic(device):
        seed_everything(1)
        model, seconds["build"] = _timed(lambda: build_model(run_spec, data, device), device)
        opt = torch.optim.Adam(model.parameters(), lr=settings.lr, fused=True)  # as the trainer
        gen = torch.Generator(device=device)
        gen.manual_seed(1)
        sampler = NegativeSampler(data.n_users, data.n_items, data.train.user, data.train.item, device)
        users_all = torch.from_numpy(data.train.user).to(device)
        items_all = torch.from_numpy(data.train.item).to(device)

        def epoch(e: int) -> dict[str, float]:
            # sampling is timed on its own (same generator stream, separate pass), then the
            # trainer's own epoch loop runs: what the train stage executes, nothing re-written here
            probe = torch.Generator(device=device)
            probe.set_state(gen.get_state())
            t0 = time.perf_counter()
            for idx in epoch_batches(len(data.train), settings.batch_size, probe):
                sampler.sample(users_all[idx], probe)
            sample_s = time.perf_counter() - t0
            parts, train_s = _timed(
                lambda: train_epoch(model, opt, sampler, users_all, items_all, settings.batch_size, e, gen), device
            )
            return {"seconds": train_s, "sampling": sample_s, **{f"loss_{k}": v for k, v in parts.items()}}

        def eval_pass() -> dict[str, float]:
            sets = EvalSets.from_data(data)
            model.eval()
            with torch.no_grad():
                (u, i), emb_s = _timed(model.embeddings, device)
                # as the evaluate stage: valid and test in one call (one shared ranking under mmrec)
                res, rank_s = _timed(lambda: evaluate_splits(u, i, sets, ("valid", "test"), ks=settings.ks,
                                                             protocol=settings.protocol, batch_size=settings.eval_batch_size), device)
            return {"embeddings": emb_s, "rank": rank_s,
                    "valid_recall@20": res["valid"].mean.get("recall@20"), "test_recall@20": res["test"].mean.get("recall@20")}

        profiler = None
        if profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        epochs = []
        for e in range(1, int(spec.get("epochs", 2)) + 1):
            epochs.append(epoch(e))
        ev, eval_s = _timed(eval_pass, device)
        if profiler is not None:
            import io
            import pstats

            profiler.disable()
            buf = io.StringIO()
            pstats.Stats(profiler, stream=buf).sort_stats("tottime").print_stats(30)
            Path(profile).parent.mkdir(parents=True, exist_ok=True)
            Path(profile).write_text(buf.getvalue())
    seconds["epochs"] = [round(x["seconds"], 4) for x in epochs]
    seconds["epoch"] = min(x["seconds"] for x in epochs)  # steady state: the fastest epoch
    seconds["sampling_per_epoch"] = min(x["sampling"] for x in epochs)
    seconds["eval_pass"] = eval_s
    seconds.update({f"eval_{k}": v for k, v in ev.items() if k in ("embeddings", "rank")})
    return {
        "seconds": seconds,
        "model": name,
        "class": kind,
        "device": str(device),
        "n_parameters": int(sum(p.numel() for p in model.parameters())),
        "n_train": len(data.train),
        "batches_per_epoch": -(-len(data.train) // settings.batch_size),
        "losses_last_epoch": {k: v for k, v in epochs[-1].items() if k.startswith("loss_")},
        "valid_recall@20_after": ev["valid_recall@20"],
        "test_recall@20_after": ev["test_recall@20"],
        "peak_cuda_mb": torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None,
    }


def step_fit(spec: dict) -> dict:
    """From the stage outputs to metrics: the train stage's whole run for one model (seed 1, early
    stopping as configured), then the evaluate stage (the work params list only this run)."""
    import importlib

    from pipeline.jsonio import read_json
    from pipeline.paths import metrics_file, model_dir

    train = importlib.import_module("stages.train")
    evaluate = importlib.import_module("stages.evaluate")
    _, train_s = _timed(lambda: train.main(spec["dataset"], spec["model"], "1"))
    _, eval_s = _timed(lambda: evaluate.main(spec["dataset"]))
    history = read_json(model_dir(spec["dataset"], spec["model"], 1) / "history.json")
    metrics = read_json(metrics_file(spec["dataset"], spec["model"], 1))
    return {"seconds": {"total": train_s + eval_s, "train": train_s, "evaluate": eval_s}, "model": spec["model"],
            "epochs": history.get("epochs"), "best_epoch": history.get("best_epoch"), "metrics": metrics}


STEPS = {"synth": step_synth, "features": step_features, "knn": step_knn, "train": step_train, "fit": step_fit}


def run(spec: dict) -> dict:
    os.chdir(spec["work"])  # stages read ./params.yaml and ./data like the repository root
    load_before = os.getloadavg()[0]
    try:
        import torch  # imported before the baseline so it is not counted as the step's

        if spec.get("threads"):
            torch.set_num_threads(int(spec["threads"]))

        import pipeline.log  # noqa: F401
    except ImportError:
        pass
    baseline = _rss_mb()
    try:
        result = STEPS.get(spec["step"], step_stage)(spec)
        result["status"] = "ok"
    except BaseException as exc:  # noqa: BLE001 - the harness records any failure and moves on
        result = {"status": "failed", "error": f"{type(exc).__name__}: {exc}".strip()[:500],
                  "traceback": traceback.format_exc()[-3000:]}
    result.update({"step": spec["step"], "baseline_rss_mb": round(baseline, 1), "peak_rss_mb": round(_peak_rss_mb(), 1),
                   "loadavg_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)]})
    if result.get("peak_cuda_mb") is None:
        result["peak_cuda_mb"] = _peak_cuda_mb()
    return result


def _peak_cuda_mb() -> float | None:
    """``torch.cuda.max_memory_allocated`` over the step's process, None where it never used CUDA."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_initialized():
        return None
    return round(torch.cuda.max_memory_allocated() / 2**20, 1)


if __name__ == "__main__":
    spec_file, result_file = sys.argv[1], sys.argv[2]
    out = run(json.loads(Path(spec_file).read_text()))
    Path(result_file).write_text(json.dumps(out, indent=2, default=float) + "\n")
    sys.exit(0 if out["status"] == "ok" else 1)
