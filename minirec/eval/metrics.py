"""MIND's evaluation metrics: AUC, MRR, nDCG@5 and nDCG@10 per impression, then averaged.

The definitions follow MIND's official ``evaluate.py`` (github.com/msnews/MIND):

- AUC is scikit-learn's ``roc_auc_score`` of one impression, which equals the Mann-Whitney
  statistic with ties counted one half. It is computed here from average ranks in O(n log n).
- ``MRR = sum_i y_(i) / i / sum_i y_i``, where ``y_(i)`` is the label of the candidate ranked i-th,
  so it averages 1/rank over every clicked candidate of the impression.
- ``DCG@k = sum_{i<=k} (2^y_(i) - 1) / log2(i + 1)`` and ``nDCG@k = DCG@k(scores) / DCG@k(labels)``.

Tie rule: the official script orders candidates with ``np.argsort(y_score)[::-1]``. Here the order
is a stable sort by descending score in which, among equal scores, the candidate that appears later
in the impression comes first. That is exactly ``np.argsort(scores, kind="stable")[::-1]``, and it
equals the official order whenever NumPy's default sort happens to be stable for the input (it is not
guaranteed to be). AUC does not depend on the order of tied candidates.

An impression without both a click and a non-click has no defined AUC, so :func:`evaluate` skips it
and counts it, while the single-impression functions raise ``ValueError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np


def _as_impression(
    labels: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Validate one impression and return (labels as float64, scores as float64)."""
    labels = np.asarray(labels)
    scores = np.asarray(scores, dtype=np.float64)
    if labels.ndim != 1 or scores.ndim != 1:
        raise ValueError(f"labels and scores must be 1-D, got shapes {labels.shape} and {scores.shape}")
    if labels.shape != scores.shape:
        raise ValueError(f"labels and scores differ in length: {labels.size} labels, {scores.size} scores")
    if labels.size == 0:
        raise ValueError("an impression needs at least one candidate, got none")
    if not ((labels == 0) | (labels == 1)).all():
        raise ValueError(f"labels must be 0 or 1, got values {sorted(set(labels.tolist()) - {0, 1})[:5]}")
    if np.isnan(scores).any():
        raise ValueError("scores contain NaN, so the candidates cannot be ranked. Check the model's output.")
    return labels.astype(np.float64), scores


def _ranking_order(scores: np.ndarray) -> np.ndarray:
    """Positions of the candidates from best to worst. Ties: the later candidate first."""
    return np.argsort(scores, kind="stable")[::-1]


def ranks_from_scores(scores: Sequence[float] | np.ndarray) -> np.ndarray:
    """Rank each candidate in its original position, 1 being the highest score.

    Uses the module's tie rule, so the result is always a permutation of 1..n.

    Examples
    --------
    >>> ranks_from_scores([0.2, 0.9, 0.5]).tolist()
    [3, 1, 2]
    >>> ranks_from_scores([0.5, 0.5]).tolist()
    [2, 1]
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 1:
        raise ValueError(f"scores must be 1-D, got shape {scores.shape}")
    if np.isnan(scores).any():
        raise ValueError("scores contain NaN, so the candidates cannot be ranked. Check the model's output.")
    ranks = np.empty(scores.size, dtype=np.int64)
    ranks[_ranking_order(scores)] = np.arange(1, scores.size + 1)
    return ranks


def _check_click_and_non_click(labels: np.ndarray, metric: str) -> None:
    n_clicks = int(labels.sum())
    if n_clicks == 0 or n_clicks == labels.size:
        raise ValueError(
            f"{metric} is undefined for an impression with {n_clicks} clicks among {labels.size} candidates: "
            "it needs at least one click and one non-click"
        )


def auc_score(labels: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray) -> float:
    """Compute the ROC AUC of one impression, counting tied scores as half a correct pair.

    ``AUC = (R_+ - P (P + 1) / 2) / (P N)``, where ``R_+`` is the sum of the average ranks (ascending,
    1-based) of the P clicked candidates and N is the number of non-clicked ones.

    Examples
    --------
    >>> auc_score([1, 0, 0], [0.5, 0.5, 0.1])
    0.75
    """
    labels, scores = _as_impression(labels, scores)
    _check_click_and_non_click(labels, "AUC")
    return _auc(labels, scores)


def _auc(labels: np.ndarray, scores: np.ndarray) -> float:
    order = np.argsort(scores, kind="stable")
    sorted_scores = scores[order]
    # Each run of equal scores shares the mean of the ranks it spans.
    starts = np.concatenate(([0], np.flatnonzero(sorted_scores[1:] != sorted_scores[:-1]) + 1))
    ends = np.append(starts[1:], scores.size)
    average_ranks = np.empty(scores.size, dtype=np.float64)
    average_ranks[order] = np.repeat((starts + 1 + ends) / 2.0, ends - starts)

    n_pos = labels.sum()
    n_neg = labels.size - n_pos
    rank_sum = average_ranks[labels == 1].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def mrr_score(labels: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray) -> float:
    """Compute MIND's MRR of one impression: the mean of 1/rank over its clicked candidates.

    Examples
    --------
    >>> mrr_score([1, 0, 0, 1], [0.9, 0.8, 0.6, 0.4])
    0.625
    """
    labels, scores = _as_impression(labels, scores)
    if labels.sum() == 0:
        raise ValueError("MRR is undefined for an impression without a click")
    return _mrr(labels[_ranking_order(scores)])


def _mrr(ordered_labels: np.ndarray) -> float:
    return float(np.sum(ordered_labels / np.arange(1, ordered_labels.size + 1)) / ordered_labels.sum())


def _dcg(ordered_labels: np.ndarray, k: int) -> float:
    top = ordered_labels[:k]
    gains = 2.0 ** top - 1.0
    discounts = np.log2(np.arange(top.size) + 2.0)
    return float(np.sum(gains / discounts))


def ndcg_score(labels: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray, k: int) -> float:
    """Compute nDCG@k of one impression: DCG@k of the scores' ranking over DCG@k of the ideal ranking.

    Examples
    --------
    >>> round(ndcg_score([0, 1], [0.9, 0.1], k=2), 4)
    0.6309
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    labels, scores = _as_impression(labels, scores)
    if labels.sum() == 0:
        raise ValueError("nDCG is undefined for an impression without a click")
    return _ndcg(labels, labels[_ranking_order(scores)], k)


