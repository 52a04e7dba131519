"""Row-wise top-k with a deterministic tie-break: score first, then column index ascending.

``torch.topk`` leaves the order of equal scores unspecified, and which of several equal scores
at the k-th place is kept. Here the k best of each row are taken by ``topk(k + 1)``; rows whose
k-th and (k+1)-th scores are equal (a tie across the cut) are redone with a full stable sort, and
the kept entries are ordered by (score, column) -- so the result is a function of the scores only.
Excluded entries are marked with ``-inf`` by the caller and come back with ``valid = False``.
"""

from __future__ import annotations

import numpy as np
import torch


def topk_rows(key: torch.Tensor, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``k`` largest entries of each row of ``key`` ``[b, m]`` (ties: lower column first).

    Returns numpy ``(columns [b, k'] int64, values [b, k'] float32, valid [b, k'] bool)`` with
    ``k' = min(k, m)``, each row best first; ``valid`` is False where the value is ``-inf``
    (excluded entries filling short rows).
    """
    b, m = key.shape
    k = min(k, m)
    if k == 0 or b == 0:
        return np.zeros((b, k), np.int64), np.zeros((b, k), np.float32), np.zeros((b, k), bool)
    kk = min(k + 1, m)
    vals, cols = torch.topk(key, kk, dim=1, largest=True, sorted=True)
    if kk > k:
        crossing = vals[:, k - 1] == vals[:, k]
        vals, cols = vals[:, :k], cols[:, :k]
        if bool(crossing.any()):
            rows = crossing.nonzero().squeeze(1)
            full_vals, full_cols = torch.sort(key[rows], dim=1, descending=True, stable=True)
            vals[rows], cols[rows] = full_vals[:, :k], full_cols[:, :k]
    # order the kept entries by (value desc, column asc); numpy is much faster than torch.sort
    # on many short rows
    cols, vals = cols.cpu().numpy(), vals.float().cpu().numpy()
    order = np.lexsort((cols, -vals), axis=-1)
    cols, vals = np.take_along_axis(cols, order, 1), np.take_along_axis(vals, order, 1)
    return cols, vals, vals > -np.inf
