"""The news encoder: three views of each news item, fused, then a final linear projection.

Views (each brought to ``dim`` by Linear -> LayerNorm -> ReLU -> Dropout):

* **id**: a learnable embedding per news item seen in training;
* **text**: a fixed text embedding (LSA, MiniLM, OpenAI or any precomputed vector);
* **graph**: GraphSAGE over the news–entity graph. Entity nodes start from their TransE vectors and
  are fine-tuned. News nodes start from a learnable embedding of their category, so a news item
  with no entity still has a defined, trainable input.

The fused vector goes through one more :class:`Linear` with no activation. Every view ends in ReLU,
so without it all news vectors would lie in the positive orthant, every cosine would be >= 0, and
sigmoid(tau * cos) could never fall below 0.5.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from minirec.autograd import Tensor, ops
from minirec.data.catalog import NewsCatalog
from minirec.model.config import ModelConfig
from minirec.model.fusion import make_fusion
from minirec.model.graphsage import GraphSAGE, build_blocks
from minirec.nn import Embedding, Linear, Module, ProjectionBlock


@dataclass
class NewsInputs:
    """Fixed inputs of the news encoder, aligned with the catalogue rows and saved with the model."""

    catalog: NewsCatalog
    text_vectors: np.ndarray | None = None   # (rows, text_dim) float32, zeros where absent
    has_text: np.ndarray | None = None       # (rows,) bool
    adjacency: sp.csr_matrix | None = None   # (rows + entities) square, row-normalised
    entity_init: np.ndarray | None = None    # (entities, entity_dim)
    entity_ids: list[str] | None = None       # WikidataId of each entity node, in node order


class NewsEncoder(Module):
    def __init__(self, config: ModelConfig, inputs: NewsInputs, rng: np.random.Generator):
        super().__init__()
        self.config, self.inputs = config, inputs
        self.rng = rng
        self.views = config.views
        catalog = inputs.catalog
        self.id_row = catalog.id_row
        self.has_row = catalog.has_row
        if "id" in self.views:
            self.id_embedding = Embedding(config.num_news_ids, config.news_id_dim, rng)
            self.id_projection = ProjectionBlock(config.news_id_dim, config.dim, config.dropout, rng)
        if "text" in self.views:
            if inputs.text_vectors is None:
                raise ValueError("the text view needs text vectors; pass --text-embeddings or drop 'text' from --views")
            self.text_projection = ProjectionBlock(inputs.text_vectors.shape[1], config.dim, config.dropout, rng)
        if "graph" in self.views:
            self.category_embedding = Embedding(config.num_categories, config.entity_dim, rng)
            self.entity_table = Tensor(inputs.entity_init.astype(np.float32), requires_grad=True)
            self.graph = GraphSAGE(config.entity_dim, config.dim, config.graph_layers, config.graph_dropout, rng)
            self.graph_projection = ProjectionBlock(config.dim, config.dim, config.dropout, rng)
        self.fusion = make_fusion(config.fusion, config.dim, len(self.views), rng) if len(self.views) > 1 else None
        self.output = Linear(config.dim, config.dim, rng)

    # ----------------------------------------------------------------- views
    def _graph_view(self, rows: np.ndarray) -> Tensor:
        num_news = len(self.inputs.catalog)
        nodes, blocks = build_blocks(self.inputs.adjacency, rows, self.config.graph_layers)
        is_news = nodes < num_news
        news_features = self.category_embedding(self.inputs.catalog.category[nodes[is_news]])
        entity_features = ops.take_rows(self.entity_table, nodes[~is_news] - num_news)
        stacked = ops.concat([news_features, entity_features], axis=0)
        # Put the features back in node order: news rows came first in ``stacked``.
        order = np.empty(nodes.size, dtype=np.int64)
        order[np.flatnonzero(is_news)] = np.arange(int(is_news.sum()))
        order[np.flatnonzero(~is_news)] = int(is_news.sum()) + np.arange(int((~is_news).sum()))
        return self.graph(ops.take_rows(stacked, order), blocks)

    def availability(self, rows: np.ndarray) -> np.ndarray:
        """Return which views exist for each row: (rows, views) bool."""
        columns = []
        for view in self.views:
            if view == "id":
                columns.append(self.id_row[rows] > 0)
            elif view == "text":
                columns.append(self.inputs.has_text[rows])
            else:
                columns.append(self.has_row[rows])
        return np.stack(columns, axis=1)

    def forward(self, rows: np.ndarray) -> tuple[Tensor, Tensor]:
        """Encode catalogue ``rows`` (distinct); return vectors (rows, dim) and view weights (rows, views)."""
        rows = np.asarray(rows, dtype=np.int64)
        available = self.availability(rows)
        if self.training and "id" in self.views and self.config.id_view_dropout > 0 and len(self.views) > 1:
            # Hide the ID view of some news, where another view exists, so that the other views learn
            # to carry news that training never showed (most candidates of a later day).
            column = self.views.index("id")
            others = np.delete(available, column, axis=1).any(axis=1)
            hidden = (self.rng.random(rows.size) < self.config.id_view_dropout) & others
            available[:, column] &= ~hidden

        vectors = []
        for column, view in enumerate(self.views):
            if view == "id":
                vectors.append(self.id_projection(self.id_embedding(self.id_row[rows])))
                continue
            # Text and graph run only on the news that have them, because in real MIND folders most
            # referenced news have no news.tsv row. The others get a zero vector that fusion masks out.
            present = np.flatnonzero(available[:, column] | (view == "graph") & self.has_row[rows])
            if view == "text":
                computed = self.text_projection(Tensor(self.inputs.text_vectors[rows[present]]))
            else:
                computed = self.graph_projection(self._graph_view(rows[present]))
            vectors.append(_scatter_rows(computed, present, rows.size))

        if self.fusion is None:
            fused = vectors[0] * available[:, :1].astype(np.float32)
            weights = Tensor(available.astype(np.float32))
        else:
            fused, weights = self.fusion(ops.stack(vectors, axis=1), available)
        return self.output(fused), weights


def _scatter_rows(values: Tensor, positions: np.ndarray, count: int) -> Tensor:
    """Place ``values`` at ``positions`` of a (count, dim) result whose other rows are zero."""
    padded = ops.concat([Tensor(np.zeros((1, values.shape[1]), dtype=values.dtype)), values], axis=0)
    index = np.zeros(count, dtype=np.int64)
    index[positions] = np.arange(1, positions.size + 1)
    return ops.take_rows(padded, index)

