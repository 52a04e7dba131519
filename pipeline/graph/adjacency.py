"""Normalised bipartite adjacency matrices and LightGCN propagation (eq. 2, 5-7).

The user-item graph of M users and N items is the (M+N) x (M+N) matrix A = [[0, R], [R^T, 0]];
its symmetric normalisation D^-1/2 A D^-1/2 is what LightGCN and the SGA branches propagate over.
Nodes without edges get degree 0 and stay zero (no self-loops, no division by zero).

Speed (:func:`spmm`): autograd's backward of ``torch.sparse.mm`` with a CSR matrix transposes it
on every call (about 3x the forward). Every matrix :func:`normalized_adjacency` returns is
symmetric, so ``propagate(..., symmetric=True)`` uses the matrix itself in the backward pass. On
CPU the products go through scipy's CSR kernel (3x faster than torch's here, same results).
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
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
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(
            torch.from_numpy(crow),
            torch.from_numpy(cols.astype(np.int64)),
            torch.from_numpy(norm.astype(np.float32)),
            size=(n, n),
            device=device,
            check_invariants=False,  # built valid above; checking costs a pass over the matrix
        )


def _scipy_view(adj: torch.Tensor) -> sp.csr_matrix:
    """A scipy CSR matrix over a CPU torch CSR tensor's arrays (values shared; ~0.1 ms at Baby size)."""
    return sp.csr_matrix(
        (adj.values().numpy(), adj.col_indices().numpy(), adj.crow_indices().numpy()), shape=tuple(adj.shape)
    )


def _product(adj: torch.Tensor, x: torch.Tensor, transpose: bool) -> torch.Tensor:
    """adj @ x (adj.T @ x with ``transpose``), no autograd. On CPU through scipy: its single-threaded
    CSR kernel is ~3x faster than torch's CPU one and gives the same floats."""
    if adj.device.type == "cpu":
        mat = _scipy_view(adj)
        return torch.from_numpy(np.asarray((mat.T if transpose else mat) @ x.detach().contiguous().numpy()))
    return torch.sparse.mm(adj.t() if transpose else adj, x)


class _SparseMM(torch.autograd.Function):
    """y = A x with gradient A^T g; for a symmetric A that is A g (no transpose built)."""

    @staticmethod
    def forward(ctx, adj: torch.Tensor, x: torch.Tensor, symmetric: bool) -> torch.Tensor:  # type: ignore[override]
        ctx.adj, ctx.symmetric = adj, symmetric
        return _product(adj, x, transpose=False)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        return None, _product(ctx.adj, grad, transpose=not ctx.symmetric), None


def spmm(adj: torch.Tensor, x: torch.Tensor, symmetric: bool = False) -> torch.Tensor:
    """adj @ x for a sparse CSR (or dense) ``adj``; ``symmetric=True`` promises adj == adj.T (faster backward)."""
    if adj.layout == torch.strided:
        return adj @ x
    if adj.layout == torch.sparse_csr and (symmetric or adj.device.type == "cpu"):
        return _SparseMM.apply(adj, x, symmetric)
    return torch.sparse.mm(adj, x)


def propagate(
    adj: torch.Tensor, emb: torch.Tensor, n_layers: int, mean: bool = True, symmetric: bool = False
) -> torch.Tensor:
    """LightGCN propagation E^l = Â E^(l-1); the mean over layers 0..L (eq. 2, 6), or layer L.

    Pass ``symmetric=True`` for matrices from :func:`normalized_adjacency` (faster backward);
    never for a directed graph such as an item kNN graph.
    """
    x, total = emb, emb
    for _ in range(n_layers):
        x = spmm(adj, x, symmetric)
        total = total + x  # a running sum: stacking the layers costs a [L+1, n, d] copy and its backward
    return total / (n_layers + 1) if mean else x


class _RowsMM(torch.autograd.Function):
    """y = A[rows] x on CPU (scipy); the gradient A[rows]^T g touches only those rows' edges."""

    @staticmethod
    def forward(ctx, adj: torch.Tensor, rows: torch.Tensor, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        sub = _scipy_view(adj)[rows.numpy()]
        ctx.sub = sub
        return torch.from_numpy(np.asarray(sub @ x.detach().contiguous().numpy()))

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        return None, None, torch.from_numpy(np.asarray(ctx.sub.T @ grad.contiguous().numpy()))


def propagate_rows(adj: torch.Tensor, emb: torch.Tensor, n_layers: int, rows: torch.Tensor) -> torch.Tensor:
    """``propagate(adj, emb, n_layers, mean=True, symmetric=True)[rows]`` for a symmetric ``adj``, cheaper.

    A training batch needs the final embeddings of a few rows only: on CPU the last layer is
    computed for those rows alone (A[rows] @ E^(L-1)), which saves about a third of the sparse
    work of a 2-layer forward and backward pass. On other devices it is the plain expression.
    """
    if n_layers == 0 or adj.device.type != "cpu" or adj.layout != torch.sparse_csr:
        return propagate(adj, emb, n_layers, mean=True, symmetric=True)[rows]
    x, total = emb, emb
    for _ in range(n_layers - 1):
        x = spmm(adj, x, symmetric=True)
        total = total + x
    last = _RowsMM.apply(adj, rows, x)
    return (torch.index_select(total, 0, rows) + last) / (n_layers + 1)  # eq. 2 at the batch's rows

