"""Vectorised uniform negative sampling and epoch batching, on the training device.

For each positive (u, i) the BPR loss (eq. 1) needs one item j the user did not interact with
in training. :class:`NegativeSampler` draws j uniformly from all items, then redraws only the
rejected entries (items the user has) until none are left: every step is one vectorised call,
membership is a binary search over the training pairs' sorted keys
(:class:`pipeline.graph.pairs.PairIndex`). With the usual sparsity (a user holds far less than 1%
of the items) one redraw round touches a handful of entries.

All randomness comes from a ``torch.Generator`` on the sampling device, so a run is reproduced
from the generator's state (which the trainer checkpoints).
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
        degree = self.index.user_degree(self.n_users).cpu().numpy()
        full = np.flatnonzero(degree >= self.n_items)
        if len(full):
            raise UserError(
                f"user {int(full[0])} (and {len(full) - 1} other(s)) interacted with all {self.n_items} items "
                "in training: no negative item can be sampled for them"
            )

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
        neg = torch.randint(self.n_items, users.shape, generator=generator, device=self.device)
        bad = torch.nonzero(self.contains(users, neg)).squeeze(1)
        while len(bad):
            redraw = torch.randint(self.n_items, bad.shape, generator=generator, device=self.device)
            neg[bad] = redraw
            bad = bad[self.contains(users[bad], redraw)]
        return neg


def epoch_batches(n: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """A shuffled permutation of ``range(n)`` cut into batches of ``batch_size`` (last one smaller)."""
    if batch_size <= 0:
        raise UserError(f"params.yaml: train.batch_size must be positive, got {batch_size}")
    perm = torch.randperm(n, generator=generator, device=generator.device)
    return list(torch.split(perm, batch_size))
