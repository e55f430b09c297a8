"""The cosine scorers against hand computations, NumPy references, central differences and each other."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
from scipy.special import expit

from conftest import prepared_run, small_model_config
from minirec.autograd import Tensor, no_grad, ops
from minirec.autograd import functional as F
from minirec.autograd.gradcheck import check_grads
from minirec.eval import scoring
from minirec.eval.scoring import concatenate_groups, score_grouped, score_grouped_reference
from minirec.model.recommender import Recommender
from minirec.train.batches import make_batch

# Two impressions: user (1, 0) is shown news rows 0, 2 and 3, and user (0, 2) is shown news row 1.
USERS = np.array([[1.0, 0.0], [0.0, 2.0]], dtype=np.float32)
NEWS = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-3.0, 0.0]], dtype=np.float32)
ROWS = np.array([0, 2, 3, 1])
OFFSETS = np.array([0, 3, 4])
# tau = 2 times the cosines 1, 1/sqrt(2), -1 and 1.
HAND_LOGITS = [2.0, math.sqrt(2.0), -2.0, 2.0]


def random_groups(sizes, n_news, dim, seed, dtype=np.float32):
    rng = np.random.default_rng(seed)
    users = rng.standard_normal((len(sizes), dim)).astype(dtype)
    news = rng.standard_normal((n_news, dim)).astype(dtype)
    rows, offsets = concatenate_groups([rng.integers(0, n_news, size) for size in sizes])
    return users, news, rows, offsets


def test_logits_by_hand():
    logits = score_grouped(USERS, NEWS, ROWS, OFFSETS, tau=2.0)

    assert logits.dtype == np.float32
    np.testing.assert_allclose(logits, HAND_LOGITS, rtol=1e-6)


def test_probabilities_by_hand():
    scores = score_grouped(USERS, NEWS, ROWS, OFFSETS, tau=2.0, apply_sigmoid=True)

    expected = [1 / (1 + math.exp(-z)) for z in HAND_LOGITS]
    np.testing.assert_allclose(scores, expected, rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("sizes", [[5, 1, 0, 30, 2], [300] * 4, [1]])
def test_kernel_matches_numpy_reference(dtype, sizes):
    users, news, rows, offsets = random_groups(sizes, n_news=60, dim=16, seed=len(sizes), dtype=dtype)

    for apply_sigmoid in (False, True):
        got = score_grouped(users, news, rows, offsets, tau=2.5, apply_sigmoid=apply_sigmoid)
        expected = score_grouped_reference(users, news, rows, offsets, tau=2.5, apply_sigmoid=apply_sigmoid)
        assert got.dtype == dtype
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def tau_scorer(tau):
    """Return score_logits bound to a stand-in model that contains only tau."""
    owner = SimpleNamespace(config=SimpleNamespace(tau=tau))
    return lambda users, candidates: Recommender.score_logits(owner, users, candidates)


def composed_logits(users, candidates, tau):
    """Compute tau * cos from the engine's own normalise, multiply and sum operations."""
    batch, dim = users.shape
    unit_users = F.l2_normalize(users, axis=-1).reshape(batch, 1, dim)
    return (F.l2_normalize(candidates, axis=-1) * unit_users).sum(axis=-1) * tau


def test_score_logits_by_hand():
    candidates = np.zeros((2, 3, 2), dtype=np.float32)
    candidates[0] = NEWS[[0, 2, 3]]
    candidates[1, 0] = NEWS[1]

    logits = tau_scorer(2.0)(Tensor(USERS), Tensor(candidates)).data

    np.testing.assert_allclose(logits[0], HAND_LOGITS[:3], rtol=1e-6)
    assert logits[1, 0] == pytest.approx(2.0)
    assert logits[1, 1] == 0.0  # a zero padding vector scores 0, not NaN


@pytest.mark.parametrize("shape", [(1, 1, 3), (2, 4, 5), (3, 2, 1)])
def test_score_logits_gradients(shape):
    rng = np.random.default_rng(sum(shape))
    batch, width, dim = shape

    check_grads(tau_scorer(2.0), [rng.standard_normal((batch, dim)), rng.standard_normal(shape)])


def test_score_logits_gradient_at_zero_vectors():
    # Zero vectors take l2_normalize's clamped branch; compare with that composition of operations.
    rng = np.random.default_rng(21)
    users = rng.standard_normal((3, 4))
    users[1] = 0.0
    candidates = rng.standard_normal((3, 5, 4))
    candidates[0, 2] = 0.0
    candidates[2, 4] = 0.0
    upstream = rng.standard_normal((3, 5))
    gradients = []
    for scorer in (tau_scorer(1.5), lambda u, c: composed_logits(u, c, 1.5)):
        u, c = Tensor(users, requires_grad=True), Tensor(candidates, requires_grad=True)
        logits = scorer(u, c)
        (logits * upstream).sum().backward()
        gradients.append((logits.data, u.grad, c.grad))

    for fused, composed in zip(*gradients):
        np.testing.assert_allclose(fused, composed, rtol=1e-10, atol=1e-12)


def test_score_logits_match_composed_operations_in_float32():
    rng = np.random.default_rng(22)
    users = rng.standard_normal((4, 32)).astype(np.float32)
    candidates = rng.standard_normal((4, 9, 32)).astype(np.float32)
    upstream = rng.standard_normal((4, 9)).astype(np.float32)
    results = []
    for scorer in (tau_scorer(2.0), lambda u, c: composed_logits(u, c, 2.0)):
        u, c = Tensor(users, requires_grad=True), Tensor(candidates, requires_grad=True)
        logits = scorer(u, c)
        (logits * upstream).sum().backward()
        results.append((logits.data, u.grad, c.grad))

    for fused, composed in zip(*results):
        assert fused.dtype == np.float32
        np.testing.assert_allclose(fused, composed, rtol=1e-4, atol=1e-6)


