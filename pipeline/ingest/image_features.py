"""The Amazon 2014 image-feature file ``image_features_<Cat>.b``.

The file is a sequence of records, each a 10-byte ASCII ASIN followed by 4096 little-endian
float32 values (the CNN features McAuley et al. released). Files are several GB, so reading
streams record by record and keeps only the requested ASINs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from pipeline.errors import UserError

ASIN_BYTES = 10
DEFAULT_DIM = 4096


def iter_image_features(path: str | Path, dim: int = DEFAULT_DIM) -> Iterator[tuple[str, np.ndarray]]:
    """Yield ``(asin, vector)`` for every record of a ``.b`` file, in file order."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: image feature file not found")
    record = ASIN_BYTES + 4 * dim
    with path.open("rb") as fh:
        index = 0
        while True:
            head = fh.read(ASIN_BYTES)
            if not head:
                return
            body = fh.read(4 * dim)
            if len(head) < ASIN_BYTES or len(body) < 4 * dim:
                raise UserError(
                    f"{path}: record {index} is truncated at byte {index * record}: expected "
                    f"{ASIN_BYTES} ASIN bytes + {dim} float32 values per record"
                )
            try:
                asin = head.decode("ascii").strip()
            except UnicodeDecodeError:
                raise UserError(f"{path}: record {index} at byte {index * record} has a non-ASCII ASIN {head!r}") from None
            yield asin, np.frombuffer(body, dtype="<f4").astype(np.float32)
            index += 1


def iter_asins(path: str | Path, dim: int = DEFAULT_DIM) -> Iterator[str]:
    """Yield the ASIN of every record without reading the vectors (seeks over them)."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: image feature file not found")
    record = ASIN_BYTES + 4 * dim
    size = path.stat().st_size
    if size % record:
        raise UserError(
            f"{path}: size {size} is not a whole number of records of {ASIN_BYTES} ASIN bytes + {dim} float32 values"
        )
    with path.open("rb") as fh:
        for index in range(size // record):
            fh.seek(index * record)
            head = fh.read(ASIN_BYTES)
            try:
                yield head.decode("ascii").strip()
            except UnicodeDecodeError:
                raise UserError(f"{path}: record {index} at byte {index * record} has a non-ASCII ASIN {head!r}") from None


def read_image_features(
    path: str | Path, asins: Iterable[str] | None = None, dim: int = DEFAULT_DIM
) -> dict[str, np.ndarray]:
    """Vectors of the requested ASINs (all records when ``asins`` is None); the first record wins."""
    wanted = None if asins is None else set(asins)
    found: dict[str, np.ndarray] = {}
    for asin, vec in iter_image_features(path, dim):
        if (wanted is None or asin in wanted) and asin not in found:
            found[asin] = vec
    return found


def write_image_features(path: str | Path, asins: Iterable[str], vectors: np.ndarray) -> Path:
    """Write records in the ``.b`` format (used by the synthetic generator and tests)."""
    path = Path(path)
    vectors = np.ascontiguousarray(vectors, dtype="<f4")
    asins = list(asins)
    if vectors.ndim != 2 or vectors.shape[0] != len(asins):
        raise ValueError(f"expected one vector row per ASIN, got {vectors.shape} for {len(asins)} ASINs")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        for asin, vec in zip(asins, vectors):
            raw = asin.encode("ascii")
            if len(raw) > ASIN_BYTES:
                raise ValueError(f"ASIN {asin!r} is longer than {ASIN_BYTES} bytes")
            fh.write(raw.ljust(ASIN_BYTES, b" "))
            fh.write(vec.tobytes())
    return path
