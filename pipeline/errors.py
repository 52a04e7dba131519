"""User-facing errors: one line naming the file, line or field and what was expected.

Raise :class:`UserError` for anything the user can fix (bad input, missing file, bad parameter).
The CLI and the stage entry points print its message on one line and exit with status 2,
without a traceback. Programming errors stay ordinary exceptions. An ``OSError`` that reaches an
entry point (a path that cannot be read or written) is printed the same way
(:func:`os_error_line`); ``SIMGR_TRACEBACK=1`` shows its traceback instead.
"""

from __future__ import annotations


class UserError(Exception):
    """An error caused by user input; its message is shown as one line, without a traceback."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


def where(path: object, line: int | None = None) -> str:
    """Format a location as ``file:line`` (or just ``file``) for error messages."""
    return f"{path}:{line}" if line is not None else f"{path}"


def os_error_line(exc: OSError) -> str:
    """One line for an ``OSError``: the path(s) it names and the system's reason."""
    paths = " -> ".join(str(p) for p in (exc.filename, exc.filename2) if p is not None)
    reason = exc.strerror or str(exc)
    return f"{paths}: {reason}" if paths else reason
