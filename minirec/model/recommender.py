"""The whole recommender: news encoder, user encoder and the cosine x tau scorer.

Notes
-----
score(u, n) = sigmoid(tau * cos(u, n)), cos(u, n) = u^T n / (||u|| ||n||).
With cos in [-1, 1] the logit lies in [-tau, tau]: tau sets how confident the model can ever be,
and at initialisation, when cosines are small, how far predictions start from 0.5.
"""

from __future__ import annotations

import numpy as np

from minirec.autograd import Tensor, no_grad, ops
from minirec.autograd import functional as F
from minirec.model.config import ModelConfig
from minirec.model.news_encoder import NewsEncoder, NewsInputs
from minirec.model.user_encoder import UserEncoder
from minirec.nn import Module
from minirec.train.batches import Batch, ImpressionSet, batch_order, make_batch


class Recommender(Module):
    def __init__(self, config: ModelConfig, inputs: NewsInputs, rng: np.random.Generator | None = None):
        super().__init__()
        rng = rng if rng is not None else np.random.default_rng(config.seed)
        self.config = config
        self.rng = rng
        self.news_encoder = NewsEncoder(config, inputs, rng)
        self.user_encoder = UserEncoder(config, rng)

    def score_logits(self, users: Tensor, candidates: Tensor) -> Tensor:
        """Return tau * cos for users (B, D) against candidates (B, C, D): logits (B, C)."""
        users = F.l2_normalize(users, axis=-1)
        candidates = F.l2_normalize(candidates, axis=-1)
        batch, dim = users.shape
        cosine = (candidates * users.reshape(batch, 1, dim)).sum(axis=-1)
        return cosine * self.config.tau

    def forward(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """Return logits (B, C) and the view weights of the batch's news (U, views)."""
        news, view_weights = self.news_encoder(batch.news_rows)
        history = ops.take_rows(news, batch.history_position)
        users, _ = self.user_encoder(batch.user_rows, history, batch.history_mask, batch.history_age)
        candidates = ops.take_rows(news, batch.candidate_position)
        return self.score_logits(users, candidates), view_weights

    # ----------------------------------------------------------------- inference
    def encode_news(self, rows: np.ndarray, chunk: int = 50000) -> tuple[np.ndarray, np.ndarray]:
        """Encode catalogue ``rows`` in evaluation mode; return vectors and view weights as arrays."""
        was_training = self.training
        self.eval()
        vectors, weights = [], []
        with no_grad():
            for start in range(0, len(rows), chunk):
                v, w = self.news_encoder(rows[start:start + chunk])
                vectors.append(v.data)
                weights.append(w.data)
        self.train(was_training)
        return np.concatenate(vectors), np.concatenate(weights)

    def predict(self, impressions: ImpressionSet, batch_size: int = 256,
                news_vectors: np.ndarray | None = None) -> list[np.ndarray]:
        """Return the click probability of every candidate of every impression, in file order.

        News are encoded once for the whole set (``news_vectors`` may pass them in), then users are
        encoded a batch at a time.
        """
        if news_vectors is None:
            rows = np.arange(len(self.news_encoder.inputs.catalog))
            news_vectors, _ = self.encode_news(rows)
        table = Tensor(news_vectors)
        was_training = self.training
        self.eval()
        scores: list[np.ndarray] = []
        with no_grad():
            for indices in batch_order(len(impressions), batch_size, None):
                batch = make_batch(impressions, indices)
                # Positions in the batch index its distinct rows; map them back to catalogue rows.
                history = ops.take_rows(table, batch.news_rows[batch.history_position])
                users, _ = self.user_encoder(batch.user_rows, history, batch.history_mask, batch.history_age)
                candidates = ops.take_rows(table, batch.news_rows[batch.candidate_position])
                probabilities = F.sigmoid(self.score_logits(users, candidates)).data
                for b, i in enumerate(indices):
                    scores.append(probabilities[b, :len(impressions.candidates[i])].copy())
        self.train(was_training)
        return scores
