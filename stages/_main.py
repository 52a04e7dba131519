"""Shared entry-point wrapper: user errors (and OS errors on a path) become one line on stderr and exit status 2."""

from __future__ import annotations

import os
import sys
from typing import Callable

from pipeline.errors import UserError, os_error_line


def run_stage(fn: Callable[..., object], argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    try:
        fn(*args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except OSError as exc:  # a path that cannot be read or written
        if os.environ.get("SIMGR_TRACEBACK"):
            raise
        print(f"error: {os_error_line(exc)}", file=sys.stderr)
        raise SystemExit(2) from None
    except TypeError as exc:
        if "positional argument" in str(exc):
            spec = getattr(sys.modules.get(fn.__module__), "__spec__", None)  # run as `python -m stages.<name>`: __main__
            print(f"error: usage: python -m {spec.name if spec else fn.__module__} <arguments> ({exc})", file=sys.stderr)
            raise SystemExit(2) from None
        raise
