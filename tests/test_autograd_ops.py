"""Every autograd op's backward rule against central differences, over several shapes."""

import numpy as np
import pytest
import scipy.sparse as sp

from minirec.autograd import RowSparseGrad, Tensor, no_grad, ops
from minirec.autograd import functional as F
from minirec.autograd.gradcheck import check_grads
from minirec.autograd.kernels import scatter_add_rows

rng = np.random.default_rng(12345)


def randn(*shape):
    return rng.standard_normal(shape)


BROADCAST_PAIRS = [((3,), (3,)), ((2, 3), (3,)), ((2, 1, 4), (3, 1)), ((4, 1), (1, 5)), ((), (2, 2))]


@pytest.mark.parametrize("shape_a,shape_b", BROADCAST_PAIRS)
@pytest.mark.parametrize("op", [ops.add, ops.sub, ops.mul])
def test_broadcasting_arithmetic_gradients(op, shape_a, shape_b):
    check_grads(op, [randn(*shape_a), randn(*shape_b)])


@pytest.mark.parametrize("shape_a,shape_b", BROADCAST_PAIRS)
def test_division_gradients(shape_a, shape_b):
    denominator = rng.uniform(0.5, 2.0, shape_b) * rng.choice([-1, 1], shape_b)
    check_grads(ops.div, [randn(*shape_a), denominator])


@pytest.mark.parametrize("shape", [(4,), (2, 3), (2, 3, 4)])
def test_unary_gradients(shape):
    check_grads(ops.neg, [randn(*shape)])
    check_grads(ops.exp, [randn(*shape)])
    check_grads(ops.log, [rng.uniform(0.5, 3.0, shape)])
    check_grads(lambda x: ops.power(x, 3), [randn(*shape)])
    check_grads(lambda x: ops.power(x, 0.5), [rng.uniform(0.5, 3.0, shape)])


@pytest.mark.parametrize("shape_a,shape_b", [((2, 3), (3, 4)), ((5, 2, 3), (3, 4)), ((2, 1, 3, 4), (3, 4, 2)), ((1, 1), (1, 1))])
def test_matmul_gradients(shape_a, shape_b):
    check_grads(ops.matmul, [randn(*shape_a), randn(*shape_b)])


def test_matmul_of_transposed_operands_gradients():
    # The 2-D backward rule hands BLAS transposed views without copying them.
    check_grads(lambda a, b: ops.matmul(ops.transpose(a), ops.transpose(b)), [randn(3, 2), randn(4, 3)])


def test_matmul_rejects_vectors():
    with pytest.raises(ValueError, match="at least 2 axes"):
        ops.matmul(Tensor(np.ones(3)), Tensor(np.ones((3, 2))))


@pytest.mark.parametrize("axis,keepdims", [(None, False), (0, False), (1, True), ((0, 2), False), (-1, True)])
def test_sum_and_mean_gradients(axis, keepdims):
    x = randn(2, 3, 4)
    check_grads(lambda t: ops.sum(t, axis=axis, keepdims=keepdims), [x])
    check_grads(lambda t: ops.mean(t, axis=axis, keepdims=keepdims), [x])


def test_mean_divides_by_count():
    x = Tensor(np.arange(6.0).reshape(2, 3))
    assert ops.mean(x, axis=1).data.tolist() == [1.0, 4.0]


@pytest.mark.parametrize("shape,new_shape", [((2, 6), (3, 4)), ((2, 3, 4), (6, 4)), ((5,), (5, 1))])
def test_reshape_gradients(shape, new_shape):
    check_grads(lambda t: ops.reshape(t, new_shape), [randn(*shape)])


@pytest.mark.parametrize("axes", [None, (1, 0, 2), (2, 0, 1), (0, 2, 1)])
def test_transpose_gradients(axes):
    check_grads(lambda t: ops.transpose(t, axes), [randn(2, 3, 4)])


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_concat_and_stack_gradients(axis):
    check_grads(lambda a, b: ops.concat([a, b], axis=axis), [randn(2, 3), randn(2, 3)])
    check_grads(lambda a, b, c: ops.stack([a, b, c], axis=axis), [randn(2, 3), randn(2, 3), randn(2, 3)])


def test_concat_of_unequal_widths():
    check_grads(lambda a, b: ops.concat([a, b], axis=1), [randn(2, 1), randn(2, 4)])


@pytest.mark.parametrize("index", [1, slice(0, 2), (slice(None), 2), np.array([0, 2, 2, 1])])
def test_getitem_gradients(index):
    check_grads(lambda t: ops.getitem(t, index), [randn(3, 4)])


@pytest.mark.parametrize("index_shape", [(5,), (2, 3), (1,)])
def test_take_rows_gradients(index_shape):
    indices = rng.integers(0, 4, size=index_shape)
    check_grads(lambda table: ops.take_rows(table, indices), [randn(4, 3)])