def test_threaded_score_logits_match_serial(monkeypatch):
    rng = np.random.default_rng(23)
    users = rng.standard_normal((6, 8)).astype(np.float32)
    candidates = rng.standard_normal((6, 5, 8)).astype(np.float32)
    upstream = rng.standard_normal((6, 5)).astype(np.float32)

    def logits_and_gradients():
        u, c = Tensor(users, requires_grad=True), Tensor(candidates, requires_grad=True)
        logits = tau_scorer(2.0)(u, c)
        (logits * upstream).sum().backward()
        return logits.data, u.grad, c.grad

    serial = logits_and_gradients()
    monkeypatch.setattr(scoring, "PARALLEL_MIN_WORK", 0)
    threaded = logits_and_gradients()

    for a, b in zip(serial, threaded):
        np.testing.assert_array_equal(a, b)


def test_kernel_matches_padded_score_logits():
    users, news, rows, offsets = random_groups([3, 7, 1], n_news=20, dim=8, seed=3)
    width = int(np.diff(offsets).max())
    padded = np.zeros((3, width), dtype=np.int64)
    for i in range(3):
        padded[i, :offsets[i + 1] - offsets[i]] = rows[offsets[i]:offsets[i + 1]]
    expected = composed_logits(Tensor(users), Tensor(news[padded]), 2.0).data
    logits = score_grouped(users, news, rows, offsets, tau=2.0)

    for i in range(3):
        count = offsets[i + 1] - offsets[i]
        np.testing.assert_allclose(logits[offsets[i]:offsets[i + 1]], expected[i, :count], rtol=1e-5, atol=1e-6)


def test_zero_vector_scores_zero_not_nan():
    news = np.array([[0.0, 0.0], [1.0, 0.0]], dtype=np.float32)
    users = np.array([[0.0, 0.0], [3.0, 4.0]], dtype=np.float32)

    logits = score_grouped(users, news, np.array([1, 0]), np.array([0, 1, 2]), tau=2.0)
    scores = score_grouped(users, news, np.array([1, 0]), np.array([0, 1, 2]), tau=2.0, apply_sigmoid=True)

    np.testing.assert_array_equal(logits, [0.0, 0.0])
    np.testing.assert_array_equal(scores, [0.5, 0.5])


def test_large_tau_saturates_without_overflow():
    scores = score_grouped(USERS, NEWS, ROWS, OFFSETS, tau=1000.0, apply_sigmoid=True)

    assert np.all(np.isfinite(scores))
    np.testing.assert_allclose(scores, expit(1000.0 * np.array(HAND_LOGITS) / 2.0), atol=1e-7)


def test_threaded_kernel_matches_serial(monkeypatch):
    users, news, rows, offsets = random_groups([40, 3, 17, 0, 90], n_news=50, dim=12, seed=7)
    serial = score_grouped(users, news, rows, offsets, tau=2.0)

    monkeypatch.setattr(scoring, "PARALLEL_MIN_WORK", 0)
    threaded = score_grouped(users, news, rows, offsets, tau=2.0)

    np.testing.assert_array_equal(threaded, serial)


def test_concatenate_groups_offsets():
    rows, offsets = concatenate_groups([np.array([4, 5]), np.array([], dtype=np.int64), np.array([6])])

    assert rows.tolist() == [4, 5, 6]
    assert offsets.tolist() == [0, 2, 2, 3]


def test_row_out_of_range_is_rejected():
    with pytest.raises(ValueError, match=r"expected values in \[0, 4\)"):
        score_grouped(USERS, NEWS, np.array([0, 2, 3, 4]), OFFSETS, tau=2.0)


def test_offsets_not_covering_rows_are_rejected():
    with pytest.raises(ValueError, match="offsets must rise from 0"):
        score_grouped(USERS, NEWS, ROWS, np.array([0, 3, 3]), tau=2.0)


def test_offsets_of_wrong_length_are_rejected():
    with pytest.raises(ValueError, match=r"one entry per impression plus one \(3\)"):
        score_grouped(USERS, NEWS, ROWS, np.array([0, 4]), tau=2.0)


def test_dimension_mismatch_is_rejected():
    with pytest.raises(ValueError, match="same dim"):
        score_grouped(USERS, np.ones((4, 3), dtype=np.float32), ROWS, OFFSETS, tau=2.0)


def test_predict_matches_padded_batches(demo_data, tmp_path):
    # Views without text skip the LSA fit; the graph view runs the aggregation kernels.
    config = small_model_config(views=("id", "graph"))
    _, prepared = prepared_run(demo_data, tmp_path, config)
    model = Recommender(config, prepared.inputs)
    impressions = prepared.valid_set
    news_vectors, _ = model.encode_news(np.arange(config.num_news))

    scores = model.predict(impressions, batch_size=64, news_vectors=news_vectors)

    model.eval()
    indices = np.arange(len(impressions))
    batch = make_batch(impressions, indices)
    table = Tensor(news_vectors)
    with no_grad():
        history = ops.take_rows(table, batch.news_rows[batch.history_position])
        users, _ = model.user_encoder(batch.user_rows, history, batch.history_mask, batch.history_age)
        candidates = ops.take_rows(table, batch.news_rows[batch.candidate_position])
        expected = expit(model.score_logits(users, candidates).data)
    assert len(scores) == len(impressions)
    for i in indices:
        np.testing.assert_allclose(scores[i], expected[i, :len(impressions.candidates[i])], rtol=1e-5, atol=1e-6)
