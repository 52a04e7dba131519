"""Logging and progress bars shared by every stage.

Logs say what was read, dropped and written, with counts. Progress bars (tqdm) are shown on
anything that takes more than a few seconds; they write to stderr and disable themselves when
stderr is not a terminal unless ``SIMGR_PROGRESS=1``.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Iterable, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")

_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"


def get_logger(name: str) -> logging.Logger:
    """Return a logger under the ``simgr`` namespace, configuring the root handler once."""
    root = logging.getLogger("simgr")
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(_FORMAT, datefmt="%H:%M:%S"))
        root.addHandler(handler)
        root.setLevel(os.environ.get("SIMGR_LOG_LEVEL", "INFO"))
        root.propagate = False
    return root.getChild(name.removeprefix("pipeline.").removeprefix("stages."))


def _progress_enabled() -> bool:
    flag = os.environ.get("SIMGR_PROGRESS")
    if flag is not None:
        return flag not in ("0", "false", "no", "")
    return sys.stderr.isatty()


def progress(iterable: Iterable[T] | None = None, **kwargs) -> "tqdm[T]":
    """A tqdm progress bar on stderr that stays quiet in logs and CI unless asked for."""
    kwargs.setdefault("disable", not _progress_enabled())
    kwargs.setdefault("file", sys.stderr)
    kwargs.setdefault("dynamic_ncols", True)
    kwargs.setdefault("mininterval", 0.5)
    return tqdm(iterable, **kwargs)
