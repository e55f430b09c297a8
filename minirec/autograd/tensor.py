"""A reverse-mode automatic differentiation engine over NumPy arrays.

A :class:`Tensor` wraps an ``ndarray``. Every operation that produces a tensor from tensors that
require gradients records its inputs and a *backward rule*: a closure that takes the gradient of the
loss with respect to the output and returns the gradients with respect to each input.
:meth:`Tensor.backward` sorts the recorded graph topologically and walks it in reverse, so each rule
runs once, after every consumer of its output has contributed its share of the gradient.

The operations themselves live in :mod:`minirec.autograd.ops` (arithmetic, shapes, reductions,
indexing) and :mod:`minirec.autograd.functional` (activations, normalisation, losses). Each one
defines its forward computation and its backward rule side by side.

Examples
--------
>>> import numpy as np
>>> from minirec.autograd import Tensor
>>> x = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
>>> y = (x * x).sum()
>>> y.backward()
>>> x.grad
array([2., 4., 6.])
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator, Sequence

import numpy as np

from minirec.autograd.kernels import scatter_add_rows

_grad_enabled = True


def is_grad_enabled() -> bool:
    """Return whether new operations are recorded for differentiation."""
    return _grad_enabled


@contextlib.contextmanager
def no_grad() -> Iterator[None]:
    """Run the enclosed block without recording operations (evaluation, optimiser steps)."""
    global _grad_enabled
    previous = _grad_enabled
    _grad_enabled = False
    try:
        yield
    finally:
        _grad_enabled = previous


class RowSparseGrad:
    """Gradient of a table that only some rows received, as ``(indices, values)``.

    Gathering rows of a 50,000-row embedding table touches a few thousand of them per batch. Keeping
    the gradient as the touched rows lets the optimiser update those rows only, instead of
    materialising and scanning the whole table at every step. ``indices`` may repeat; repeated rows
    add up, as they would in the dense gradient.

    Parameters
    ----------
    indices : ndarray of int, shape (k,)
    values : ndarray, shape (k, *row_shape)
    shape : tuple, the shape of the dense table
    """

    __slots__ = ("indices", "values", "shape")

    def __init__(self, indices: np.ndarray, values: np.ndarray, shape: tuple[int, ...]):
        self.indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        self.values = values.reshape((self.indices.size,) + tuple(shape[1:]))
        self.shape = tuple(shape)

    @property
    def dtype(self) -> np.dtype:
        return self.values.dtype

    def coalesce(self) -> "RowSparseGrad":
        """Return an equivalent gradient with unique, sorted row indices."""
        rows, inverse = np.unique(self.indices, return_inverse=True)
        return RowSparseGrad(rows, scatter_add_rows(rows.size, inverse, self.values), self.shape)

    def to_dense(self) -> np.ndarray:
        return scatter_add_rows(self.shape[0], self.indices, self.values)

    def __repr__(self) -> str:
        return f"RowSparseGrad(rows={self.indices.size}, shape={self.shape})"


def add_grads(a, b):
    """Sum two gradients, either of which may be dense, row-sparse or ``None``."""
    if a is None:
        return b
    if b is None:
        return a
    a_sparse, b_sparse = isinstance(a, RowSparseGrad), isinstance(b, RowSparseGrad)
    if a_sparse and b_sparse:
        return RowSparseGrad(
            np.concatenate([a.indices, b.indices]), np.concatenate([a.values, b.values]), a.shape
        )
    if a_sparse:
        a, b = b, a
    if isinstance(b, RowSparseGrad):
        return a + b.to_dense()
    return a + b


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` over the axes that broadcasting expanded, so it takes ``shape``.

    Every elementwise operation calls this one rule instead of fixing shapes case by case: axes that
    broadcasting prepended are summed away, and axes of size 1 in ``shape`` are summed with
    ``keepdims``.
    """
    if grad.shape == tuple(shape):
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(axis for axis, size in enumerate(shape) if size == 1 and grad.shape[axis] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad.reshape(shape)


BackwardRule = Callable[[np.ndarray], Sequence["np.ndarray | RowSparseGrad | None"]]


class Tensor:
    """An array that remembers how it was computed, so gradients can flow back through it.

    Parameters
    ----------
    data : array_like
        The value. Python scalars and lists become arrays; integer arrays stay integer.
    requires_grad : bool
        Whether gradients should be computed for this tensor. Parameters set it; inputs usually don't.
    name : str, optional
        A label used in error messages and parameter listings.
    """

    __slots__ = ("data", "grad", "requires_grad", "name", "_parents", "_backward", "__weakref__")
    __array_priority__ = 100.0  # so that ``ndarray * Tensor`` defers to Tensor.__rmul__

    def __init__(self, data, requires_grad: bool = False, name: str | None = None):
        self.data = data if isinstance(data, np.ndarray) else np.asarray(data)
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self.name = name
        self._parents: tuple[Tensor, ...] = ()
        self._backward: BackwardRule | None = None

    @classmethod
    def from_op(cls, data: np.ndarray, parents: Sequence["Tensor"], backward: BackwardRule) -> "Tensor":
        """Build the output of an operation, recording ``backward`` only when a gradient is needed."""
        out = cls(data)
        if _grad_enabled and any(parent.requires_grad for parent in parents):
            out.requires_grad = True
            out._parents = tuple(parents)
            out._backward = backward
        return out

    # ----------------------------------------------------------------- properties
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def size(self) -> int:
        return self.data.size

    def numpy(self) -> np.ndarray:
        return self.data

    def item(self) -> float:
        return self.data.item()

    def detach(self) -> "Tensor":
        """Return the same values, cut off from the graph."""
        return Tensor(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        label = f", name={self.name!r}" if self.name else ""
        return f"Tensor(shape={self.shape}, dtype={self.dtype}, requires_grad={self.requires_grad}{label})"

    # ----------------------------------------------------------------- backward
    def backward(self, grad: np.ndarray | None = None) -> None:
        """Accumulate d(self)/d(leaf) into the ``grad`` of every leaf that requires it.

        ``grad`` defaults to 1 for a scalar. Gradients of intermediate results are freed as soon as
        their backward rule has run, so the memory of one backward pass is that of the live frontier.
        """
        if not self.requires_grad:
            raise RuntimeError("backward() called on a tensor that does not require grad; "
                               "check that at least one input was created with requires_grad=True")
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(f"backward() without an argument needs a scalar, got shape {self.shape}")
            grad = np.ones_like(self.data)

        order = _topological_order(self)
        pending: dict[int, object] = {id(self): grad}
        for node in reversed(order):
            node_grad = pending.pop(id(node), None)
            if node_grad is None:
                continue
            if node._backward is None:
                node.grad = add_grads(node.grad, node_grad)
                continue
            if isinstance(node_grad, RowSparseGrad):
                node_grad = node_grad.to_dense()
            parent_grads = node._backward(node_grad)
            for parent, parent_grad in zip(node._parents, parent_grads):
                if parent_grad is None or not parent.requires_grad:
                    continue
                pending[id(parent)] = add_grads(pending.get(id(parent)), parent_grad)

    def zero_grad(self) -> None:
        self.grad = None

    # ----------------------------------------------------------------- operators
    # The rules themselves are in ops.py; these methods only make the arithmetic read naturally.
    def __add__(self, other):
        return _ops().add(self, other)

    def __radd__(self, other):
        return _ops().add(other, self)

    def __sub__(self, other):
        return _ops().sub(self, other)

    def __rsub__(self, other):
        return _ops().sub(other, self)

    def __mul__(self, other):
        return _ops().mul(self, other)

    def __rmul__(self, other):
        return _ops().mul(other, self)

    def __truediv__(self, other):
        return _ops().div(self, other)

    def __rtruediv__(self, other):
        return _ops().div(other, self)

    def __neg__(self):
        return _ops().neg(self)

    def __pow__(self, exponent: float):
        return _ops().power(self, exponent)

    def __matmul__(self, other):
        return _ops().matmul(self, other)

    def __rmatmul__(self, other):
        return _ops().matmul(other, self)

    def __getitem__(self, index):
        return _ops().getitem(self, index)

    def sum(self, axis=None, keepdims: bool = False):
        return _ops().sum(self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims: bool = False):
        return _ops().mean(self, axis=axis, keepdims=keepdims)

    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return _ops().reshape(self, shape)

    def transpose(self, *axes):
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return _ops().transpose(self, axes or None)

    @property
    def T(self):
        return _ops().transpose(self, None)


def as_tensor(value, dtype=None) -> Tensor:
    """Wrap a constant (array or scalar) as a tensor that requires no gradient."""
    if isinstance(value, Tensor):
        return value
    array = np.asarray(value, dtype=dtype)
    return Tensor(array)


def _topological_order(root: Tensor) -> list[Tensor]:
    """Return the nodes that lead to ``root``, each after all of its parents.

    An explicit stack instead of recursion, because a 50-item history through several layers easily
    passes Python's recursion limit.
    """
    order: list[Tensor] = []
    visited: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False)]
    while stack:
        node, parents_done = stack.pop()
        if parents_done:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        for parent in node._parents:
            if parent.requires_grad and id(parent) not in visited:
                stack.append((parent, False))
    return order


def _ops():
    # Imported late because ops.py builds on Tensor.
    from minirec.autograd import ops

    return ops
