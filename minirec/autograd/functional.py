"""Activations, normalisation, attention softmax and losses, each with its backward rule beside it.

These are written as single fused operations rather than compositions of :mod:`ops`, because each
has a short closed-form gradient that is cheaper and numerically safer than the chain of its parts
(softmax and the log-sigmoid loss in particular).
"""

from __future__ import annotations

import numpy as np

from minirec.autograd.tensor import Tensor, unbroadcast


# --------------------------------------------------------------------------- activations
def relu(x: Tensor) -> Tensor:
    positive = x.data > 0
    return Tensor.from_op(np.where(positive, x.data, 0).astype(x.dtype), (x,), lambda g: (g * positive,))


def tanh(x: Tensor) -> Tensor:
    out = np.tanh(x.data)
    return Tensor.from_op(out, (x,), lambda g: (g * (1 - out * out),))


def _stable_sigmoid(z: np.ndarray) -> np.ndarray:
    # exp of a non-positive number never overflows: 1/(1+e^-z) for z >= 0, e^z/(1+e^z) otherwise.
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e)).astype(z.dtype, copy=False)


def sigmoid(x: Tensor) -> Tensor:
    out = _stable_sigmoid(x.data)
    return Tensor.from_op(out, (x,), lambda g: (g * out * (1 - out),))


def softplus(x: Tensor) -> Tensor:
    """``log(1 + e^x)``, computed as ``max(x, 0) + log1p(e^-|x|)`` so it never overflows."""
    out = np.maximum(x.data, 0) + np.log1p(np.exp(-np.abs(x.data)))
    return Tensor.from_op(out.astype(x.dtype), (x,), lambda g: (g * _stable_sigmoid(x.data),))


