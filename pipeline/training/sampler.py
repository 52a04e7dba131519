"""Vectorised uniform negative sampling and epoch batching, on the training device.

For each positive (u, i) the BPR loss (eq. 1) needs one item j the user did not interact with in
training. :class:`NegativeSampler` draws j uniformly from exactly those items, without rejection
and so without a data-dependent loop (no host synchronisation on a GPU): with u's training items
sorted, s_0 < s_1 < ..., the r-th item u does *not* have is r + #{k : s_k - k <= r}; so a uniform
r in [0, n_items - deg_u) and one binary search over the sorted keys ``u * n_items + (s_k - k)``
give j. The offsets ``s_k - k`` are computed once from the training pairs.

All randomness comes from a ``torch.Generator`` on the sampling device (float64 uniforms, so the
draw is uniform to 2**-53), and a run is reproduced from the generator's state (which the
trainer checkpoints).
"""

from __future__ import annotations

import numpy as np
import torch

from pipeline.errors import UserError
from pipeline.graph.pairs import PairIndex


class NegativeSampler:
    """Uniform sampler of items a user did not interact with in training."""

    def __init__(self, n_users: int, n_items: int, users: np.ndarray, items: np.ndarray, device: torch.device | str = "cpu"):
        self.n_users = int(n_users)
        self.n_items = int(n_items)
        self.device = torch.device(device)
        self.index = PairIndex(users, items, self.n_items, self.device)
        degree = self.index.user_degree(self.n_users)
        full = np.flatnonzero(degree.cpu().numpy() >= self.n_items)
        if len(full):
            raise UserError(
                f"user {int(full[0])} (and {len(full) - 1} other(s)) interacted with all {self.n_items} items "
                "in training: no negative item can be sampled for them"
            )
        keys = self.index.keys  # sorted user * n_items + item, one per distinct pair
        start = torch.searchsorted(keys, torch.arange(self.n_users, device=self.device) * self.n_items)
        user = keys // self.n_items
        rank = torch.arange(len(keys), device=self.device) - start[user]  # k: position inside the user's items
        self._gaps = keys - rank  # u * n_items + (s_k - k), sorted
        self._start = start
        self._free = (self.n_items - degree).to(torch.float64)  # items each user does not have

    @property
    def keys(self) -> torch.Tensor:
        """The sorted unique keys ``user * n_items + item`` of the training pairs (on ``device``)."""
        return self.index.keys

    def contains(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Boolean tensor: did ``users[k]`` interact with ``items[k]`` in training?"""
        return self.index.contains(users, items)

    def sample(self, users: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """One uniformly drawn non-interacted item per entry of ``users`` (int64, same device)."""
        users = users.to(self.device)
        u = torch.rand(users.shape, generator=generator, device=self.device, dtype=torch.float64)
        r = (u * self._free[users]).long()  # uniform in [0, n_items - deg_u)
        before = torch.searchsorted(self._gaps, users * self.n_items + r, right=True) - self._start[users]
        return r + before


def epoch_batches(n: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """A shuffled permutation of ``range(n)`` cut into batches of ``batch_size`` (last one smaller)."""
    if batch_size <= 0:
        raise UserError(f"params.yaml: train.batch_size must be positive, got {batch_size}")
    perm = torch.randperm(n, generator=generator, device=generator.device)
    return list(torch.split(perm, batch_size))
