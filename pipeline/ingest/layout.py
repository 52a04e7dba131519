"""Where user, item, rating and timestamp are in a delimited ratings file: given, or detected.

A :class:`Layout` is the field separator, whether line 1 is a header, the file's column names
and the column of each role. Each part can be given (``datasets.<name>`` keys ``sep``,
``header``, ``columns``, ``fields``; ``simgr ingest --sep --header/--no-header --columns``);
what is not given is detected from the first lines:

- separator: the one of tab , ; | that splits every sample line into the same number (>= 2) of
  fields, the most fields winning;
- header: line 1 is a header when one of its fields is a role name (:data:`ALIASES`, any case,
  ``_`` and spaces ignored), or is text where every later sample line holds a number;
- column names: ``columns``, else the header's fields, else (no header) ``column1``,
  ``column2``, ... -- or user, item, rating, timestamp in that order for a file of 2-4 fields
  whose roles are not given;
- roles: ``fields`` (a column name or a 1-based position), else the column named like the role
  (:data:`ALIASES`); no timestamp column is allowed (every timestamp is then 0).

A role that is not found is a UserError naming it and the columns found.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from pipeline.errors import UserError
from pipeline.ingest.csvfile import read_header
from pipeline.ingest.textio import first_lines

ROLES = ("user", "item", "rating", "timestamp")
OPTIONAL = frozenset({"timestamp"})
SEPARATORS = ("\t", ",", ";", "|")
SAMPLE_LINES = 20
#: column names recognised for each role, lower case without '_', '-' and spaces
ALIASES = {
    "user": ("user", "userid", "reviewerid", "uid", "customer", "customerid", "visitorid"),
    "item": ("item", "itemid", "asin", "parentasin", "movieid", "productid", "product", "iid", "bookid", "businessid"),
    "rating": ("rating", "ratings", "score", "stars", "overall"),
    "timestamp": ("timestamp", "time", "ts", "unixtime", "unixreviewtime", "unixtimestamp"),
}
_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")
HOW = "say which column it is: datasets.<name>.fields, or simgr ingest --columns user,item,rating[,timestamp]"


@dataclass(frozen=True)
class Layout:
    sep: str
    header: bool
    names: list[str]  # the file's columns, in order
    roles: dict[str, str]  # role -> column name; no "timestamp" when the file has none


def normalise(name: str) -> str:
    return re.sub(r"[\s_\-]", "", str(name)).lower()


def _split(line: str, sep: str) -> list[str]:
    return [f.strip() for f in next(csv.reader([line], delimiter=sep))]


def sniff_separator(lines: Sequence[str]) -> str | None:
    """The separator that splits every line into the same number (>= 2) of fields, or None."""
    best: tuple[str, int] | None = None
    for sep in SEPARATORS:
        counts = {len(_split(line, sep)) for line in lines}
        if len(counts) == 1 and (n := counts.pop()) >= 2 and (best is None or n > best[1]):
            best = (sep, n)
    return best[0] if best else None


def is_header(first: Sequence[str], rest: Sequence[Sequence[str]]) -> bool:
    """Line 1 (``first``, split) is a header: it names a role, or it is text above a number column."""
    known = {alias for aliases in ALIASES.values() for alias in aliases}
    if any(normalise(field) in known for field in first):
        return True
    return bool(rest) and any(
        not _NUMBER.match(first[j]) and all(j < len(row) and _NUMBER.match(row[j]) for row in rest) for j in range(len(first))
    )


def has_header(lines: Sequence[str], sep: str) -> bool:
    """Whether the first of the sample ``lines`` is a header, split by ``sep``."""
    rows = [_split(line, sep) for line in lines]
    return is_header(rows[0], rows[1:])


def assign_roles(path: Path, names: Sequence[str], fields: Mapping[str, Any] | None, header: bool = True) -> dict[str, str]:
    """role -> column name, from ``fields`` (names or 1-based positions) or the column names."""
    fields = dict(fields or {})
    unknown = sorted(set(fields) - set(ROLES))
    if unknown:
        raise UserError(f"{path}: fields {unknown} are not among {list(ROLES)}")
    found = f"columns found: {list(names)}" + ("" if header else " (no header line: named by position)")
    roles: dict[str, str] = {}
    for role in ROLES:
        spec = fields.get(role)
        if isinstance(spec, int) and not isinstance(spec, bool):
            if not 1 <= spec <= len(names):
                raise UserError(f"{path}: {role} is column {spec}, but the lines have {len(names)} fields; {found}")
            roles[role] = names[spec - 1]
        elif spec is not None:
            if str(spec) not in names:
                raise UserError(f"{path}: no column '{spec}' ({role}); {found}")
            roles[role] = str(spec)
        else:
            match = role if role in names else next((n for n in names if normalise(n) in ALIASES[role]), None)
            if match is not None:
                roles[role] = match
            elif role not in OPTIONAL:
                raise UserError(f"{path}: no {role} column; {found}; {HOW}")
    taken = [c for c in roles.values()]
    repeated = sorted({c for c in taken if taken.count(c) > 1})
    if repeated:
        raise UserError(f"{path}: column '{repeated[0]}' is given two roles ({', '.join(r for r, c in roles.items() if c == repeated[0])}); {HOW}")
    return roles


def resolve_layout(
    path: Path,
    *,
    sep: str | None = None,
    header: bool | None = None,
    columns: Sequence[str] | None = None,
    fields: Mapping[str, Any] | None = None,
    encoding: str = "utf-8",
) -> Layout:
    """The layout of the delimited file ``path``: what is given, the rest detected."""
    if sep is None or header is None or (not header and not columns):
        lines = first_lines(path, SAMPLE_LINES)
        if not lines:
            raise UserError(f"{path}: the file is empty")
        if sep is None:
            sep = sniff_separator(lines)
            if sep is None:
                raise UserError(
                    f"{path}: cannot tell the field separator from the first lines (e.g. {lines[0][:80]!r}); "
                    "give it: datasets.<name>.sep, or simgr ingest --sep"
                )
        if header is None:
            header = has_header(lines, sep)
        width = len(_split(lines[0], sep))
    if columns:
        names = [str(c) for c in columns]
    elif header:
        names = read_header(path, sep, encoding)
    elif not fields and width <= len(ROLES):
        names = list(ROLES[:width])
    else:
        names = [f"column{j}" for j in range(1, width + 1)]
    return Layout(sep, bool(header), names, assign_roles(path, names, fields, header=bool(header) or bool(columns)))
