"""What a study reads from params.yaml, written down so that a study re-runs only when that changes.

A study searches the keys of its space (``tune.spaces.<model>``) and sweeps (``tune.sweeps.<model>``)
at their candidate values, whatever params.yaml writes for them: ``-S pst.nu=0.8`` or
``-S models.simgr.reg=1e-3`` change what the final runs use, not what the study does. Everything
else a trial uses it reads from params.yaml: the model's other keys (an ``auto`` one at its
default), the ``train`` section, for SiMGR the signed graph's other keys and APFI's candidate
list length, and the study's own ``tune`` settings. :func:`study_inputs` is that, as a mapping;
the ``check`` stage writes it to ``tuning/inputs/<model>.json`` (committed) and each study stage
depends on that file instead of on params keys, so DVC re-runs a study exactly when its inputs
change.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.run.models import SEARCHED, model_entry
from pipeline.settings.sections import APFI, PST, Params
from pipeline.settings.types import is_auto
from pipeline.tuning.space import flat_keys

INPUTS_DIR = Path("tuning") / "inputs"


def inputs_file(model: str) -> Path:
    return INPUTS_DIR / f"{model}.json"


def study_models(params: Params) -> list[str]:
    """The models with a study (an entry in ``tune.spaces``), in params order."""
    return list((params.tune.spaces or {}) if params.tune else {})


def _section(values: dict[str, Any], prefix: str, searched: set[str], defaults: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in values.items():
        dotted = f"{prefix}.{key}"
        if dotted in searched:
            out[key] = SEARCHED
        elif is_auto(value):
            out[key] = f"auto -> default {defaults[key]!r}"
        else:
            out[key] = value
    return out


def study_inputs(params: Params, model: str) -> dict[str, Any]:
    """Every params value a study of ``model`` reads, with the keys it searches marked as such."""
    tune = params.tune
    space, sweeps = (tune.spaces or {}).get(model), (tune.sweeps or {}).get(model)
    searched = set(flat_keys(model, space)) | set(flat_keys(model, sweeps))
    entry = model_entry(params, model)
    fields = entry.cls.Params.model_fields
    out: dict[str, Any] = {
        "model": model,
        "class": entry.kind,
        "tune": {"enabled": tune.enabled, "seed": tune.seed, "max_trials": tune.max_trials,
                 "space": space.model_dump(exclude_none=True) if space else {},
                 "sweeps": sweeps.model_dump(exclude_none=True) if sweeps else {},
                 "pruning": tune.pruning.model_dump()},
        "models": _section(entry.values, f"models.{model}", searched, {k: f.default for k, f in fields.items()}),
        "model_train": {k: (SEARCHED if f"train.{k}" in searched else v) for k, v in entry.train.items()},
        "train": {k: (SEARCHED if f"train.{k}" in searched else v) for k, v in params.train.model_dump().items()},
        "evaluate": {"protocol": params.evaluate.protocol},
    }
    if entry.reads() & {"thresholds", "pseudo", "delta"}:
        for name, section in (("pst", params.pst), ("apfi", params.apfi)):
            cls = PST if name == "pst" else APFI
            out[name] = _section(dict(section), name, searched, {k: f.default for k, f in cls.model_fields.items()})
        out["neighbors"] = {"candidates": params.neighbors.candidates}
    return out
