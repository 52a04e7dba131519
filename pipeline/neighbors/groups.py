"""Tail / popular items by training degree (paper eq. 15).

Items are sorted by training degree ascending, ties broken by item id ascending (the paper does
not say; this makes the split a function of the data only); the first ``floor(xi * N)`` are the
tail, the rest popular. Only ``split == "train"`` interactions count, so nothing held out leaks
into the pseudo edges.
"""

from __future__ import annotations

import math

import numpy as np

from pipeline.errors import UserError


def training_degree(items: np.ndarray, n_items: int) -> np.ndarray:
    """Interactions per item (int64, length ``n_items``) from the training rows' item ids."""
    items = np.asarray(items, dtype=np.int64)
    if items.size and (items.min() < 0 or items.max() >= n_items):
        raise UserError(f"interactions: item ids must lie in 0..{n_items - 1} (the feature rows), got {items.min()}..{items.max()}")
    return np.bincount(items, minlength=n_items)


def tail_mask(degree: np.ndarray, xi: float) -> np.ndarray:
    """``b^tail`` of eq. 15: True for the ``floor(xi * N)`` lowest-degree items (ties: lower id)."""
    if not 0.0 <= xi <= 1.0:
        raise UserError(f"params.yaml apfi.xi: the tail ratio must lie in [0, 1], got {xi}")
    degree = np.asarray(degree)
    n = len(degree)
    n_tail = math.floor(xi * n + 1e-9)  # eq. 15: N_tail = floor(xi * |I|); 1e-9 absorbs 0.29 * 100 = 28.999999999999996
    order = np.lexsort((np.arange(n), degree))  # eq. 15: sort(I, d_i) ascending, then by id
    mask = np.zeros(n, dtype=bool)
    mask[order[:n_tail]] = True
    return mask
