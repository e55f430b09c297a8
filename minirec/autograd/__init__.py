"""Reverse-mode automatic differentiation over NumPy arrays."""

from minirec.autograd.tensor import RowSparseGrad, Tensor, as_tensor, is_grad_enabled, no_grad, unbroadcast

__all__ = ["RowSparseGrad", "Tensor", "as_tensor", "is_grad_enabled", "no_grad", "unbroadcast"]
