import numpy as np
import pytest
import scipy.sparse as sp

from minirec.autograd import Tensor, ops
from minirec.graph import kernels
from minirec.graph.kernels import (
    csr_mean_aggregate,
    csr_mean_aggregate_reference,
    csr_mean_aggregate_transpose,
    csr_mean_aggregate_transpose_reference,
    csr_transpose,
)

TOLERANCE = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-13)}


def random_csr(n_rows, n_cols, density, seed, dtype=np.float32):
    matrix = sp.random(n_rows, n_cols, density=density, format="csr", dtype=np.float64,
                       random_state=seed)
    return matrix.astype(dtype)


def csr_arrays(matrix):
    return matrix.indptr, matrix.indices, matrix.data


def test_forward_by_hand():
    # A = [[0.5, 0.5, 0], [0, 0, 0], [0, 1, 0]], and row 1 is an isolated node.
    indptr = np.array([0, 2, 2, 3])
    indices = np.array([0, 1, 1])
    data = np.array([0.5, 0.5, 1.0], dtype=np.float32)
    X = np.array([[2.0, 4.0], [6.0, 8.0], [100.0, 100.0]], dtype=np.float32)

    Y = csr_mean_aggregate(indptr, indices, data, X)

    np.testing.assert_array_equal(Y, [[4.0, 6.0], [0.0, 0.0], [6.0, 8.0]])


