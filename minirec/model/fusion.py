"""Fusion of a news item's views (ID, text, graph) into one vector.

Every fusion takes ``z`` of shape (news, views, dim) and a boolean ``available`` of shape
(news, views). A news item without text, without a news.tsv row, or never seen in training lacks
the matching view, so fusion must not let a placeholder vector speak for it. Each returns the fused
vectors (news, dim) and per-view weights (news, views) that sum to 1 over the available views, so
training can report how much each view is used.
"""

from __future__ import annotations

import numpy as np

from minirec.autograd import Tensor
from minirec.autograd import functional as F
from minirec.nn import Linear, Module


class AttentionGateFusion(Module):
    """Softmax attention of one learnable query over the views.

    Notes
    -----
    k_v = W_k z_v, alpha_v = softmax_v(q^T k_v / sqrt(d)) over available views, output sum_v alpha_v z_v.
    Dividing by sqrt(d) keeps the scores near unit scale at initialisation, which delays the
    saturation (one view taking all the weight) that ends training of the other views.
    """

    def __init__(self, dim: int, views: int, rng: np.random.Generator):
        super().__init__()
        self.key = Linear(dim, dim, rng)
        self.query = Tensor(rng.normal(0.0, 1.0 / np.sqrt(dim), (dim, 1)).astype(np.float32), requires_grad=True)
        self.scale = 1.0 / np.sqrt(dim)

    def forward(self, z: Tensor, available: np.ndarray) -> tuple[Tensor, Tensor]:
        news, views, dim = z.shape
        scores = (self.key(z) @ self.query).reshape(news, views) * self.scale
        alpha = F.masked_softmax(scores, available, axis=-1)
        fused = (alpha.reshape(news, views, 1) * z).sum(axis=1)
        return fused, alpha


class ConcatFusion(Module):
    """Concatenate the views (absent ones as zeros) and mix them with a two-layer MLP.

    The weights reported are uniform over available views, since concatenation has no per-view weight.
    """

    def __init__(self, dim: int, views: int, rng: np.random.Generator):
        super().__init__()
        self.hidden = Linear(dim * views, dim, rng)
        self.output = Linear(dim, dim, rng)

    def forward(self, z: Tensor, available: np.ndarray) -> tuple[Tensor, Tensor]:
        news, views, dim = z.shape
        present = available[..., None].astype(z.dtype)
        flat = (z * present).reshape(news, views * dim)
        fused = self.output(F.relu(self.hidden(flat)))
        counts = np.maximum(available.sum(axis=1, keepdims=True), 1)
        return fused, Tensor((available / counts).astype(z.dtype))


class SigmoidGateFusion(Module):
    """An independent sigmoid gate per view, normalised over the available views.

    Notes
    -----
    g_v = sigmoid(w_v^T z_v + b_v), alpha_v = m_v g_v / sum_u m_u g_u, output sum_v alpha_v z_v, where m
    marks available views. Unlike softmax attention, a gate can open for several views at once.
    """

    def __init__(self, dim: int, views: int, rng: np.random.Generator):
        super().__init__()
        self.weight = Tensor(rng.normal(0.0, 1.0 / np.sqrt(dim), (views, dim)).astype(np.float32), requires_grad=True)
        self.bias = Tensor(np.zeros(views, dtype=np.float32), requires_grad=True)

    def forward(self, z: Tensor, available: np.ndarray) -> tuple[Tensor, Tensor]:
        news, views, dim = z.shape
        gates = F.sigmoid((z * self.weight).sum(axis=-1) + self.bias) * available.astype(z.dtype)
        total = gates.sum(axis=-1, keepdims=True) + 1e-6
        alpha = gates / total
        fused = (alpha.reshape(news, views, 1) * z).sum(axis=1)
        return fused, alpha


FUSION_CLASSES = {"attention": AttentionGateFusion, "concat": ConcatFusion, "gate": SigmoidGateFusion}


def make_fusion(kind: str, dim: int, views: int, rng: np.random.Generator) -> Module:
    return FUSION_CLASSES[kind](dim, views, rng)
