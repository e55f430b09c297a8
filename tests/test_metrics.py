"""MIND metrics checked against hand computations and a transcription of MIND's evaluate.py."""

import math

import numpy as np
import pytest

from minirec.eval.metrics import (
    EvaluationResult,
    auc_score,
    evaluate,
    mrr_score,
    ndcg_score,
    ranks_from_scores,
)

SCORES = [0.9, 0.8, 0.6, 0.4]
LABELS = [1, 0, 0, 1]


def official_mrr(y_true, y_score):
    """MIND's mrr_score, with the stable descending order the module documents."""
    order = np.argsort(y_score, kind="stable")[::-1]
    y_true = np.take(y_true, order)
    rr_score = y_true / (np.arange(len(y_true)) + 1)
    return np.sum(rr_score) / np.sum(y_true)


def official_dcg(y_true, y_score, k):
    order = np.argsort(y_score, kind="stable")[::-1]
    y_true = np.take(y_true, order[:k])
    gains = 2 ** y_true - 1
    discounts = np.log2(np.arange(len(y_true)) + 2)
    return np.sum(gains / discounts)


def official_ndcg(y_true, y_score, k):
    return official_dcg(y_true, y_score, k) / official_dcg(y_true, y_true, k)


def pairwise_auc(labels, scores):
    """Share of (click, non-click) pairs ordered correctly, a tie counting one half."""
    labels = np.asarray(labels)
    scores = np.asarray(scores, dtype=float)
    positive = scores[labels == 1][:, None]
    negative = scores[labels == 0][None, :]
    return float(np.mean((positive > negative) + 0.5 * (positive == negative)))


def test_mrr_hand_example():
    # Clicks at rank 1 and rank 4: (1/1 + 1/4) / 2.
    assert mrr_score(LABELS, SCORES) == pytest.approx(0.625, abs=1e-12)


def test_ndcg_hand_example():
    # Ranked labels are 1, 0, 0, 1 and the ideal ranking is 1, 1, 0, 0.
    dcg = 1 / math.log2(2) + 1 / math.log2(5)
    ideal = 1 / math.log2(2) + 1 / math.log2(3)
    assert ndcg_score(LABELS, SCORES, 5) == pytest.approx(dcg / ideal, abs=1e-12)
    assert ndcg_score(LABELS, SCORES, 10) == pytest.approx(dcg / ideal, abs=1e-12)
    # At k = 2 only the first click counts.
    assert ndcg_score(LABELS, SCORES, 2) == pytest.approx(1 / ideal, abs=1e-12)
    assert ndcg_score(LABELS, SCORES, 1) == pytest.approx(1.0, abs=1e-12)


def test_auc_hand_example():
    # Click 0.9 beats both non-clicks, click 0.4 beats neither: 2 of 4 pairs.
    assert auc_score(LABELS, SCORES) == pytest.approx(0.5, abs=1e-12)
    assert auc_score([0, 1, 1], [0.1, 0.2, 0.3]) == pytest.approx(1.0, abs=1e-12)
    assert auc_score([1, 1, 0], [0.1, 0.2, 0.3]) == pytest.approx(0.0, abs=1e-12)


def test_auc_counts_ties_as_half():
    # Pairs: (0.7 vs 0.7) 1/2, (0.7 vs 0.1) 1, (0.3 vs 0.7) 0, (0.3 vs 0.1) 1, so 2.5 of 4.
    assert auc_score([1, 0, 1, 0], [0.7, 0.7, 0.3, 0.1]) == pytest.approx(0.625, abs=1e-12)
    # All scores equal: every pair is a tie.
    assert auc_score([1, 0, 0, 1, 0], [0.3] * 5) == pytest.approx(0.5, abs=1e-12)


def test_auc_matches_pairwise_count():
    rng = np.random.default_rng(7)
    for _ in range(200):
        n = int(rng.integers(2, 40))
        labels = rng.integers(0, 2, size=n)
        labels[0], labels[1] = 1, 0
        scores = np.round(rng.random(n), 1)  # one decimal: many ties
        assert auc_score(labels, scores) == pytest.approx(pairwise_auc(labels, scores), abs=1e-12)


def test_monotone_transform_keeps_metrics():
    rng = np.random.default_rng(3)
    labels = np.array([0, 1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0])
    scores = rng.normal(size=labels.size)
    transformed = 1 / (1 + np.exp(-3 * scores)) + 7
    assert auc_score(labels, transformed) == pytest.approx(auc_score(labels, scores), abs=1e-12)
    assert mrr_score(labels, transformed) == pytest.approx(mrr_score(labels, scores), abs=1e-12)
    assert ndcg_score(labels, transformed, 5) == pytest.approx(ndcg_score(labels, scores, 5), abs=1e-12)
    assert ndcg_score(labels, transformed, 10) == pytest.approx(ndcg_score(labels, scores, 10), abs=1e-12)


