"""The selected hyper-parameters of one (dataset, model) study: the file studies write and runs read.

``tuning/<ds>/<model>/selected.json`` (written by the tune stage, committed) holds the values a
study chose on validation, as dotted params keys: ``train.lr``, ``models.<model>.<key>``, and for
SiMGR the signed graph's ``pst.nu``, ``apfi.xi``, ``apfi.zeta_pos``, ``apfi.zeta_neg``. A run uses
a selected value only for a key params.yaml sets to ``auto`` (:mod:`pipeline.run.models`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipeline.errors import UserError

TUNING = Path("tuning")
SELECTED = "selected.json"
TRIALS = "trials.csv"
#: the keys a study may select, by prefix
PREFIXES = ("train.", "models.", "pst.", "apfi.")
#: keys that shape the signed graph (the graph stage takes them from SiMGR's study)
GRAPH_PREFIXES = ("pst.", "apfi.")


def study_dir(dataset: str, model: str) -> Path:
    return TUNING / dataset / model


def read_selected(path: str | Path) -> dict[str, Any]:
    """The ``values`` of a ``selected.json`` (dotted key -> value); UserError naming the file when malformed."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: not found (the tune stage writes it; run `dvc repro` or `simgr tune`)")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from None
    values = data.get("values") if isinstance(data, dict) else None
    if not isinstance(values, dict):
        raise UserError(f"{path}: expected an object with a 'values' mapping of dotted params keys")
    bad = [k for k in values if not str(k).startswith(PREFIXES)]
    if bad:
        raise UserError(f"{path}: key {bad[0]!r} is not a tunable params key (expected one under {list(PREFIXES)})")
    return values
