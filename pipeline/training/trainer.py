"""The training loop: the one stateful place of the pipeline.

:func:`fit` trains one model with Adam on BPR triples (one uniformly sampled negative per training
pair, :mod:`pipeline.training.sampler`), summing the named loss parts the model returns. It
validates on a cadence counted in optimiser steps (:mod:`pipeline.training.stopping`: every
epoch on the paper's datasets, every few epochs when an epoch is a handful of steps), ranking all
items for the validation users (:func:`pipeline.evaluation.ranking.evaluate`), keeps the
validation with the best ``valid_metric`` (model selection on validation only), and stops once
more than ``patience`` validations in a row have not improved it, or after ``max_validations``.

Reproducibility: every random draw comes from the run seed (``random``, ``numpy``, torch's global
generator for initialisation and dropout, and one ``torch.Generator`` on the device for shuffling,
negatives and :meth:`~pipeline.models.base.Recommender.pre_epoch`); on CPU
``torch.use_deterministic_algorithms(True)`` is on while training. A checkpoint written after each
validation (:mod:`pipeline.training.checkpoint`) lets ``resume=True`` continue an interrupted
run to the same bytes.

Files written to ``out_dir`` (DVC outputs, byte-identical on a rerun; no timings in them):
``checkpoint.pt``, ``best.pt`` (state dict of the best validation), ``embeddings.pt``
(``{"user": [n_users, d], "item": [n_items, d]}`` float32 CPU of the best validation) and
``history.json`` (why and when it stopped, the validation curve). Curves (dvclive: loss parts,
validation metrics, epoch seconds, peak memory) and ``timing.json`` go to ``log_dir``, which
is not a DVC output.
"""

from __future__ import annotations

import random
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch

from pipeline.data import TrainData
from pipeline.device import resolve_device, set_deterministic
from pipeline.errors import UserError
from pipeline.evaluation.ranking import EvalSets, evaluate
from pipeline.jsonio import write_json
from pipeline.log import get_logger, progress
from pipeline.models.base import Recommender
from pipeline.settings.sections import Train
from pipeline.settings.types import Protocol
from pipeline.training import checkpoint
from pipeline.training.live import Live
from pipeline.training.sampler import NegativeSampler, epoch_batches
from pipeline.training.stopping import EarlyStopping, steps_per_epoch, validation_interval

log = get_logger(__name__)

CHECKPOINT = "checkpoint.pt"
BEST = "best.pt"
EMBEDDINGS = "embeddings.pt"
HISTORY = "history.json"
TIMING = "timing.json"

#: why a run stopped (history.json ``stop_reason``); "budget" = max_validations reached before patience
STOP_REASONS = ("early_stopping", "budget", "nan_loss")


class TrainSettings(Train):
    """The ``train`` section of params.yaml (its schema, its defaults) plus the evaluation protocol
    used for validation; the run set-up (:mod:`pipeline.run`) applies a model's overrides and
    selected values before a run."""

    protocol: Protocol = "mmrec"

    @property
    def ks(self) -> tuple[int, ...]:
        """The cut-offs of each validation: 10, 20, 50 and the ``valid_metric``'s."""
        return tuple(sorted({10, 20, 50, int(self.valid_metric.split("@")[1])}))


@dataclass
class FitResult:
    """What :func:`fit` returns: the model holding the best weights and what was written."""

    model: Recommender
    user_emb: torch.Tensor  # float32 CPU [n_users, d], best validation
    item_emb: torch.Tensor  # float32 CPU [n_items, d]
    history: dict[str, Any]
    timing: dict[str, float] = field(default_factory=dict)


