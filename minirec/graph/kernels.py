"""Numba kernels for the sparse products of mean aggregation, and their SciPy references.

For a CSR matrix A (n_rows, n_cols), given by ``indptr``, ``indices`` and ``data``:

    forward:   Y = A @ X      X (n_cols, d)  ->  Y (n_rows, d)
    backward:  Z = A.T @ G    G (n_rows, d)  ->  Z (n_cols, d)

The backward product is the gradient of the forward one: dL/dX = A.T @ dL/dY.

A product with fewer than ``PARALLEL_MIN_WORK`` multiply-adds runs on one thread, because
starting Numba's worker threads costs more than a GraphSAGE block of a mini-batch needs. On a
busy 2-core machine (load average 2.9) the threaded forward kernel took 9.2 ms for the two blocks
of a training batch, and the serial one 1.1 ms (``benchmarks/bench_kernels.py``).
"""

from __future__ import annotations

import numba
import numpy as np
import scipy.sparse as sp

# Multiply-adds (nnz * d) from which the threaded kernel is used.
# NOTE: a rough threshold. The serial kernel took 0.15 to 0.45 ms per million multiply-adds on
# the machine of benchmarks/RESULTS.md, so below 20 million two threads could save at most
# about 5 ms. Whether they save anything depends on how busy the machine is: there, even the
# whole-graph product (45 million) ran slower on two threads.
PARALLEL_MIN_WORK = 20_000_000


@numba.njit(cache=True)
def _aggregate_row(indptr, indices, data, features, out, row):
    out_row = out[row]
    out_row[:] = 0.0
    for position in range(indptr[row], indptr[row + 1]):
        weight = data[position]
        source_row = features[indices[position]]
        for k in range(len(out_row)):
            out_row[k] += weight * source_row[k]


@numba.njit(cache=True)
def _forward_serial(indptr, indices, data, features, out):
    for row in range(len(indptr) - 1):
        _aggregate_row(indptr, indices, data, features, out, row)


@numba.njit(cache=True, parallel=True)
def _forward_parallel(indptr, indices, data, features, out):
    # Rows are independent, so prange splits them across threads without write
    # conflicts. Each row is zeroed by its thread rather than by np.zeros, so the first
    # touch of the output pages is also split across threads.
    for row in numba.prange(len(indptr) - 1):
        _aggregate_row(indptr, indices, data, features, out, row)


@numba.njit(cache=True)
def _transpose_kernel(indptr, indices, data, n_cols):
    # Counting sort of the entries by column: O(nnz + n_cols), and entries of one
    # column keep the ascending order of their rows.
    transposed_indptr = np.zeros(n_cols + 1, dtype=np.int64)
    for position in range(len(indices)):
        transposed_indptr[indices[position] + 1] += 1
    for column in range(n_cols):
        transposed_indptr[column + 1] += transposed_indptr[column]
    next_slot = transposed_indptr[:-1].copy()
    transposed_indices = np.empty(len(indices), dtype=np.int64)
    transposed_data = np.empty(len(data), dtype=data.dtype)
    for row in range(len(indptr) - 1):
        for position in range(indptr[row], indptr[row + 1]):
            column = indices[position]
            slot = next_slot[column]
            next_slot[column] += 1
            transposed_indices[slot] = row
            transposed_data[slot] = data[position]
    return transposed_indptr, transposed_indices, transposed_data


def _check_csr(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray) -> None:
    if indptr.ndim != 1 or len(indptr) < 1:
        raise ValueError(f"indptr must be 1-D with at least one entry, got shape {indptr.shape}")
    if len(indices) != len(data) or len(indices) != indptr[-1]:
        raise ValueError(
            f"CSR arrays disagree: {len(indices)} indices, {len(data)} values, "
            f"indptr[-1] = {indptr[-1]}; expected all three equal"
        )


def _check_columns(indices: np.ndarray, n_cols: int) -> None:
    # An index outside [0, n_cols) would make the kernel read or write out of bounds,
    # which Numba does not check.
    if len(indices) and (indices.min() < 0 or indices.max() >= n_cols):
        raise ValueError(
            f"column indices range from {indices.min()} to {indices.max()}; expected "
            f"values in [0, {n_cols})"
        )


