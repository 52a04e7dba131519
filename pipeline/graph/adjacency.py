"""Normalised bipartite adjacency matrices and LightGCN propagation (eq. 2, 5-7).

The user-item graph of M users and N items is the (M+N) x (M+N) matrix A = [[0, R], [R^T, 0]];
its symmetric normalisation D^-1/2 A D^-1/2 is what LightGCN and the SGA branches propagate over.
Nodes without edges get degree 0 and stay zero (no self-loops, no division by zero).
"""

from __future__ import annotations

import numpy as np
import torch


def normalized_adjacency(
    n_users: int,
    n_items: int,
    users: np.ndarray,
    items: np.ndarray,
    device: torch.device | str = "cpu",
    weights: np.ndarray | None = None,
) -> torch.Tensor:
    """D^-1/2 A D^-1/2 of the bipartite graph with edges (users[k], n_users + items[k]), as sparse CSR.

    Duplicate (user, item) pairs are merged (their weights summed). Returns a float32
    ``torch.sparse_csr`` tensor of shape (M+N, M+N) on ``device``.
    """
    n = n_users + n_items
    users = np.asarray(users, dtype=np.int64)
    items = np.asarray(items, dtype=np.int64) + n_users
    w = np.ones(len(users), np.float64) if weights is None else np.asarray(weights, np.float64)
    rows = np.concatenate([users, items])
    cols = np.concatenate([items, users])
    vals = np.concatenate([w, w])
    # merge duplicates deterministically: sort by (row, col) and sum runs
    key = rows * n + cols
    order = np.argsort(key, kind="stable")
    key, vals = key[order], vals[order]
    uniq, start = np.unique(key, return_index=True)
    vals = np.add.reduceat(vals, start) if len(vals) else vals
    rows, cols = uniq // n, uniq % n
    deg = np.bincount(rows, weights=vals, minlength=n)
    with np.errstate(divide="ignore"):
        inv_sqrt = np.where(deg > 0, deg ** -0.5, 0.0)
    norm = vals * inv_sqrt[rows] * inv_sqrt[cols]
    crow = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=crow[1:])
    return torch.sparse_csr_tensor(
        torch.from_numpy(crow),
        torch.from_numpy(cols.astype(np.int64)),
        torch.from_numpy(norm.astype(np.float32)),
        size=(n, n),
        device=device,
    )


def propagate(adj: torch.Tensor, emb: torch.Tensor, n_layers: int, mean: bool = True) -> torch.Tensor:
    """LightGCN propagation E^l = Â E^(l-1); the mean over layers 0..L (eq. 2, 6), or layer L."""
    layers = [emb]
    x = emb
    for _ in range(n_layers):
        x = torch.sparse.mm(adj, x) if adj.layout != torch.strided else adj @ x
        layers.append(x)
    if not mean:
        return x
    return torch.stack(layers, dim=0).mean(dim=0)
