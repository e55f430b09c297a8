"""Basic layers: Linear, Embedding, LayerNorm, BatchNorm1d, Dropout and the view projection block."""

from __future__ import annotations

import numpy as np

from minirec.autograd import Tensor, ops
from minirec.autograd import functional as F
from minirec.nn.module import Module


class Linear(Module):
    """``y = x W + b`` over the last axis.

    Weights start uniform in ±sqrt(6 / (in + out)) (Glorot), which keeps the activation variance
    roughly constant through a stack of layers.
    """

    def __init__(self, in_features: int, out_features: int, rng: np.random.Generator, bias: bool = True,
                 dtype=np.float32):
        super().__init__()
        limit = np.sqrt(6.0 / (in_features + out_features))
        self.weight = Tensor(rng.uniform(-limit, limit, (in_features, out_features)).astype(dtype), requires_grad=True)
        self.bias = Tensor(np.zeros(out_features, dtype=dtype), requires_grad=True) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim == 2:
            y = x @ self.weight
        else:  # (..., in) -> (..., out): fold the leading axes into one matrix product
            y = (x.reshape(-1, x.shape[-1]) @ self.weight).reshape(x.shape[:-1] + (self.weight.shape[1],))
        return y + self.bias if self.bias is not None else y


class Embedding(Module):
    """A table of learnable vectors looked up by integer index; index 0 is padding/unknown.

    Row 0 starts at zero and receives no gradient, so a padded history slot or an id never seen in
    training maps to the zero vector. A table of ``k`` items therefore has ``k + 1`` rows.
    """

    def __init__(self, num_embeddings: int, dim: int, rng: np.random.Generator, scale: float = 0.1,
                 dtype=np.float32):
        super().__init__()
        table = rng.normal(0.0, scale, (num_embeddings, dim)).astype(dtype)
        table[0] = 0
        self.weight = Tensor(table, requires_grad=True)

    def forward(self, indices: np.ndarray) -> Tensor:
        indices = np.asarray(indices)
        if indices.size and (indices.min() < 0 or indices.max() >= self.weight.shape[0]):
            raise IndexError(f"embedding index out of range [0, {self.weight.shape[0]}): "
                             f"min {indices.min()}, max {indices.max()}")
        rows = ops.take_rows(self.weight, indices)
        # Multiplying by the not-padding mask zeroes both the value and the gradient of row 0.
        not_padding = (indices != 0)[..., None].astype(rows.dtype)
        return rows * not_padding


class LayerNorm(Module):
    def __init__(self, dim: int, eps: float = 1e-5, dtype=np.float32):
        super().__init__()
        self.eps = eps
        self.gamma = Tensor(np.ones(dim, dtype=dtype), requires_grad=True)
        self.beta = Tensor(np.zeros(dim, dtype=dtype), requires_grad=True)

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(x, self.gamma, self.beta, self.eps)


class BatchNorm1d(Module):
    """Normalise each feature over the batch during training, and by running statistics at evaluation.

    Notes
    -----
    Training: y = gamma (x - mean_B) / sqrt(var_B + eps) + beta, and the running estimates move by
    ``running = (1 - momentum) running + momentum batch`` (the unbiased variance is stored, as is usual).
    Evaluation uses the running estimates, so one item's output does not depend on its batch.
    """

    def __init__(self, dim: int, momentum: float = 0.1, eps: float = 1e-5, dtype=np.float32):
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.gamma = Tensor(np.ones(dim, dtype=dtype), requires_grad=True)
        self.beta = Tensor(np.zeros(dim, dtype=dtype), requires_grad=True)
        self.register_buffer("running_mean", np.zeros(dim, dtype=dtype))
        self.register_buffer("running_var", np.ones(dim, dtype=dtype))

    def forward(self, x: Tensor) -> Tensor:
        if self.training and x.shape[0] > 1:
            out, mean, var = F.batch_norm(x, self.gamma, self.beta, self.eps)
            n = x.shape[0]
            self._buffers["running_mean"][...] += self.momentum * (mean - self._buffers["running_mean"])
            self._buffers["running_var"][...] += self.momentum * (var * n / (n - 1) - self._buffers["running_var"])
            return out
        inv_std = (1.0 / np.sqrt(self._buffers["running_var"] + self.eps)).astype(x.dtype)
        return (x - self._buffers["running_mean"]) * inv_std * self.gamma + self.beta


class Dropout(Module):
    def __init__(self, p: float, rng: np.random.Generator):
        super().__init__()
        self.p, self.rng = p, rng

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.rng, self.training)


class ProjectionBlock(Module):
    """Linear -> LayerNorm -> ReLU -> Dropout: how each view of a news item is brought to the model width.

    Its output is non-negative, so it can never be the last step before a cosine score; the news and
    user encoders end in a plain :class:`Linear` for that reason.
    """

    def __init__(self, in_features: int, out_features: int, dropout: float, rng: np.random.Generator):
        super().__init__()
        self.linear = Linear(in_features, out_features, rng)
        self.norm = LayerNorm(out_features)
        self.dropout = Dropout(dropout, rng)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(F.relu(self.norm(self.linear(x))))
