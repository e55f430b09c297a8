"""Numba loop that adds rows into a table: the backward rule of a row gather.

Gathering rows ``table[indices]`` (:func:`minirec.autograd.ops.take_rows`) sends its gradient back
by adding each gradient row to the row it came from, so an index that occurs twice receives both.
Row-sparse gradients (:class:`minirec.autograd.tensor.RowSparseGrad`) are summed the same way.
``np.add.at`` does this too, but slowly: on training batches of the ``small`` benchmark data, the
loop below made a whole step about 0.87 times as long (``benchmarks/bench_step_changes.py``).
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def _scatter_add_rows(out, indices, rows):
    width = out.shape[1]
    for i in range(indices.shape[0]):
        target = indices[i]
        for k in range(width):
            out[target, k] += rows[i, k]


def scatter_add_rows(n_rows: int, indices: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Return an array of ``n_rows`` rows where row ``r`` is the sum of ``rows[i]`` over ``indices[i] == r``.

    ``rows`` has shape ``(len(indices), *row)``. The result has shape ``(n_rows, *row)`` and the
    dtype of ``rows``. Indices must lie in ``[-n_rows, n_rows)``, and negative ones count from the
    end, as in NumPy.
    """
    indices = np.asarray(indices, dtype=np.int64).reshape(-1)
    row_shape = rows.shape[1:]
    # The width is spelt out because NumPy cannot infer a -1 axis of an empty array.
    flat = np.ascontiguousarray(rows).reshape(len(indices), int(np.prod(row_shape)))
    out = np.zeros((n_rows, flat.shape[1]), dtype=flat.dtype)
    if indices.size:
        outside = indices[(indices < -n_rows) | (indices >= n_rows)]
        if outside.size:
            raise IndexError(f"scatter_add_rows: invalid index {int(outside[0])}, expected indices in [-{n_rows}, {n_rows})")
        _scatter_add_rows(out, np.where(indices < 0, indices + n_rows, indices), flat)
    return out.reshape((n_rows,) + row_shape)
