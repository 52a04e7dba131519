"""Checkpoints of a training run: what resuming needs, written so the same content has the same bytes.

A checkpoint (written after every validation) holds the trainable state (model parameters and
persistent buffers), the optimiser state, every random generator's state, the early-stopping
state and the history so far. Fixed inputs (graphs, raw features) are rebuilt from the data
and never stored. ``resume`` continues an interrupted run to the same final bytes.
"""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.errors import UserError


def canonical(obj: Any) -> Any:
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
        return {canonical(k): canonical(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [canonical(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(canonical(v) for v in obj)
    return obj


def save(obj: Any, path: Path) -> None:
    """torch.save through a temporary file, so an interruption never leaves a truncated file."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(canonical(obj), tmp)
    os.replace(tmp, path)


def cpu_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's state dict (trainable parameters and persistent buffers) copied to the CPU."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def rng_state(gen: torch.Generator) -> dict[str, Any]:
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "generator": gen.get_state(),
    }


def set_rng_state(state: dict[str, Any], gen: torch.Generator) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    gen.set_state(state["generator"])


def load(path: Path, fingerprint: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint at ``path``, refused (UserError) when written with another fingerprint."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # truncated or not a checkpoint
        raise UserError(f"{path}: not a readable checkpoint ({exc.__class__.__name__}); rerun without --resume to start over") from None
    if not isinstance(ckpt, dict):
        raise UserError(f"{path}: not a checkpoint of this pipeline; rerun without --resume to start over")
    if ckpt.get("fingerprint") != fingerprint:
        raise UserError(
            f"{path}: checkpoint was written with other settings, seed or model config; rerun without --resume to start over"
        )
    return ckpt
