"""Full ranking of all items for every evaluated user, batched over users, on the embeddings' device.

Scores are ``user_emb @ item_emb.T`` (every model scores by the inner product of its final
embeddings). Per user batch: score all items, mask, take the top ``max(ks)`` with ``torch.topk``,
mark hits against the held-out items, then compute metrics with :mod:`pipeline.evaluation.metrics`.

Masking protocols (items masked get score ``-inf`` and are never recommended):

- ``mmrec`` (default, MMRec/RecBole, the protocol of the paper's numbers): mask the user's
  training items only; validation items stay rankable when testing.
- ``strict``: when testing, mask training *and* validation items.

Evaluated users (as MMRec): users with >= 1 held-out item in the split and >= 1 training
interaction; the others are dropped and counted (``EvalResult.n_dropped_no_train``).

If a user has fewer than ``max(ks)`` unmasked items, the ranks beyond them hold item ``-1`` and
score ``-inf`` and never count as hits.

Tie-breaking: ``torch.topk`` picks the top-K set (deterministic for the same input on the same
device); inside it, items are ordered by decreasing score, then increasing item id (stable sort),
so the order of tied items does not depend on the topk implementation. Scores of one user can
differ in the last float32 bits between batch sizes (BLAS picks kernels by shape), so the stages
use one fixed batch size for reproducible outputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np
import torch

from pipeline.evaluation.metrics import METRICS, mean_metrics, per_user_metrics
from pipeline.log import get_logger, progress

log = get_logger(__name__)

PROTOCOLS = ("mmrec", "strict")
SPLITS = ("valid", "test")


@dataclass(frozen=True)
class _CSR:
    """Items of each user, sorted by user: items of user u are indices[indptr[u]:indptr[u+1]]."""

    indptr: np.ndarray  # int64 [n_users + 1]
    indices: np.ndarray  # int64 [nnz]

    @staticmethod
    def build(user: np.ndarray, item: np.ndarray, n_users: int) -> "_CSR":
        order = np.lexsort((item, user))
        counts = np.bincount(user, minlength=n_users)
        indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return _CSR(indptr, item[order].astype(np.int64))

    def counts(self) -> np.ndarray:
        return np.diff(self.indptr)


def _pairs(pair: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    user, item = (pair.user, pair.item) if hasattr(pair, "user") else pair
    user = np.asarray(user, dtype=np.int64)
    item = np.asarray(item, dtype=np.int64)
    if user.shape != item.shape or user.ndim != 1:
        raise ValueError(f"{name}: user and item must be 1-d arrays of the same length")
    return user, item


@dataclass(frozen=True)
class EvalSets:
    """The interactions evaluation needs: (user, item) pairs of the train, valid and test splits.

    ``train``/``valid``/``test`` are ``(user, item)`` array pairs or objects with ``.user`` and
    ``.item`` (such as :class:`pipeline.training.data.Interactions`).
    """

    n_users: int
    n_items: int
    train: Any
    valid: Any
    test: Any
    _csr: dict[str, _CSR] = field(default_factory=dict, init=False, repr=False, compare=False)
    _device: dict[tuple[str, str], tuple[torch.Tensor, torch.Tensor]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        for name in ("train", "valid", "test"):
            user, item = _pairs(getattr(self, name), name)
            if len(user) and (user.min() < 0 or user.max() >= self.n_users):
                raise ValueError(f"{name}: user ids outside 0..{self.n_users - 1}")
            if len(item) and (item.min() < 0 or item.max() >= self.n_items):
                raise ValueError(f"{name}: item ids outside 0..{self.n_items - 1}")
            self._csr[name] = _CSR.build(user, item, self.n_users)

    @staticmethod
    def from_data(data: Any) -> "EvalSets":
        """From a :class:`pipeline.training.data.TrainData` (or anything with the same fields)."""
        return EvalSets(data.n_users, data.n_items, data.train, data.valid, data.test)

    def csr(self, split: str) -> _CSR:
        return self._csr[split]

    def on_device(self, split: str, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(indptr, indices) of a split as tensors on ``device``, cached."""
        key = (split, str(device))
        if key not in self._device:
            c = self._csr[split]
            self._device[key] = (torch.from_numpy(c.indptr).to(device), torch.from_numpy(c.indices).to(device))
        return self._device[key]

    def eval_users(self, split: str) -> tuple[np.ndarray, int]:
        """Users evaluated on ``split`` (sorted) and how many held-out users were dropped for having no training item."""
        held = self._csr[split].counts() > 0
        keep = held & (self._csr["train"].counts() > 0)
        return np.flatnonzero(keep).astype(np.int64), int((held & ~keep).sum())


@dataclass(frozen=True)
class EvalResult:
    """Metrics of one split: means, per-user values and the top-K lists of the evaluated users."""

    split: str
    protocol: str
    ks: tuple[int, ...]
    mean: dict[str, float]
    users: np.ndarray  # int64 [n_eval]
    per_user: dict[str, np.ndarray]  # name -> float64 [n_eval]
    n_relevant: np.ndarray  # int64 [n_eval]
    topk_items: np.ndarray  # int64 [n_eval, max(ks)], -1 past the user's rankable items
    topk_scores: np.ndarray  # float32 [n_eval, max(ks)], -inf past the user's rankable items
    n_dropped_no_train: int  # users with held-out items but no training interaction


