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

One ranking per mask (:func:`evaluate_splits`): splits whose masked items are the same share one
ranking of the union of their evaluated users, and each split marks hits against its own held-out
items. Under ``mmrec`` valid and test both mask the training items only, so an evaluation pass
(valid + test) costs one ranking, not two; under ``strict`` the test split is ranked on its own.
:func:`evaluate` is :func:`evaluate_splits` for one split (it ranks that split's users only).

If a user has fewer than ``max(ks)`` unmasked items, the ranks beyond them hold item ``-1`` and
score ``-inf`` and never count as hits.

Tie-breaking: ``torch.topk`` picks the top-K set (deterministic for the same input on the same
device); inside it, items are ordered by decreasing score, then increasing item id, so the order
of tied items does not depend on the topk implementation.

Reproducibility: BLAS picks GEMM kernels by shape, so one user's scores could differ in the last
float bits with the number of users scored together. Scores are therefore always computed by
GEMMs of one fixed shape, ``SCORE_BLOCK`` users (the last block zero-padded) by all items, so a
user's scores, top-K and metrics do not depend on ``batch_size``, on which other users share its
batch or on which splits are requested: ``evaluate_splits(("valid", "test"))`` equals
``evaluate(split="valid")`` and ``evaluate(split="test")`` exactly, and the trainer's per-epoch
validation equals the evaluate stage's. (This holds when the BLAS computes every row of one GEMM
alike, as MKL does on CPU; ``batch_size`` only bounds the memory of a batch's score matrix.)
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
#: users per score GEMM: every score row comes from a (SCORE_BLOCK, d) x (d, n_items) product
SCORE_BLOCK = 256


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
    ``.item`` (such as :class:`pipeline.data.Interactions`).
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
        """From a :class:`pipeline.data.TrainData` (or anything with the same fields)."""
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
    """(row in batch, item) of every item of each user in ``users``, vectorised (no Python loop).

    Rows come out in increasing order and, inside a row, items in the CSR order (increasing id).
    """
    start, end = indptr[users], indptr[users + 1]
    counts = end - start
    rows = torch.repeat_interleave(torch.arange(len(users), device=users.device), counts)
    first = torch.repeat_interleave(start, counts)
    offset = torch.arange(len(rows), device=users.device) - torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
    return rows, indices[first + offset]


def _padded(n: int) -> int:
    """``n`` users rounded up to whole :data:`SCORE_BLOCK` blocks."""
    return -(-n // SCORE_BLOCK) * SCORE_BLOCK


def _score_buffer(buffer: torch.Tensor | None, n: int, user_emb: torch.Tensor, item_emb: torch.Tensor) -> torch.Tensor:
    """A score matrix with room for ``n`` users padded to whole blocks: ``buffer`` itself when it
    is large enough, else a new one."""
    rows = _padded(n)
    if buffer is None or buffer.shape[0] < rows:
        buffer = torch.empty(rows, item_emb.shape[0], dtype=user_emb.dtype, device=user_emb.device)
    return buffer


def _scores(user_emb: torch.Tensor, item_emb: torch.Tensor, batch: torch.Tensor, buffer: torch.Tensor | None = None) -> torch.Tensor:
    """``user_emb[batch] @ item_emb.T`` as GEMMs of one fixed shape, so a user's scores do not depend on the batch.

    The rows are computed in blocks of :data:`SCORE_BLOCK` users (the last block zero-padded), each
    by one ``(SCORE_BLOCK, d) x (d, n_items)`` product written into ``buffer`` (reused between
    batches when it has at least as many rows as the padded batch; allocated otherwise).
    """
    n, d = len(batch), user_emb.shape[1]
    buffer = _score_buffer(buffer, n, user_emb, item_emb)
    rows = _padded(n)
    x = user_emb[batch]
    if rows != n:
        x = torch.cat([x, x.new_zeros(rows - n, d)])
    item_t = item_emb.T
    for start in range(0, rows, SCORE_BLOCK):
        torch.mm(x[start : start + SCORE_BLOCK], item_t, out=buffer[start : start + SCORE_BLOCK])
    return buffer[:n]


def _ordered_topk(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top ``k`` by score, ordered by (score desc, item id asc).

    ``torch.topk(sorted=True)`` already orders by decreasing score; only ties (equal scores or
    NaN, ignoring the ``-inf`` tail, whose items become -1 anyway) need the item-id order, so the
    two stable sorts run only when the batch has one.
    """
    top_scores, top_items = torch.topk(scores, k, dim=1, largest=True, sorted=True)
    if k < 2:
        return top_scores, top_items
    prev, nxt = top_scores[:, :-1], top_scores[:, 1:]
    if not bool(((~(prev > nxt)) & (nxt != -torch.inf)).any()):
        return top_scores, top_items
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
    buffer: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scores and items of the top ``k`` of each user in ``batch``; masked ranks hold (-inf, -1)."""
    scores = _scores(user_emb, item_emb, batch, buffer)
    for indptr, indices in mask_csr:
        rows, cols = _gather_rows(indptr, indices, batch)
        scores[rows, cols] = -torch.inf
    s, it = _ordered_topk(scores, k)
    return s, torch.where(s > -torch.inf, it, torch.full_like(it, -1))


def _hits(indptr: torch.Tensor, indices: torch.Tensor, batch: torch.Tensor, items: torch.Tensor, n_items: int) -> torch.Tensor:
    """``hits[r, j]``: ``items[r, j]`` (>= 0) is one of the items of user ``batch[r]`` in the CSR.

    The (row, item) keys of the CSR items are sorted (rows increase, items increase inside a
    row), so a binary search of each ranked key replaces a set-membership test.
    """
    rows, cols = _gather_rows(indptr, indices, batch)
    if not len(rows):
        return torch.zeros(items.shape, dtype=torch.bool, device=items.device)
    key_held = rows * n_items + cols
    key_top = torch.arange(len(batch), device=items.device)[:, None] * n_items + items
    pos = torch.searchsorted(key_held, key_top).clamp_(max=len(key_held) - 1)
    return (key_held[pos] == key_top) & (items >= 0)


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


def masked_splits(split: str, protocol: str) -> tuple[str, ...]:
    """The splits whose items are masked when ranking for ``split`` under ``protocol``."""
    return ("train", "valid") if protocol == "strict" and split == "test" else ("train",)


def _check_args(
    user_emb: torch.Tensor, item_emb: torch.Tensor, sets: EvalSets, splits: Any, ks: Iterable[int], protocol: str, batch_size: int
) -> tuple[tuple[str, ...], tuple[int, ...]]:
    splits = (splits,) if isinstance(splits, str) else tuple(splits)
    for split in splits:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if not splits:
        raise ValueError(f"splits: expected at least one of {SPLITS}")
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    ks = tuple(sorted(set(int(k) for k in ks)))
    if not ks or ks[0] < 1:
        raise ValueError(f"ks must be positive integers, got {ks}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if user_emb.shape[0] != sets.n_users or item_emb.shape[0] != sets.n_items:
        raise ValueError(
            f"embeddings cover {user_emb.shape[0]} users / {item_emb.shape[0]} items; the data has {sets.n_users} / {sets.n_items}"
        )
    if not (torch.isfinite(user_emb).all() and torch.isfinite(item_emb).all()):
        raise ValueError("embeddings hold NaN or infinite values; cannot rank")
    return tuple(dict.fromkeys(splits)), ks


def evaluate_splits(
    user_emb: torch.Tensor,
    item_emb: torch.Tensor,
    sets: EvalSets,
    splits: Iterable[str] = SPLITS,
    ks: Iterable[int] = (10, 20, 50),
    protocol: str = "mmrec",
    batch_size: int = 4096,
    metrics: tuple[str, ...] = METRICS,
) -> dict[str, EvalResult]:
    """Full-ranking metrics of each of ``splits`` for the scores ``user_emb @ item_emb.T``.

    Splits with the same masked items (:func:`masked_splits`) share one ranking: the sorted union
    of their evaluated users is ranked once, in batches of ``batch_size`` users, and each split
    takes its users' rows. Returns ``{split: EvalResult}`` in the order of ``splits``.
    """
    splits, ks = _check_args(user_emb, item_emb, sets, splits, ks, protocol, batch_size)
    k_max = ks[-1]
    k_take = min(k_max, sets.n_items)
    device = user_emb.device
    groups: dict[tuple[str, ...], list[str]] = {}
    for split in splits:
        groups.setdefault(masked_splits(split, protocol), []).append(split)

    results: dict[str, EvalResult] = {}
    buffer = None  # the score matrix of a batch, reused by every batch and group
    for masked, members in groups.items():
        mask_csr = [sets.on_device(name, device) for name in masked]
        held = {split: sets.on_device(split, device) for split in members}
        evaluated = {split: sets.eval_users(split) for split in members}
        users = evaluated[members[0]][0]
        for split in members[1:]:
            users = np.union1d(users, evaluated[split][0])
        n_rank = len(users)
        out_items = np.full((n_rank, k_max), -1, dtype=np.int64)
        out_scores = np.full((n_rank, k_max), -np.inf, dtype=np.float32)
        hits = {split: np.zeros((n_rank, k_max), dtype=bool) for split in members}
        users_t = torch.from_numpy(users).to(device)
        with torch.no_grad():
            for start in progress(range(0, n_rank, batch_size), desc=f"rank {'+'.join(members)}", leave=False):
                batch = users_t[start : start + batch_size]
                buffer = _score_buffer(buffer, len(batch), user_emb, item_emb)
                s, it = _rank_batch(user_emb, item_emb, batch, mask_csr, k_take, buffer)
                end = start + len(batch)
                out_items[start:end, :k_take] = it.cpu().numpy()
                out_scores[start:end, :k_take] = s.float().cpu().numpy()
                for split in members:
                    hits[split][start:end, :k_take] = _hits(*held[split], batch, it, sets.n_items).cpu().numpy()
        for split in members:
            mine, n_dropped = evaluated[split]
            rows = np.searchsorted(users, mine) if len(members) > 1 else slice(None)
            results[split] = _result(sets, split, protocol, ks, metrics, mine, n_dropped,
                                     out_items[rows], out_scores[rows], hits[split][rows])
    return {split: results[split] for split in splits}


def _result(
    sets: EvalSets, split: str, protocol: str, ks: tuple[int, ...], metrics: tuple[str, ...], users: np.ndarray,
    n_dropped: int, items: np.ndarray, scores: np.ndarray, hits: np.ndarray,
) -> EvalResult:
    n_relevant = sets.csr(split).counts()[users].astype(np.int64)
    per_user = per_user_metrics(hits, n_relevant, ks, metrics)
    mean = mean_metrics(per_user, n_relevant)
    if not len(users):
        log.warning("%s: no user has both a %s item and a training item; metrics are NaN", split, split)
    if n_dropped:
        log.info("%s: dropped %d user(s) with held-out items but no training interaction", split, n_dropped)
    return EvalResult(split, protocol, ks, mean, users, per_user, n_relevant, items, scores, n_dropped)


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
    """Full-ranking metrics of ``split`` for the scores ``user_emb @ item_emb.T`` (ranks its users only)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return evaluate_splits(user_emb, item_emb, sets, (split,), ks, protocol, batch_size, metrics)[split]
