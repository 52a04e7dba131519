"""Search spaces: ``tune.spaces.<model>`` in params.yaml, one list of values per params key.

A space mirrors params.yaml: ``train: {lr: [...]}``, ``model: {reg: [...]}`` (the model's own
section, i.e. ``models.<model>.reg``), ``pst: {nu: [...]}``, ``apfi: {...}``; it is flattened
into dotted keys (``train.lr``, ``models.<model>.reg``, ``pst.nu``) for Optuna and the selection.

A space whose grid holds at most ``tune.max_trials`` points is searched exhaustively with
Optuna's ``GridSampler``; a larger one gets ``tune.max_trials`` trials of ``TPESampler`` over the
same values (seeded). An empty or missing space means no study: the model runs at its
``params.yaml`` values and the selection is empty.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from pipeline.errors import UserError


@dataclass(frozen=True)
class Space:
    model: str
    values: dict[str, list[Any]]  # dotted key -> candidate values (in params order)
    max_trials: int

    @property
    def size(self) -> int:
        return math.prod(len(v) for v in self.values.values()) if self.values else 0

    @property
    def exhaustive(self) -> bool:
        """True when the whole grid fits the trial budget (GridSampler), else TPE over the grid's values."""
        return self.size <= self.max_trials

    @property
    def n_trials(self) -> int:
        return self.size if self.exhaustive else self.max_trials

    def without(self, keys: set[str]) -> "Space":
        """The space with the dotted ``keys`` left out (they then keep their params.yaml values)."""
        return Space(self.model, {k: v for k, v in self.values.items() if k not in keys}, self.max_trials)


SECTIONS = ("train", "model", "pst", "apfi")


def _flatten(model: str, spec: dict, where: str) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for section, keys in spec.items():
        if section not in SECTIONS:
            raise UserError(f"{where}.{section}: unknown section (expected one of {list(SECTIONS)})")
        if not isinstance(keys, dict):
            raise UserError(f"{where}.{section}: expected a mapping of keys to lists of values, got {keys!r}")
        prefix = f"models.{model}" if section == "model" else section
        flat.update({f"{prefix}.{key}": options for key, options in keys.items()})
    return flat


def parse_space(model: str, spec: Any, max_trials: int) -> Space:
    """The :class:`Space` of ``tune.spaces.<model>`` (sections of keys -> non-empty lists)."""
    where = f"params.yaml: tune.spaces.{model}"
    if spec is None:
        return Space(model, {}, max_trials)
    if not isinstance(spec, dict):
        raise UserError(f"{where}: expected a mapping of sections {list(SECTIONS)}, got {type(spec).__name__}")
    values: dict[str, list[Any]] = {}
    for key, options in _flatten(model, spec, where).items():
        key = str(key)
        if not isinstance(options, list) or not options:
            raise UserError(f"{where}: {key}: expected a non-empty list of values, got {options!r}")
        if len({repr(v) for v in options}) != len(options):
            raise UserError(f"{where}: {key}: the values {options} repeat")
        values[key] = list(options)
    if max_trials < 1:
        raise UserError(f"params.yaml: tune.max_trials must be a positive integer, got {max_trials}")
    return Space(model, values, max_trials)


def parse_sweeps(model: str, spec: Any, space: Space) -> dict[str, list[Any]]:
    """``tune.sweeps.<model>`` (sections as a space) as ordered dotted key -> values; a swept key
    must not also be searched."""
    where = f"params.yaml: tune.sweeps.{model}"
    if not spec:
        return {}
    if not isinstance(spec, dict):
        raise UserError(f"{where}: expected a mapping of sections {list(SECTIONS)}, got {type(spec).__name__}")
    sweeps = {}
    for key, options in _flatten(model, spec, where).items():
        if key in space.values:
            raise UserError(f"{where}: {key} is also in tune.spaces.{model} (a key is either searched or swept)")
        if not isinstance(options, list) or not options or len({repr(v) for v in options}) != len(options):
            raise UserError(f"{where}: {key}: expected a non-empty list of distinct values, got {options!r}")
        sweeps[key] = list(options)
    return sweeps
