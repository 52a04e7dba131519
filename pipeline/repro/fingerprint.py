"""Fingerprints: small, committed summaries of the outputs whose floats differ between CPUs.

A feature matrix, a neighbour list or a set of pseudo edges is computed with float kernels whose
last bits depend on the instruction set (MKL and ATen pick AVX-512, AVX2 or SSE code at run
time). Their DVC hashes therefore differ from machine to machine, and the files themselves are
too large to commit. What is committed instead (``cache: false`` outputs of the stages that
write them) is enough to decide, on another machine, whether a rebuilt output is the same up to
float rounding (:mod:`pipeline.repro.compare`):

* ``feature_sketch`` (``data/<ds>/features/fingerprint.parquet``): per modality and item the
  vector's norm and its projection onto ``SKETCH_DIM`` fixed Gaussian directions (entries
  N(0, 1) from a seeded, platform-independent generator), so that a coordinate of the sketch
  moves by about the L2 distance the vector moved.
* ``fingerprint`` (``data/<ds>/neighbors/fingerprint.parquet``, ``data/<ds>/graph/fingerprint.parquet``):
  one row per ``(part, key)``: a ranked list of an item, or a set of edges of a user, as a
  count, a hash of the ids (integer arithmetic, the same on every machine), the sum of its
  scores and its *margin*: the smallest score difference that decides what the list or set
  holds (adjacent scores, the gap to the first entry left out, the distance of a weight to its
  threshold). Where the hashes differ, the difference is a float tie iff the margin is within
  the score tolerance; a part with margin NaN is exact (its hash must match).
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import polars as pl

SKETCH_DIM = 8
SKETCH_SEED = 20261201

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def mix64(keys: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser of integer keys, uint64 with wrap-around (a fixed function of the bits)."""
    z = np.asarray(keys).astype(np.int64).view(np.uint64) + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def group_hash(group: np.ndarray, keys: np.ndarray, n_groups: int) -> np.ndarray:
    """Per group ``0 .. n_groups-1`` the sum of ``mix64(keys)`` mod 2**64 (order-independent), as int64."""
    out = np.zeros(n_groups, np.uint64)
    np.add.at(out, np.asarray(group, np.int64), mix64(keys))
    return out.view(np.int64)


def feature_sketch(vectors: Mapping[str, np.ndarray]) -> pl.DataFrame:
    """The ``feature_sketch`` table of the modality matrices (``[n_items, d]`` each)."""
    frames = []
    for modality in sorted(vectors):
        x = np.asarray(vectors[modality], np.float64)
        proj = np.random.default_rng(SKETCH_SEED).standard_normal((x.shape[1], SKETCH_DIM))
        sketch = x @ proj
        cols = {
            "modality": pl.Series([modality] * len(x), dtype=pl.String),
            "item": pl.Series(np.arange(len(x)), dtype=pl.Int32),
            "norm": pl.Series(np.linalg.norm(x, axis=1), dtype=pl.Float32),
        }
        cols.update({f"s{k}": pl.Series(sketch[:, k], dtype=pl.Float32) for k in range(SKETCH_DIM)})
        frames.append(pl.DataFrame(cols))
    return pl.concat(frames) if frames else empty_sketch()


def empty_sketch() -> pl.DataFrame:
    schema = {"modality": pl.String, "item": pl.Int32, "norm": pl.Float32, **{f"s{k}": pl.Float32 for k in range(SKETCH_DIM)}}
    return pl.DataFrame(schema=schema)


def empty_fingerprint() -> pl.DataFrame:
    return pl.DataFrame(schema={"part": pl.String, "key": pl.Int32, "n": pl.Int32, "hash": pl.Int64,
                                "score_sum": pl.Float64, "margin": pl.Float32})


def _frame(part: str, key: np.ndarray, n: np.ndarray, hashes: np.ndarray, score_sum: np.ndarray, margin: np.ndarray) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "part": pl.Series([part] * len(key), dtype=pl.String),
            "key": pl.Series(key, dtype=pl.Int32),
            "n": pl.Series(n, dtype=pl.Int32),
            "hash": pl.Series(hashes, dtype=pl.Int64),
            "score_sum": pl.Series(score_sum, dtype=pl.Float64),
            "margin": pl.Series(margin, dtype=pl.Float32),
        }
    )


def ranked_lists(part: str, item: np.ndarray, neighbor: np.ndarray, score: np.ndarray,
                 cut_item: np.ndarray, cut_score: np.ndarray) -> pl.DataFrame:
    """One row per item with a list: its length, the hash of the *set* of its neighbours, the
    score sum, and the margin |last score - the first entry left out| (``cut_score`` of
    ``cut_item``; +inf where nothing was left out). Adjacent entries that swap leave the set
    alone (what the models and APFI read is membership and scores); only a near-tie at the cut
    can change it."""
    item = np.asarray(item, np.int64)
    score = np.asarray(score, np.float64)
    keys, pos, counts = np.unique(item, return_inverse=True, return_counts=True)
    hashes = group_hash(pos, np.asarray(neighbor, np.int64), len(keys))
    sums = np.bincount(pos, weights=score, minlength=len(keys))
    lo = np.full(len(keys), np.inf)
    hi = np.full(len(keys), -np.inf)
    np.minimum.at(lo, pos, score)
    np.maximum.at(hi, pos, score)
    margin = np.full(len(keys), np.inf)
    at = np.searchsorted(keys, np.asarray(cut_item, np.int64))
    ok = (at < len(keys)) & (keys[np.minimum(at, len(keys) - 1)] == np.asarray(cut_item, np.int64))
    cut = np.asarray(cut_score, np.float64)[ok]
    at = at[ok]
    # the cut entry is worse than every listed one: below the lowest (best-first lists) or above the highest
    margin[at] = np.minimum(np.abs(lo[at] - cut), np.abs(hi[at] - cut))
    return _frame(part, keys, counts, hashes, sums, margin)


def edge_sets(part: str, user: np.ndarray, item: np.ndarray, weight: np.ndarray, users: np.ndarray,
              margin: np.ndarray | None = None, sign: np.ndarray | None = None) -> pl.DataFrame:
    """One row per user of ``users``: how many edges, the hash of their items (with ``sign`` if
    given), the weight sum and ``margin`` (one per user of ``users``; NaN = exact part)."""
    users = np.asarray(users, np.int64)
    pos = np.searchsorted(users, np.asarray(user, np.int64))
    keys = np.asarray(item, np.int64) << np.int64(1)
    if sign is not None:
        keys = keys | (np.asarray(sign) > 0).astype(np.int64)
    n = np.bincount(pos, minlength=len(users))
    sums = np.bincount(pos, weights=np.asarray(weight, np.float64), minlength=len(users))
    m = np.full(len(users), np.nan) if margin is None else np.asarray(margin, np.float64)
    return _frame(part, users, n, group_hash(pos, keys, len(users)), sums, m)


def exact_part(part: str, keys: np.ndarray) -> pl.DataFrame:
    """A single row that hashes a whole exact table (e.g. item groups) given as integer row keys."""
    keys = np.asarray(keys, np.int64)
    return _frame(part, np.zeros(1, np.int64), np.array([len(keys)]), group_hash(np.zeros(len(keys), np.int64), keys, 1),
                  np.zeros(1), np.full(1, np.nan))
