"""Shared entry-point wrapper: user errors become one line on stderr and exit status 2."""

from __future__ import annotations

import sys
from typing import Callable

from pipeline.errors import UserError


def run_stage(fn: Callable[..., object], argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    try:
        fn(*args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except TypeError as exc:
        if "positional argument" in str(exc):
            print(f"error: usage: python -m {fn.__module__} <arguments> ({exc})", file=sys.stderr)
            raise SystemExit(2) from None
        raise