def test_take_rows_gives_row_sparse_grad_for_leaf():
    table = Tensor(np.zeros((10, 2)), requires_grad=True)
    ops.take_rows(table, np.array([[3, 3], [7, 0]])).sum().backward()
    assert isinstance(table.grad, RowSparseGrad)
    dense = table.grad.to_dense()
    assert dense[3].tolist() == [2.0, 2.0]  # row 3 was gathered twice
    assert dense[7].tolist() == [1.0, 1.0]
    assert dense[5].tolist() == [0.0, 0.0]


def test_row_sparse_coalesce_sums_repeated_rows():
    grad = RowSparseGrad(np.array([4, 1, 4]), np.array([[1.0], [2.0], [3.0]]), (6, 1))
    merged = grad.coalesce()
    assert merged.indices.tolist() == [1, 4]
    assert merged.values.ravel().tolist() == [2.0, 4.0]


def test_take_rows_of_intermediate_is_dense():
    check_grads(lambda table: ops.take_rows(table * 2.0, np.array([0, 0, 2])), [randn(3, 2)])


def test_take_rows_negative_repeated_indices():
    check_grads(lambda table: ops.take_rows(table * 2.0, np.array([[0, -1], [2, 0]])), [randn(3, 2, 2)])


def test_scatter_add_rows_by_hand():
    rows = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], dtype=np.float32)
    out = scatter_add_rows(4, np.array([2, 0, -2]), rows)
    # Rows 0 and 2 go to row 2 (index -2 of 4 is 2); row 1 goes to row 0.
    assert out.tolist() == [[3.0, 4.0], [0.0, 0.0], [6.0, 8.0], [0.0, 0.0]]
    assert out.dtype == np.float32


def test_scatter_add_empty_and_invalid():
    assert scatter_add_rows(3, np.zeros(0, dtype=np.int64), np.zeros((0, 2, 5))).shape == (3, 2, 5)
    with pytest.raises(IndexError, match="invalid index 3"):
        scatter_add_rows(3, np.array([3]), np.ones((1, 2)))


def test_where_gradients():
    condition = np.array([[True, False, True], [False, False, True]])
    check_grads(lambda a, b: ops.where(condition, a, b), [randn(2, 3), randn(3)])


def test_sparse_matmul_of_no_rows():
    # A batch whose news all lack a news.tsv row gives the graph view empty blocks.
    x = Tensor(np.zeros((0, 3)), requires_grad=True)
    out = ops.sparse_matmul(sp.csr_matrix((2, 0)), x)
    assert out.data.tolist() == [[0.0] * 3] * 2
    ops.sum(out).backward()
    assert x.grad.shape == (0, 3)


@pytest.mark.parametrize("density", [0.0, 0.3, 1.0])
def test_sparse_matmul_gradients(density):
    matrix = sp.random(5, 4, density=density, random_state=1, format="csr")
    check_grads(lambda x: ops.sparse_matmul(matrix, x), [randn(4, 3)])


@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 3, 4)])
def test_activation_gradients(shape):
    x = randn(*shape)
    x[np.abs(x) < 1e-3] = 0.5  # relu has no derivative at 0
    check_grads(F.relu, [x])
    check_grads(F.tanh, [x])
    check_grads(F.sigmoid, [x])
    check_grads(F.softplus, [x])


def test_sigmoid_and_softplus_stay_finite_at_extremes():
    x = Tensor(np.array([-1000.0, -100.0, 0.0, 100.0, 1000.0], dtype=np.float32))
    assert np.all(np.isfinite(F.sigmoid(x).data))
    assert np.all(np.isfinite(F.softplus(x).data))
    assert F.softplus(x).data[-1] == pytest.approx(1000.0)


def test_dropout_gradient_with_fixed_mask():
    check_grads(lambda x: F.dropout(x, 0.4, np.random.default_rng(3)), [randn(4, 5)])


def test_dropout_keeps_expectation_and_evaluation_is_identity():
    x = Tensor(np.ones((200, 200)))
    dropped = F.dropout(x, 0.3, np.random.default_rng(0))
    assert abs(dropped.data.mean() - 1.0) < 0.02
    assert abs((dropped.data == 0).mean() - 0.3) < 0.01
    assert F.dropout(x, 0.3, np.random.default_rng(0), training=False) is x


@pytest.mark.parametrize("shape,axis", [((4,), -1), ((3, 5), -1), ((2, 3, 4), 1)])
def test_masked_softmax_gradients(shape, axis):
    mask = rng.random(shape) > 0.3
    check_grads(lambda x: F.masked_softmax(x, mask, axis=axis), [randn(*shape)])
    check_grads(lambda x: F.masked_softmax(x, None, axis=axis), [randn(*shape)])


