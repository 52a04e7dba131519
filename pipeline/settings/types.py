"""The building blocks of the params schema: the section base class and the value types.

Every value type carries the words an error message shows after "expected" (its
``description``), so a schema field reads as what it accepts: ``lr: PositiveFloat = 1e-3``.
Types are strict: a quoted number (``"0.8"``) is not a number, ``1`` is not ``true``, ``2.0`` is
not an integer; an integer is a valid float.
"""

from __future__ import annotations

import difflib
from typing import Annotated, Any, Iterable, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WrapSerializer, WrapValidator


class Section(BaseModel):
    """A mapping of params.yaml: unknown keys are errors, values are not coerced; a validated
    section is read-only (the one typed settings object, passed around as it is)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def closest(name: str, choices: Iterable[str]) -> str | None:
    """The choice nearest to ``name`` (for "did you mean ...?"), or None when nothing is close."""
    found = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.6)
    return found[0] if found else None


def _float(description: str, **bounds: float) -> Any:
    return Annotated[float, Field(allow_inf_nan=False, description=description, **bounds)]


PositiveInt = Annotated[int, Field(gt=0, description="a positive integer")]
NonNegativeInt = Annotated[int, Field(ge=0, description="an integer >= 0")]
Seed = Annotated[int, Field(ge=0, description="a seed (an integer >= 0)")]
Number = _float("a finite number")
PositiveFloat = _float("a positive float", gt=0)
NonNegativeFloat = _float("a float >= 0", ge=0)
Fraction = _float("a number in [0, 1]", ge=0, le=1)
Similarity = _float("a similarity in [-1, 1]", ge=-1, le=1)
DropoutRate = _float("a rate in [0, 1)", ge=0, lt=1)
KeepRate = _float("a rate in (0, 1]", gt=0, le=1)
Flag = Annotated[bool, Field(description="true or false")]
Text = Annotated[str, Field(min_length=1, description="a non-empty string")]
FilePath = Annotated[str, Field(min_length=1, description="a file path (relative to the repository root)")]
Char = Annotated[str, Field(min_length=1, max_length=1, description="one character (e.g. ',' or '\\t')")]
Device = Annotated[str, Field(pattern=r"^(auto|cpu|cuda(:\d+)?)$", description="auto, cpu, cuda or cuda:<n>")]
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$", description="a name of letters, digits, '_' and '-'")]
Names = Annotated[list[Name], Field(description="a list of names")]
Seeds = Annotated[list[Seed], Field(min_length=1, description="a non-empty list of seeds (integers >= 0)")]
Metric = Annotated[
    str,
    Field(pattern=r"^(recall|ndcg|precision|map)@[1-9][0-9]*$", description="<metric>@<k>, metric one of recall, ndcg, precision, map"),
]
Protocol = Annotated[Literal["mmrec", "strict"], Field(description="mmrec or strict")]
SplitMethod = Annotated[Literal["random", "temporal"], Field(description="random or temporal")]
OnError = Annotated[Literal["raise", "skip"], Field(description="raise or skip")]
Source = Annotated[Literal["shipped", "synthetic", "download"], Field(description="shipped, synthetic or download")]
Precision = Annotated[Literal["float32", "bfloat16"], Field(description="float32 or bfloat16")]


def _column(value: Any) -> Any:
    """A file column: its header name, or its 1-based position."""
    if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "" or (isinstance(value, int) and value < 1):
        raise ValueError(f"{value!r} is neither a column name nor a 1-based position (expected a header name or an integer >= 1)")
    return value


Column = Annotated[Any, AfterValidator(_column), Field(description="a column name or a 1-based position")]


#: the value of a key chosen on validation by its model's study (``tune.spaces``), see :func:`auto_or`
AUTO = "auto"


def _pass_auto(value: Any, handler: Any) -> Any:
    return value if value == AUTO else handler(value)


def _dump_auto(value: Any, handler: Any) -> Any:
    return value if value == AUTO else handler(value)


def auto_or(kind: Any, description: str | None = None) -> Any:
    """``kind`` or the word ``auto``: a value selected on validation by the study that searches the
    key (``tune.spaces``; with ``tune.enabled: false``, the model's default). An error about any
    other value is the one ``kind`` gives, naming the key as usual."""
    description = description or next(
        (m.description for m in getattr(kind, "__metadata__", ()) if getattr(m, "description", None)), "a value")
    return Annotated[kind, WrapValidator(_pass_auto), WrapSerializer(_dump_auto),
                     Field(description=f"{description}, or auto (selected on validation)")]


def is_auto(value: Any) -> bool:
    return isinstance(value, str) and value == AUTO
