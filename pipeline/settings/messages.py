"""pydantic's validation errors as one line: the key, the value and what is expected.

``params.yaml: pst.nuu: unknown key (did you mean 'nu'?)``,
``params.yaml: train.lr: 'fast' is not a number (expected a positive float)``.

The error's location is walked through the schema to find the dotted key (union tags dropped,
list items as ``[i]``), the field's description (the words after "expected"), the keys valid
at that place (for the suggestion) and a Literal's choices.
"""

from __future__ import annotations

import json
import types
import typing
from dataclasses import dataclass, field
from typing import Annotated, Any, Callable, Literal, Union, get_args, get_origin

from pydantic import BaseModel, Discriminator, Tag
from pydantic.fields import FieldInfo

from pipeline.settings.datasets import ENTRIES, FORMATS
from pipeline.settings.types import closest

#: what the value is not, by pydantic error type
NOT_A = {
    "int_type": "an integer", "int_parsing": "an integer", "int_from_float": "an integer",
    "float_type": "a number", "float_parsing": "a number", "finite_number": "a finite number",
    "bool_type": "true or false", "bool_parsing": "true or false",
    "string_type": "a string", "list_type": "a list", "tuple_type": "a list",
    "dict_type": "a mapping", "model_type": "a mapping", "model_attributes_type": "a mapping",
}
OUT_OF_RANGE = {"greater_than", "greater_than_equal", "less_than", "less_than_equal", "multiple_of"}


@dataclass
class Spot:
    """Where an error is, in words."""

    parts: list[str] = field(default_factory=list)
    description: str | None = None
    parent: type[BaseModel] | None = None  # the mapping whose key is the last part
    choices: tuple[str, ...] = ()
    key_error: bool = False  # the error is about a mapping key itself, not its value

    @property
    def key(self) -> str:
        return ".".join(self.parts)


