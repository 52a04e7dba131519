"""Image item features: the Amazon 2014 CNN vectors (``image_features_<Cat>.b``) matched by ASIN.

Items without a vector in the file get the **mean of the matched vectors** (MMRec's rule) and
are counted; records whose ASIN is not an item of the dataset are skipped and counted; a repeated
ASIN keeps its first record (counted). The vector length is 4096 in the real files; other lengths
(the synthetic set writes 64) are detected from the file's layout, or given explicitly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from pipeline.errors import UserError
from pipeline.ingest.image_features import ASIN_BYTES, DEFAULT_DIM, iter_image_features
from pipeline.log import get_logger, progress

log = get_logger(__name__)

FALLBACK_RULE = "mean of the matched items (no record for the item's ASIN in the .b file)"
_ASIN = re.compile(rb"^[!-~]+ *$")  # printable ASCII, space-padded


def _looks_like_asin(raw: bytes) -> bool:
    return len(raw) == ASIN_BYTES and bool(_ASIN.match(raw))


def infer_image_dim(path: str | Path, preferred: int = DEFAULT_DIM) -> int:
    """The vector length of a ``.b`` file: the record size that divides the file and puts an
    ASCII ASIN at the start of the second and last records. ``preferred`` (4096) is tried first.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: image feature file not found")
    size = path.stat().st_size
    if size == 0:
        raise UserError(f"{path}: image feature file is empty")
    with path.open("rb") as fh:

        def fits(record: int) -> bool:
            if record <= ASIN_BYTES or (record - ASIN_BYTES) % 4 or size % record:
                return False
            offsets = {0, size - record} | ({record} if size >= 2 * record else set())
            for offset in offsets:
                fh.seek(offset)
                if not _looks_like_asin(fh.read(ASIN_BYTES)):
                    return False
            return True

        if fits(ASIN_BYTES + 4 * preferred):
            return preferred
        # record sizes are divisors of the file size; the smallest that fits is the true one
        divisors = set()
        for d in range(1, int(size**0.5) + 1):
            if size % d == 0:
                divisors.update((d, size // d))
        for record in sorted(divisors):
            if fits(record):
                return (record - ASIN_BYTES) // 4
    raise UserError(
        f"{path}: not an image feature file (expected records of a 10-byte ASIN + float32 values; "
        f"no record length fits its {size} bytes)"
    )


@dataclass(frozen=True)
class ImageFeatures:
    """The image matrix (row i = item i) and the matching counts."""

    matrix: np.ndarray
    n_matched: int
    n_fallback: int
    n_records: int
    n_unknown: int
    n_duplicate: int


def image_features(path: str | Path, asins: Sequence[str], dim: int | None = None) -> ImageFeatures:
    """Match the ``.b`` records of ``path`` to ``asins`` (row order); fill the rest with the mean."""
    path = Path(path)
    dim = infer_image_dim(path) if dim is None else int(dim)
    row_of = {a: i for i, a in enumerate(asins)}
    if len(row_of) != len(asins):
        raise UserError(f"items.parquet: {len(asins) - len(row_of)} duplicate ASIN(s); ASINs must be unique")
    matrix = np.zeros((len(asins), dim), dtype=np.float32)
    seen = np.zeros(len(asins), dtype=bool)
    n_records = n_unknown = n_duplicate = 0
    n_total = path.stat().st_size // (ASIN_BYTES + 4 * dim)
    for asin, vec in progress(iter_image_features(path, dim), desc="reading images", unit="rec", total=n_total):
        n_records += 1
        row = row_of.get(asin)
        if row is None:
            n_unknown += 1
        elif seen[row]:
            n_duplicate += 1
        else:
            matrix[row] = vec
            seen[row] = True
    n_matched = int(seen.sum())
    bad = np.flatnonzero(~np.isfinite(matrix).all(axis=1))
    if len(bad):
        raise UserError(f"{path}: {len(bad)} record(s) hold NaN or infinite values, e.g. ASIN {asins[int(bad[0])]!r}")
    if n_matched == 0:
        raise UserError(
            f"{path}: none of its {n_records} records matches an item ASIN of the dataset "
            f"(e.g. item {asins[0]!r}); is it the image file of another category?"
        )
    n_fallback = len(asins) - n_matched
    if n_fallback:
        matrix[~seen] = matrix[seen].mean(axis=0, dtype=np.float64).astype(np.float32)
    log.info(
        "images: %d records read from %s; %d items matched, %d filled with the mean, "
        "%d records of unknown ASINs skipped, %d repeated records skipped",
        n_records, path, n_matched, n_fallback, n_unknown, n_duplicate,
    )
    return ImageFeatures(matrix, n_matched, n_fallback, n_records, n_unknown, n_duplicate)
