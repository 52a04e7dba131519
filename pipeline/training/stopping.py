"""When to validate and when to stop: a cadence in optimiser steps, patience in validations.

The paper (§5.1) validates every epoch and stops after 20 epochs without improvement, on
datasets whose epoch is ~60 Adam steps of 2,048 pairs (Baby: 63). On a small dataset an epoch
can be a single step (Magazine: 1,430 training pairs), and "20 epochs" then means 20 steps:
far too little training. So the budget is counted in optimiser steps instead: a validation
happens at the end of the first epoch that completes at least ``valid_every_steps`` steps since
the previous one (every epoch when an epoch has that many), and patience and the budget count
validations. With ``valid_every_steps`` <= 63 this is exactly the paper's rule on its datasets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def steps_per_epoch(n_pairs: int, batch_size: int) -> int:
    """Optimiser steps of one pass over ``n_pairs`` training pairs in batches of ``batch_size``."""
    return max(1, math.ceil(n_pairs / batch_size))


def validation_interval(n_pairs: int, batch_size: int, valid_every_steps: int) -> int:
    """Epochs between two validations: the fewest whole epochs holding ``valid_every_steps`` steps."""
    return max(1, math.ceil(valid_every_steps / steps_per_epoch(n_pairs, batch_size)))


@dataclass
class EarlyStopping:
    """MMRec's rule, counted in validations: stop once more than ``patience`` validations in a row
    have not strictly improved the best score."""

    patience: int
    best_score: float = -np.inf
    best_epoch: int = 0
    bad: int = 0
    started: bool = False

    def update(self, score: float, epoch: int) -> bool:
        """Record one validation; True when it is the new best (the first one always is)."""
        score = score if np.isfinite(score) else -np.inf
        if not self.started or score > self.best_score:
            self.best_score, self.best_epoch, self.bad, self.started = score, epoch, 0, True
            return True
        self.bad += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.bad > self.patience

    def state(self) -> dict:
        return {"best_score": self.best_score, "best_epoch": self.best_epoch, "bad": self.bad, "started": self.started}

    @staticmethod
    def from_state(patience: int, state: dict) -> "EarlyStopping":
        return EarlyStopping(patience, **state)
