"""MMRec's released feature files, passed through unchanged for MMRec imports.

An MMRec dataset folder holds ``<name>.inter`` and, optionally, ``image_feat.npy`` (4096-d) and
``text_feat.npy`` (384-d), row i = item i in the ``.inter`` file's ids. They must sit in the same
folder as the ``.inter`` file named by ``datasets.<ds>.reviews`` (or ``datasets.<ds>.inter``).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from pipeline.errors import UserError

FILES = {"image": "image_feat.npy", "text": "text_feat.npy"}


def is_mmrec(cfg: Mapping[str, Any]) -> bool:
    """``format: mmrec``, or an auto-detected format whose interactions file is a ``.inter``."""
    fmt = cfg.get("format")
    if fmt == "mmrec":
        return True
    return fmt in (None, "auto") and str(cfg.get("reviews") or cfg.get("inter") or "").endswith(".inter")


def mmrec_feature_files(cfg: Mapping[str, Any], dataset: str = "<ds>") -> dict[str, Path]:
    """The MMRec feature files next to the dataset's ``.inter`` file (modality -> path), if any."""
    inter = cfg.get("reviews") or cfg.get("inter")
    if not inter:
        raise UserError(f"params.yaml datasets.{dataset}: an mmrec dataset needs 'reviews' (the .inter file path)")
    folder = Path(inter).parent
    return {m: folder / name for m, name in FILES.items() if (folder / name).exists()}


def non_finite_rows(mat: np.ndarray, block: int = 8192) -> np.ndarray:
    """Indices of the rows of ``mat`` holding a NaN or an infinity (read in row blocks)."""
    found = [start + np.flatnonzero(~np.isfinite(mat[start : start + block]).all(axis=1)) for start in range(0, len(mat), block)]
    return np.concatenate(found) if found else np.zeros(0, np.int64)


def _rows(rows: np.ndarray, show: int = 5) -> str:
    return ", ".join(map(str, rows[:show].tolist())) + (", ..." if len(rows) > show else "")


def copy_feature_file(src: Path, dst: Path, n_items: int) -> dict[str, Any]:
    """Copy an MMRec ``.npy`` to ``dst`` after checking it is ``[n_items, d]``; float32 is copied
    byte for byte, another float dtype is converted to float32 (and said so in the report)."""
    try:
        mat = np.load(src, mmap_mode="r", allow_pickle=False)
    except Exception as exc:
        raise UserError(f"{src}: not a readable .npy array ({exc.__class__.__name__}: {exc})") from None
    if mat.ndim != 2 or mat.shape[0] != n_items:
        raise UserError(f"{src}: shape {tuple(mat.shape)}, expected one row per item ({n_items}, d)")
    if not np.issubdtype(mat.dtype, np.floating):
        raise UserError(f"{src}: dtype {mat.dtype}, expected floating point vectors")
    bad_rows = non_finite_rows(mat)
    if len(bad_rows):
        raise UserError(f"{src}: {len(bad_rows)} row(s) hold NaN or infinite values (row = item id): {_rows(bad_rows)}")
    dst.parent.mkdir(parents=True, exist_ok=True)
    converted = mat.dtype != np.float32
    if converted:
        np.save(dst, np.asarray(mat, dtype=np.float32))
    else:
        shutil.copyfile(src, dst)
    return {"source": str(src), "dim": int(mat.shape[1]), "items_covered": n_items, "items_fallback": 0,
            "converted_from": str(mat.dtype) if converted else None}
