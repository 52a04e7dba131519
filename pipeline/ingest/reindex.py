"""Contiguous integer ids, assigned in first-seen order.

The id of a user (item) is the rank of its first appearance in row order, which is file order
after cleaning and k-core (the order MMRec's preparation notebook used). The same input file
always gives the same ids; the maps are saved as ``users.parquet``/``items.parquet``.
"""

from __future__ import annotations

import numpy as np
import polars as pl


def first_seen_ids(values: pl.Series) -> tuple[np.ndarray, pl.Series]:
    """``(codes, uniques)``: ``uniques[codes[j]] == values[j]``, uniques in first-seen order."""
    frame = pl.DataFrame({"value": values})
    uniques = frame.unique(maintain_order=True).with_row_index("code")
    codes = frame.join(uniques, on="value", how="left", maintain_order="left")["code"]
    return codes.to_numpy().astype(np.int64), uniques["value"]


def compact(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Renumber integer ``codes`` to 0..m-1 in first-seen order: ``(new_codes, old_of_new)``.

    ``old_of_new[new_codes[j]] == codes[j]``.
    """
    codes = np.asarray(codes, dtype=np.int64)
    if codes.size == 0:
        return codes.copy(), codes.copy()
    old, first = np.unique(codes, return_index=True)
    old_of_new = old[np.argsort(first, kind="stable")]
    mapping = np.empty(int(old.max()) + 1, dtype=np.int64)
    mapping[old_of_new] = np.arange(old_of_new.size)
    return mapping[codes], old_of_new
