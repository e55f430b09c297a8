"""Multi-head self-attention over a clicked history, and attention pooling with time decay."""

from __future__ import annotations

import numpy as np

from minirec.autograd import Tensor
from minirec.autograd import functional as F
from minirec.nn.layers import Dropout, Linear
from minirec.nn.module import Module


class MultiHeadSelfAttention(Module):
    """Scaled dot-product self-attention with ``heads`` heads and a key padding mask.

    Notes
    -----
    For input X of shape (batch, length, d) and head h of width d_h = d / heads:
    Q_h = X W_q,h, K_h = X W_k,h, V_h = X W_v,h,
    A_h = softmax(Q_h K_h^T / sqrt(d_h)) over valid keys, head_h = A_h V_h,
    output = concat(head_1, ..., head_H) W_o.
    Padded positions are excluded as keys; their own output rows are meaningless and must be masked
    by the caller's pooling. A history with no valid position gives all-zero attention, not NaN.
    """

    def __init__(self, dim: int, heads: int, dropout: float, rng: np.random.Generator):
        super().__init__()
        if dim % heads:
            raise ValueError(f"model width {dim} is not divisible by {heads} attention heads")
        self.heads, self.head_dim = heads, dim // heads
        self.query = Linear(dim, dim, rng)
        self.key = Linear(dim, dim, rng)
        self.value = Linear(dim, dim, rng)
        self.output = Linear(dim, dim, rng)
        self.dropout = Dropout(dropout, rng)

    def _split_heads(self, x: Tensor) -> Tensor:
        batch, length, _ = x.shape
        return x.reshape(batch, length, self.heads, self.head_dim).transpose(0, 2, 1, 3)  # (B, H, L, d_h)

    def forward(self, x: Tensor, mask: np.ndarray) -> Tensor:
        """Attend over ``x`` (batch, length, dim); ``mask`` (batch, length) is true at real items."""
        batch, length, dim = x.shape
        q, k, v = self._split_heads(self.query(x)), self._split_heads(self.key(x)), self._split_heads(self.value(x))
        scores = (q @ k.transpose(0, 1, 3, 2)) * (1.0 / np.sqrt(self.head_dim))  # (B, H, L, L)
        weights = F.masked_softmax(scores, mask[:, None, None, :], axis=-1)
        heads = self.dropout(weights) @ v  # (B, H, L, d_h)
        merged = heads.transpose(0, 2, 1, 3).reshape(batch, length, dim)
        return self.output(merged)


class TimeDecayAttentionPooling(Module):
    """Pool a sequence into one vector with learned attention weights, discounted by age.

    Notes
    -----
    s_i = q^T tanh(W h_i + b) is the relevance of item i and dt_i its age. The weights are
    alpha_i = softmax_i(s_i - lambda * dt_i) = exp(s_i) exp(-lambda dt_i) / sum_j exp(s_j) exp(-lambda dt_j),
    i.e. attention weights multiplied by the decay exp(-lambda dt) and renormalised. lambda =
    softplus(rho) >= 0 is learned from ``initial_decay``. The output is sum_i alpha_i h_i.
    """

    def __init__(self, dim: int, hidden: int, rng: np.random.Generator, initial_decay: float = 0.05):
        super().__init__()
        self.projection = Linear(dim, hidden, rng)
        self.query = Tensor(rng.normal(0.0, 0.1, (hidden, 1)).astype(np.float32), requires_grad=True)
        # rho such that softplus(rho) = initial_decay.
        self.decay_logit = Tensor(np.array([np.log(np.expm1(initial_decay))], dtype=np.float32), requires_grad=True)

    @property
    def decay(self) -> float:
        return float(np.log1p(np.exp(self.decay_logit.data[0])))

    def forward(self, h: Tensor, mask: np.ndarray, age: np.ndarray) -> tuple[Tensor, Tensor]:
        """Return the pooled vector (batch, dim) and the weights alpha (batch, length).

        ``age`` (batch, length) is in the unit the caller chooses, and ``mask`` marks real items.
        """
        relevance = (F.tanh(self.projection(h)) @ self.query).reshape(h.shape[0], h.shape[1])
        decay = F.softplus(self.decay_logit)
        logits = relevance - decay * age.astype(h.dtype)
        alpha = F.masked_softmax(logits, mask, axis=-1)
        pooled = (alpha.reshape(alpha.shape[0], alpha.shape[1], 1) * h).sum(axis=1)
        return pooled, alpha