def _gather_rows(indptr: torch.Tensor, indices: torch.Tensor, users: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(row in batch, item) of every item of each user in ``users``, vectorised (no Python loop)."""
    start, end = indptr[users], indptr[users + 1]
    counts = end - start
    rows = torch.repeat_interleave(torch.arange(len(users), device=users.device), counts)
    first = torch.repeat_interleave(start, counts)
    offset = torch.arange(len(rows), device=users.device) - torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
    return rows, indices[first + offset]


def _ordered_topk(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top ``k`` by score, ordered by (score desc, item id asc)."""
    top_scores, top_items = torch.topk(scores, k, dim=1, largest=True, sorted=False)
    by_item = torch.argsort(top_items, dim=1, stable=True)
    top_scores, top_items = top_scores.gather(1, by_item), top_items.gather(1, by_item)
    by_score = torch.argsort(top_scores, dim=1, descending=True, stable=True)
    return top_scores.gather(1, by_score), top_items.gather(1, by_score)


def _rank_batch(
    user_emb: torch.Tensor,
    item_emb: torch.Tensor,
    batch: torch.Tensor,
    mask_csr: list[tuple[torch.Tensor, torch.Tensor]],
    k: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scores and items of the top ``k`` of each user in ``batch``; masked ranks hold (-inf, -1)."""
    scores = user_emb[batch] @ item_emb.T
    for indptr, indices in mask_csr:
        rows, cols = _gather_rows(indptr, indices, batch)
        scores[rows, cols] = -torch.inf
    s, it = _ordered_topk(scores, k)
    return s, torch.where(s > -torch.inf, it, torch.full_like(it, -1))


def top_items(
    user_emb: torch.Tensor,
    item_emb: torch.Tensor,
    sets: EvalSets,
    users: Iterable[int],
    k: int,
    exclude: tuple[str, ...] = ("train",),
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` (items, scores) of ``users``, excluding their items of the ``exclude`` splits.

    Ranks past the user's rankable items hold item -1 and score -inf.
    """
    device = user_emb.device
    users_t = torch.as_tensor(np.asarray(list(users), dtype=np.int64), device=device)
    k_take = min(k, sets.n_items)
    with torch.no_grad():
        s, it = _rank_batch(user_emb, item_emb, users_t, [sets.on_device(n, device) for n in exclude], k_take)
    items = np.full((len(users_t), k), -1, dtype=np.int64)
    scores = np.full((len(users_t), k), -np.inf, dtype=np.float32)
    items[:, :k_take], scores[:, :k_take] = it.cpu().numpy(), s.float().cpu().numpy()
    return items, scores


def evaluate(
    user_emb: torch.Tensor,
    item_emb: torch.Tensor,
    sets: EvalSets,
    split: str = "valid",
    ks: Iterable[int] = (10, 20, 50),
    protocol: str = "mmrec",
    batch_size: int = 4096,
    metrics: tuple[str, ...] = METRICS,
) -> EvalResult:
    """Full-ranking metrics of ``split`` for the scores ``user_emb @ item_emb.T``."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    ks = tuple(sorted(set(int(k) for k in ks)))
    if not ks or ks[0] < 1:
        raise ValueError(f"ks must be positive integers, got {ks}")
    if user_emb.shape[0] != sets.n_users or item_emb.shape[0] != sets.n_items:
        raise ValueError(
            f"embeddings cover {user_emb.shape[0]} users / {item_emb.shape[0]} items; the data has {sets.n_users} / {sets.n_items}"
        )
    if not (torch.isfinite(user_emb).all() and torch.isfinite(item_emb).all()):
        raise ValueError("embeddings hold NaN or infinite values; cannot rank")
    k_max = ks[-1]
    k_take = min(k_max, sets.n_items)
    device = user_emb.device
    masked = ["train"] + (["valid"] if protocol == "strict" and split == "test" else [])
    mask_csr = [sets.on_device(name, device) for name in masked]
    held_indptr, held_indices = sets.on_device(split, device)

    users, n_dropped = sets.eval_users(split)
    n_eval = len(users)
    out_items = np.full((n_eval, k_max), -1, dtype=np.int64)
    out_scores = np.full((n_eval, k_max), -np.inf, dtype=np.float32)
    hits = np.zeros((n_eval, k_max), dtype=bool)
    users_t = torch.from_numpy(users).to(device)
    with torch.no_grad():
        for start in progress(range(0, n_eval, batch_size), desc=f"rank {split}", leave=False):
            batch = users_t[start : start + batch_size]
            s, it = _rank_batch(user_emb, item_emb, batch, mask_csr, k_take)
            rows, cols = _gather_rows(held_indptr, held_indices, batch)
            key_held = rows * sets.n_items + cols
            key_top = torch.arange(len(batch), device=device)[:, None] * sets.n_items + it
            hit = torch.isin(key_top, key_held) & (it >= 0)
            end = start + len(batch)
            out_items[start:end, :k_take] = it.cpu().numpy()
            out_scores[start:end, :k_take] = s.float().cpu().numpy()
            hits[start:end, :k_take] = hit.cpu().numpy()

    n_relevant = sets.csr(split).counts()[users].astype(np.int64)
    per_user = per_user_metrics(hits, n_relevant, ks, metrics)
    mean = mean_metrics(per_user, n_relevant)
    if n_eval == 0:
        log.warning("%s: no user has both a %s item and a training item; metrics are NaN", split, split)
    if n_dropped:
        log.info("%s: dropped %d user(s) with held-out items but no training interaction", split, n_dropped)
    return EvalResult(split, protocol, ks, mean, users, per_user, n_relevant, out_items, out_scores, n_dropped)
