"""Normalised adjacency (eq. 2) on a hand case, propagation, and the symmetric sparse product."""

import math

import numpy as np
import torch

import pytest

from pipeline.graph.adjacency import bipartite_adjacency, unique_rows, _product, normalized_adjacency, propagate, propagate_with_ego, spmm


def test_hand_case_two_users_three_items():
    # user 0 -> items 0, 1; user 1 -> item 1. Degrees: u0 2, u1 1, i0 1, i1 2, i2 0 (isolated).
    adj = normalized_adjacency(2, 3, np.array([0, 0, 1]), np.array([0, 1, 1])).to_dense().numpy()
    expected = np.zeros((5, 5))
    for u, i, du, di in ((0, 0, 2, 1), (0, 1, 2, 2), (1, 1, 1, 2)):
        expected[u, 2 + i] = expected[2 + i, u] = 1 / math.sqrt(du * di)
    np.testing.assert_allclose(adj, expected, rtol=1e-6)
    assert not adj[4].any() and not adj[:, 4].any()


def test_duplicate_pairs_are_merged_with_summed_weights():
    adj = normalized_adjacency(1, 2, np.array([0, 0, 0]), np.array([0, 0, 1]), weights=np.array([1.0, 2.0, 1.0]))
    dense = adj.to_dense().numpy()
    # weights: (0, i0) = 3, (0, i1) = 1; degree u0 = 4, i0 = 3, i1 = 1
    np.testing.assert_allclose(dense[0, 1:], [3 / math.sqrt(4 * 3), 1 / math.sqrt(4 * 1)], rtol=1e-6)


def test_propagate_mean_and_last_layer():
    adj = normalized_adjacency(2, 3, np.array([0, 0, 1]), np.array([0, 1, 1]))
    a = adj.to_dense().double()
    x = torch.arange(10, dtype=torch.float32).reshape(5, 2)
    xd = x.double()
    mean = propagate(adj, x, 2).double()
    torch.testing.assert_close(mean, (xd + a @ xd + a @ a @ xd) / 3, rtol=1e-5, atol=1e-6)
    last = propagate(adj, x, 2, mean=False).double()
    torch.testing.assert_close(last, a @ a @ xd, rtol=1e-5, atol=1e-6)


def test_symmetric_spmm_gradient_equals_the_general_one():
    rng = np.random.default_rng(0)
    adj = normalized_adjacency(7, 5, rng.integers(0, 7, 20), rng.integers(0, 5, 20))
    w = torch.randn(12, 3, generator=torch.Generator().manual_seed(0))
    x1 = torch.randn(12, 3, generator=torch.Generator().manual_seed(1), requires_grad=True)
    x2 = x1.detach().clone().requires_grad_(True)
    (spmm(adj, spmm(adj, x1, symmetric=True), symmetric=True) * w).sum().backward()
    (spmm(adj, spmm(adj, x2)) * w).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad)


def test_spmm_on_a_directed_graph_matches_dense_autograd():
    dense = torch.tensor([[0.0, 0.5, 0.0], [0.0, 0.0, 2.0], [1.0, 0.0, 0.0]])  # not symmetric
    x1 = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], requires_grad=True)
    x2 = x1.detach().clone().requires_grad_(True)
    w = torch.tensor([[1.0, -1.0], [2.0, 0.5], [0.0, 3.0]])
    y1 = spmm(dense.to_sparse_csr(), x1)
    (y1 * w).sum().backward()
    (dense @ x2 * w).sum().backward()
    torch.testing.assert_close(y1, dense @ x2)
    torch.testing.assert_close(x1.grad, x2.grad)  # = dense.T @ w


@pytest.mark.parametrize("mean", [True, False])
@pytest.mark.parametrize("n_layers", [0, 1, 2, 3])
def test_propagate_rows_equals_full_propagation_at_those_rows(n_layers, mean):
    rng = np.random.default_rng(1)
    adj = normalized_adjacency(6, 5, rng.integers(0, 6, 18), rng.integers(0, 5, 18))
    rows = torch.tensor([0, 3, 3, 7, 10, 6])  # duplicates allowed (a user twice in a batch)
    w = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
    x1 = torch.randn(11, 4, generator=torch.Generator().manual_seed(1), requires_grad=True)
    x2 = x1.detach().clone().requires_grad_(True)
    y1 = propagate(adj, x1, n_layers, mean=mean, symmetric=True, rows=rows)
    y2 = propagate(adj, x2, n_layers, mean=mean, symmetric=True)[rows]
    assert torch.equal(y1, y2)  # the same floats, not just close
    (y1 * w).sum().backward()
    (y2 * w).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad)


