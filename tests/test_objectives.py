"""The training objectives: values against hand computation, gradients against central differences."""

import numpy as np
import pytest

from conftest import prepared_run
from minirec.autograd import Tensor
from minirec.autograd.gradcheck import check_grads
from minirec.model.config import TrainConfig
from minirec.model.recommender import Recommender
from minirec.train.batches import Batch
from minirec.train.objectives import bce, listwise, sample_groups
from minirec.train.trainer import Trainer


def batch_of(labels, mask):
    """A batch whose only fields the objectives read are the labels and the candidate mask."""
    labels = np.asarray(labels, dtype=np.float32)
    mask = np.asarray(mask, dtype=bool)
    rows = labels.shape[0]
    empty = np.zeros((rows, 1), dtype=np.int64)
    return Batch(user_rows=np.zeros(rows, dtype=np.int64), news_rows=np.zeros(1, dtype=np.int64),
                 history_position=empty, history_mask=empty.astype(bool), history_age=empty.astype(np.float32),
                 candidate_position=np.zeros(labels.shape, dtype=np.int64), candidate_mask=mask, labels=labels)


def test_bce_matches_hand_computation():
    logits = np.array([[2.0, -1.0, 0.5]])
    batch = batch_of([[1, 0, 0]], [[True, True, False]])

    loss = bce(Tensor(logits), batch).item()

    # -log(sigmoid(2)) - log(1 - sigmoid(-1)), over the two real candidates.
    expected = (np.log1p(np.exp(-2.0)) + np.log1p(np.exp(-1.0))) / 2
    assert loss == pytest.approx(expected, rel=1e-6)


def test_listwise_matches_softmax_cross_entropy():
    logits = np.array([[1.5, 0.2, -0.7]])
    batch = batch_of([[1, 0, 0]], [[True, True, True]])

    # With K equal to the number of non-clicks and no replacement, both non-clicks are drawn.
    loss = listwise(Tensor(logits), batch, 2, np.random.default_rng(0)).item()

    expected = -np.log(np.exp(1.5) / (np.exp(1.5) + np.exp(0.2) + np.exp(-0.7)))
    assert loss == pytest.approx(expected, rel=1e-6)


def test_listwise_repeats_scarce_non_clicks():
    logits = np.array([[0.3, 1.1, 9.0]])
    batch = batch_of([[1, 0, 0]], [[True, True, False]])  # the third candidate is padding

    loss = listwise(Tensor(logits), batch, 4, np.random.default_rng(0)).item()

    expected = -np.log(np.exp(0.3) / (np.exp(0.3) + 4 * np.exp(1.1)))
    assert loss == pytest.approx(expected, rel=1e-6)


def test_negatives_come_from_same_impression():
    labels = [[1, 0, 0, 0, 0, 0], [0, 1, 0, 1, 0, 0]]
    mask = [[True] * 6, [True, True, True, True, False, False]]
    batch = batch_of(labels, mask)

    impressions, positions = sample_groups(batch, 2, np.random.default_rng(3))

    assert impressions.shape == (3, 3)
    assert [(int(i[0]), int(p[0])) for i, p in zip(impressions, positions)] == [(0, 0), (1, 1), (1, 3)]
    for impression, position in zip(impressions, positions):
        b = impression[0]
        assert (impression == b).all()
        for drawn in position[1:]:
            assert mask[b][drawn], "a padding position was drawn"
            assert labels[b][drawn] == 0, "a click was drawn as a non-click"
        assert len(set(position[1:].tolist())) == 2, "enough non-clicks exist, so none repeats"


def test_listwise_skips_impressions_without_non_clicks():
    logits = Tensor(np.array([[0.4, 0.9]]), requires_grad=True)
    batch = batch_of([[1, 1]], [[True, True]])

    loss = listwise(logits, batch, 4, np.random.default_rng(0))
    loss.backward()

    assert loss.item() == 0.0
    assert np.array_equal(logits.grad, np.zeros((1, 2)))


def test_listwise_gradient_matches_central_differences():
    labels = [[1, 0, 0, 1, 0], [0, 0, 1, 0, 0], [0, 1, 0, 0, 0]]
    mask = [[True] * 5, [True, True, True, True, False], [True, True, False, False, False]]
    batch = batch_of(labels, mask)
    logits = np.random.default_rng(1).normal(size=(3, 5))

    # A freshly seeded generator per call draws the same negatives every time, as check_grads needs.
    check_grads(lambda x: listwise(x, batch, 4, np.random.default_rng(7)), [logits])


def test_bce_gradient_matches_central_differences():
    batch = batch_of([[1, 0, 0], [0, 1, 0]], [[True, True, True], [True, True, False]])
    logits = np.random.default_rng(2).normal(size=(2, 3))

    check_grads(lambda x: bce(x, batch), [logits])


def test_unknown_objective_is_rejected():
    with pytest.raises(ValueError, match="invalid objective 'pairwise'"):
        TrainConfig(objective="pairwise")


def test_trainer_learns_with_listwise_objective(demo_data, tmp_path):
    options, prepared = prepared_run(demo_data, tmp_path, epochs=2, max_impressions=640, objective="listwise")
    model = Recommender(options.model, prepared.inputs)
    history = Trainer(model, prepared.train_set, prepared.valid_set, options.train, tmp_path, prepared.user_ids,
                      progress=False).fit()

    # Random scoring of K + 1 candidates gives a cross-entropy of log(5); learning goes below it.
    assert np.isfinite(history[0].loss)
    assert history[-1].loss < np.log(5)
