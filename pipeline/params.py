"""Reading ``params.yaml`` and writing small JSON reports, the same way in every stage.

:func:`load_params` validates the file against the schema (:mod:`pipeline.settings`) before a
stage or command does anything: an unknown key, a wrong type or an out-of-range value is one
:class:`~pipeline.errors.UserError` line naming the key. Stages read only the sections they list
under ``params:`` in ``dvc.yaml``; asking for a key that is not there is a UserError naming the
key (never a silent ``None``).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import yaml

from pipeline.errors import UserError
from pipeline.settings import validate_params

PARAMS_FILE = Path("params.yaml")


class ParamsLoader(yaml.SafeLoader):
    """PyYAML's safe loader, reading ``1e-05`` as a float as YAML 1.2 does. DVC writes params with
    ruamel (``dvc exp run -S train.lr=1e-5`` writes ``lr: 1e-05``), which PyYAML alone reads as text."""


ParamsLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def load_params(path: str | Path = PARAMS_FILE, *, complete: bool = False) -> dict[str, Any]:
    """The parsed params file, validated (``complete``: every required section and key present,
    as ``simgr check`` asks; otherwise absent keys are left to the stage that reads them)."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: params file not found (run from the repository root)")
    try:
        with path.open() as fh:
            data = yaml.load(fh, Loader=ParamsLoader) or {}  # noqa: S506 -- a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise UserError(f"{where}: not valid YAML ({getattr(exc, 'problem', None) or exc})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping at the top level")
    validate_params(data, str(path), complete=complete)
    return data


def get(params: dict[str, Any], dotted: str, default: Any = ...) -> Any:
    """``get(params, "pst.nu")``: the value at a dotted key, or a UserError naming it."""
    node: Any = params
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            if default is not ...:
                return default
            raise UserError(f"params.yaml: missing key '{dotted}'")
        node = node[part]
    return node


def _clean(obj: Any) -> Any:
    if isinstance(obj, float):
        return None if math.isnan(obj) or math.isinf(obj) else obj
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy / torch scalars
        return _clean(obj.item())
    return obj


def write_json(obj: Any, path: str | Path) -> Path:
    """Write ``obj`` as indented JSON with a trailing newline (stable bytes for DVC)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_clean(obj), indent=2, sort_keys=False) + "\n")
    return path


def read_json(path: str | Path) -> Any:
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: file not found")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from None