def test_cpu_kernels_agree_within_rounding_and_repeat_exactly():
    # What holds on any CPU: scipy's kernel (one thread) and torch's row-parallel one (more) agree
    # up to float32 rounding, and each gives the same bits when called again. Whether the two
    # agree bit for bit depends on the instruction set MKL picks, so that is not asserted.
    rng = np.random.default_rng(3)
    adj = normalized_adjacency(300, 200, rng.integers(0, 300, 3000), rng.zipf(1.5, 3000) % 200)
    x = torch.randn(500, 16, generator=torch.Generator().manual_seed(2))
    exact = torch.from_numpy(adj.to_dense().double().numpy() @ x.double().numpy())
    before = torch.get_num_threads()
    results = {}
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            first = _product(adj, x, transpose=False)
            assert torch.equal(first, _product(adj, x, transpose=False)), f"{threads} thread(s): not repeatable"
            results[threads] = first
    finally:
        torch.set_num_threads(before)
    for threads, out in results.items():
        torch.testing.assert_close(out.double(), exact, rtol=1e-6, atol=1e-6, msg=f"{threads} thread(s)")
    torch.testing.assert_close(results[1], results[2], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("mean", [True, False])
def test_propagate_rows_on_a_directed_graph_matches_dense_autograd(mean):
    dense = torch.tensor([[0.0, 0.5, 0.0, 1.0], [0.0, 0.0, 2.0, 0.0], [1.0, 0.0, 0.0, 0.5], [0.0, 3.0, 0.0, 0.0]])
    rows = torch.tensor([2, 0, 2])
    x1 = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [-1.0, 0.5]], requires_grad=True)
    x2 = x1.detach().clone().requires_grad_(True)
    w = torch.tensor([[1.0, -1.0], [2.0, 0.5], [0.0, 3.0]])
    y1 = propagate(dense.to_sparse_csr(), x1, 3, mean=mean, rows=rows)
    layers = [x2, dense @ x2, dense @ dense @ x2, dense @ dense @ dense @ x2]
    y2 = (sum(layers) / 4 if mean else layers[-1])[rows]
    torch.testing.assert_close(y1, y2)
    (y1 * w).sum().backward()
    (y2 * w).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad)


@pytest.mark.parametrize("n_layers", [0, 1, 2, 3])
def test_propagate_with_ego_values_and_gradient(n_layers):
    rng = np.random.default_rng(4)
    adj = normalized_adjacency(6, 5, rng.integers(0, 6, 18), rng.integers(0, 5, 18))
    rows = torch.tensor([1, 4, 4, 9, 0])
    w1 = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    w2 = torch.randn(5, 3, generator=torch.Generator().manual_seed(5))
    x1 = torch.randn(11, 3, generator=torch.Generator().manual_seed(1), requires_grad=True)
    x2 = x1.detach().clone().requires_grad_(True)
    out, ego = propagate_with_ego(adj, x1, n_layers, rows, symmetric=True)
    ref_out, ref_ego = propagate(adj, x2, n_layers, symmetric=True)[rows], x2[rows]
    assert torch.equal(out, ref_out) and torch.equal(ego, ref_ego)
    ((out * w1).sum() + (ego * w2).sum()).backward()
    ((ref_out * w1).sum() + (ref_ego * w2).sum()).backward()
    torch.testing.assert_close(x1.grad, x2.grad)
    x3 = x1.detach().clone().requires_grad_(True)  # only the ego rows used: the gradient is theirs alone
    (propagate_with_ego(adj, x3, n_layers, rows, symmetric=True)[1] * w2).sum().backward()
    torch.testing.assert_close(x3.grad, torch.zeros(11, 3).index_add_(0, rows, w2))


def test_bipartite_adjacency_builds_the_same_matrix_with_torch():
    rng = np.random.default_rng(8)
    key = np.unique(rng.integers(0, 40, 300) * 30 + rng.integers(0, 30, 300))
    users, items = key // 30, key % 30
    ref = normalized_adjacency(40, 30, users, items)
    got = bipartite_adjacency(40, 30, torch.from_numpy(users), torch.from_numpy(items))
    for a, b in ((ref.crow_indices(), got.crow_indices()), (ref.col_indices(), got.col_indices()), (ref.values(), got.values())):
        assert torch.equal(a, b)


def test_unique_rows_equals_torch_unique():
    rows = torch.tensor([7, 3, 3, 0, 9, 7, 7, 2])
    distinct, inverse = unique_rows(rows, 12)
    ref_d, ref_i = torch.unique(rows, return_inverse=True)
    assert torch.equal(distinct, ref_d) and torch.equal(inverse, ref_i)
    assert torch.equal(distinct[inverse], rows)