def csr_mean_aggregate(
    indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, X: np.ndarray
) -> np.ndarray:
    """Multiply a CSR matrix by a dense matrix, Y = A @ X.

    With A a row-normalised adjacency, row i of Y is the weighted mean of the rows of
    X at the neighbours of node i, and an all-zero row of A gives a zero row.

    Parameters
    ----------
    indptr, indices, data : np.ndarray
        CSR arrays of A, shape (n_rows, X.shape[0]).
    X : np.ndarray
        float32 or float64 of shape (n_cols, d).

    Returns
    -------
    np.ndarray
        Y of shape (n_rows, d) and the dtype of X. ``data`` is cast to that dtype, so
        the sums run in the precision of X.
    """
    _check_csr(indptr, indices, data)
    X = np.ascontiguousarray(X)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_cols, d), got shape {X.shape}")
    _check_columns(indices, X.shape[0])
    out = np.empty((len(indptr) - 1, X.shape[1]), dtype=X.dtype)
    kernel = _forward_parallel if len(indices) * X.shape[1] >= PARALLEL_MIN_WORK else _forward_serial
    kernel(indptr, indices, data.astype(X.dtype, copy=False), X, out)
    return out


def csr_transpose(
    indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, n_cols: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Convert the CSR arrays of A (n_rows, n_cols) into the CSR arrays of A.T.

    A caller that runs many backward passes on one graph can transpose once and call
    :func:`csr_mean_aggregate` on the result instead of
    :func:`csr_mean_aggregate_transpose`.

    Returns
    -------
    tuple of np.ndarray
        ``indptr`` (n_cols + 1,), ``indices`` and ``data`` (nnz,) of A.T, with the
        column indices of each row in ascending order.
    """
    _check_csr(indptr, indices, data)
    _check_columns(indices, n_cols)
    return _transpose_kernel(indptr, indices, data, n_cols)


def csr_mean_aggregate_transpose(
    indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, G: np.ndarray, n_cols: int
) -> np.ndarray:
    """Multiply the transpose of a CSR matrix by a dense matrix, Z = A.T @ G.

    This is the backward pass of :func:`csr_mean_aggregate`: given G = dL/dY, it
    returns dL/dX. A scatter over the rows of A would make threads write the same
    rows of Z. So A is transposed first by a counting sort, which took 2 to 3 ms for
    240k entries on a 2-core machine, and Z is gathered row by row like the forward
    product.

    Parameters
    ----------
    indptr, indices, data : np.ndarray
        CSR arrays of A, shape (G.shape[0], n_cols).
    G : np.ndarray
        float32 or float64 of shape (n_rows, d).
    n_cols : int
        Number of columns of A, which the CSR arrays alone do not fix.

    Returns
    -------
    np.ndarray
        Z of shape (n_cols, d) and the dtype of G.
    """
    _check_csr(indptr, indices, data)
    G = np.ascontiguousarray(G)
    if G.ndim != 2 or G.shape[0] != len(indptr) - 1:
        raise ValueError(
            f"G must have shape ({len(indptr) - 1}, d) to match the CSR rows, got {G.shape}"
        )
    _check_columns(indices, n_cols)
    transposed = csr_transpose(indptr, indices, data, n_cols)
    return csr_mean_aggregate(*transposed, G)


def csr_mean_aggregate_reference(
    indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, X: np.ndarray
) -> np.ndarray:
    """Compute Y = A @ X with SciPy; the reference for :func:`csr_mean_aggregate`."""
    A = sp.csr_matrix((data.astype(X.dtype), indices, indptr), shape=(len(indptr) - 1, X.shape[0]))
    return np.asarray(A @ X)


def csr_mean_aggregate_transpose_reference(
    indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, G: np.ndarray, n_cols: int
) -> np.ndarray:
    """Compute Z = A.T @ G with SciPy; the reference for :func:`csr_mean_aggregate_transpose`."""
    A = sp.csr_matrix((data.astype(G.dtype), indices, indptr), shape=(len(indptr) - 1, n_cols))
    return np.asarray(A.T @ G)
