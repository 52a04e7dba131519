"""Train / valid / test splits: MMRec's per-user random rule (seeded) and a global temporal 8:1:1.

Split codes are 0 = train, 1 = valid, 2 = test (:data:`SPLIT_NAMES`).

Timestamps (:func:`timestamps_in_seconds`): a column mixing units is brought to seconds before
anything orders by time. The unit of a value is read from its magnitude: below 1e11 seconds (1e11 s
is the year 5138), then milliseconds (1e11 ms is March 1973) below 1e14, microseconds below 1e17,
nanoseconds above. When the positive values of a column fall in more than one unit, each is divided
down to seconds (floor) and counted per unit; a column in one unit, whichever, is kept as it is
(its order is already right).
"""

from __future__ import annotations

import numpy as np

from pipeline.errors import UserError

SPLIT_NAMES = ("train", "valid", "test")
METHODS = ("random", "temporal")
#: (unit, lower bound of its magnitude, factor to seconds), seconds first
UNITS = (("seconds", 0, 1), ("milliseconds", 10**11, 10**3), ("microseconds", 10**14, 10**6), ("nanoseconds", 10**17, 10**9))


def timestamps_in_seconds(timestamps: np.ndarray) -> tuple[np.ndarray, dict[str, int]]:
    """``timestamps`` in one unit, and how many values were converted to seconds from each other unit
    (empty when the column is in one unit already; module docstring)."""
    ts = np.asarray(timestamps, dtype=np.int64)
    unit = np.zeros(ts.shape, dtype=np.int8)
    for j, (_, low, _) in enumerate(UNITS[1:], 1):
        unit[ts >= low] = j
    present = np.unique(unit[ts > 0])
    if present.size <= 1:
        return ts, {}
    out = ts.copy()
    converted = {}
    for j in present[present > 0]:
        name, _, factor = UNITS[j]
        mask = unit == j
        out[mask] = ts[mask] // factor
        converted[name] = int(mask.sum())
    return out, converted


def mmrec_sizes(n: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-user (train, valid, test) sizes for users with ``n`` interactions (MMRec's rule).

    n < 10: n-2 train, 1 valid, 1 test; otherwise int(0.2 n) held out, of which floor half is
    valid and the rest test. Users with n < 3 (possible only with k < 3) keep everything in train.
    """
    n = np.asarray(n, dtype=np.int64)
    held = np.where(n < 10, 2, (2 * n) // 10)  # int(0.2 n), in integers to avoid 0.2*n rounding
    held = np.where(n < 3, 0, held)
    valid = np.where(n < 10, np.minimum(held, 1), held // 2)
    test = held - valid
    return n - held, valid, test


def random_split(users: np.ndarray, seed: int) -> np.ndarray:
    """MMRec's per-user split drawn with ``numpy.random.default_rng(seed)``.

    The rows are shuffled by ``rng.permutation`` and then stably grouped by user, so each user's
    rows come in a uniformly random order; the first ``n_train`` are train, the next ``n_valid``
    valid, the rest test. The result depends only on the rows' order, their users and the seed.
    """
    users = np.asarray(users, dtype=np.int64)
    codes = np.zeros(users.size, dtype=np.int8)
    if users.size == 0:
        return codes
    perm = np.random.default_rng(seed).permutation(users.size)
    order = perm[np.argsort(users[perm], kind="stable")]
    sorted_users = users[order]
    counts = np.bincount(users)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    position = np.arange(users.size) - starts[sorted_users]
    n_train, n_valid, _ = mmrec_sizes(counts)
    code = np.where(position < n_train[sorted_users], 0, np.where(position < (n_train + n_valid)[sorted_users], 1, 2))
    codes[order] = code
    return codes


def temporal_split(timestamps: np.ndarray, users: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Global 8:1:1 split by time: the earliest floor(0.8 N) rows train, up to floor(0.9 N) valid, the rest test.

    Rows are ordered by (timestamp, user, item), so interactions with the same timestamp are
    ordered by user id then item id and a boundary inside a tie is deterministic.
    """
    n = len(timestamps)
    order = np.lexsort((np.asarray(items), np.asarray(users), np.asarray(timestamps)))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    n_train, n_valid_end = (8 * n) // 10, (9 * n) // 10
    return np.where(rank < n_train, 0, np.where(rank < n_valid_end, 1, 2)).astype(np.int8)


def split_codes(method: str, users: np.ndarray, items: np.ndarray, timestamps: np.ndarray, seed: int) -> np.ndarray:
    """Dispatch on ``ingest.split``."""
    if method == "random":
        return random_split(users, seed)
    if method == "temporal":
        return temporal_split(timestamps, users, items)
    raise UserError(f"params.yaml: ingest.split must be one of {list(METHODS)}, got {method!r}")
