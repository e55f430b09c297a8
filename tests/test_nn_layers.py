"""Layers: gradients against central differences, and behaviour checked by hand."""

import numpy as np
import pytest

from minirec.autograd import Tensor
from minirec.nn import (BatchNorm1d, Embedding, LayerNorm, Linear, MultiHeadSelfAttention, ProjectionBlock,
                        TimeDecayAttentionPooling)
from minirec.nn.gradcheck import check_module_grads, to_float64


def rng():
    return np.random.default_rng(7)


@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 4)])
def test_linear_gradients(shape):
    layer = Linear(4, 5, rng())
    check_module_grads(layer, layer, rng().standard_normal(shape))


def test_linear_hand_value():
    layer = to_float64(Linear(2, 1, rng()))
    layer.weight.data[:] = [[2.0], [-1.0]]
    layer.bias.data[:] = [0.5]
    assert layer(Tensor(np.array([[3.0, 4.0]]))).data.tolist() == [[2.5]]  # 6 - 4 + 0.5


def test_layer_norm_layer_gradients():
    layer = LayerNorm(6)
    check_module_grads(layer, layer, rng().standard_normal((4, 6)))


@pytest.mark.parametrize("batch", [5, 9])
def test_batch_norm_training_gradients(batch):
    layer = BatchNorm1d(3)
    check_module_grads(layer, layer, rng().standard_normal((batch, 3)))


def test_batch_norm_evaluation_gradients():
    layer = BatchNorm1d(3).eval()
    layer._buffers["running_mean"][:] = [0.5, -1.0, 2.0]
    layer._buffers["running_var"][:] = [2.0, 0.5, 1.0]
    check_module_grads(layer, layer, rng().standard_normal((4, 3)))


def test_batch_norm_running_statistics():
    layer = BatchNorm1d(1, momentum=0.5)
    layer(Tensor(np.array([[1.0], [3.0]], dtype=np.float32)))
    # batch mean 2, unbiased variance 2: running = 0.5 * initial + 0.5 * batch.
    assert layer._buffers["running_mean"].tolist() == [1.0]
    assert layer._buffers["running_var"].tolist() == [1.5]
    layer.eval()
    out = layer(Tensor(np.array([[1.0]], dtype=np.float32)))
    assert out.data[0, 0] == pytest.approx(0.0, abs=1e-3)  # (1 - 1) / sqrt(1.5)


def test_embedding_gradients_and_padding_row():
    layer = Embedding(5, 3, rng())
    indices = np.array([[1, 0, 4], [4, 4, 2]])
    check_module_grads(layer, lambda _: layer(indices), None)
    assert layer.weight.data[0].tolist() == [0.0, 0.0, 0.0]


def test_embedding_padding_gets_no_gradient():
    layer = Embedding(4, 2, rng())
    layer(np.array([0, 0, 3])).sum().backward()
    dense = layer.weight.grad.to_dense()
    assert dense[0].tolist() == [0.0, 0.0]
    assert dense[3].tolist() == [1.0, 1.0]


def test_embedding_rejects_out_of_range_index():
    with pytest.raises(IndexError, match="out of range"):
        Embedding(4, 2, rng())(np.array([4]))


def test_projection_block_gradients_and_sign():
    block = ProjectionBlock(4, 6, dropout=0.0, rng=rng())
    check_module_grads(block, block, rng().standard_normal((5, 4)))
    assert np.all(block(Tensor(rng().standard_normal((5, 4)))).data >= 0)


@pytest.mark.parametrize("batch,length,heads", [(2, 4, 2), (3, 1, 1), (1, 5, 4)])
def test_multi_head_attention_gradients(batch, length, heads):
    layer = MultiHeadSelfAttention(8, heads, dropout=0.0, rng=rng())
    mask = np.ones((batch, length), dtype=bool)
    mask[0, -1] = length == 1  # one padded position unless that would empty the row
    check_module_grads(layer, lambda x: layer(x, mask), rng().standard_normal((batch, length, 8)), atol=1e-6)


def test_multi_head_attention_ignores_padded_keys():
    layer = to_float64(MultiHeadSelfAttention(4, 2, dropout=0.0, rng=rng()))
    x = rng().standard_normal((1, 3, 4))
    mask = np.array([[True, True, False]])
    changed = x.copy()
    changed[0, 2] = 100.0  # the padded item's content must not reach the real items
    out_a = layer(Tensor(x), mask).data[0, :2]
    out_b = layer(Tensor(changed), mask).data[0, :2]
    assert np.allclose(out_a, out_b)


def test_multi_head_attention_empty_history_is_finite():
    layer = MultiHeadSelfAttention(4, 2, dropout=0.0, rng=rng())
    out = layer(Tensor(np.zeros((2, 3, 4), dtype=np.float32)), np.zeros((2, 3), dtype=bool))
    assert np.all(np.isfinite(out.data))


def test_time_decay_pooling_gradients():
    layer = TimeDecayAttentionPooling(4, 3, rng(), initial_decay=0.3)
    mask = np.array([[True, True, True], [True, False, False]])
    age = np.array([[2.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    check_module_grads(layer, lambda h: layer(h, mask, age)[0], rng().standard_normal((2, 3, 4)))


def test_time_decay_pooling_hand_weights():
    # With a zero query every item is equally relevant, so alpha_i is proportional to exp(-lambda * age_i).
    layer = to_float64(TimeDecayAttentionPooling(2, 2, rng(), initial_decay=0.5))
    layer.query.data[:] = 0.0
    h = Tensor(np.array([[[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]]]))
    pooled, alpha = layer(h, np.array([[True, True, False]]), np.array([[2.0, 0.0, 0.0]]))
    expected = np.array([np.exp(-1.0), 1.0]) / (np.exp(-1.0) + 1.0)
    assert alpha.data[0, :2] == pytest.approx(expected)
    assert alpha.data[0, 2] == 0.0
    assert pooled.data[0] == pytest.approx(expected)
    assert layer.decay == pytest.approx(0.5)


def test_time_decay_pooling_empty_history_gives_zero_vector():
    layer = TimeDecayAttentionPooling(3, 2, rng())
    pooled, alpha = layer(Tensor(np.ones((1, 2, 3), dtype=np.float32)), np.zeros((1, 2), dtype=bool), np.zeros((1, 2)))
    assert pooled.data.tolist() == [[0.0, 0.0, 0.0]]
    assert alpha.data.tolist() == [[0.0, 0.0]]


def test_state_dict_round_trip_includes_buffers():
    source = BatchNorm1d(2)
    source(Tensor(np.array([[1.0, 2.0], [3.0, 5.0]], dtype=np.float32)))
    target = BatchNorm1d(2)
    target.load_state_dict(source.state_dict())
    assert target._buffers["running_mean"].tolist() == source._buffers["running_mean"].tolist()


def test_load_state_dict_rejects_wrong_shape():
    state = Linear(3, 2, rng()).state_dict()
    with pytest.raises(ValueError, match="shape"):
        Linear(3, 4, rng()).load_state_dict(state)
