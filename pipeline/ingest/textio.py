"""Opening raw files that may be gzip-compressed, and reading them in bounded pieces.

Compression is detected from the content (the gzip magic bytes), not from the file name, so a
``.json`` that is really gzip, or a ``.gz`` that was already decompressed, both read correctly.
Nothing here loads a whole file: lines and blocks are yielded one at a time. A UTF-8 byte-order
mark at the start of the (decompressed) content is skipped; UTF-16 text is refused with one line.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import BinaryIO, Iterator

from pipeline.errors import UserError

GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
BLOCK_BYTES = 32 << 20


def require_file(path: str | Path, what: str = "input") -> Path:
    """``path`` as a Path, or a UserError saying the ``what`` file is missing (or is a folder)."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path}: is a folder, expected the {what} file")
    if not path.is_file():
        raise UserError(f"{path}: {what} file not found")
    return path


def is_gzip(path: str | Path) -> bool:
    with Path(path).open("rb") as fh:
        return fh.read(2) == GZIP_MAGIC


def open_binary(path: str | Path) -> BinaryIO:
    """A binary reader over the decompressed content of ``path`` (gzip or plain), after a UTF-8
    byte-order mark if there is one; UTF-16 text is a UserError."""
    path = require_file(path)
    fh = gzip.open(path, "rb") if is_gzip(path) else path.open("rb")
    try:
        start = fh.read(3)
    except (OSError, EOFError) as exc:
        fh.close()
        raise UserError(f"{path}: cannot be read ({exc})") from None
    if start[:2] in UTF16_BOMS:
        fh.close()
        raise UserError(f"{path}: UTF-16 text (it starts with a UTF-16 byte-order mark); save it as UTF-8 (or latin-1) text")
    if start != UTF8_BOM:
        fh.seek(0)
    return fh  # type: ignore[return-value]


def iter_lines(path: str | Path) -> Iterator[tuple[int, bytes]]:
    """Yield ``(line_number, raw_line_bytes)`` (1-based, without the newline) for every line."""
    with open_binary(path) as fh:
        try:
            for number, raw in enumerate(fh, 1):
                yield number, raw.rstrip(b"\r\n")
        except (OSError, EOFError) as exc:  # truncated or corrupt gzip stream
            raise UserError(f"{path}: cannot be read to the end ({exc})") from None


def first_lines(path: str | Path, n: int = 5) -> list[str]:
    """The first ``n`` non-blank lines, decoded leniently (for format detection)."""
    out: list[str] = []
    for _, raw in iter_lines(path):
        if raw.strip():
            out.append(raw.decode("utf-8", errors="replace"))
            if len(out) == n:
                break
    return out


def iter_blocks(path: str | Path, block_bytes: int | None = None, skip_lines: int = 0) -> Iterator[tuple[int, bytes]]:
    """Yield ``(first_line_number, block)``: whole lines only, about ``block_bytes`` each.

    ``skip_lines`` leading lines (a header) are not yielded; line numbers still count them.
    Each block ends with a newline (one is added to a last line that lacks it).
    """
    block_bytes = block_bytes or BLOCK_BYTES
    with open_binary(path) as fh:
        line = 1
        for _ in range(skip_lines):
            if not fh.readline():
                return
            line += 1
        rest = b""
        while True:
            try:
                chunk = fh.read(block_bytes)
            except (OSError, EOFError) as exc:
                raise UserError(f"{path}: cannot be read to the end ({exc})") from None
            if not chunk:
                break
            data = rest + chunk
            cut = data.rfind(b"\n")
            if cut < 0:
                rest = data
                continue
            block, rest = data[: cut + 1], data[cut + 1 :]
            yield line, block
            line += block.count(b"\n")
        if rest:
            yield line, rest + b"\n"
