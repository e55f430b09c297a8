"""Training objectives: pointwise binary cross-entropy, or a listwise softmax over sampled candidates.

Both take the logits ``tau * cos(user, candidate)`` of a padded batch, shape (impressions, candidates),
and return a scalar loss tensor.

* ``bce`` treats every candidate of an impression as an independent click/no-click example.
* ``listwise`` follows NRMS (Wu et al., 2019): each click competes with ``K`` non-clicks drawn from
  the same impression, and the loss is the cross-entropy of a softmax over those ``K + 1`` logits.
  Only the order of scores within an impression is trained, not their absolute level.
"""

from __future__ import annotations

import numpy as np

from minirec.autograd import Tensor, ops
from minirec.autograd import functional as F
from minirec.model.config import TrainConfig
from minirec.train.batches import Batch


def bce(logits: Tensor, batch: Batch) -> Tensor:
    """Compute the mean binary cross-entropy over every real (unpadded) candidate of the batch."""
    return F.binary_cross_entropy_with_logits(logits, batch.labels, batch.candidate_mask)


def sample_groups(batch: Batch, negatives: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``negatives`` non-clicks of the same impression for every click of the batch.

    Returns two int arrays of shape (clicks, 1 + negatives): the impression of each entry and its
    candidate position, with the click in column 0. Non-clicks are drawn without replacement, or with
    replacement when the impression has fewer than ``negatives`` of them. A click whose impression has
    no non-click cannot be contrasted with anything and is left out.
    """
    impressions, positions = [], []
    valid = batch.candidate_mask
    for b in range(valid.shape[0]):
        clicks = np.flatnonzero(valid[b] & (batch.labels[b] == 1))
        non_clicks = np.flatnonzero(valid[b] & (batch.labels[b] == 0))
        if non_clicks.size == 0:
            continue
        for click in clicks:
            drawn = rng.choice(non_clicks, size=negatives, replace=non_clicks.size < negatives)
            impressions.append(np.full(negatives + 1, b))
            positions.append(np.concatenate([[click], drawn]))
    if not impressions:
        empty = np.zeros((0, negatives + 1), dtype=np.int64)
        return empty, empty.copy()
    return np.stack(impressions).astype(np.int64), np.stack(positions).astype(np.int64)


def listwise(logits: Tensor, batch: Batch, negatives: int, rng: np.random.Generator) -> Tensor:
    """Compute the mean softmax cross-entropy of each click against ``negatives`` sampled non-clicks.

    Notes
    -----
    For a click with logit s_0 and drawn non-clicks with logits s_1..s_K,
    loss = -log(exp(s_0) / sum_{j=0..K} exp(s_j)), averaged over the clicks of the batch.
    A batch without any click that has a non-click beside it gives a loss of 0 with zero gradient.
    """
    impressions, positions = sample_groups(batch, negatives, rng)
    if impressions.shape[0] == 0:
        return (logits * 0.0).sum()
    grouped = ops.getitem(logits, (impressions, positions))  # (clicks, 1 + K)
    log_probability = F.masked_log_softmax(grouped, np.ones(grouped.shape, dtype=bool), axis=-1)
    return -ops.getitem(log_probability, (slice(None), 0)).mean()


def training_loss(config: TrainConfig, logits: Tensor, batch: Batch, rng: np.random.Generator) -> Tensor:
    """Compute the loss of the objective that ``config.objective`` names."""
    if config.objective == "listwise":
        return listwise(logits, batch, config.negatives, rng)
    return bce(logits, batch)
