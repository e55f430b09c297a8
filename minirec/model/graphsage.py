"""GraphSAGE with mean aggregation over the news–entity graph, computed on mini-batch blocks.

Notes
-----
One layer maps the features h of the input nodes to the output nodes v:

    h'_v = Dropout(ReLU(BatchNorm(W_self h_v + W_neigh mean_{u in N(v)} h_u + b)))

The mean is a product with the row-normalised adjacency (a node without neighbours aggregates the
zero vector). Stacking two layers lets a news item see its entities and, through them, the other
news that mention the same entities.

A mini-batch needs the output only for its own news, so each layer runs on a *block*: the nodes whose
outputs are needed, and a sparse matrix from them to the nodes whose inputs those outputs read. The
output nodes are the first rows of each block's input, so ``h[:n_out]`` is their own feature.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from minirec.autograd import Tensor, ops
from minirec.autograd import functional as F
from minirec.graph.build import neighbourhood
from minirec.nn import BatchNorm1d, Dropout, Linear, Module


@dataclass
class Block:
    """One layer's slice of the graph: ``adjacency`` has shape (n_out, n_in), outputs first in the input."""

    n_out: int
    adjacency: sp.csr_matrix


class SAGELayer(Module):
    def __init__(self, in_dim: int, out_dim: int, dropout: float, rng: np.random.Generator):
        super().__init__()
        self.self_weight = Linear(in_dim, out_dim, rng)
        self.neighbour_weight = Linear(in_dim, out_dim, rng, bias=False)
        self.norm = BatchNorm1d(out_dim)
        self.dropout = Dropout(dropout, rng)

    def forward(self, h: Tensor, block: Block) -> Tensor:
        own = ops.getitem(h, slice(0, block.n_out))
        neighbours = ops.sparse_matmul(block.adjacency, h)  # (n_out, in_dim)
        combined = self.self_weight(own) + self.neighbour_weight(neighbours)
        return self.dropout(F.relu(self.norm(combined)))


class GraphSAGE(Module):
    """Stacked :class:`SAGELayer` s; ``forward`` takes the input features and one block per layer."""

    def __init__(self, in_dim: int, hidden_dim: int, layers: int, dropout: float, rng: np.random.Generator):
        super().__init__()
        dims = [in_dim] + [hidden_dim] * layers
        self.layers = [SAGELayer(dims[i], dims[i + 1], dropout, rng) for i in range(layers)]

    def forward(self, features: Tensor, blocks: list[Block]) -> Tensor:
        if len(blocks) != len(self.layers):
            raise ValueError(f"GraphSAGE has {len(self.layers)} layers but got {len(blocks)} blocks")
        h = features
        for layer, block in zip(self.layers, blocks):
            h = layer(h, block)
        return h


def build_blocks(adjacency: sp.csr_matrix, targets: np.ndarray, layers: int) -> tuple[np.ndarray, list[Block]]:
    """Return the input node ids and the per-layer blocks that compute ``targets``' outputs.

    The blocks come from :func:`minirec.graph.build.neighbourhood`: each layer's input nodes are its
    output nodes followed by their neighbours not already present, so the result equals the
    full-graph computation for the targets at the cost of their ``layers``-hop neighbourhood only.
    """
    levels = neighbourhood(adjacency.tocsr(), np.asarray(targets, dtype=np.int64), hops=layers)
    return levels[0][0], [Block(n_out=block.shape[0], adjacency=block) for _, block in levels]
