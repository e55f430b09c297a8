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
from minirec.eval.scoring import (concatenate_groups, padded_cosine_logits, padded_cosine_logits_backward,
                                  score_grouped)
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
        """Return tau * cos for users (B, D) against candidates (B, C, D): logits (B, C).

        One Numba pass computes the logits and one the gradients; their rule is in
        :func:`~minirec.eval.scoring.padded_cosine_logits_backward`.
        """
        tau = self.config.tau
        logits, cosines, user_norms, candidate_norms = padded_cosine_logits(users.data, candidates.data, tau)

        def backward(g):
            return padded_cosine_logits_backward(users.data, candidates.data, g, cosines, user_norms,
                                                 candidate_norms, tau)

        return Tensor.from_op(logits, (users, candidates), backward)

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

        News are encoded once for the whole set (``news_vectors`` may pass them in). Users are encoded
        a batch at a time, each distinct (user, history) pair once, because the impressions of a user
        in one MIND split share one history. Batches take the pairs in order of history length, so
        little of a batch is padding. All candidates are then scored in one pass of
        :func:`~minirec.eval.scoring.score_grouped`, which needs no padding either.
        """
        if len(impressions) == 0:
            return []
        if news_vectors is None:
            rows = np.arange(len(self.news_encoder.inputs.catalog))
            news_vectors, _ = self.encode_news(rows)
        table = Tensor(news_vectors)

        # representatives[k] is the first impression of the k-th distinct pair; pair_of maps each impression to k.
        pair_of = np.empty(len(impressions), dtype=np.int64)
        first_position: dict[tuple[int, bytes], int] = {}
        representatives = []
        for i, (user_row, history) in enumerate(zip(impressions.user_rows.tolist(), impressions.histories)):
            key = (user_row, history.tobytes())
            if key not in first_position:
                first_position[key] = len(representatives)
                representatives.append(i)
            pair_of[i] = first_position[key]
        representatives = np.asarray(representatives, dtype=np.int64)
        lengths = np.array([len(impressions.histories[i]) for i in representatives])
        by_length = np.argsort(lengths, kind="stable")

        was_training = self.training
        self.eval()
        users = np.zeros((len(representatives), news_vectors.shape[1]), dtype=news_vectors.dtype)
        with no_grad():
            for chunk in batch_order(len(by_length), batch_size, None):
                pairs = by_length[chunk]
                batch = make_batch(impressions, representatives[pairs])
                # Positions in the batch index its distinct rows; map them back to catalogue rows.
                history = ops.take_rows(table, batch.news_rows[batch.history_position])
                vectors, _ = self.user_encoder(batch.user_rows, history, batch.history_mask, batch.history_age)
                users[pairs] = vectors.data
        self.train(was_training)

        rows, offsets = concatenate_groups(impressions.candidates)
        probabilities = score_grouped(users[pair_of], news_vectors, rows, offsets, self.config.tau, apply_sigmoid=True)
        return np.split(probabilities, offsets[1:-1])