def dropout(x: Tensor, p: float, rng: np.random.Generator, training: bool = True) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by ``1/(1-p)`` (inverted dropout).

    Scaling at training time keeps the expected activation equal, so evaluation is the identity.
    """
    if not training or p <= 0:
        return x
    if p >= 1:
        raise ValueError(f"dropout probability must be below 1, got {p}")
    keep = (rng.random(x.shape) >= p).astype(x.dtype) / (1 - p)
    return Tensor.from_op(x.data * keep, (x,), lambda g: (g * keep,))


# --------------------------------------------------------------------------- softmax
def masked_softmax(x: Tensor, mask: np.ndarray | None = None, axis: int = -1) -> Tensor:
    """Softmax over ``axis`` restricted to positions where ``mask`` is true.

    Masked positions get weight 0. A row with no valid position at all (an empty history, a news item
    with no view available) gets all zeros instead of the NaN that 0/0 would give, and passes no
    gradient back.

    Notes
    -----
    y_i = m_i exp(x_i - c) / sum_j m_j exp(x_j - c), with c the row maximum over valid positions
    (subtracting it keeps exp from overflowing). dL/dx_i = y_i (g_i - sum_j g_j y_j).
    """
    data = x.data
    if mask is None:
        mask = np.ones(data.shape, dtype=bool)
    mask = np.broadcast_to(np.asarray(mask, dtype=bool), data.shape)
    shifted = np.where(mask, data, -np.inf)
    row_max = shifted.max(axis=axis, keepdims=True)
    row_max = np.where(np.isfinite(row_max), row_max, 0)
    e = np.where(mask, np.exp(np.where(mask, data - row_max, 0)), 0).astype(data.dtype)
    total = e.sum(axis=axis, keepdims=True)
    out = e / np.where(total > 0, total, 1)

    def backward(g):
        return (out * (g - (g * out).sum(axis=axis, keepdims=True)),)

    return Tensor.from_op(out, (x,), backward)


def masked_log_softmax(x: Tensor, mask: np.ndarray, axis: int = -1) -> Tensor:
    """``log(masked_softmax(x))`` at valid positions and 0 at masked ones, without forming log(0).

    dL/dx_i = m_i (g_i - y_i sum_j m_j g_j), where y is the masked softmax.
    """
    data = x.data
    mask = np.broadcast_to(np.asarray(mask, dtype=bool), data.shape)
    shifted = np.where(mask, data, -np.inf)
    row_max = shifted.max(axis=axis, keepdims=True)
    row_max = np.where(np.isfinite(row_max), row_max, 0)
    e = np.where(mask, np.exp(np.where(mask, data - row_max, 0)), 0)
    log_total = np.log(np.maximum(e.sum(axis=axis, keepdims=True), np.finfo(data.dtype).tiny))
    out = np.where(mask, data - row_max - log_total, 0).astype(data.dtype)
    probabilities = np.where(mask, np.exp(out), 0)

    def backward(g):
        g = np.where(mask, g, 0)
        return (g - probabilities * g.sum(axis=axis, keepdims=True),)

    return Tensor.from_op(out, (x,), backward)


# --------------------------------------------------------------------------- normalisation
def layer_norm(x: Tensor, gamma: Tensor, beta: Tensor, eps: float = 1e-5) -> Tensor:
    """Normalise over the last axis, then scale and shift.

    Notes
    -----
    x_hat = (x - mu) / sqrt(var + eps), y = gamma * x_hat + beta, with mu and var over the last axis
    of size D. With h = g * gamma: dL/dx = (h - mean(h) - x_hat * mean(h * x_hat)) / sqrt(var + eps).
    """
    mu = x.data.mean(axis=-1, keepdims=True)
    centred = x.data - mu
    inv_std = 1.0 / np.sqrt((centred * centred).mean(axis=-1, keepdims=True) + eps)
    x_hat = centred * inv_std
    out = x_hat * gamma.data + beta.data

    def backward(g):
        h = g * gamma.data
        grad_x = inv_std * (h - h.mean(axis=-1, keepdims=True) - x_hat * (h * x_hat).mean(axis=-1, keepdims=True))
        return grad_x, unbroadcast(g * x_hat, gamma.shape), unbroadcast(g, beta.shape)

    return Tensor.from_op(out.astype(x.dtype, copy=False), (x, gamma, beta), backward)


def batch_norm(x: Tensor, gamma: Tensor, beta: Tensor, eps: float = 1e-5) -> tuple[Tensor, np.ndarray, np.ndarray]:
    """Normalise each feature over the batch (axis 0) with the batch's own statistics.

    Returns the output together with the batch mean and (biased) variance, which the layer uses to
    update its running statistics. The gradient is LayerNorm's, with the roles of the axes swapped.
    """
    mu = x.data.mean(axis=0, keepdims=True)
    centred = x.data - mu
    var = (centred * centred).mean(axis=0, keepdims=True)
    inv_std = 1.0 / np.sqrt(var + eps)
    x_hat = centred * inv_std
    out = x_hat * gamma.data + beta.data

    def backward(g):
        h = g * gamma.data
        grad_x = inv_std * (h - h.mean(axis=0, keepdims=True) - x_hat * (h * x_hat).mean(axis=0, keepdims=True))
        return grad_x, unbroadcast(g * x_hat, gamma.shape), unbroadcast(g, beta.shape)

    result = Tensor.from_op(out.astype(x.dtype, copy=False), (x, gamma, beta), backward)
    return result, mu.reshape(-1), var.reshape(-1)


def l2_normalize(x: Tensor, axis: int = -1, eps: float = 1e-12) -> Tensor:
    """Divide by the Euclidean norm along ``axis``; a zero vector stays zero instead of becoming NaN.

    Notes
    -----
    y = x / max(||x||, eps). Where ||x|| > eps: dL/dx = (g - y * sum(g * y)) / ||x||.
    """
    norm = np.sqrt((x.data * x.data).sum(axis=axis, keepdims=True))
    safe = np.maximum(norm, eps)
    out = x.data / safe
    clamped = norm <= eps

    def backward(g):
        projected = g - out * (g * out).sum(axis=axis, keepdims=True)
        return (np.where(clamped, g, projected) / safe,)

    return Tensor.from_op(out, (x,), backward)


# --------------------------------------------------------------------------- losses
def binary_cross_entropy_with_logits(logits: Tensor, labels: np.ndarray, mask: np.ndarray | None = None) -> Tensor:
    """Mean binary cross-entropy of ``sigmoid(logits)`` against 0/1 ``labels`` over valid positions.

    Notes
    -----
    Per element, -[y log s(z) + (1 - y) log(1 - s(z))] = max(z, 0) - z y + log(1 + e^-|z|), which stays
    finite for logits of any size (no log of 0). Its gradient is s(z) - y, divided by the count of
    valid positions.
    """
    z = logits.data
    labels = np.asarray(labels, dtype=z.dtype)
    weights = np.ones(z.shape, dtype=z.dtype) if mask is None else np.asarray(mask, dtype=z.dtype)
    count = max(float(weights.sum()), 1.0)
    per_element = np.maximum(z, 0) - z * labels + np.log1p(np.exp(-np.abs(z)))
    loss = np.asarray((per_element * weights).sum() / count, dtype=z.dtype)

    def backward(g):
        return (g * weights * (_stable_sigmoid(z) - labels) / count,)

    return Tensor.from_op(loss, (logits,), backward)
