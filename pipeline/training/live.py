"""Per-validation curves with dvclive into a run's log folder (not a DVC output: they hold timings)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


class Live:
    """dvclive logging into ``log_dir`` (no dvc.yaml, no experiment); a no-op without a dir."""

    def __init__(self, log_dir: Path | None, resume: bool):
        self.live = None
        if log_dir is None:
            return
        from dvclive import Live as DvcLive

        log_dir.mkdir(parents=True, exist_ok=True)
        self.live = DvcLive(str(log_dir), dvcyaml=False, save_dvc_exp=False, report=None, resume=resume)

    def log(self, epoch: int, metrics: dict[str, float]) -> None:
        if self.live is None:
            return
        self.live.step = epoch
        for name, value in metrics.items():
            if value is not None and np.isfinite(value):
                self.live.log_metric(name, float(value), plot=True)
        self.live.make_summary()

    def end(self) -> None:
        if self.live is not None:
            self.live.end()
