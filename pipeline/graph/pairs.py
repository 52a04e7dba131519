"""Vectorised lookup of (user, item) pairs: sorted int64 keys ``user * n_items + item`` on a device.

Membership of a batch of pairs is a lookup in a bitmap of all n_users x n_items pairs when that
fits in :data:`BITMAP_BITS` bits (one gather and a shift: ~10x faster than a binary search on CPU),
else one binary search (``torch.searchsorted``) over the sorted unique keys, on whatever device
the index lives; an optional value per pair (e.g. SiReN's rating sign) is looked up through the
search. Used by the negative samplers and by models that need to know, or read a value of, a
training pair.
"""

from __future__ import annotations

import numpy as np
import torch


#: the largest bitmap of (user, item) pairs kept (2**30 bits = 128 MiB; Baby needs 17 MiB)
BITMAP_BITS = 1 << 30


class PairIndex:
    """Sorted unique keys of (user, item) pairs, with an optional value per pair.

    ``users``/``items``: parallel integer arrays; ``values``: one entry per pair (any numpy dtype
    torch accepts) or ``None``. A pair given more than once is kept once, with the value of its
    first occurrence.
    """

    def __init__(
        self,
        users: np.ndarray,
        items: np.ndarray,
        n_items: int,
        device: torch.device | str = "cpu",
        values: np.ndarray | None = None,
    ):
        self.n_items = int(n_items)
        keys = np.asarray(users, dtype=np.int64) * self.n_items + np.asarray(items, dtype=np.int64)
        keys, first = np.unique(keys, return_index=True)  # sorted, duplicates merged (first occurrence)
        self.keys = torch.from_numpy(keys).to(device)
        self.values = None if values is None else torch.from_numpy(np.asarray(values)[first]).to(device)
        n_users = int(keys[-1] // self.n_items) + 1 if len(keys) else 0
        self.bits: torch.Tensor | None = None
        if 0 < n_users * self.n_items <= BITMAP_BITS:
            words = np.zeros((n_users * self.n_items + 63) // 64, np.uint64)
            np.bitwise_or.at(words, keys >> 6, np.left_shift(np.uint64(1), (keys & 63).astype(np.uint64)))
            self.bits = torch.from_numpy(words.view(np.int64)).to(device)
            self._n_keys = n_users * self.n_items

    def __len__(self) -> int:
        return len(self.keys)

    def user_degree(self, n_users: int) -> torch.Tensor:
        """Number of distinct items of each user ``0 .. n_users - 1`` (int64, on the index's device)."""
        bounds = torch.searchsorted(self.keys, torch.arange(n_users + 1, device=self.keys.device) * self.n_items)
        return bounds[1:] - bounds[:-1]

    def _search(self, users: torch.Tensor, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(found mask, position in ``keys``) of each pair; ``users`` broadcast against ``items``."""
        query = users * self.n_items + items
        if len(self.keys) == 0:
            return torch.zeros_like(query, dtype=torch.bool), torch.zeros_like(query)
        pos = torch.searchsorted(self.keys, query).clamp_(max=len(self.keys) - 1)
        return self.keys[pos] == query, pos

    def contains(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Boolean tensor: is (``users[k]``, ``items[k]``) one of the indexed pairs?"""
        if self.bits is None:
            return self._search(users, items)[0]
        query = users * self.n_items + items
        inside = query < self._n_keys  # users past the last indexed one hold no pair
        word = self.bits[torch.where(inside, query, 0) >> 6]
        return inside & (((word >> (query & 63)) & 1) == 1)

    def lookup(self, users: torch.Tensor, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(found mask, value of each pair); the value is 0 where the pair is not indexed."""
        if self.values is None:
            raise ValueError("PairIndex.lookup: this index was built without values")
        found, pos = self._search(users, items)
        if len(self.keys) == 0:
            return found, torch.zeros(found.shape, dtype=self.values.dtype, device=found.device)
        vals = self.values[pos]
        return found, torch.where(found, vals, torch.zeros((), dtype=vals.dtype, device=vals.device))
