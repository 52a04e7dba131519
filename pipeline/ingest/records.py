"""What every interaction reader returns, and what it does with a bad line.

Readers turn a file into the *raw interaction frame*: one row per record, in file order, with
the raw ids still as strings::

    user str, item str, rating float64, timestamp int64, line int64

``line`` is the record's 1-based line number in its file (the file order used for tie-breaks
and error messages). ``user``/``item``/``rating``/``timestamp`` may be null: missing values are
dropped, and counted, by :mod:`pipeline.ingest.clean`, not by the readers. Blank lines are not
records and are skipped.

A line that cannot be parsed at all (invalid JSON, a rating that is not a number, too many
fields) goes through :class:`BadLines`: with ``on_error = raise`` it is a one-line
:class:`UserError` ``file:line: what was wrong``; with ``skip`` it is counted by reason and the
reader carries on.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import polars as pl

from pipeline.errors import UserError
from pipeline.log import get_logger

log = get_logger(__name__)

RAW_SCHEMA: dict[str, pl.DataType] = {
    "user": pl.String(),
    "item": pl.String(),
    "rating": pl.Float64(),
    "timestamp": pl.Int64(),
    "line": pl.Int64(),
}

ON_ERROR = ("raise", "skip")


class BadLines:
    """The ``ingest.on_error`` policy: raise at the first bad line, or count it by reason."""

    def __init__(self, on_error: str = "raise", log_first: int = 5):
        if on_error not in ON_ERROR:
            raise UserError(f"params.yaml: ingest.on_error must be one of {list(ON_ERROR)}, got {on_error!r}")
        self.on_error = on_error
        self.counts: Counter[str] = Counter()
        self._log_first = log_first

    def __call__(self, path: str | Path, line: int, reason: str, detail: str) -> None:
        message = f"{path}:{line}: {detail}"
        if self.on_error == "raise":
            raise UserError(message)
        self.counts[reason] += 1
        if sum(self.counts.values()) <= self._log_first:
            log.warning("skipped %s", message)

    def as_dict(self) -> dict[str, int]:
        return dict(sorted(self.counts.items()))
