"""``datasets.<name>``: one raw source, its keys depending on its ``format``.

``format`` picks the schema: ``amazon2014``, ``amazon2018``, ``mmrec``, ``generic`` (delimited
text or parquet of the user's own ratings, :mod:`pipeline.ingest.generic`), or ``auto`` (the
default: detected from the file content). Every entry has ``reviews`` (the interactions file)
and may have ``source``, ``meta``, ``images`` (an Amazon 2014 ``.b`` CNN-vector file, or a folder
of item image files, :mod:`pipeline.ingest.image_files`), ``images_pattern`` (how the folder's
files are named) and ``image_dim``; only ``generic`` has the delimited-text and item-table keys. A new format is one class here plus its tag in
:data:`DatasetEntry`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Optional, Union

from pydantic import AfterValidator, Discriminator, Field, Tag

from pipeline.settings.types import Char, Column, FilePath, Flag, PositiveInt, Section, Source, Text, closest

FORMATS = ("auto", "amazon2014", "amazon2018", "mmrec", "generic")
ROLES = ("user", "item", "rating", "timestamp")
TEXT_FIELDS = ("title", "brand", "description")
_FORMAT = f"the reader, one of {', '.join(FORMATS)}"


def _images_pattern(value: Any) -> Any:
    """As :func:`pipeline.ingest.image_files.check_pattern` (not imported: stage check reads pipeline/settings only)."""
    if value.count("{item}") != 1:
        raise ValueError(f"{value!r} must hold {{item}} exactly once (where the item id stands in the file name)")
    if "/" in value or "\\" in value:
        raise ValueError(f"{value!r} is a file name pattern; it cannot name a subfolder")
    return value


ImagesPattern = Annotated[Text, AfterValidator(_images_pattern),
                          Field(description="a file name pattern with {item} where the item id stands, e.g. '{item}.jpg'")]


class _Entry(Section):
    source: Source = "shipped"
    reviews: FilePath
    meta: Optional[FilePath] = None
    images: Optional[FilePath] = None          # a .b file (Amazon 2014 CNN vectors) or a folder of item images
    images_pattern: Optional[ImagesPattern] = None   # folder only; default: item id + an image extension
    image_dim: Optional[PositiveInt] = None


class AutoEntry(_Entry):
    format: Literal["auto"] = Field("auto", description=_FORMAT)


class Amazon2014Entry(_Entry):
    format: Literal["amazon2014"] = Field(description=_FORMAT)


class Amazon2018Entry(_Entry):
    format: Literal["amazon2018"] = Field(description=_FORMAT)


class MMRecEntry(_Entry):
    format: Literal["mmrec"] = Field(description=_FORMAT)


class Fields(Section):
    """Which file column holds each role (a header name or a 1-based position)."""

    user: Optional[Column] = None
    item: Optional[Column] = None
    rating: Optional[Column] = None
    timestamp: Optional[Column] = None


def _items_text(value: Any) -> Any:
    """A list of the item table's column names (any), or a mapping {title|brand|description: column}."""
    if isinstance(value, list):
        if not value or not all(isinstance(c, str) and c for c in value):
            raise ValueError(f"{value!r} is not a non-empty list of column names")
        if len(set(value)) != len(value):
            raise ValueError(f"{value!r} names a column twice")
        return value
    if not isinstance(value, dict) or not value:
        raise ValueError(f"{value!r} is neither a list of column names nor a mapping {{field: column}}")
    for name in value:
        if name not in TEXT_FIELDS:
            hint = closest(name, TEXT_FIELDS)
            raise ValueError(f"{name!r} is not one of {', '.join(TEXT_FIELDS)}" + (f" (did you mean {hint!r}?)" if hint else
                             " (or give a list of column names)"))
    if not all(isinstance(c, str) and c for c in value.values()):
        raise ValueError(f"{value!r}: each text field maps to a column name")
    return value


ItemsText = Annotated[Any, AfterValidator(_items_text),
                      Field(description="a list of the item table's columns, or a mapping {title|brand|description: column}")]
ColumnNames = Annotated[list[Text], Field(min_length=1, description="a non-empty list of column names, in file order")]


class GenericEntry(_Entry):
    """Delimited text (CSV/TSV, plain or gzip) or parquet; anything not given is detected."""

    format: Literal["generic"] = Field(description=_FORMAT)
    sep: Optional[Char] = None
    header: Optional[Flag] = None
    columns: Optional[ColumnNames] = None
    fields: Optional[Fields] = None
    encoding: Text = "utf-8"
    quote: Optional[Char] = '"'
    items: Optional[FilePath] = None
    items_sep: Optional[Char] = None
    items_header: Flag = True
    items_columns: Optional[ColumnNames] = None
    items_encoding: Text = "utf-8"
    items_quote: Optional[Char] = '"'
    items_id: Text = "item"
    items_text: Optional[ItemsText] = None
    items_flags_as_categories: Optional[ColumnNames] = None


ENTRIES: dict[str, type[_Entry]] = {
    "auto": AutoEntry,
    "amazon2014": Amazon2014Entry,
    "amazon2018": Amazon2018Entry,
    "mmrec": MMRecEntry,
    "generic": GenericEntry,
}


def _format_of(value: Any) -> str | None:
    if not isinstance(value, dict):
        return None
    fmt = value.get("format", "auto")
    return fmt if isinstance(fmt, str) and fmt in ENTRIES else None


DatasetEntry = Annotated[
    Union[tuple(Annotated[cls, Tag(tag)] for tag, cls in ENTRIES.items())],  # type: ignore[misc]
    Discriminator(_format_of, custom_error_type="dataset_format", custom_error_message="not a dataset entry"),
    Field(description=f"a dataset entry: a mapping with format ({', '.join(FORMATS)}) and reviews"),
]
