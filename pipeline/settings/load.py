"""Reading ``params.yaml``: parsed, validated against the schema, returned as the typed
:class:`~pipeline.settings.sections.Params` every stage and command reads (``params.train.lr``).

An unknown key, a wrong type, an out-of-range value or a key written twice is one
:class:`~pipeline.errors.UserError` line naming the key. Stages read only the sections they list
under ``params:`` in ``dvc.yaml``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from pipeline.errors import UserError
from pipeline.settings.sections import Params
from pipeline.settings.validate import validate_params

PARAMS_FILE = Path("params.yaml")


class ParamsLoader(yaml.SafeLoader):
    """PyYAML's safe loader, reading ``1e-05`` as a float as YAML 1.2 does. DVC writes params with
    ruamel (``dvc exp run -S train.lr=1e-5`` writes ``lr: 1e-05``), which PyYAML alone reads as text."""


ParamsLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _mapping(loader: ParamsLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    """A YAML mapping, refusing a key written twice (YAML says keys are unique; PyYAML keeps the last)."""
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise UserError(f"{loader.name}:{key_node.start_mark.line + 1}: key {key!r} is written twice in one mapping "
                            f"(first on line {seen[key] + 1}; YAML keys are unique, remove one)")
        seen[key] = key_node.start_mark.line
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


ParamsLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def read_params_file(path: str | Path = PARAMS_FILE) -> dict[str, Any]:
    """The parsed params file as a plain mapping (not validated): YAML syntax errors and duplicate
    keys are one line with their line number."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: params file not found (run from the repository root)")
    if path.is_dir():
        raise UserError(f"{path}: is a folder, expected the params YAML file")
    try:
        with path.open() as fh:
            loader = ParamsLoader(fh)
            loader.name = str(path)
            try:
                data = loader.get_single_data() or {}
            finally:
                loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise UserError(f"{where}: not valid YAML ({getattr(exc, 'problem', None) or exc})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping at the top level")
    return data


def load_params(path: str | Path = PARAMS_FILE) -> Params:
    """The params file as the typed :class:`Params`, validated completely (every required section)."""
    params = validate_params(read_params_file(path), str(path), complete=True)
    assert params is not None  # complete validation either returns the whole Params or raises
    return params
