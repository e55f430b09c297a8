"""Reference scorers that any trained model should beat."""

from __future__ import annotations

import numpy as np

from minirec.train.batches import ImpressionSet


def popularity_scores(training: ImpressionSet, impressions: ImpressionSet) -> list[np.ndarray]:
    """Score each candidate by how often it was clicked in the ``training`` impressions.

    Catalogue rows are shared between the two sets, so counts carry over by row. News never clicked
    in training score 0 and tie (ties are ranked by MIND's rule, see :mod:`minirec.eval.metrics`).
    """
    size = 1 + max([0] + [int(c.max()) for c in training.candidates if c.size] +
                   [int(c.max()) for c in impressions.candidates if c.size])
    clicks = np.zeros(size, dtype=np.float64)
    for candidates, labels in zip(training.candidates, training.labels):
        np.add.at(clicks, candidates[labels == 1], 1.0)
    return [clicks[candidates] for candidates in impressions.candidates]