def _ndcg(labels: np.ndarray, ordered_labels: np.ndarray, k: int) -> float:
    # The ideal ranking puts every click first. The order among equal labels does not change DCG.
    ideal = np.sort(labels)[::-1]
    return _dcg(ordered_labels, k) / _dcg(ideal, k)


@dataclass
class EvaluationResult:
    """Means of MIND's metrics over the scored impressions (NaN when none was scored)."""

    auc: float
    mrr: float
    ndcg5: float
    ndcg10: float
    n_impressions: int
    n_scored: int
    n_skipped: int

    def as_dict(self) -> dict[str, float | int]:
        """Return the fields as a plain dict, ready for JSON."""
        return asdict(self)


def evaluate(
    labels_list: Sequence[Sequence[int] | np.ndarray],
    scores_list: Sequence[Sequence[float] | np.ndarray],
) -> EvaluationResult:
    """Average AUC, MRR, nDCG@5 and nDCG@10 over impressions, as MIND's leaderboard does.

    Parameters
    ----------
    labels_list : sequence of array-like
        Per impression, the 0/1 click label of each candidate.
    scores_list : sequence of array-like
        Per impression, one score per candidate (higher is better).

    Returns
    -------
    EvaluationResult
        Impressions without both a click and a non-click are skipped and counted in ``n_skipped``.

    Raises
    ------
    ValueError
        When the two lists differ in length, or an impression's labels and scores differ in length
        (the message gives the impression's position).
    """
    if len(labels_list) != len(scores_list):
        raise ValueError(
            f"labels_list has {len(labels_list)} impressions but scores_list has {len(scores_list)}"
        )
    aucs, mrrs, ndcg5s, ndcg10s = [], [], [], []
    n_skipped = 0
    for position, (labels, scores) in enumerate(zip(labels_list, scores_list)):
        try:
            labels, scores = _as_impression(labels, scores)
        except ValueError as error:
            raise ValueError(f"impression at position {position}: {error}") from None
        n_clicks = labels.sum()
        if n_clicks == 0 or n_clicks == labels.size:
            n_skipped += 1
            continue
        ordered = labels[_ranking_order(scores)]
        aucs.append(_auc(labels, scores))
        mrrs.append(_mrr(ordered))
        ndcg5s.append(_ndcg(labels, ordered, 5))
        ndcg10s.append(_ndcg(labels, ordered, 10))

    def mean(values: list[float]) -> float:
        return float(np.mean(values)) if values else float("nan")

    return EvaluationResult(
        auc=mean(aucs),
        mrr=mean(mrrs),
        ndcg5=mean(ndcg5s),
        ndcg10=mean(ndcg10s),
        n_impressions=len(labels_list),
        n_scored=len(aucs),
        n_skipped=n_skipped,
    )
