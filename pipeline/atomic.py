"""Outputs written atomically: into a temporary sibling, renamed over the target only on success.

A failure (a bad input found half-way, an interruption, a full disk) therefore never leaves a
half-written file or folder: the target keeps what it held before (or stays absent).

- :func:`atomic_file`: a temporary sibling path (``.<name>.<pid>.tmp``) to write one file to, then
  ``os.replace`` over the target. :func:`pipeline.jsonio.write_json`,
  :func:`pipeline.schemas.write_table` and the report's files go through it.
- :func:`atomic_dir`: a temporary sibling folder; on success it replaces the target folder as a
  whole (the old one is moved aside and removed), so files of an earlier run do not linger. For a
  folder that is one output of ours: features' ``vectors/``, neighbors' ``lists/``, the graph's
  ``candidates/``, ``eval/<ds>/<run>/``, the report's sweep and summary folders.
- :func:`staged_files`: a temporary sibling folder whose files are moved into the target folder one
  by one (``os.replace``) on success, the folder's other files left alone. For outputs that share
  their folder with files that are not ours: ``simgr ingest --out`` and ``simgr export --out`` (a
  folder of the user's), ``data/<ds>/ingest/`` (DVC's ``.gitignore``).
- :func:`writable_dir`: a folder that is a file, lies under a file, or cannot be created is one
  :class:`~pipeline.errors.UserError` line, checked before any work is done.

An ``OSError`` while writing (permission denied, no space left) becomes one UserError line naming
the target. Training runs keep their folder (``models/<ds>/<run>/``): it holds the checkpoint
``--resume`` continues from, so each of its files is written atomically instead.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Iterable, Iterator

from pipeline.errors import UserError


def _tmp_sibling(path: Path, kind: str) -> Path:
    path = path if path.name else path.absolute()  # "." (the current folder): beside it, in its parent
    return path.with_name(f".{path.name}.{os.getpid()}.{kind}")


def _os_error(exc: OSError, target: Path) -> UserError:
    where = exc.filename if exc.filename is not None else target
    return UserError(f"{where}: cannot write {target} ({exc.strerror or exc})")


def writable_dir(path: str | Path, what: str = "", create: bool = True) -> Path:
    """``path`` as a Path after checking that a folder can be there: neither it nor a folder above
    it is a file, and (``create``) it can be created. ``what`` prefixes the message (e.g. ``--out``)."""
    path = Path(path)
    label = f"{what} {path}" if what else f"{path}"
    for parent in [*reversed(path.parents), path]:
        if parent.exists() and not parent.is_dir():
            if parent == path:
                raise UserError(f"{label}: exists and is not a folder")
            raise UserError(f"{label}: {parent} is a file, so no folder can be made under it")
    if create:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"{label}: cannot create the folder ({exc.strerror or exc})") from None
    existing = next(p for p in [path, *path.parents] if p.exists())
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{label}: cannot write there ({existing} is not writable)")
    return path


def _make_parents(path: Path, label: str) -> list[Path]:
    """Create the missing folders above ``path``; the ones created, deepest first."""
    missing = [p for p in path.parents if not p.exists()]
    try:
        for p in reversed(missing):
            p.mkdir(exist_ok=True)
    except OSError as exc:
        raise UserError(f"{label}: cannot create the folder ({exc.strerror or exc})") from None
    return missing


def _remove_empty(folders: list[Path]) -> None:
    for p in folders:
        with contextlib.suppress(OSError):
            p.rmdir()


@contextlib.contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """A temporary sibling of ``path`` to write to; renamed over ``path`` when the block succeeds."""
    path = Path(path)
    tmp = _tmp_sibling(path, "tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        raise _os_error(exc, path) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _replace(src: Path, dst: Path) -> None:
    """Move ``src`` to ``dst``; a folder replaces a folder (the old one moved aside, then removed)."""
    if dst.is_dir() and not dst.is_symlink():
        old = _tmp_sibling(dst, "old")
        _remove(old)
        os.replace(dst, old)
        os.replace(src, dst)
        _remove(old)
    else:
        os.replace(src, dst)


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """A fresh temporary sibling folder of ``path`` to write the whole output into; it replaces
    ``path`` when the block succeeds and is removed when it fails."""
    path = Path(path)
    tmp = _tmp_sibling(path, "tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove(tmp)
        tmp.mkdir()
        yield tmp
        _replace(tmp, path)
    except OSError as exc:
        raise _os_error(exc, path) from None
    finally:
        _remove(tmp)


def previous_outputs(folder: Path, names: Iterable[str]) -> list[str]:
    """Which of ``names`` already exist in ``folder`` (an earlier run's outputs)."""
    return [n for n in names if (folder / n).exists()]


@contextlib.contextmanager
def staged_files(folder: str | Path, outputs: Iterable[str] = (), what: str = "") -> Iterator[Path]:
    """A temporary sibling folder of ``folder``; when the block succeeds each of its entries is moved
    into ``folder`` (created then) and every name of ``outputs`` it did not write is removed there (a
    stale output of an earlier run); other files in ``folder`` are left alone. When the block fails,
    nothing is created; with a UserError while ``folder`` holds some of ``outputs``, the message says
    they are an earlier run's, unchanged. ``what`` prefixes the folder in messages (e.g. ``--out``)."""
    folder = writable_dir(folder, what, create=False)
    label = f"{what} {folder}" if what else f"{folder}"
    outputs = list(outputs)
    tmp = _tmp_sibling(folder, "tmp")
    created = _make_parents(folder, label)
    done = False
    try:
        _remove(tmp)
        tmp.mkdir()
        try:
            yield tmp
        except UserError as exc:
            earlier = previous_outputs(folder, outputs)
            if earlier:
                raise UserError(f"{exc} [nothing written: {folder} still holds the earlier outputs {', '.join(earlier)}, "
                                "unchanged]") from None
            raise
        folder.mkdir(exist_ok=True)
        written = sorted(p.name for p in tmp.iterdir())
        for name in written:
            _replace(tmp / name, folder / name)
        for name in outputs:
            if name not in written:
                _remove(folder / name)
        done = True
    except OSError as exc:
        raise _os_error(exc, folder) from None
    finally:
        _remove(tmp)
        if not done:
            _remove_empty(created)