def show(value: Any) -> str:
    """A value as the user wrote it (YAML-ish), shortened."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif value is None:
        text = "null"
    elif isinstance(value, str):
        text = repr(value)
    elif isinstance(value, (dict, list)):
        text = json.dumps(value, default=str)
    else:
        text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _unwrap(ann: Any) -> tuple[Any, list[Any]]:
    """``ann`` without Annotated/Optional wrappers, and the metadata they carried."""
    meta: list[Any] = []
    while True:
        origin = get_origin(ann)
        if origin is Annotated:
            ann, *extra = get_args(ann)
            meta.extend(extra)
        elif origin in (Union, types.UnionType) and type(None) in get_args(ann):
            rest = [a for a in get_args(ann) if a is not type(None)]
            ann = rest[0] if len(rest) == 1 else Union[tuple(rest)]  # type: ignore[assignment]
        else:
            return ann, meta


def _description(meta: list[Any]) -> str | None:
    return next((m.description for m in meta if isinstance(m, FieldInfo) and m.description), None)


def _is_model(node: Any) -> bool:
    return isinstance(node, type) and issubclass(node, BaseModel)


def _tagged(node: Any, meta: list[Any]) -> dict[str, Any] | None:
    """Tag -> member of a discriminated union (None when ``node`` is not one)."""
    if get_origin(node) not in (Union, types.UnionType) or not any(isinstance(m, Discriminator) for m in meta):
        return None
    members = {}
    for member in get_args(node):
        tag = next((m.tag for m in get_args(member)[1:] if isinstance(m, Tag)), None)
        members[tag] = member
    return members


def _extra_type(model: type[BaseModel]) -> Any:
    hints = typing.get_type_hints(model, include_extras=True)
    extra = hints.get("__pydantic_extra__")
    return get_args(extra)[1] if extra is not None and get_origin(extra) is dict else None


def locate(root: type[BaseModel], loc: tuple[Any, ...]) -> Spot:
    """Walk ``loc`` (a pydantic error location) through the schema ``root``."""
    spot = Spot()
    ann: Any = root
    for j, part in enumerate(loc):
        node, meta = _unwrap(ann)
        members = _tagged(node, meta)
        if part == "[key]":  # pydantic puts it after the key it is about
            continue
        if members is not None:
            ann = members.get(part)
        elif _is_model(node):
            spot.parent = node
            spot.parts.append(str(part))
            info = node.model_fields.get(part)
            ann = info.annotation if info is not None else _extra_type(node)
            spot.description = info.description if info is not None else None
        elif get_origin(node) is dict:
            spot.parts.append(str(part))
            spot.key_error = loc[j + 1 : j + 2] == ("[key]",)
            ann = get_args(node)[0 if spot.key_error else 1]
            spot.description = None
        elif get_origin(node) is list and isinstance(part, int):
            spot.parts[-1] += f"[{part}]"
            ann = get_args(node)[0]
        else:
            spot.parts.append(str(part))
            ann = None
    node, meta = _unwrap(ann)
    spot.description = _description(meta) or spot.description
    if get_origin(node) is Literal:
        spot.choices = tuple(str(c) for c in get_args(node))
    if spot.description is None and _is_model(node):
        spot.description = "a mapping"
    return spot


def _expected(spot: Spot, said: str = "") -> str:
    """`` (expected <description>)``, unless the message ``said`` it already."""
    return f" (expected {spot.description})" if spot.description and spot.description != said else ""


def _mean(name: str, choices: Any) -> str:
    hint = closest(name, choices)
    return f" (did you mean {hint!r}?)" if hint else ""


def _unknown_key(spot: Spot) -> str:
    name = spot.parts[-1]
    valid = list(spot.parent.model_fields) if spot.parent is not None else []
    hint = closest(name, valid)
    if hint:
        return f"unknown key (did you mean {hint!r}?)"
    owners = [fmt for fmt, cls in ENTRIES.items() if name in cls.model_fields]
    if spot.parent in ENTRIES.values() and owners:
        return f"unknown key for this format (a key of format {', '.join(owners)})"
    return f"unknown key (valid keys: {', '.join(valid)})" if valid else "unknown key"


def _dataset_format(spot: Spot, value: Any) -> tuple[str, str]:
    if not isinstance(value, dict):
        return spot.key, f"{show(value)} is not a mapping{_expected(spot)}"
    fmt = value.get("format")
    return f"{spot.key}.format", f"{show(fmt)} is not one of {', '.join(FORMATS)}{_mean(str(fmt), FORMATS)}"


def problem(error: dict[str, Any], root: type[BaseModel]) -> tuple[str, str]:
    """(dotted key, what is wrong) of one pydantic error."""
    spot = locate(root, tuple(error["loc"]))
    kind, value = error["type"], error.get("input")
    if kind == "dataset_format":
        return _dataset_format(spot, value)
    if spot.key_error:
        return spot.key, f"{show(value)} is not a valid name{_expected(spot)}"
    if kind == "extra_forbidden":
        return spot.key, _unknown_key(spot)
    if kind == "missing":
        return spot.key, f"missing{_expected(spot)}"
    if kind == "literal_error":
        return spot.key, f"{show(value)} is not one of {', '.join(spot.choices)}{_mean(str(value), spot.choices)}"
    if kind in NOT_A:
        return spot.key, f"{show(value)} is not {NOT_A[kind]}{_expected(spot, NOT_A[kind])}"
    if kind in OUT_OF_RANGE:
        return spot.key, f"{show(value)} is out of range{_expected(spot)}"
    if kind in ("too_short", "string_too_short"):
        return spot.key, f"{show(value)} is too short{_expected(spot)}"
    if kind in ("too_long", "string_too_long"):
        return spot.key, f"{show(value)} is too long{_expected(spot)}"
    if kind == "string_pattern_mismatch":
        return spot.key, f"{show(value)} is not valid{_expected(spot)}"
    if kind == "value_error":
        return spot.key, str(error["msg"]).removeprefix("Value error, ")
    return spot.key, f"{show(value)}: {error['msg']}{_expected(spot)}"


def one_line(errors: list[dict[str, Any]], root: type[BaseModel], label: Callable[[str], str]) -> str:
    """The first of pydantic's ``errors`` as ``<label(key)>: <problem>``, and how many more there are."""
    found = [problem(e, root) for e in errors]
    key, what = found[0]
    line = f"{label(key)}: {what}"
    if len(found) > 1:
        others = [k for k in dict.fromkeys(k for k, _ in found[1:]) if k != key]
        more = f"; also {', '.join(others[:3])}{', ...' if len(others) > 3 else ''}" if others else ""
        line += f" [{len(found) - 1} more problem(s){more}]"
    return line
