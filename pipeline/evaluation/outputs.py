"""What the evaluate stage reads and writes for one run: embeddings in, tables and metrics out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import torch

from pipeline.errors import UserError
from pipeline.evaluation.ranking import EvalResult


def load_embeddings(path: str | Path, n_users: int, n_items: int, device: str | torch.device = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """``embeddings.pt`` (``{"user": [n_users, d], "item": [n_items, d]}``) as float32 tensors on ``device``."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: file not found (train the run first)")
    try:
        emb = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:
        raise UserError(f"{path}: not a readable torch file ({exc.__class__.__name__}: {exc})") from None
    if not isinstance(emb, dict) or not {"user", "item"} <= set(emb):
        raise UserError(f"{path}: expected a dict with tensors 'user' and 'item'")
    user, item = emb["user"], emb["item"]
    for name, t, n in (("user", user, n_users), ("item", item, n_items)):
        if not isinstance(t, torch.Tensor) or t.ndim != 2 or t.shape[0] != n:
            shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise UserError(f"{path}: '{name}' must be a [{n}, d] tensor (one row per {name} of the dataset), got {shape}")
        if not torch.isfinite(t).all():
            raise UserError(f"{path}: '{name}' embeddings hold NaN or infinite values")
    if user.shape[1] != item.shape[1]:
        raise UserError(f"{path}: user and item embeddings differ in width ({user.shape[1]} vs {item.shape[1]})")
    return user.float(), item.float()


def recommendations_frame(res: EvalResult) -> tuple[pl.DataFrame, int]:
    """The ``recommendations`` table of a result (rank 0 = best) and the number of empty ranks left out.

    Ranks past a user's rankable items (item -1) are not rows; their count is returned.
    """
    n_eval, k = res.topk_items.shape
    keep = res.topk_items >= 0
    frame = pl.DataFrame(
        {
            "user": np.repeat(res.users, k)[keep.ravel()].astype(np.int32),
            "item": res.topk_items[keep].astype(np.int32),
            "rank": np.tile(np.arange(k, dtype=np.int16), n_eval)[keep.ravel()],
            "score": res.topk_scores[keep].astype(np.float32),
        }
    )
    return frame, int((~keep).sum())


def user_metrics_frame(results: list[EvalResult]) -> pl.DataFrame:
    """The ``user_metrics`` table: one row per (user, split) of the given results."""
    parts = []
    for res in results:
        cols: dict[str, object] = {
            "user": res.users.astype(np.int32),
            "split": [res.split] * len(res.users),
            "n_relevant": res.n_relevant.astype(np.int32),
        }
        cols.update({name: values.astype(np.float64) for name, values in res.per_user.items()})
        parts.append(pl.DataFrame(cols, schema_overrides={"split": pl.String}))
    return pl.concat(parts, how="vertical")
