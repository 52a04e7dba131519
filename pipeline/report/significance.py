"""Paired significance tests of two models on per-user test metrics, averaged over seeds first."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy import stats


@dataclass(frozen=True)
class PairedTest:
    """Model A against model B on the same users: means and two-sided p-values."""

    n_users: int
    mean_a: float
    mean_b: float
    wilcoxon_p: float  # Wilcoxon signed-rank (zero differences dropped); NaN when all differences are 0
    ttest_p: float  # paired t-test; NaN when all differences are equal


def seed_average(frames: list[pl.DataFrame], metric: str) -> pl.DataFrame:
    """Per-user mean of ``metric`` over seeds: ``user``, ``value``, sorted by user.

    ``frames`` are ``user_metrics`` tables (one per seed), already restricted to one split.
    """
    stacked = pl.concat([f.select("user", pl.col(metric).alias("value")) for f in frames])
    return stacked.group_by("user").agg(pl.col("value").mean()).sort("user")


def paired_test(a: np.ndarray, b: np.ndarray) -> PairedTest:
    """Two-sided Wilcoxon signed-rank and paired t-test of ``a`` vs ``b`` (aligned per user)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired samples must be 1-d and aligned; got {a.shape} and {b.shape}")
    diff = a - b
    wilcoxon_p = ttest_p = math.nan
    if np.any(diff != 0):
        wilcoxon_p = float(stats.wilcoxon(a, b, zero_method="wilcox", alternative="two-sided").pvalue)
    if len(diff) > 1 and np.ptp(diff) > 0:
        ttest_p = float(stats.ttest_rel(a, b).pvalue)
    return PairedTest(len(a), float(a.mean()) if len(a) else math.nan, float(b.mean()) if len(b) else math.nan, wilcoxon_p, ttest_p)


def compare(a_frames: list[pl.DataFrame], b_frames: list[pl.DataFrame], metric: str) -> PairedTest:
    """Paired test of two models' seed-averaged per-user ``metric`` on the users both evaluated."""
    a = seed_average(a_frames, metric)
    b = seed_average(b_frames, metric)
    joined = a.join(b, on="user", how="inner", suffix="_b").sort("user")
    return paired_test(joined["value"].to_numpy(), joined["value_b"].to_numpy())
