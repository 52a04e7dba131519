"""Search spaces: ``tune.spaces.<model>`` in params.yaml, one list of values per params key.

A space mirrors params.yaml: ``train: {lr: [...]}``, ``model: {reg: [...]}`` (the model's own
section, i.e. ``models.<model>.reg``), ``pst: {nu: [...]}``, ``apfi: {...}``; it is flattened
into dotted keys (``train.lr``, ``models.<model>.reg``, ``pst.nu``) for Optuna and the selection.
Every key must be one the model, the ``train`` section or the signed graph has, and every value
one that key accepts (:func:`check_space`: ``simgr check`` runs it).

A space whose grid holds at most ``tune.max_trials`` points is searched exhaustively (every grid
point enqueued); a larger one gets ``tune.max_trials`` trials of ``TPESampler`` over the same
values (seeded). An empty or missing space means no study: the model runs at its ``params.yaml``
values and the selection is empty.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError

from pipeline.errors import UserError
from pipeline.run.models import ModelEntry, written_schema
from pipeline.settings.sections import APFI, PST, SpaceSections, Train
from pipeline.settings.types import closest, is_auto


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
        """True when the whole grid fits the trial budget (every point is run), else TPE over the grid's values."""
        return self.size <= self.max_trials

    @property
    def n_trials(self) -> int:
        return self.size if self.exhaustive else self.max_trials

    def without(self, keys: set[str]) -> "Space":
        """The space with the dotted ``keys`` left out (they then keep their params.yaml values)."""
        return Space(self.model, {k: v for k, v in self.values.items() if k not in keys}, self.max_trials)


SECTIONS = ("train", "model", "pst", "apfi")


def flat(model: str, spec: SpaceSections | None) -> dict[str, list[Any]]:
    """``tune.spaces.<model>`` (or ``tune.sweeps.<model>``) as ordered dotted key -> values."""
    out: dict[str, list[Any]] = {}
    for section in SECTIONS:
        keys = getattr(spec, section, None) if spec is not None else None
        prefix = f"models.{model}" if section == "model" else section
        out.update({f"{prefix}.{key}": list(values) for key, values in (keys or {}).items()})
    return out


def flat_keys(model: str, spec: SpaceSections | None) -> list[str]:
    return list(flat(model, spec))


def parse_space(model: str, spec: SpaceSections | None, max_trials: int) -> Space:
    """The :class:`Space` of ``tune.spaces.<model>`` (the schema checked the shape; values must not repeat)."""
    values = flat(model, spec)
    for key, options in values.items():
        if len({repr(v) for v in options}) != len(options):
            raise UserError(f"params.yaml: tune.spaces.{model}: {key}: the values {options} repeat")
    return Space(model, values, max_trials)


def parse_sweeps(model: str, spec: SpaceSections | None, space: Space) -> dict[str, list[Any]]:
    """``tune.sweeps.<model>`` as ordered dotted key -> values; a swept key must not also be searched."""
    sweeps = flat(model, spec)
    for key, options in sweeps.items():
        if key in space.values:
            raise UserError(f"params.yaml: tune.sweeps.{model}: {key} is also in tune.spaces.{model} (a key is either searched or swept)")
        if len({repr(v) for v in options}) != len(options):
            raise UserError(f"params.yaml: tune.sweeps.{model}: {key}: the values {options} repeat")
    return sweeps


def check_space(entry: ModelEntry, spec: SpaceSections | None, where: str) -> None:
    """Every key of a space / sweep (``where``: ``tune.spaces.<model>``) is a key of its section and every
    value one that key accepts: one line naming the first that is not."""
    schemas = {"train": Train, "model": written_schema(entry.cls), "pst": PST, "apfi": APFI}
    for section in SECTIONS:
        for key, options in ((getattr(spec, section, None) if spec is not None else None) or {}).items():
            fields = schemas[section].model_fields
            if key not in fields:
                hint = closest(key, fields)
                owner = f"models.{entry.name}" if section == "model" else section
                raise UserError(f"params.yaml: {where}.{section}.{key}: not a key of {owner}"
                                + (f" (did you mean {hint!r}?)" if hint else f" (keys: {', '.join(fields)})"))
            adapter = TypeAdapter(entry.cls.Params.model_fields[key].rebuild_annotation() if section == "model"
                                  else fields[key].rebuild_annotation())
            for j, value in enumerate(options):
                if is_auto(value):
                    raise UserError(f"params.yaml: {where}.{section}.{key}[{j}]: a candidate is a value, not auto")
                try:
                    adapter.validate_python(value, strict=True)
                except ValidationError as exc:
                    problem = exc.errors()[0]["msg"]
                    raise UserError(f"params.yaml: {where}.{section}.{key}[{j}]: {value!r} is not a value of "
                                    f"{key} ({problem})") from None