def test_ties_match_official_formula():
    rng = np.random.default_rng(11)
    for _ in range(300):
        n = int(rng.integers(1, 30))
        labels = rng.integers(0, 2, size=n)
        labels[0] = 1
        scores = np.round(rng.random(n), 1)
        assert mrr_score(labels, scores) == pytest.approx(official_mrr(labels, scores), abs=1e-12)
        for k in (5, 10):
            assert ndcg_score(labels, scores, k) == pytest.approx(official_ndcg(labels, scores, k), abs=1e-12)


def test_tied_scores_rank_later_candidate_first():
    # Equal scores: the second candidate is ranked first, so the click is at rank 2.
    assert mrr_score([1, 0], [0.5, 0.5]) == pytest.approx(0.5, abs=1e-12)
    assert mrr_score([0, 1], [0.5, 0.5]) == pytest.approx(1.0, abs=1e-12)


def test_ranks_from_scores_examples():
    assert ranks_from_scores([0.2, 0.9, 0.5]).tolist() == [3, 1, 2]
    assert ranks_from_scores([0.5, 0.5, 0.1]).tolist() == [2, 1, 3]
    assert ranks_from_scores([4.0]).tolist() == [1]


def test_ranks_from_scores_is_permutation():
    rng = np.random.default_rng(5)
    scores = np.round(rng.random(50), 1)
    ranks = ranks_from_scores(scores)
    assert sorted(ranks.tolist()) == list(range(1, 51))
    # Higher score never gets a worse (larger) rank.
    for i in range(50):
        for j in range(50):
            if scores[i] > scores[j]:
                assert ranks[i] < ranks[j]


def test_single_impression_metrics_reject_no_click():
    with pytest.raises(ValueError, match="click"):
        auc_score([0, 0, 0], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="click"):
        mrr_score([0, 0], [0.1, 0.2])
    with pytest.raises(ValueError, match="click"):
        ndcg_score([0, 0], [0.1, 0.2], 5)
    with pytest.raises(ValueError, match="non-click"):
        auc_score([1, 1], [0.1, 0.2])


def test_metrics_reject_bad_input():
    with pytest.raises(ValueError, match="length"):
        auc_score([1, 0], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="0 or 1"):
        mrr_score([2, 0], [0.1, 0.2])
    with pytest.raises(ValueError, match="NaN"):
        ndcg_score([1, 0], [float("nan"), 0.2], 5)


def test_evaluate_averages_over_impressions():
    labels = [[1, 0, 0], [0, 1]]
    scores = [[0.9, 0.5, 0.1], [0.8, 0.2]]
    result = evaluate(labels, scores)
    # Impression 1 is ranked perfectly, and impression 2 puts its click second.
    assert result.auc == pytest.approx((1.0 + 0.0) / 2, abs=1e-12)
    assert result.mrr == pytest.approx((1.0 + 0.5) / 2, abs=1e-12)
    assert result.ndcg5 == pytest.approx((1.0 + 1 / math.log2(3)) / 2, abs=1e-12)
    assert result.ndcg10 == pytest.approx((1.0 + 1 / math.log2(3)) / 2, abs=1e-12)
    assert result.n_impressions == 2
    assert result.n_scored == 2
    assert result.n_skipped == 0


def test_evaluate_skips_and_counts_impressions():
    labels = [[1], [0, 0], [1, 1], [0, 1, 0]]
    scores = [[0.3], [0.1, 0.2], [0.4, 0.5], [0.1, 0.2, 0.3]]
    result = evaluate(labels, scores)
    assert result.n_impressions == 4
    assert result.n_scored == 1
    assert result.n_skipped == 3
    # Only the last impression counts: its click is second of three.
    assert result.auc == pytest.approx(0.5, abs=1e-12)
    assert result.mrr == pytest.approx(0.5, abs=1e-12)
    assert result.ndcg5 == pytest.approx(1 / math.log2(3), abs=1e-12)


def test_evaluate_with_nothing_scored_gives_nan():
    result = evaluate([[0, 0]], [[0.1, 0.2]])
    assert result.n_scored == 0
    assert result.n_skipped == 1
    assert math.isnan(result.auc)


def test_evaluate_rejects_length_mismatch():
    with pytest.raises(ValueError, match="2 impressions"):
        evaluate([[1, 0], [0, 1]], [[0.1, 0.2]])
    with pytest.raises(ValueError, match="position 1"):
        evaluate([[1, 0], [0, 1]], [[0.1, 0.2], [0.3]])


def test_result_as_dict_lists_fields():
    result = EvaluationResult(auc=0.6, mrr=0.3, ndcg5=0.35, ndcg10=0.41, n_impressions=3, n_scored=2, n_skipped=1)
    assert result.as_dict() == {
        "auc": 0.6, "mrr": 0.3, "ndcg5": 0.35, "ndcg10": 0.41, "n_impressions": 3, "n_scored": 2, "n_skipped": 1,
    }
