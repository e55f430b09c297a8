"""The user encoder: a user-ID embedding and a time-decayed attention summary of the clicked history.

The history summary is ``dim`` wide and the user-ID embedding ``user_id_dim``; concatenated they are
``dim + user_id_dim`` wide, which cannot be compared with a ``dim``-wide news vector. A final
:class:`Linear` (no activation) maps the concatenation into the news space, so user and news vectors
can point in any direction relative to each other.

MIND records the order of a user's clicks but not their times, so the age of a history item is its
distance from the most recent click, counted in clicks (0 for the latest).
"""

from __future__ import annotations

import numpy as np

from minirec.autograd import Tensor, ops
from minirec.model.config import ModelConfig
from minirec.nn import Dropout, Embedding, Linear, Module, MultiHeadSelfAttention, TimeDecayAttentionPooling


class UserEncoder(Module):
    def __init__(self, config: ModelConfig, rng: np.random.Generator):
        super().__init__()
        self.user_embedding = Embedding(config.num_users, config.user_id_dim, rng)
        self.self_attention = MultiHeadSelfAttention(config.dim, config.heads, config.dropout, rng)
        self.dropout = Dropout(config.dropout, rng)
        self.pooling = TimeDecayAttentionPooling(config.dim, config.dim // 2, rng, config.initial_decay)
        self.output = Linear(config.user_id_dim + config.dim, config.dim, rng)

    def forward(self, user_rows: np.ndarray, history: Tensor, mask: np.ndarray, age: np.ndarray) -> tuple[Tensor, Tensor]:
        """Encode users from ``history`` (batch, length, dim) of news vectors.

        Returns the user vectors (batch, dim) and the pooling weights over the history (batch, length).
        """
        contextual = self.dropout(self.self_attention(history, mask))
        summary, weights = self.pooling(contextual, mask, age)
        identity = self.user_embedding(user_rows)
        return self.output(ops.concat([identity, summary], axis=1)), weights
