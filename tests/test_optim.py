"""AdamW, clipping, plateau scheduling and early stopping against values worked out by hand."""

import numpy as np
import pytest

from minirec.autograd import RowSparseGrad, Tensor
from minirec.optim import AdamW, EarlyStopping, ReduceLROnPlateau, clip_grad_norm


def test_adamw_one_step_by_hand():
    # p = 1, g = 0.5, lr = 0.1, weight_decay = 0.01, betas (0.9, 0.999):
    # decay: p = 1 - 0.1 * 0.01 * 1 = 0.999
    # m = 0.05, v = 0.00025; m_hat = 0.05 / 0.1 = 0.5, v_hat = 0.00025 / 0.001 = 0.25
    # p = 0.999 - 0.1 * 0.5 / (sqrt(0.25) + 1e-8) = 0.899
    p = Tensor(np.array([1.0]), requires_grad=True)
    optimizer = AdamW([("p", p)], lr=0.1, weight_decay=0.01)
    p.grad = np.array([0.5])
    optimizer.step()
    assert p.data[0] == pytest.approx(0.899, abs=1e-7)


def test_adamw_second_step_by_hand():
    # Second step with g = -0.5: m = 0.9 * 0.05 - 0.05 = -0.005, v = 0.999 * 0.00025 + 0.00025 = 0.00049975
    # m_hat = -0.005 / 0.19, v_hat = 0.00049975 / (1 - 0.999^2)
    p = Tensor(np.array([1.0]), requires_grad=True)
    optimizer = AdamW([("p", p)], lr=0.1, weight_decay=0.0)
    p.grad = np.array([0.5])
    optimizer.step()
    p.grad = np.array([-0.5])
    optimizer.step()
    m_hat = -0.005 / 0.19
    v_hat = 0.00049975 / (1 - 0.999**2)
    first_step = 0.1 * 0.5 / (0.5 + 1e-8)
    assert p.data[0] == pytest.approx(1.0 - first_step - 0.1 * m_hat / (np.sqrt(v_hat) + 1e-8), abs=1e-12)


def test_adamw_sparse_rows_match_dense_on_touched_rows():
    table_dense = Tensor(np.arange(12.0).reshape(4, 3), requires_grad=True)
    table_sparse = Tensor(np.arange(12.0).reshape(4, 3), requires_grad=True)
    dense, sparse = AdamW([("t", table_dense)], lr=0.01), AdamW([("t", table_sparse)], lr=0.01)
    values = np.array([[1.0, 2.0, 3.0], [0.5, 0.5, 0.5], [4.0, 0.0, -1.0]])
    table_sparse.grad = RowSparseGrad(np.array([1, 3, 1]), values, (4, 3))
    table_dense.grad = table_sparse.grad.to_dense()
    dense.step()
    sparse.step()
    assert np.allclose(table_sparse.data[[1, 3]], table_dense.data[[1, 3]])
    # Lazy update: untouched rows keep their value, where dense AdamW decayed them.
    assert table_sparse.data[0].tolist() == [0.0, 1.0, 2.0]
    assert table_sparse.data[2].tolist() == [6.0, 7.0, 8.0]


def test_adamw_state_round_trip():
    p = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    optimizer = AdamW([("p", p)], lr=0.1)
    p.grad = np.array([0.3, -0.2])
    optimizer.step()
    restored = AdamW([("p", Tensor(p.data.copy(), requires_grad=True))], lr=0.5)
    restored.load_state_dict(optimizer.state_dict())
    assert restored.step_count == 1
    assert restored.lr == 0.1
    assert restored.m["p"].tolist() == optimizer.m["p"].tolist()


def test_clip_grad_norm_scales_to_max_norm():
    a = Tensor(np.zeros(1), requires_grad=True)
    b = Tensor(np.zeros(1), requires_grad=True)
    a.grad, b.grad = np.array([3.0]), np.array([4.0])
    assert clip_grad_norm([a, b], 1.0) == pytest.approx(5.0)
    assert a.grad[0] == pytest.approx(0.6)
    assert b.grad[0] == pytest.approx(0.8)


def test_clip_grad_norm_leaves_small_gradients():
    a = Tensor(np.zeros(2), requires_grad=True)
    a.grad = np.array([0.3, 0.4])
    assert clip_grad_norm([a], 1.0) == pytest.approx(0.5)
    assert a.grad.tolist() == [0.3, 0.4]


def test_clip_grad_norm_counts_repeated_sparse_rows_once():
    # Row 2 appears twice with 1.5 each: the dense gradient holds 3 there, so the norm is 3, not sqrt(4.5).
    table = Tensor(np.zeros((4, 1)), requires_grad=True)
    table.grad = RowSparseGrad(np.array([2, 2]), np.array([[1.5], [1.5]]), (4, 1))
    assert clip_grad_norm([table], 10.0) == pytest.approx(3.0)


def test_plateau_halves_lr_after_patience():
    optimizer = AdamW([], lr=1e-3)
    scheduler = ReduceLROnPlateau(optimizer, mode="max", factor=0.5, patience=2)
    reductions = [scheduler.step(v) for v in [0.60, 0.62, 0.61, 0.62, 0.615, 0.63]]
    # 0.61 and 0.62 (not above 0.62 by the threshold) are two bad epochs; 0.615 is the third.
    assert reductions == [False, False, False, False, True, False]
    assert optimizer.lr == pytest.approx(5e-4)


def test_early_stopping_after_patience():
    stopper = EarlyStopping(patience=3)
    decisions = [stopper.step(v, epoch) for epoch, v in enumerate([0.6, 0.65, 0.64, 0.63, 0.62], start=1)]
    assert decisions == [False, False, False, False, True]
    assert stopper.best_epoch == 2
    assert stopper.best == 0.65
