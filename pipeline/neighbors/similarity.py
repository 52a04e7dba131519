"""Cosine similarity as the inner product of L2-normalised vectors (eq. 16's s^m_ij), and the
fused similarity S^f of eq. 16, the one place it is computed (APFI candidate search and APFI's
exact fall-back).

A zero vector has no direction: it stays zero after normalisation (similarity 0 to everything),
and the neighbour searches leave such items out, as queries and as neighbours (counted).

The searches' matrix products run under :func:`full_float32`: on CUDA, float32 products may be
set to TF32 elsewhere in a process (10 mantissa bits: scores off by ~1e-3, lists changed), which
an exact search must not inherit.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Sequence

import numpy as np
import torch

from pipeline.errors import UserError


def l2_normalize(vectors: np.ndarray, name: str = "features") -> tuple[np.ndarray, np.ndarray]:
    """Rows scaled to unit length (float32) and the mask of rows that are not zero vectors."""
    x = np.asarray(vectors)
    if x.ndim != 2:
        raise UserError(f"{name}: expected a 2-d [n_items, dim] matrix, got shape {x.shape}")
    if not np.isfinite(x).all():
        bad = np.flatnonzero(~np.isfinite(x).all(axis=1))
        rows = ", ".join(map(str, bad[:5].tolist())) + (", ..." if len(bad) > 5 else "")
        raise UserError(f"{name}: {len(bad)} row(s) hold NaN or infinite values (row = item id): {rows}")
    x = x.astype(np.float32, copy=False)
    norms = np.concatenate(  # float64 norms, in row blocks so no float64 copy of x is held
        [np.linalg.norm(x[i : i + 4096].astype(np.float64), axis=1) for i in range(0, len(x), 4096)]
    ) if len(x) else np.zeros(0)
    nonzero = norms > 0
    out = np.zeros_like(x, dtype=np.float32)
    out[nonzero] = (x[nonzero] / norms[nonzero, None]).astype(np.float32)
    return out, nonzero


@contextmanager
def full_float32() -> Iterator[None]:
    """float32 matrix products in full IEEE precision (no TF32 on CUDA) inside; restored after."""
    matmul = torch.backends.cuda.matmul
    if hasattr(matmul, "fp32_precision"):  # torch >= 2.9
        before = matmul.fp32_precision
        matmul.fp32_precision = "ieee"
        try:
            yield
        finally:
            matmul.fp32_precision = before
    else:  # pragma: no cover - older torch
        before = torch.get_float32_matmul_precision()
        torch.set_float32_matmul_precision("highest")
        try:
            yield
        finally:
            torch.set_float32_matmul_precision(before)


def fused_block(rows: Sequence[torch.Tensor], cols: Sequence[torch.Tensor]) -> torch.Tensor:
    """S^f of a block of rows against columns, ``[len(rows[m]), len(cols[m])]``.

    ``rows[m]`` / ``cols[m]``: the L2-normalised vectors (:func:`l2_normalize`) of modality m for
    the rows and for the columns (e.g. all items), same device and dtype; one matrix product per
    modality. With one modality S^f is its cosine similarity.
    """
    if not rows or len(rows) != len(cols):
        raise ValueError(f"fused_block: {len(rows)} row and {len(cols)} column modalities; expected the same, at least one")
    fused = None
    for r, c in zip(rows, cols):
        s = r @ c.T  # s^m, cosine of normalised vectors
        fused = s if fused is None else fused.mul_(s)  # eq. 16: S^f = S^v ⊙ S^t
    return fused


def nonzero_rows(vectors: dict[str, np.ndarray]) -> np.ndarray:
    """Items with a non-zero vector in every modality (the others have no S^f, eq. 16)."""
    valid = None
    for mat in vectors.values():
        nonzero = np.asarray(mat != 0).any(axis=1)
        valid = nonzero if valid is None else valid & nonzero
    return valid
