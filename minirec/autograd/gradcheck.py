"""Compare the gradients of the autograd engine with central finite differences.

Every op's test calls :func:`check_grads`, so one careful implementation of the numerical side serves
the whole engine.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from minirec.autograd.tensor import RowSparseGrad, Tensor, no_grad


def numerical_gradient(loss: Callable[[], float], array: np.ndarray, eps: float) -> np.ndarray:
    """Estimate d(loss)/d(array) by central differences, perturbing ``array`` in place.

    (f(x + eps) - f(x - eps)) / (2 eps) has error O(eps^2), against O(eps) for a one-sided difference.
    """
    grad = np.zeros_like(array)
    flat, flat_grad = array.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        original = flat[i]
        flat[i] = original + eps
        upper = loss()
        flat[i] = original - eps
        lower = loss()
        flat[i] = original
        flat_grad[i] = (upper - lower) / (2 * eps)
    return grad


def check_grads(
    fn: Callable[..., Tensor],
    inputs: Sequence[np.ndarray],
    *,
    eps: float = 1e-6,
    rtol: float = 1e-5,
    atol: float = 1e-7,
    seed: int = 0,
) -> None:
    """Raise ``AssertionError`` unless autograd's gradient of ``fn`` matches central differences.

    ``fn`` takes one tensor per array in ``inputs`` and returns a tensor of any shape. Both gradients
    are taken of ``sum(fn(*inputs) * w)`` for a fixed random ``w``, so every output element counts
    with a different weight and a rule that mixes up output positions cannot pass. Inputs are
    converted to float64: in float32 the finite difference itself is too noisy to judge a rule.
    ``fn`` must be deterministic (a dropout inside it needs a freshly seeded generator per call).
    """
    arrays = [np.array(a, dtype=np.float64) for a in inputs]
    tensors = [Tensor(a, requires_grad=True) for a in arrays]
    output = fn(*tensors)
    weights = np.random.default_rng(seed).standard_normal(output.shape)
    (output * weights).sum().backward()

    def weighted_loss() -> float:
        with no_grad():
            return float((fn(*[Tensor(a) for a in arrays]).data * weights).sum())

    for position, (array, tensor) in enumerate(zip(arrays, tensors)):
        analytic = tensor.grad
        if analytic is None:
            analytic = np.zeros_like(array)
        elif isinstance(analytic, RowSparseGrad):
            analytic = analytic.to_dense()
        numeric = numerical_gradient(weighted_loss, array, eps)
        if not np.allclose(analytic, numeric, rtol=rtol, atol=atol):
            worst = np.unravel_index(np.argmax(np.abs(analytic - numeric)), array.shape)
            raise AssertionError(
                f"gradient of input {position} (shape {array.shape}) differs from central differences: "
                f"at index {tuple(int(i) for i in worst)} autograd gives {analytic[worst]:.8g}, "
                f"finite differences give {numeric[worst]:.8g}"
            )
