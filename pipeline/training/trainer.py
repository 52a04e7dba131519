"""The training loop: the one stateful place of the pipeline.

:func:`fit` trains one model with Adam on BPR triples (one uniformly sampled negative per training
pair, :mod:`pipeline.training.sampler`), summing the named loss parts the model returns. After
every epoch it ranks all items for the validation users (:func:`pipeline.evaluation.ranking.evaluate`)
and keeps the epoch with the best ``valid_metric`` (model selection on validation only). Early
stopping follows MMRec: training stops once more than ``patience`` epochs in a row have not
strictly improved the best validation score.

Reproducibility: every random draw comes from the run seed (``random``, ``numpy``, torch's global
generator for initialisation and dropout, and one ``torch.Generator`` on the device for shuffling,
negatives and :meth:`~pipeline.models.base.Recommender.pre_epoch`); on CPU
``torch.use_deterministic_algorithms(True)`` is on while training. A checkpoint written after each
epoch holds the model, the optimiser, all generator states, the early-stopping state and the
history, so ``resume=True`` continues an interrupted run to the same final result.

Files written to ``out_dir`` (DVC outputs, byte-identical on a rerun; no timings in them):
``checkpoint.pt``, ``best.pt`` (state dict of the best epoch), ``embeddings.pt``
(``{"user": [n_users, d], "item": [n_items, d]}`` float32 CPU of the best epoch) and
``history.json``. Per-epoch curves (dvclive: loss parts, validation metrics, epoch seconds, peak
memory) and ``timing.json`` go to ``log_dir``, which is not a DVC output.
"""

from __future__ import annotations

import os
import random
import re
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch

from pipeline.errors import UserError
from pipeline.evaluation.metrics import METRICS
from pipeline.evaluation.ranking import EvalSets, evaluate
from pipeline.log import get_logger, progress
from pipeline.models.base import Recommender
from pipeline.params import write_json
from pipeline.training.data import TrainData
from pipeline.training.sampler import NegativeSampler, epoch_batches

log = get_logger(__name__)

CHECKPOINT = "checkpoint.pt"
BEST = "best.pt"
EMBEDDINGS = "embeddings.pt"
HISTORY = "history.json"
TIMING = "timing.json"


@dataclass(frozen=True)
class TrainSettings:
    """The ``train`` section of params.yaml plus the evaluation protocol used for validation."""

    epochs: int = 1000
    patience: int = 20
    lr: float = 1e-3
    batch_size: int = 2048
    emb_dim: int = 64
    eval_batch_size: int = 4096
    valid_metric: str = "recall@20"
    protocol: str = "mmrec"
    device: str = "auto"
    ks: tuple[int, ...] = (10, 20, 50)

    def __post_init__(self) -> None:
        m = re.fullmatch(r"([a-z]+)@(\d+)", str(self.valid_metric))
        if not m or m.group(1) not in METRICS or int(m.group(2)) < 1:
            raise UserError(
                f"params.yaml: train.valid_metric must look like <metric>@<k> with metric in {list(METRICS)}, got {self.valid_metric!r}"
            )
        for key in ("epochs", "batch_size", "emb_dim", "eval_batch_size"):
            if int(getattr(self, key)) < 1:
                raise UserError(f"params.yaml: train.{key} must be a positive integer, got {getattr(self, key)!r}")
        if int(self.patience) < 0:
            raise UserError(f"params.yaml: train.patience must be >= 0, got {self.patience!r}")
        if not float(self.lr) > 0:
            raise UserError(f"params.yaml: train.lr must be positive, got {self.lr!r}")
        k = int(m.group(2))
        if k not in self.ks:
            object.__setattr__(self, "ks", tuple(sorted({*self.ks, k})))

    @staticmethod
    def from_params(params: dict[str, Any]) -> "TrainSettings":
        """From the whole params.yaml mapping (sections ``train`` and ``evaluate.protocol``)."""
        train = params.get("train")
        if not isinstance(train, dict):
            raise UserError("params.yaml: missing section 'train'")
        known = {f for f in TrainSettings.__dataclass_fields__ if f not in ("protocol", "ks")}
        unknown = sorted(set(train) - known)
        if unknown:
            raise UserError(f"params.yaml: unknown key(s) {unknown} in 'train' (known: {sorted(known)})")
        protocol = (params.get("evaluate") or {}).get("protocol", "mmrec")
        return TrainSettings(**train, protocol=protocol)