def test_masked_softmax_fully_masked_row_gives_zeros():
    x = Tensor(np.array([[1.0, 2.0, 3.0], [5.0, 6.0, 7.0]]), requires_grad=True)
    mask = np.array([[True, False, True], [False, False, False]])
    out = F.masked_softmax(x, mask)
    e1, e3 = np.exp(1.0), np.exp(3.0)
    assert out.data[0] == pytest.approx([e1 / (e1 + e3), 0.0, e3 / (e1 + e3)])
    assert out.data[1].tolist() == [0.0, 0.0, 0.0]
    (out * np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])).sum().backward()
    assert np.all(np.isfinite(x.grad))
    assert x.grad[1].tolist() == [0.0, 0.0, 0.0]


def test_masked_softmax_survives_large_logits():
    out = F.masked_softmax(Tensor(np.array([1000.0, 999.0, -1000.0])))
    assert np.all(np.isfinite(out.data))
    assert out.data.sum() == pytest.approx(1.0)


def test_masked_log_softmax_gradients():
    mask = np.array([[True, True, False, True], [True, False, False, False]])
    check_grads(lambda x: F.masked_log_softmax(x, mask), [randn(2, 4)])


@pytest.mark.parametrize("shape", [(3, 5), (2, 3, 4), (1, 6)])
def test_layer_norm_gradients(shape):
    check_grads(lambda x, g, b: F.layer_norm(x, g, b), [randn(*shape), randn(shape[-1]), randn(shape[-1])])


def test_layer_norm_hand_values():
    # [1, 2, 3]: mean 2, variance 2/3, so x_hat = [-1, 0, 1] / sqrt(2/3).
    out = F.layer_norm(Tensor(np.array([[1.0, 2.0, 3.0]])), Tensor(np.ones(3)), Tensor(np.zeros(3)), eps=0.0)
    assert out.data[0] == pytest.approx(np.array([-1.0, 0.0, 1.0]) / np.sqrt(2 / 3))


@pytest.mark.parametrize("shape", [(4, 3), (7, 2), (2, 5)])
def test_batch_norm_gradients(shape):
    check_grads(lambda x, g, b: F.batch_norm(x, g, b)[0], [randn(*shape), randn(shape[-1]), randn(shape[-1])])


@pytest.mark.parametrize("shape,axis", [((4,), -1), ((3, 5), -1), ((2, 3, 4), 1)])
def test_l2_normalize_gradients(shape, axis):
    check_grads(lambda x: F.l2_normalize(x, axis=axis), [randn(*shape)])


def test_l2_normalize_zero_vector_stays_finite():
    x = Tensor(np.zeros((2, 3)), requires_grad=True)
    out = F.l2_normalize(x)
    out.sum().backward()
    assert out.data.tolist() == [[0.0] * 3] * 2
    assert np.all(np.isfinite(x.grad))


@pytest.mark.parametrize("shape", [(5,), (3, 4)])
def test_bce_with_logits_gradients(shape):
    labels = (rng.random(shape) > 0.5).astype(float)
    mask = rng.random(shape) > 0.2
    check_grads(lambda z: F.binary_cross_entropy_with_logits(z, labels, mask), [randn(*shape)])
    check_grads(lambda z: F.binary_cross_entropy_with_logits(z, labels), [randn(*shape)])


def test_bce_with_logits_hand_value_and_extremes():
    # -[log s(0)] = ln 2 for a click scored 0; a click at +100 costs ~0; a click at -100 costs ~100.
    loss = F.binary_cross_entropy_with_logits(Tensor(np.array([0.0])), np.array([1.0]))
    assert loss.item() == pytest.approx(np.log(2))
    z = Tensor(np.array([100.0, -100.0, 100.0, -100.0], dtype=np.float32), requires_grad=True)
    loss = F.binary_cross_entropy_with_logits(z, np.array([1, 0, 0, 1]))
    assert np.isfinite(loss.item())
    assert loss.item() == pytest.approx(200.0 / 4, rel=1e-5)
    loss.backward()
    assert np.all(np.isfinite(z.grad))


def test_shared_subexpression_accumulates_gradient():
    x = Tensor(np.array([2.0]), requires_grad=True)
    y = x * x
    (y + y * 3.0).sum().backward()  # d/dx (4 x^2) = 8 x
    assert x.grad.tolist() == [16.0]


def test_no_grad_records_nothing():
    x = Tensor(np.ones(3), requires_grad=True)
    with no_grad():
        y = (x * 2.0).sum()
    assert not y.requires_grad


def test_float32_stays_float32():
    x = Tensor(np.ones((2, 2), dtype=np.float32), requires_grad=True)
    y = F.sigmoid(x * 2.0 + 1.0) / 3.0
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32


def test_deep_chain_does_not_hit_recursion_limit():
    x = Tensor(np.array([1.0]), requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0
    y.sum().backward()
    assert x.grad.tolist() == [1.0]


def test_gradcheck_catches_a_wrong_rule():
    def wrong_square(x):
        return Tensor.from_op(x.data**2, (x,), lambda g: (g * x.data,))  # missing the factor 2

    with pytest.raises(AssertionError, match="differs from central differences"):
        check_grads(wrong_square, [randn(3)])