def seed_everything(seed: int) -> None:
    """Seed ``random``, numpy's global generator and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextmanager
def deterministic(device: torch.device) -> Iterator[None]:
    """Deterministic kernels while training on CPU (CUDA sparse kernels have none); restored after."""
    before = torch.are_deterministic_algorithms_enabled()
    set_deterministic(device.type == "cpu")
    try:
        yield
    finally:
        set_deterministic(before)


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
    """What must not change between an interrupted run and its resumption (the budget may grow)."""
    s = settings.model_dump(exclude={"max_validations"})
    s["ks"] = list(settings.ks)
    return {"settings": s, "seed": int(seed), "model": model.run_name, "cfg": {k: repr(v) for k, v in sorted(model.hp)}}


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
    setup: dict[str, Any] | None = None,
    on_validation: Callable[[int, float], None] | None = None,
) -> FitResult:
    """Train the model ``build(device)`` returns on ``data``; early stopping on validation.

    ``build`` is called after seeding, so initialisation is reproducible. With ``out_dir`` the
    checkpoint, best model, embeddings and history are written there; with ``resume=True`` and a
    checkpoint in ``out_dir``, training continues from it (same settings and seed required).
    ``setup`` (the values the run uses and their sources, :meth:`pipeline.run.setup.RunSpec.describe`)
    goes into history.json as it is. ``on_validation(index, score)`` is called after each validation
    (0-based index, the ``valid_metric`` score); a study's pruner reports through it and stops the run
    by raising.
    """
    device = torch.device(resolve_device(settings.device, "train.device"))
    if settings.threads:
        torch.set_num_threads(settings.threads)  # the CPU kernels (and their bits) depend on it: fixed per run
    out = Path(out_dir) if out_dir is not None else None
    logs = Path(log_dir) if log_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    if len(data.train) == 0:
        raise UserError(f"{data.name}: no training interactions; nothing to train on")
    with deterministic(device):
        return _fit(build, data, settings, int(seed), device, out, logs, resume, setup, on_validation)


@dataclass
class _Run:
    """The mutable state of one run: what a checkpoint stores besides the model and optimiser."""

    stopping: EarlyStopping
    epoch: int = 0  # last finished epoch
    curve: list[dict[str, Any]] = field(default_factory=list)  # one row per validation
    stop_reason: str | None = None
    losses: list[dict[str, float]] = field(default_factory=list)  # epochs since the last validation

    def state(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "stopping": self.stopping.state(), "curve": self.curve, "stop_reason": self.stop_reason}


def _mean_loss(losses: list[dict[str, float]]) -> dict[str, float]:
    return {k: float(np.mean([row[k] for row in losses])) for k in losses[0]} if losses else {}


def _resume(ckpt_path: Path | None, out: Path | None, fingerprint: dict, model, opt, gen, patience: int):
    """(run state, best state) from a checkpoint, or fresh ones when there is none."""
    if ckpt_path is None or not ckpt_path.exists():
        return _Run(EarlyStopping(patience)), None
    ckpt = checkpoint.load(ckpt_path, fingerprint)
    model.load_state_dict(ckpt["model"])
    opt.load_state_dict(ckpt["optimizer"])
    checkpoint.set_rng_state(ckpt["rng"], gen)
    run = _Run(EarlyStopping.from_state(patience, ckpt["run"]["stopping"]), ckpt["run"]["epoch"], ckpt["run"]["curve"],
               ckpt["run"]["stop_reason"])
    best = torch.load(out / BEST, map_location="cpu", weights_only=True)
    log.info("resuming %s from %s after epoch %d (best %.4f at epoch %d)", model.run_name, ckpt_path, run.epoch,
             run.stopping.best_score, run.stopping.best_epoch)
    return run, best


def _fit(
    build: Callable[[torch.device], Recommender],
    data: TrainData,
    settings: TrainSettings,
    seed: int,
    device: torch.device,
    out: Path | None,
    logs: Path | None,
    resume: bool,
    setup: dict[str, Any] | None = None,
    on_validation: Callable[[int, float], None] | None = None,
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
    every = validation_interval(len(data.train), settings.batch_size, settings.valid_every_steps)
    steps = steps_per_epoch(len(data.train), settings.batch_size)
    max_epochs = settings.max_validations * every

    ckpt_path = out / CHECKPOINT if out is not None else None
    if resume:
        run, best_state = _resume(ckpt_path, out, fingerprint, model, opt, gen, settings.patience)
        if best_state is None:
            log.info("no checkpoint in %s: training %s from scratch", out, model.run_name)
    else:
        run, best_state = _Run(EarlyStopping(settings.patience)), None
    if run.stop_reason == "budget" and run.epoch < max_epochs:
        run.stop_reason = None  # resumed with a larger budget: train on
    resumed_from = run.epoch if best_state is not None else None
    live = Live(logs, resume=resumed_from is not None)
    log.info(
        "training %s on %s (%s): %d users, %d items, %d training pairs, batch %d (%d steps per epoch), "
        "validation every %d epoch(s), patience %d validations, at most %d validations, device %s",
        model.run_name, data.name, ", ".join(f"{k}={v}" for k, v in model.hp), data.n_users, data.n_items,
        len(data.train), settings.batch_size, steps, every, settings.patience, settings.max_validations, device,
    )
    epoch_seconds: list[float] = []
    t_start = time.perf_counter()
    while run.stop_reason is None and run.epoch < max_epochs:
        t0 = time.perf_counter()
        epoch = run.epoch + 1
        loss = train_epoch(model, opt, sampler, train_users, train_items, settings.batch_size, epoch, gen)
        run.epoch = epoch
        if not all(np.isfinite(v) for v in loss.values()):
            log.error("epoch %d: loss is not finite (%s); stopping and keeping the best validation so far", epoch, loss)
            if best_state is None:
                raise UserError(f"training {model.run_name}: loss became NaN/inf in epoch {epoch}; lower train.lr or the model's reg")
            run.stop_reason = "nan_loss"
            break
        run.losses.append(loss)
        epoch_seconds.append(time.perf_counter() - t0)
        if epoch % every and epoch < max_epochs:
            continue
        valid = validate(model, sets, settings)
        score = valid[settings.valid_metric]
        if run.stopping.update(score, epoch):
            best_state = checkpoint.cpu_state(model)
            if out is not None:
                checkpoint.save(best_state, out / BEST)
        if run.stopping.should_stop:
            run.stop_reason = "early_stopping"
        elif epoch >= max_epochs:
            run.stop_reason = "budget"
        loss = _mean_loss(run.losses)
        run.losses = []
        run.curve.append({"epoch": epoch, "step": epoch * steps, "loss": loss, "valid": valid})
        if ckpt_path is not None:
            checkpoint.save({"model": checkpoint.cpu_state(model), "optimizer": opt.state_dict(), "rng": checkpoint.rng_state(gen),
                             "run": run.state(), "fingerprint": fingerprint}, ckpt_path)
        seconds = time.perf_counter() - t0
        live.log(epoch, {**{f"loss/{k}": v for k, v in loss.items()}, **{f"valid/{k}": v for k, v in valid.items()},
                         "epoch_seconds": seconds, "peak_memory_mb": _peak_memory_mb(device)})
        log.info("epoch %d: loss %.4f (%s), valid %s %.4f (best %.4f @ %d), %.2f s", epoch, sum(loss.values()),
                 ", ".join(f"{k} {v:.4g}" for k, v in loss.items()), settings.valid_metric, score,
                 run.stopping.best_score, run.stopping.best_epoch, seconds)
        if on_validation is not None:
            on_validation(len(run.curve) - 1, score)
    live.end()
    train_seconds = time.perf_counter() - t_start
    if best_state is None:
        raise UserError(f"training {model.run_name}: no validation was run (train.max_validations = {settings.max_validations})")
    return _finish(model, best_state, run, settings, every, steps, device, out, logs, train_seconds, epoch_seconds, resumed_from,
                   setup)


def _finish(model, best_state, run: _Run, settings: TrainSettings, every: int, steps: int, device, out, logs,
            train_seconds: float, epoch_seconds: list[float], resumed_from: int | None, setup: dict[str, Any] | None) -> FitResult:
    """Load the best weights, export the embeddings and write history.json and timing.json."""
    model.load_state_dict(best_state)
    model.eval()
    with torch.no_grad():
        u_emb, i_emb = model.embeddings()
    user_emb = u_emb.detach().to("cpu", torch.float32).contiguous()
    item_emb = i_emb.detach().to("cpu", torch.float32).contiguous()
    best = run.stopping.best_epoch
    best_row = next(row for row in run.curve if row["epoch"] == best)
    history = {
        "best_epoch": best,
        "epochs": run.epoch,
        "validations": len(run.curve),
        "valid_every": every,
        "steps_per_epoch": steps,
        "max_validations": settings.max_validations,
        "stopped_early": run.stop_reason == "early_stopping",
        "stop_reason": run.stop_reason,
        "valid": best_row["valid"],
        **({"setup": setup} if setup is not None else {}),
        "curve": run.curve,
    }
    timing = {
        "train_seconds": round(train_seconds, 3),
        "epochs_run": len(epoch_seconds),
        "epoch_seconds": round(float(np.mean(epoch_seconds)), 4) if epoch_seconds else None,
        "peak_rss_mb" if device.type == "cpu" else "peak_cuda_mb": round(_peak_memory_mb(device), 1),
        "device": str(device),
        "resumed_from_epoch": resumed_from,
    }
    if out is not None:
        checkpoint.save({"user": user_emb, "item": item_emb}, out / EMBEDDINGS)
        write_json(history, out / HISTORY)
    if logs is not None:
        write_json(timing, logs / TIMING)
    log.info("%s: best epoch %d of %d (%s, %d validations), valid %s %.4f; %.1f s (%.3f s/epoch)", model.run_name, best,
             run.epoch, run.stop_reason, len(run.curve), settings.valid_metric, run.stopping.best_score, train_seconds,
             timing["epoch_seconds"] or 0.0)
    return FitResult(model, user_emb, item_emb, history, timing)