def test_transpose_by_hand():
    # Same A as above: A.T @ G sends row r of G to the columns of row r.
    indptr = np.array([0, 2, 2, 3])
    indices = np.array([0, 1, 1])
    data = np.array([0.5, 0.5, 1.0], dtype=np.float32)
    G = np.array([[2.0], [50.0], [10.0]], dtype=np.float32)

    Z = csr_mean_aggregate_transpose(indptr, indices, data, G, n_cols=3)

    np.testing.assert_array_equal(Z, [[1.0], [11.0], [0.0]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,density", [((50, 50), 0.1), ((30, 70), 0.05), ((200, 120), 0.01)])
def test_forward_matches_scipy(dtype, shape, density):
    matrix = random_csr(*shape, density, seed=1, dtype=dtype)
    X = np.random.default_rng(2).standard_normal((shape[1], 9)).astype(dtype)

    Y = csr_mean_aggregate(*csr_arrays(matrix), X)

    assert Y.dtype == dtype
    np.testing.assert_allclose(Y, matrix @ X, **TOLERANCE[dtype])
    np.testing.assert_allclose(Y, csr_mean_aggregate_reference(*csr_arrays(matrix), X), **TOLERANCE[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,density", [((50, 50), 0.1), ((30, 70), 0.05), ((200, 120), 0.01)])
def test_transpose_matches_scipy(dtype, shape, density):
    matrix = random_csr(*shape, density, seed=3, dtype=dtype)
    G = np.random.default_rng(4).standard_normal((shape[0], 5)).astype(dtype)

    Z = csr_mean_aggregate_transpose(*csr_arrays(matrix), G, n_cols=shape[1])

    assert Z.dtype == dtype
    assert Z.shape == (shape[1], 5)
    np.testing.assert_allclose(Z, matrix.T @ G, **TOLERANCE[dtype])
    np.testing.assert_allclose(
        Z, csr_mean_aggregate_transpose_reference(*csr_arrays(matrix), G, shape[1]), **TOLERANCE[dtype]
    )


def test_empty_rows_give_zero_rows():
    keep_row = (np.arange(40) % 3 != 0).astype(np.float32)
    matrix = (sp.diags(keep_row) @ random_csr(40, 40, 0.1, seed=5)).tocsr()
    matrix.eliminate_zeros()
    X = np.full((40, 3), np.float32(7.0))
    # The output buffer may reuse this freed, non-zero memory; empty rows must not show it.
    csr_mean_aggregate(*csr_arrays(random_csr(40, 40, 0.5, seed=6)), X)

    Y = csr_mean_aggregate(*csr_arrays(matrix), X)

    assert np.all(Y[::3] == 0.0)
    np.testing.assert_allclose(Y, matrix @ X, rtol=1e-5)


def test_weights_cast_to_feature_dtype():
    matrix = random_csr(25, 25, 0.2, seed=10, dtype=np.float64)
    X = np.random.default_rng(11).standard_normal((25, 4)).astype(np.float32)

    Y = csr_mean_aggregate(*csr_arrays(matrix), X)

    assert Y.dtype == np.float32
    np.testing.assert_allclose(Y, matrix @ X.astype(np.float64), rtol=1e-5, atol=1e-6)


def test_matrix_without_entries_gives_zeros():
    indptr = np.zeros(5, dtype=np.int64)
    empty = np.array([], dtype=np.int64)

    Y = csr_mean_aggregate(indptr, empty, np.array([], np.float64), np.ones((3, 2)))
    Z = csr_mean_aggregate_transpose(indptr, empty, np.array([], np.float64), np.ones((4, 2)), 3)

    np.testing.assert_array_equal(Y, np.zeros((4, 2)))
    np.testing.assert_array_equal(Z, np.zeros((3, 2)))


def test_transpose_is_gradient_of_forward():
    # For L = sum(W * (A @ X)), dL/dX = A.T @ W; check one entry by central differences.
    matrix = random_csr(20, 15, 0.2, seed=7, dtype=np.float64)
    rng = np.random.default_rng(8)
    X = rng.standard_normal((15, 4))
    W = rng.standard_normal((20, 4))

    gradient = csr_mean_aggregate_transpose(*csr_arrays(matrix), W, n_cols=15)

    step = 1e-6
    for i, k in [(0, 0), (7, 2), (14, 3)]:
        plus, minus = X.copy(), X.copy()
        plus[i, k] += step
        minus[i, k] -= step
        loss_plus = np.sum(W * csr_mean_aggregate(*csr_arrays(matrix), plus))
        loss_minus = np.sum(W * csr_mean_aggregate(*csr_arrays(matrix), minus))
        assert gradient[i, k] == pytest.approx((loss_plus - loss_minus) / (2 * step), abs=1e-7)


def test_csr_transpose_matches_scipy():
    matrix = random_csr(30, 45, 0.1, seed=9)

    indptr, indices, data = csr_transpose(*csr_arrays(matrix), n_cols=45)

    expected = matrix.T.tocsr()
    expected.sort_indices()
    np.testing.assert_array_equal(indptr, expected.indptr)
    np.testing.assert_array_equal(indices, expected.indices)
    np.testing.assert_array_equal(data, expected.data)


def test_column_index_out_of_range_is_rejected():
    indptr = np.array([0, 1])
    with pytest.raises(ValueError, match=r"expected values in \[0, 2\)"):
        csr_mean_aggregate(indptr, np.array([2]), np.array([1.0]), np.ones((2, 3)))


def test_inconsistent_csr_arrays_are_rejected():
    with pytest.raises(ValueError, match="CSR arrays disagree"):
        csr_mean_aggregate(np.array([0, 2]), np.array([0]), np.array([1.0]), np.ones((2, 3)))


def test_gradient_with_wrong_rows_is_rejected():
    with pytest.raises(ValueError, match=r"G must have shape \(1, d\)"):
        csr_mean_aggregate_transpose(np.array([0, 1]), np.array([0]), np.array([1.0]), np.ones((3, 2)), 2)


def test_threaded_kernels_match_serial(monkeypatch):
    matrix = random_csr(300, 200, 0.05, seed=12)
    rng = np.random.default_rng(13)
    X = rng.standard_normal((200, 7)).astype(np.float32)
    G = rng.standard_normal((300, 7)).astype(np.float32)
    serial = csr_mean_aggregate(*csr_arrays(matrix), X), csr_mean_aggregate_transpose(*csr_arrays(matrix), G, 200)

    monkeypatch.setattr(kernels, "PARALLEL_MIN_WORK", 0)
    threaded = csr_mean_aggregate(*csr_arrays(matrix), X), csr_mean_aggregate_transpose(*csr_arrays(matrix), G, 200)

    np.testing.assert_array_equal(threaded[0], serial[0])
    np.testing.assert_array_equal(threaded[1], serial[1])


@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
def test_sparse_matmul_matches_scipy_reference(index_dtype):
    matrix = random_csr(40, 60, 0.08, seed=14)
    matrix.indptr, matrix.indices = matrix.indptr.astype(index_dtype), matrix.indices.astype(index_dtype)
    rng = np.random.default_rng(15)
    x = Tensor(rng.standard_normal((60, 5)).astype(np.float32), requires_grad=True)
    upstream = rng.standard_normal((40, 5)).astype(np.float32)

    y = ops.sparse_matmul(matrix, x)
    (y * upstream).sum().backward()

    assert y.dtype == np.float32
    np.testing.assert_allclose(y.data, csr_mean_aggregate_reference(*csr_arrays(matrix), x.data), rtol=1e-5, atol=1e-6)
    expected_grad = csr_mean_aggregate_transpose_reference(*csr_arrays(matrix), upstream, 60)
    np.testing.assert_allclose(x.grad, expected_grad, rtol=1e-5, atol=1e-6)


def test_sparse_matmul_of_vector():
    matrix = sp.csr_matrix(np.array([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]]))

    y = ops.sparse_matmul(matrix, Tensor(np.array([2.0, 4.0, 8.0])))

    np.testing.assert_array_equal(y.data, [3.0, 8.0])


def test_sparse_matmul_rejects_shape_mismatch():
    with pytest.raises(ValueError, match=r"matrix of shape \(2, 3\) cannot multiply x of shape \(4, 1\)"):
        ops.sparse_matmul(sp.csr_matrix(np.ones((2, 3))), Tensor(np.ones((4, 1))))
