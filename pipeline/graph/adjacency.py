"""Normalised bipartite adjacency matrices and LightGCN propagation (eq. 2, 5-7).

The user-item graph of M users and N items is the (M+N) x (M+N) matrix A = [[0, R], [R^T, 0]];
its symmetric normalisation D^-1/2 A D^-1/2 is what LightGCN and the SGA branches propagate over.
Nodes without edges get degree 0 and stay zero (no self-loops, no division by zero).

Speed (:func:`spmm`): autograd's backward of ``torch.sparse.mm`` with a CSR matrix transposes it
on every call (about 3x the forward). Every matrix :func:`normalized_adjacency` returns is
symmetric, so ``propagate(..., symmetric=True)`` uses the matrix itself in the backward pass. On
CPU the products go through scipy's CSR kernel with one thread and torch's row-parallel one with
more (they agree up to float32 rounding; on some CPUs, e.g. MKL's AVX-512 paths, not bit for bit,
so a run is byte-exact for a given machine and thread count); ``propagate(..., rows=...)``
computes the last layer for a batch's rows only.
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
        inv_sqrt = np.where(deg > 0, 1.0 / np.sqrt(deg), 0.0)  # sqrt and / are correctly rounded: the same on any machine
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


def bipartite_adjacency(n_users: int, n_items: int, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
    """:func:`normalized_adjacency` of *distinct* (user, item) edges, built with torch on their device
    (no host round trip; the same floats: float64 degrees, 1 / sqrt, then float32)."""
    n = n_users + n_items
    rows = torch.cat([users, items + n_users])
    cols = torch.cat([items + n_users, users])
    key = torch.sort(rows * n + cols).values
    rows, cols = key // n, key % n
    counts = torch.bincount(rows, minlength=n)
    deg = counts.to(torch.float64)
    inv_sqrt = torch.where(deg > 0, 1.0 / torch.sqrt(deg), torch.zeros_like(deg))
    crow = torch.zeros(n + 1, dtype=torch.int64, device=users.device)
    crow[1:] = torch.cumsum(counts, 0)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(crow, cols, (inv_sqrt[rows] * inv_sqrt[cols]).to(torch.float32), size=(n, n),
                                       check_invariants=False)


def _scipy_view(adj: torch.Tensor) -> sp.csr_matrix:
    """A scipy CSR matrix over a CPU torch CSR tensor's arrays (values shared), built once per tensor
    and kept on it (the matrices are fixed; building and checking one costs ~0.1 ms a call)."""
    view = getattr(adj, "_scipy_view", None)
    if view is None:
        view = sp.csr_matrix(
            (adj.values().numpy(), adj.col_indices().numpy(), adj.crow_indices().numpy()), shape=tuple(adj.shape)
        )
        adj._scipy_view = view
    return view


def unique_rows(rows: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``torch.unique(rows, return_inverse=True)`` for ids in ``0..n-1``, by a presence mask instead
    of a sort: O(n + len(rows)), about 30x faster than the sort for a batch on CPU."""
    mark = torch.zeros(n, dtype=torch.bool, device=rows.device)
    mark[rows] = True
    distinct = torch.nonzero(mark).squeeze(1)
    position = torch.cumsum(mark, 0) - 1
    return distinct, position[rows]


def _product(adj: torch.Tensor, x: torch.Tensor, transpose: bool) -> torch.Tensor:
    """adj @ x (adj.T @ x with ``transpose``), no autograd.

    On CPU with one thread, and for the transpose, through scipy (its CSR kernels beat torch's
    single-threaded one about 3x); with more threads through torch's row-parallel CSR kernel
    (2.3 ms -> 1.1 ms at Baby size on 2 cores). Each is deterministic on a given machine; they
    agree up to float32 rounding (bit for bit on some CPUs, not on all: tests/test_adjacency.py).
    """
    if adj.device.type == "cpu" and (transpose or torch.get_num_threads() == 1):
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


