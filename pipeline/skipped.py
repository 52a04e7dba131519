"""A training run that cannot run on its dataset (a model reading item features on a dataset without
any): its run folder holds only ``skipped.json`` with the reason, written by the train stage and
read by evaluation and the report, which leave the run out and say so."""

from __future__ import annotations

import shutil
from pathlib import Path

from pipeline.jsonio import read_json, write_json

SKIPPED = "skipped.json"


def write_skipped(run_dir: str | Path, reason: str) -> Path:
    """Replace ``run_dir`` with a folder holding only ``skipped.json``."""
    shutil.rmtree(run_dir, ignore_errors=True)
    return write_json({"skipped": reason}, Path(run_dir) / SKIPPED)


def skipped(run_dir: str | Path) -> str | None:
    """The reason a run was skipped, or None for a run that trained."""
    path = Path(run_dir) / SKIPPED
    return str(read_json(path).get("skipped")) if path.exists() else None