@dataclass
class FitResult:
    """What :func:`fit` returns: the model holding the best weights and what was written."""

    model: Recommender
    user_emb: torch.Tensor  # float32 CPU [n_users, d], best epoch
    item_emb: torch.Tensor  # float32 CPU [n_items, d]
    history: dict[str, Any]
    timing: dict[str, float] = field(default_factory=dict)


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu; ``cuda`` without a GPU is a UserError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"params.yaml: train.device is '{name}' but no CUDA device is available (use 'auto' or 'cpu')")
    if name != "cpu" and not name.startswith("cuda"):
        raise UserError(f"params.yaml: train.device must be auto, cpu or cuda[:n], got {name!r}")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed ``random``, numpy's global generator and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextmanager
def deterministic(device: torch.device) -> Iterator[None]:
    """Deterministic kernels while training on CPU (CUDA sparse kernels have none); restored after."""
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(device.type == "cpu")
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before)


def _rng_state(gen: torch.Generator) -> dict[str, Any]:
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "generator": gen.get_state(),
    }


def _set_rng_state(state: dict[str, Any], gen: torch.Generator) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    gen.set_state(state["generator"])


def _canonical(obj: Any) -> Any:
    """A copy of ``obj`` whose containers are fresh and whose strings are interned.

    Pickle memoises objects by identity, so the same content can serialise to other bytes: a
    resumed run's history holds strings read back from the checkpoint (distinct objects) where an
    uninterrupted run holds one interned literal. Rebuilding the containers and interning every
    string makes the bytes depend on the content alone (an interrupted and resumed run writes the
    same ``checkpoint.pt`` as an uninterrupted one).
    """
    if isinstance(obj, str):
        return sys.intern(obj)
    if isinstance(obj, dict):
        return {_canonical(k): _canonical(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_canonical(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_canonical(v) for v in obj)
    return obj


def _save(obj: Any, path: Path) -> None:
    """torch.save through a temporary file, so an interruption never leaves a truncated file."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(_canonical(obj), tmp)
    os.replace(tmp, path)


def _cpu_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux
    except ImportError:  # pragma: no cover - non-Unix
        import psutil

        return psutil.Process().memory_info().rss / 2**20


def _fingerprint(settings: TrainSettings, seed: int, model: Recommender) -> dict[str, Any]:
    """What must not change between an interrupted run and its resumption (epochs may grow)."""
    s = asdict(settings)
    s.pop("epochs")
    s["ks"] = list(s["ks"])
    return {"settings": s, "seed": int(seed), "model": model.name, "cfg": {k: repr(v) for k, v in sorted(model.cfg.items())}}


class _Live:
    """dvclive per-epoch logging into ``log_dir`` (no dvc.yaml, no experiment); a no-op without a dir."""

    def __init__(self, log_dir: Path | None, resume: bool):
        self.live = None
        if log_dir is None:
            return
        from dvclive import Live

        log_dir.mkdir(parents=True, exist_ok=True)
        self.live = Live(str(log_dir), dvcyaml=False, save_dvc_exp=False, report=None, resume=resume)

    def log(self, epoch: int, metrics: dict[str, float]) -> None:
        if self.live is None:
            return
        self.live.step = epoch
        for name, value in metrics.items():
            if value is not None and np.isfinite(value):
                self.live.log_metric(name, float(value), plot=True)
        self.live.make_summary()

    def end(self) -> None:
        if self.live is not None:
            self.live.end()


def train_epoch(
    model: Recommender,
    opt: torch.optim.Optimizer,
    sampler: NegativeSampler,
    users: torch.Tensor,
    items: torch.Tensor,
    batch_size: int,
    epoch: int,
    gen: torch.Generator,
) -> dict[str, float]:
    """One pass over the shuffled training pairs (eq. 1 triples); mean of each loss part per pair."""
    model.train()
    model.pre_epoch(epoch, gen)
    sums: dict[str, torch.Tensor] = {}
    for idx in progress(epoch_batches(len(users), batch_size, gen), desc=f"epoch {epoch}", leave=False):
        u, pos = users[idx], items[idx]
        neg = sampler.sample(u, gen)
        parts = model.loss(u, pos, neg)
        total = torch.stack(list(parts.values())).sum()
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        for name, value in parts.items():
            sums[name] = sums.get(name, 0.0) + value.detach() * len(idx)
    return {name: float(value) / len(users) for name, value in sums.items()}


def validate(model: Recommender, sets: EvalSets, settings: TrainSettings) -> dict[str, float]:
    """Mean validation metrics of the model's current embeddings (full ranking, training items masked)."""
    model.eval()
    with torch.no_grad():
        u_emb, i_emb = model.embeddings()
        res = evaluate(u_emb, i_emb, sets, split="valid", ks=settings.ks, protocol=settings.protocol,
                       batch_size=settings.eval_batch_size)
    return {k: float(v) for k, v in res.mean.items()}


def fit(
    build: Callable[[torch.device], Recommender],
    data: TrainData,
    settings: TrainSettings,
    seed: int,
    out_dir: str | Path | None = None,
    log_dir: str | Path | None = None,
    resume: bool = False,
) -> FitResult:
    """Train the model ``build(device)`` returns on ``data``; early stopping on validation.

    ``build`` is called after seeding, so initialisation is reproducible. With ``out_dir`` the
    checkpoint, best model, embeddings and history are written there; with ``resume=True`` and a
    checkpoint in ``out_dir``, training continues from it (same settings and seed required).
    """
    device = resolve_device(settings.device)
    out = Path(out_dir) if out_dir is not None else None
    logs = Path(log_dir) if log_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    if len(data.train) == 0:
        raise UserError(f"{data.name}: no training interactions; nothing to train on")
    with deterministic(device):
        return _fit(build, data, settings, int(seed), device, out, logs, resume)


def _fit(
    build: Callable[[torch.device], Recommender],
    data: TrainData,
    settings: TrainSettings,
    seed: int,
    device: torch.device,
    out: Path | None,
    logs: Path | None,
    resume: bool,
) -> FitResult:
    seed_everything(seed)
    model = build(device)
    opt = torch.optim.Adam(model.parameters(), lr=settings.lr, fused=True)  # fused: ~10x faster step on CPU
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    sampler = NegativeSampler(data.n_users, data.n_items, data.train.user, data.train.item, device)
    sets = EvalSets.from_data(data)
    train_users = torch.from_numpy(data.train.user).to(device)
    train_items = torch.from_numpy(data.train.item).to(device)
    fingerprint = _fingerprint(settings, seed, model)

    start_epoch, best_epoch, best_score, bad = 1, 0, -np.inf, 0
    best_state: dict[str, torch.Tensor] | None = None
    curve: list[dict[str, Any]] = []
    stop_reason = "max_epochs"
    ckpt_path = out / CHECKPOINT if out is not None else None
    resumed = False
    if resume and ckpt_path is not None and ckpt_path.exists():
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        if ckpt["fingerprint"] != fingerprint:
            raise UserError(
                f"{ckpt_path}: checkpoint was written with other settings, seed or model config; "
                "rerun without --resume to start over"
            )
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        _set_rng_state(ckpt["rng"], gen)
        start_epoch = ckpt["epoch"] + 1
        best_epoch, best_score, bad = ckpt["best_epoch"], ckpt["best_score"], ckpt["bad_epochs"]
        curve = ckpt["curve"]
        stop_reason = ckpt.get("stop_reason", "max_epochs")
        best_state = torch.load(out / BEST, map_location="cpu", weights_only=True)
        resumed = True
        log.info("resuming %s from %s at epoch %d (best %s %.4f at epoch %d)", model.name, ckpt_path, start_epoch,
                 settings.valid_metric, best_score, best_epoch)
    elif resume:
        log.info("no checkpoint in %s: training %s from scratch", out, model.name)

    live = _Live(logs, resume=resumed)
    log.info(
        "training %s on %s (%s): %d users, %d items, %d training pairs, batch %d, up to %d epochs, device %s",
        model.name, data.name, ", ".join(f"{k}={v}" for k, v in model.cfg.items()), data.n_users, data.n_items,
        len(data.train), settings.batch_size, settings.epochs, device,
    )
    epoch_seconds: list[float] = []
    t_start = time.perf_counter()
    stopped_early = stop_reason == "early_stopping"
    epoch = start_epoch - 1
    for epoch in range(start_epoch, settings.epochs + 1):
        if stopped_early:
            break
        t0 = time.perf_counter()
        loss = train_epoch(model, opt, sampler, train_users, train_items, settings.batch_size, epoch, gen)
        if not all(np.isfinite(v) for v in loss.values()):
            stop_reason = "nan_loss"
            log.error("epoch %d: loss is not finite (%s); stopping and keeping the best epoch so far", epoch, loss)
            if best_state is None:
                raise UserError(f"training {model.name}: loss became NaN/inf in epoch {epoch}; lower train.lr or the model's reg")
            break

        valid = validate(model, sets, settings)
        score = valid[settings.valid_metric]
        score = score if np.isfinite(score) else -np.inf
        if best_state is None or score > best_score:
            best_epoch, best_score, bad = epoch, score, 0
            best_state = _cpu_state(model)
            if out is not None:
                _save(best_state, out / BEST)
        else:
            bad += 1
        if bad > settings.patience:
            stopped_early, stop_reason = True, "early_stopping"
        curve.append({"epoch": epoch, "loss": loss, "valid": valid})
        if out is not None:
            _save(
                {
                    "epoch": epoch, "model": _cpu_state(model), "optimizer": opt.state_dict(), "rng": _rng_state(gen),
                    "best_epoch": best_epoch, "best_score": best_score, "bad_epochs": bad, "curve": curve,
                    "stop_reason": stop_reason, "done": stopped_early, "fingerprint": fingerprint,
                },
                ckpt_path,
            )
        seconds = time.perf_counter() - t0
        epoch_seconds.append(seconds)
        peak = _peak_memory_mb(device)
        live.log(epoch, {**{f"loss/{k}": v for k, v in loss.items()}, **{f"valid/{k}": v for k, v in valid.items()},
                         "epoch_seconds": seconds, "peak_memory_mb": peak})
        log.info("epoch %d: loss %.4f (%s), valid %s %.4f (best %.4f @ %d), %.2f s",
                 epoch, sum(loss.values()), ", ".join(f"{k} {v:.4g}" for k, v in loss.items()),
                 settings.valid_metric, score, best_score, best_epoch, seconds)
    live.end()
    train_seconds = time.perf_counter() - t_start

    if best_state is None:
        raise UserError(f"training {model.name}: no epoch was run (train.epochs = {settings.epochs})")
    model.load_state_dict(best_state)
    model.eval()
    with torch.no_grad():
        u_emb, i_emb = model.embeddings()
    user_emb = u_emb.detach().to("cpu", torch.float32).contiguous()
    item_emb = i_emb.detach().to("cpu", torch.float32).contiguous()
    best_row = next(row for row in curve if row["epoch"] == best_epoch)
    history = {
        "best_epoch": best_epoch,
        "epochs": curve[-1]["epoch"] if curve else 0,
        "max_epochs": settings.epochs,
        "stopped_early": stop_reason == "early_stopping",
        "stop_reason": stop_reason,
        "valid": best_row["valid"],
        "curve": curve,
    }
    timing = {
        "train_seconds": round(train_seconds, 3),
        "epochs_run": len(epoch_seconds),
        "epoch_seconds": round(float(np.mean(epoch_seconds)), 4) if epoch_seconds else None,
        "peak_rss_mb" if device.type == "cpu" else "peak_cuda_mb": round(_peak_memory_mb(device), 1),
        "device": str(device),
        "resumed_from_epoch": start_epoch - 1 if resumed else None,
    }
    if out is not None:
        _save({"user": user_emb, "item": item_emb}, out / EMBEDDINGS)
        write_json(history, out / HISTORY)
    if logs is not None:
        write_json(timing, logs / TIMING)
    log.info("%s: best epoch %d of %d (%s), valid %s %.4f; %.1f s (%.3f s/epoch)", model.name, best_epoch,
             history["epochs"], stop_reason, settings.valid_metric, best_score, train_seconds,
             timing["epoch_seconds"] or 0.0)
    return FitResult(model, user_emb, item_emb, history, timing)
