"""Model layers: GraphSAGE on blocks, the three fusions and the user encoder, against central differences."""

import numpy as np
import pytest
import scipy.sparse as sp

from minirec.autograd import Tensor
from minirec.model.config import ModelConfig
from minirec.model.fusion import make_fusion
from minirec.model.graphsage import GraphSAGE, SAGELayer, build_blocks
from minirec.model.user_encoder import UserEncoder
from minirec.nn.gradcheck import check_module_grads, to_float64


def rng():
    return np.random.default_rng(3)


def mean_adjacency(edges, n):
    rows, cols = zip(*(edges + [(b, a) for a, b in edges]))
    matrix = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    degree = np.maximum(np.asarray(matrix.sum(axis=1)).ravel(), 1)  # isolated nodes keep a zero row
    return sp.diags(1.0 / degree) @ matrix


GRAPH = mean_adjacency([(0, 5), (1, 5), (1, 6), (2, 6), (3, 7), (2, 7)], 9)  # node 4 and 8 are isolated


def test_sage_layer_gradients():
    layer = SAGELayer(3, 4, dropout=0.0, rng=rng())
    nodes, blocks = build_blocks(GRAPH, np.array([1, 4, 2]), layers=1)
    check_module_grads(layer, lambda h: layer(h, blocks[0]), rng().standard_normal((nodes.size, 3)))


def test_blocks_give_full_graph_output():
    model = to_float64(GraphSAGE(3, 4, layers=2, dropout=0.0, rng=rng())).eval()
    for layer in model.layers:  # non-trivial running statistics, so BatchNorm is not the identity
        layer.norm._buffers["running_mean"][:] = rng().standard_normal(4)
        layer.norm._buffers["running_var"][:] = rng().uniform(0.5, 2.0, 4)
    features = rng().standard_normal((9, 3))
    everything, full_blocks = build_blocks(GRAPH, np.arange(9), layers=2)
    full = model(Tensor(features[everything]), full_blocks).data

    targets = np.array([2, 8, 0])
    nodes, blocks = build_blocks(GRAPH, targets, layers=2)
    batched = model(Tensor(features[nodes]), blocks).data
    assert np.allclose(batched, full[np.argsort(everything)][targets])


def test_isolated_node_aggregates_zero():
    nodes, blocks = build_blocks(GRAPH, np.array([4]), layers=1)
    assert nodes.tolist() == [4]
    assert blocks[0].adjacency.nnz == 0


AVAILABLE = np.array([[True, True, True], [True, False, True], [False, True, False]])


@pytest.mark.parametrize("kind", ["attention", "concat", "gate"])
def test_fusion_gradients(kind):
    fusion = make_fusion(kind, 4, 3, rng())
    check_module_grads(fusion, lambda z: fusion(z, AVAILABLE)[0], rng().standard_normal((3, 3, 4)))


@pytest.mark.parametrize("kind", ["attention", "gate"])
def test_fusion_weights_skip_missing_views(kind):
    fusion = make_fusion(kind, 4, 3, rng())
    z = rng().standard_normal((3, 3, 4)).astype(np.float32)
    fused, weights = fusion(Tensor(z), AVAILABLE)
    assert weights.data.sum(axis=1) == pytest.approx(np.ones(3), abs=1e-4)
    assert weights.data[1, 1] == 0.0
    assert weights.data[2].tolist() == pytest.approx([0.0, 1.0, 0.0], abs=1e-4)
    assert fused.data[2] == pytest.approx(z[2, 1], abs=1e-4)  # only the text view exists


def test_attention_fusion_hand_weights():
    # A zero query scores every view 0, so the weights are uniform over the available views.
    fusion = make_fusion("attention", 2, 3, rng())
    fusion.query.data[:] = 0.0
    _, weights = fusion(Tensor(np.ones((1, 3, 2), dtype=np.float32)), np.array([[True, False, True]]))
    assert weights.data.tolist() == [[0.5, 0.0, 0.5]]


def test_user_encoder_gradients():
    config = ModelConfig(dim=8, heads=2, user_id_dim=3, dropout=0.0, num_users=4)
    encoder = UserEncoder(config, rng())
    mask = np.array([[True, True, True], [True, False, False]])
    age = np.array([[2.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    users = np.array([1, 3])
    check_module_grads(encoder, lambda h: encoder(users, h, mask, age)[0], rng().standard_normal((2, 3, 8)),
                       atol=1e-6)


def test_user_encoder_empty_history_is_finite():
    config = ModelConfig(dim=8, heads=2, user_id_dim=3, num_users=2)
    encoder = UserEncoder(config, rng()).eval()
    users, _ = encoder(np.array([0]), Tensor(np.zeros((1, 1, 8), dtype=np.float32)),
                       np.zeros((1, 1), dtype=bool), np.zeros((1, 1)))
    assert np.all(np.isfinite(users.data))
