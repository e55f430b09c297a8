"""Arithmetic, shape, reduction and indexing operations, each with its backward rule beside it.

Every function here takes tensors (or constants, which are wrapped), computes the forward result
with plain NumPy, and returns ``Tensor.from_op(result, parents, backward)``. ``backward`` receives
``g = dL/d(output)`` and returns ``dL/d(parent)`` for each parent, in order. Shape mismatches caused
by broadcasting are undone by the one shared rule :func:`~minirec.autograd.tensor.unbroadcast`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import scipy.sparse as sp

from minirec.autograd.kernels import scatter_add_rows
from minirec.autograd.tensor import RowSparseGrad, Tensor, as_tensor, unbroadcast
from minirec.graph.kernels import csr_mean_aggregate, csr_transpose


def _pair(a, b) -> tuple[Tensor, Tensor]:
    """Wrap constants so that they take the dtype of the tensor operand (float32 stays float32)."""
    if isinstance(a, Tensor) and not isinstance(b, Tensor):
        b = Tensor(np.asarray(b, dtype=a.dtype if a.dtype.kind == "f" else None))
    elif isinstance(b, Tensor) and not isinstance(a, Tensor):
        a = Tensor(np.asarray(a, dtype=b.dtype if b.dtype.kind == "f" else None))
    return as_tensor(a), as_tensor(b)


# --------------------------------------------------------------------------- elementwise arithmetic
def add(a, b) -> Tensor:
    a, b = _pair(a, b)

    def backward(g):
        return unbroadcast(g, a.shape), unbroadcast(g, b.shape)

    return Tensor.from_op(a.data + b.data, (a, b), backward)


def sub(a, b) -> Tensor:
    a, b = _pair(a, b)

    def backward(g):
        return unbroadcast(g, a.shape), unbroadcast(-g, b.shape)

    return Tensor.from_op(a.data - b.data, (a, b), backward)


def mul(a, b) -> Tensor:
    a, b = _pair(a, b)

    def backward(g):
        grad_a = unbroadcast(g * b.data, a.shape) if a.requires_grad else None
        grad_b = unbroadcast(g * a.data, b.shape) if b.requires_grad else None
        return grad_a, grad_b

    return Tensor.from_op(a.data * b.data, (a, b), backward)


def div(a, b) -> Tensor:
    a, b = _pair(a, b)
    out = a.data / b.data

    def backward(g):
        grad_a = unbroadcast(g / b.data, a.shape) if a.requires_grad else None
        grad_b = unbroadcast(-g * out / b.data, b.shape) if b.requires_grad else None
        return grad_a, grad_b

    return Tensor.from_op(out, (a, b), backward)


def neg(a: Tensor) -> Tensor:
    return Tensor.from_op(-a.data, (a,), lambda g: (-g,))


def power(a: Tensor, exponent: float) -> Tensor:
    """``a ** exponent`` for a constant scalar exponent."""
    exponent = float(exponent)

    def backward(g):
        return (g * exponent * a.data ** (exponent - 1),)

    return Tensor.from_op(a.data**exponent, (a,), backward)


def exp(a: Tensor) -> Tensor:
    out = np.exp(a.data)
    return Tensor.from_op(out, (a,), lambda g: (g * out,))


def log(a: Tensor) -> Tensor:
    return Tensor.from_op(np.log(a.data), (a,), lambda g: (g / a.data,))


# --------------------------------------------------------------------------- linear algebra
def matmul(a, b) -> Tensor:
    """Matrix product of the last two axes, with NumPy's broadcasting of the leading (batch) axes.

    Both operands must have at least two axes: ``(..., n, k) @ (..., k, m) -> (..., n, m)``.
    """
    a, b = _pair(a, b)
    if a.ndim < 2 or b.ndim < 2:
        raise ValueError(f"matmul needs operands with at least 2 axes, got shapes {a.shape} and {b.shape}")

    if b.ndim == 2 and a.ndim > 2:
        # (..., n, k) @ (k, m): one large matrix product over the folded leading axes is far faster
        # than NumPy's loop over many small ones, and its gradient for b needs no unbroadcasting.
        folded = a.data.reshape(-1, a.shape[-1])

        def folded_backward(g):
            g2 = g.reshape(-1, g.shape[-1])
            grad_a = (g2 @ b.data.T).reshape(a.shape) if a.requires_grad else None
            grad_b = folded.T @ g2 if b.requires_grad else None
            return grad_a, grad_b

        out = (folded @ b.data).reshape(a.shape[:-1] + (b.shape[-1],))
        return Tensor.from_op(out, (a, b), folded_backward)

    if a.ndim == 2 and b.ndim == 2:
        # BLAS reads a transposed 2-D operand in place, so the backward products need no copies.
        # Copying the transposes first made a training step 1.15 times as long
        # (benchmarks/bench_proposals.py).
        def plain_backward(g):
            grad_a = g @ b.data.T if a.requires_grad else None
            grad_b = a.data.T @ g if b.requires_grad else None
            return grad_a, grad_b

        return Tensor.from_op(a.data @ b.data, (a, b), plain_backward)

    # NumPy may fall back to a plain loop instead of BLAS for a stack of non-contiguous matrices, such
    # as the head-split views of attention. Copying them first made a training step about 3x faster here.
    contiguous = np.ascontiguousarray

    def backward(g):
        g = contiguous(g)
        grad_a = unbroadcast(g @ contiguous(np.swapaxes(b.data, -1, -2)), a.shape) if a.requires_grad else None
        grad_b = unbroadcast(contiguous(np.swapaxes(a.data, -1, -2)) @ g, b.shape) if b.requires_grad else None
        return grad_a, grad_b

    return Tensor.from_op(contiguous(a.data) @ contiguous(b.data), (a, b), backward)


def sparse_matmul(matrix, x: Tensor) -> Tensor:
    """``matrix @ x`` for a constant SciPy sparse ``matrix`` (graph aggregation).

    The backward rule is ``matrix.T @ g``: each neighbour receives back the share of the gradient
    that its feature contributed to every row that averaged it. Both products run in the Numba
    kernels of :mod:`minirec.graph.kernels`. On the GraphSAGE blocks of small-scale training batches
    they were about 1.4 times as fast as SciPy's products, forward and backward
    (``benchmarks/bench_kernels.py``). The tests compare them with the SciPy references there.
    """
    matrix = sp.csr_matrix(matrix)
    n_rows, n_cols = matrix.shape
    if x.shape[0] != n_cols:
        raise ValueError(f"sparse_matmul: matrix of shape {matrix.shape} cannot multiply x of shape {x.shape}")
    # The width is spelt out because NumPy cannot infer a -1 axis of an empty array: a batch whose
    # news all lack a news.tsv row gives the graph view blocks of 0 rows.
    width = int(np.prod(x.shape[1:]))
    features = x.data.reshape(n_cols, width)
    transposed = None

    def backward(g):
        nonlocal transposed
        if transposed is None:
            transposed = csr_transpose(matrix.indptr, matrix.indices, matrix.data, n_cols)
        return (csr_mean_aggregate(*transposed, g.reshape(n_rows, width)).reshape(x.shape),)

    out = csr_mean_aggregate(matrix.indptr, matrix.indices, matrix.data, features)
    return Tensor.from_op(out.reshape((n_rows,) + x.shape[1:]), (x,), backward)


# --------------------------------------------------------------------------- reductions
def _normalise_axes(axis, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    return tuple(a % ndim for a in axes)


def sum(a: Tensor, axis=None, keepdims: bool = False) -> Tensor:  # noqa: A001 - mirrors numpy.sum
    axes = _normalise_axes(axis, a.ndim)

    def backward(g):
        if not keepdims:
            g = np.expand_dims(g, axes)
        return (np.broadcast_to(g, a.shape).copy(),)

    return Tensor.from_op(np.sum(a.data, axis=axes, keepdims=keepdims), (a,), backward)


def mean(a: Tensor, axis=None, keepdims: bool = False) -> Tensor:
    axes = _normalise_axes(axis, a.ndim)
    count = int(np.prod([a.shape[ax] for ax in axes])) if axes else 1
    return sum(a, axis=axes, keepdims=keepdims) * (1.0 / max(count, 1))


# --------------------------------------------------------------------------- shapes
def reshape(a: Tensor, shape: Sequence[int]) -> Tensor:
    return Tensor.from_op(a.data.reshape(shape), (a,), lambda g: (g.reshape(a.shape),))


def transpose(a: Tensor, axes: Sequence[int] | None = None) -> Tensor:
    """Permute axes; ``axes=None`` reverses them, as ``ndarray.transpose`` does."""
    inverse = None if axes is None else tuple(np.argsort(axes))
    return Tensor.from_op(a.data.transpose(axes), (a,), lambda g: (g.transpose(inverse),))


def concat(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    tensors = [as_tensor(t) for t in tensors]
    axis = axis % tensors[0].ndim
    bounds = np.cumsum([t.shape[axis] for t in tensors])[:-1]

    def backward(g):
        return tuple(np.split(g, bounds, axis=axis))

    return Tensor.from_op(np.concatenate([t.data for t in tensors], axis=axis), tensors, backward)


def stack(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    tensors = [as_tensor(t) for t in tensors]
    out = np.stack([t.data for t in tensors], axis=axis)
    axis = axis % out.ndim

    def backward(g):
        return tuple(np.take(g, i, axis=axis) for i in range(len(tensors)))

    return Tensor.from_op(out, tensors, backward)


# --------------------------------------------------------------------------- indexing
def getitem(a: Tensor, index) -> Tensor:
    """``a[index]`` for any NumPy index; repeated positions add their gradients."""
    if isinstance(index, Tensor):
        index = index.data

    def backward(g):
        grad = np.zeros_like(a.data)
        np.add.at(grad, index, g)
        return (grad,)

    return Tensor.from_op(a.data[index], (a,), backward)


def take_rows(table: Tensor, indices) -> Tensor:
    """Gather rows of ``table`` (shape ``(n, *row)``) at integer ``indices`` of any shape.

    The result has shape ``indices.shape + row``. When ``table`` is a leaf (a parameter such as an
    embedding table) its gradient is a :class:`RowSparseGrad` holding only the gathered rows, so
    the optimiser touches those rows only. For an intermediate table the gradient is dense.
    """
    indices = np.asarray(indices.data if isinstance(indices, Tensor) else indices)
    if indices.dtype.kind not in "iu":
        raise TypeError(f"take_rows needs integer indices, got dtype {indices.dtype}")
    row_shape = table.shape[1:]

    def backward(g):
        flat = g.reshape((-1,) + row_shape)
        if table._backward is None:
            return (RowSparseGrad(indices.reshape(-1), flat, table.shape),)
        return (scatter_add_rows(table.shape[0], indices, flat).astype(table.dtype, copy=False),)

    return Tensor.from_op(table.data[indices], (table,), backward)


def where(condition: np.ndarray, a, b) -> Tensor:
    """Elementwise choice between ``a`` and ``b`` by a constant boolean ``condition``."""
    a, b = _pair(a, b)
    condition = np.asarray(condition, dtype=bool)

    def backward(g):
        grad_a = unbroadcast(np.where(condition, g, 0), a.shape) if a.requires_grad else None
        grad_b = unbroadcast(np.where(condition, 0, g), b.shape) if b.requires_grad else None
        return grad_a, grad_b

    return Tensor.from_op(np.where(condition, a.data, b.data), (a, b), backward)
