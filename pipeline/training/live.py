"""Per-validation curves with dvclive into a run's log folder (not a DVC output: they hold timings)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


class Live:
    """dvclive logging into ``log_dir`` (no dvc.yaml, no experiment); a no-op without a dir.

    Only the files: dvclive would otherwise open the DVC repository around it (and, in a git
    repository without DVC, initialise one), which costs time per run and fails in a repository
    without a commit yet ("Empty git repo"), so its repository lookup is switched off here.
    """

    def __init__(self, log_dir: Path | None, resume: bool):
        self.live = None
        if log_dir is None:
            return
        import dvclive.live
        from dvclive import Live as DvcLive

        log_dir.mkdir(parents=True, exist_ok=True)
        lookup, dvclive.live.get_dvc_repo = dvclive.live.get_dvc_repo, lambda: None
        try:
            self.live = DvcLive(str(log_dir), dvcyaml=False, save_dvc_exp=False, report=None, resume=resume)
        finally:
            dvclive.live.get_dvc_repo = lookup

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
