"""The unoptimised paths that the Numba kernels replaced, kept for the benchmarks to compare with.

* :func:`scipy_sparse_matmul` is graph aggregation with SciPy's sparse products, forward and backward.
* :func:`composed_score_logits` is tau * cosine built from the autograd engine's normalise,
  multiply and sum operations, each with its own backward rule.
* :func:`padded_predict` scores impressions in padded (batch, candidate) arrays, encoding the user
  of every impression.

:func:`unoptimised` swaps them into the model code for the duration of a ``with`` block, so one
process can measure both paths on the same data and the same weights.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import numpy as np

from minirec.autograd import Tensor, no_grad, ops
from minirec.autograd import functional as F
from minirec.model import graphsage, recommender
from minirec.train.batches import ImpressionSet, batch_order, make_batch


def scipy_sparse_matmul(matrix, x: Tensor) -> Tensor:
    """Compute ``matrix @ x`` with SciPy; the backward rule is ``matrix.T @ g``, also with SciPy."""
    matrix = matrix.tocsr()
    transposed = None

    def backward(g):
        nonlocal transposed
        if transposed is None:
            transposed = matrix.T.tocsr()
        return (np.asarray(transposed @ g, dtype=x.dtype),)

    return Tensor.from_op(np.asarray(matrix @ x.data, dtype=x.dtype), (x,), backward)


def composed_score_logits(model, users: Tensor, candidates: Tensor) -> Tensor:
    """Return tau * cos for users (B, D) against candidates (B, C, D) from separate autograd operations."""
    users = F.l2_normalize(users, axis=-1)
    candidates = F.l2_normalize(candidates, axis=-1)
    batch, dim = users.shape
    cosine = (candidates * users.reshape(batch, 1, dim)).sum(axis=-1)
    return cosine * model.config.tau


def padded_predict(model, impressions: ImpressionSet, batch_size: int = 256,
                   news_vectors: np.ndarray | None = None) -> list[np.ndarray]:
    """Return click probabilities per impression, scoring batches padded to their longest candidate list."""
    if news_vectors is None:
        news_vectors, _ = model.encode_news(np.arange(len(model.news_encoder.inputs.catalog)))
    table = Tensor(news_vectors)
    was_training = model.training
    model.eval()
    scores: list[np.ndarray] = []
    with no_grad():
        for indices in batch_order(len(impressions), batch_size, None):
            batch = make_batch(impressions, indices)
            history = ops.take_rows(table, batch.news_rows[batch.history_position])
            users, _ = model.user_encoder(batch.user_rows, history, batch.history_mask, batch.history_age)
            candidates = ops.take_rows(table, batch.news_rows[batch.candidate_position])
            probabilities = F.sigmoid(composed_score_logits(model, users, candidates)).data
            for b, i in enumerate(indices):
                scores.append(probabilities[b, :len(impressions.candidates[i])].copy())
    model.train(was_training)
    return scores


@contextlib.contextmanager
def unoptimised() -> Iterator[None]:
    """Run the enclosed block with SciPy aggregation, the composed scorer and the padded ``predict``."""
    saved = (graphsage.ops.sparse_matmul, recommender.Recommender.score_logits, recommender.Recommender.predict)
    graphsage.ops.sparse_matmul = scipy_sparse_matmul
    recommender.Recommender.score_logits = composed_score_logits
    recommender.Recommender.predict = padded_predict
    try:
        yield
    finally:
        graphsage.ops.sparse_matmul, recommender.Recommender.score_logits, recommender.Recommender.predict = saved