class _RowsMM(torch.autograd.Function):
    """y = A[rows] x on CPU (scipy, ``rows`` distinct); the gradient A[rows]^T g touches only those rows' edges."""

    @staticmethod
    def forward(ctx, adj: torch.Tensor, rows: torch.Tensor, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        sub = _scipy_view(adj)[rows.numpy()]
        ctx.sub = sub
        return torch.from_numpy(np.asarray(sub @ x.detach().contiguous().numpy()))

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        return None, None, torch.from_numpy(np.asarray(ctx.sub.T @ grad.contiguous().numpy()))


def spmm_rows(adj: torch.Tensor, x: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """``(adj @ x)[rows]`` for distinct ``rows``, computing only those rows (CPU CSR), with autograd."""
    if adj.device.type == "cpu" and adj.layout == torch.sparse_csr:
        return _RowsMM.apply(adj, rows, x)
    return spmm(adj, x)[rows]


class _PropagateRows(torch.autograd.Function):
    """``(propagate(adj, emb, L, mean)[distinct], emb[distinct])`` on CPU with a hand-written backward.

    The forward keeps only the L-1 full layers it needs and gathers the distinct rows of each;
    the last layer is ``A[distinct] @ E^(L-1)``. Propagation is linear, so the backward needs no
    activations: with g the gradient at the rows (over L+1 for the mean), G_(L-1) = A[rows]^T g
    (+ g at the rows for the mean), G_l = A^T G_(l+1) (+ g at the rows), and G_0 plus the ego
    rows' gradient is the gradient of ``emb``. Compared with autograd through the full layers
    (and a separate gather of the ego rows) this allocates, adds and zero-fills several full
    [M+N, d] tensors less per step: on a 2-core machine such passes cost as much as the sparse products.
    """

    @staticmethod
    def forward(ctx, adj, emb, n_layers, mean, symmetric, distinct):  # type: ignore[override]
        ctx.set_materialize_grads(False)
        x = emb.detach()
        ego = x[distinct]
        acc = ego
        for _ in range(n_layers - 1):
            x = _product(adj, x, transpose=False)
            if mean:
                acc = acc + x[distinct]
        sub = _scipy_view(adj)[distinct.numpy()]
        last = torch.from_numpy(np.asarray(sub @ x.contiguous().numpy()))
        ctx.adj, ctx.sub, ctx.distinct = adj, sub, distinct
        ctx.n_layers, ctx.mean, ctx.symmetric = n_layers, mean, symmetric
        return ((acc + last) / (n_layers + 1) if mean else last), ego

    @staticmethod
    def backward(ctx, grad, grad_ego):  # type: ignore[override]
        at_rows = grad_ego  # what is added at the rows after the last product (the ego layer)
        if grad is None:
            acc = torch.zeros(ctx.adj.shape[1], grad_ego.shape[1], dtype=grad_ego.dtype)
        else:
            g = grad.contiguous() / (ctx.n_layers + 1) if ctx.mean else grad.contiguous()
            acc = torch.from_numpy(np.asarray(ctx.sub.T @ g.numpy()))  # gradient of E^(L-1)
            for _ in range(ctx.n_layers - 1):
                if ctx.mean:
                    acc.index_add_(0, ctx.distinct, g)
                acc = _product(ctx.adj, acc, transpose=not ctx.symmetric)
            if ctx.mean:
                at_rows = g if at_rows is None else at_rows + g
        if at_rows is not None:
            acc.index_add_(0, ctx.distinct, at_rows)
        return None, acc, None, None, None, None


def propagate(
    adj: torch.Tensor,
    emb: torch.Tensor,
    n_layers: int,
    mean: bool = True,
    symmetric: bool = False,
    rows: torch.Tensor | None = None,
) -> torch.Tensor:
    """LightGCN propagation E^l = Â E^(l-1); the mean over layers 0..L (eq. 2, 6), or layer L.

    Pass ``symmetric=True`` for matrices from :func:`normalized_adjacency` (faster backward);
    never for a directed graph such as an item kNN graph.

    With ``rows`` (int64, duplicates allowed) the result is ``propagate(...)[rows]``, cheaper: a
    training batch needs a few rows only, so the last layer is computed for the distinct rows
    alone (``A[rows] @ E^(L-1)``), which saves about a third of the sparse work of a 2-layer
    forward and backward pass. The floats are those of the full propagation at those rows.
    """
    if rows is None:
        x, total = emb, emb
        for _ in range(n_layers):
            x = spmm(adj, x, symmetric)
            total = total + x  # a running sum: stacking the layers costs a [L+1, n, d] copy and its backward
        return total / (n_layers + 1) if mean else x
    return propagate_with_ego(adj, emb, n_layers, rows, mean, symmetric)[0]


def propagate_with_ego(
    adj: torch.Tensor, emb: torch.Tensor, n_layers: int, rows: torch.Tensor, mean: bool = True, symmetric: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(propagate(adj, emb, n_layers, mean, symmetric)[rows], emb[rows])`` in one pass (CPU: one gradient
    tensor for ``emb`` instead of two summed); the ego rows feed an L2 regulariser."""
    if n_layers == 0 or adj.device.type != "cpu" or adj.layout != torch.sparse_csr:
        return propagate(adj, emb, n_layers, mean, symmetric)[rows] if n_layers else emb[rows], emb[rows]
    distinct, inverse = unique_rows(rows, emb.shape[0])  # popular items repeat in a batch
    out, ego = _PropagateRows.apply(adj, emb, n_layers, mean, symmetric, distinct)
    return out[inverse], ego[inverse]
