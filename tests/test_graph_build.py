import csv
import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from minirec.graph.build import NewsEntityGraph, build_news_entity_graph, neighbourhood

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def small_graph(**options):
    # news 0 mentions Q1 and Q2, news 1 mentions Q2, news 2 mentions nothing.
    # Node ids: news 0, 1, 2; Q1 -> 3, Q2 -> 4.
    return build_news_entity_graph([["Q2", "Q1"], ["Q2"], []], None, **options)


def random_graph(n_news=300, n_entities=80, max_neighbors=6, seed=1):
    rng = np.random.default_rng(seed)
    entities = [f"Q{i}" for i in range(n_entities)]
    news_entities = [
        list(rng.choice(entities, size=rng.integers(0, 7), replace=False)) for _ in range(n_news)
    ]
    return build_news_entity_graph(news_entities, None, max_neighbors=max_neighbors, dim=8)


def test_small_graph_adjacency_by_hand():
    graph = small_graph(dim=4)

    expected = np.array([
        [0, 0, 0, 0.5, 0.5],
        [0, 0, 0, 0, 1.0],
        [0, 0, 0, 0, 0],
        [1.0, 0, 0, 0, 0],
        [0.5, 0.5, 0, 0, 0],
    ], dtype=np.float32)
    assert graph.num_news == 3
    assert graph.entity_ids == ["Q1", "Q2"]
    assert graph.adjacency.dtype == np.float32
    assert sp.isspmatrix_csr(graph.adjacency)
    np.testing.assert_array_equal(graph.adjacency.toarray(), expected)


def test_small_graph_counts_by_hand():
    graph = small_graph(dim=4)

    assert graph.counts["entities"] == 2
    assert graph.counts["entities_with_pretrained_vector"] == 0
    assert graph.counts["news_without_entities"] == 1
    assert graph.counts["edges"] == 3
    assert graph.counts["neighbours_dropped_by_cap"] == 0


def test_rows_sum_to_one_or_zero():
    graph = random_graph()

    row_sums = np.asarray(graph.adjacency.sum(axis=1)).ravel()
    degrees = np.diff(graph.adjacency.indptr)

    assert np.all(np.isfinite(graph.adjacency.data))
    np.testing.assert_allclose(row_sums[degrees > 0], 1.0, rtol=1e-6)
    assert np.all(row_sums[degrees == 0] == 0.0)
    assert (degrees == 0).sum() == graph.counts["news_without_entities"]


def test_repeated_and_blank_ids_are_ignored():
    graph = build_news_entity_graph([["Q1", "Q1", " ", ""], ["Q1 "]], None, dim=2)

    assert graph.entity_ids == ["Q1"]
    assert graph.counts["edges"] == 2
    assert graph.counts["empty_entity_ids_skipped"] == 2
    np.testing.assert_array_equal(graph.adjacency.toarray()[2], [0.5, 0.5, 0])


def test_pretrained_vectors_join_by_id():
    vector_ids = ["Q9", "Q2", "Q7"]
    matrix = np.array([[9, 9, 9], [2, 2, 2], [7, 7, 7]], dtype=np.float64)

    graph = build_news_entity_graph([["Q1", "Q2"], ["Q7"]], (vector_ids, matrix), dim=3)

    assert graph.entity_ids == ["Q1", "Q2", "Q7"]
    np.testing.assert_array_equal(graph.pretrained_mask, [False, True, True])
    assert graph.entity_init.dtype == np.float32
    np.testing.assert_array_equal(graph.entity_init[1], [2, 2, 2])
    np.testing.assert_array_equal(graph.entity_init[2], [7, 7, 7])
    assert graph.counts["entities_with_pretrained_vector"] == 2


def test_random_init_has_std_point_one():
    news_entities = [[f"Q{i}"] for i in range(2000)]

    graph = build_news_entity_graph(news_entities, None, dim=50)

    assert graph.entity_init.shape == (2000, 50)
    assert abs(graph.entity_init.mean()) < 0.002
    assert graph.entity_init.std() == pytest.approx(0.1, rel=0.01)


def test_random_init_ignores_pretrained_others():
    news_entities = [["Q1", "Q2", "Q3"]]
    vectors = (["Q2"], np.ones((1, 5)))

    without = build_news_entity_graph(news_entities, None, dim=5, seed=4)
    with_vectors = build_news_entity_graph(news_entities, vectors, dim=5, seed=4)

    np.testing.assert_array_equal(with_vectors.entity_init[[0, 2]], without.entity_init[[0, 2]])


def test_same_seed_gives_same_graph():
    first = random_graph(seed=2)
    second = random_graph(seed=2)

    assert (first.adjacency != second.adjacency).nnz == 0
    np.testing.assert_array_equal(first.entity_init, second.entity_init)


def test_degree_cap_keeps_fixed_subset():
    news_entities = [["Q1"] for _ in range(50)]

    graph = build_news_entity_graph(news_entities, None, max_neighbors=8, dim=2, seed=0)
    again = build_news_entity_graph(news_entities, None, max_neighbors=8, dim=2, seed=0)
    other_seed = build_news_entity_graph(news_entities, None, max_neighbors=8, dim=2, seed=1)

    entity_row = graph.adjacency[50]
    assert entity_row.nnz == 8
    np.testing.assert_allclose(entity_row.data, 1 / 8)
    assert np.all(entity_row.indices < 50)
    np.testing.assert_array_equal(entity_row.indices, again.adjacency[50].indices)
    assert not np.array_equal(entity_row.indices, other_seed.adjacency[50].indices)
    assert graph.counts["neighbours_dropped_by_cap"] == 42
    assert all(graph.adjacency[news, 50] == 1.0 for news in range(50))


def test_degree_cap_picks_each_neighbour_evenly():
    news_entities = [["Q1"] for _ in range(10)]
    kept = np.zeros(10)

    for seed in range(400):
        graph = build_news_entity_graph(news_entities, None, max_neighbors=5, dim=1, seed=seed)
        kept[graph.adjacency[10].indices] += 1

    # Each news is kept with probability 5/10, so about 200 of 400 times.
    assert kept.min() > 150
    assert kept.max() < 250


def test_wrong_vector_dim_is_rejected():
    with pytest.raises(ValueError, match=r"expected \(1, 100\) \(pass dim=3"):
        build_news_entity_graph([["Q1"]], (["Q1"], np.ones((1, 3))), dim=100)


def test_repeated_vector_id_is_rejected():
    with pytest.raises(ValueError, match="WikidataId Q1 twice"):
        build_news_entity_graph([["Q1"]], (["Q1", "Q1"], np.ones((2, 3))), dim=3)


def test_non_finite_vector_is_rejected():
    with pytest.raises(ValueError, match="Q1 .* NaN or infinity"):
        build_news_entity_graph([["Q1"]], (["Q1"], np.full((1, 3), np.nan)), dim=3)


def test_non_string_entity_is_rejected():
    with pytest.raises(TypeError, match=r"news_entities\[1\] contains 42"):
        build_news_entity_graph([["Q1"], [42]], None)


def test_zero_max_neighbors_is_rejected():
    with pytest.raises(ValueError, match="max_neighbors"):
        build_news_entity_graph([["Q1"]], None, max_neighbors=0)


def test_save_load_round_trip(tmp_path):
    graph = random_graph()
    path = tmp_path / "graph.npz"

    graph.save(path)
    loaded = NewsEntityGraph.load(path)

    assert loaded.num_news == graph.num_news
    assert loaded.entity_ids == graph.entity_ids
    assert loaded.counts == graph.counts
    assert (loaded.adjacency != graph.adjacency).nnz == 0
    np.testing.assert_array_equal(loaded.entity_init, graph.entity_init)
    np.testing.assert_array_equal(loaded.pretrained_mask, graph.pretrained_mask)
    assert [p.name for p in tmp_path.iterdir()] == ["graph.npz"]


def test_load_rejects_missing_fields(tmp_path):
    path = tmp_path / "broken.npz"
    np.savez(path, num_news=np.array(3))

    with pytest.raises(ValueError, match=r"broken\.npz: missing field"):
        NewsEntityGraph.load(path)


def test_neighbourhood_blocks_by_hand():
    graph = small_graph(dim=4)

    blocks = neighbourhood(graph.adjacency, np.array([1]), hops=2)

    # Layer 2 reads news 1 and its entity Q2 (node 4); layer 1 reads their
    # neighbours too: news 0 joins through Q2.
    nodes_0, block_0 = blocks[0]
    nodes_1, block_1 = blocks[1]
    np.testing.assert_array_equal(nodes_0, [1, 4, 0])
    np.testing.assert_array_equal(block_0.toarray(), [[0, 1, 0], [0.5, 0, 0.5]])
    np.testing.assert_array_equal(nodes_1, [1, 4])
    np.testing.assert_array_equal(block_1.toarray(), [[0, 1]])


def test_neighbourhood_puts_outputs_first():
    graph = random_graph()
    targets = np.array([40, 7, 310, 2])

    blocks = neighbourhood(graph.adjacency, targets, hops=3)

    assert len(blocks) == 3
    for (nodes, block), (next_nodes, _) in zip(blocks, blocks[1:]):
        np.testing.assert_array_equal(nodes[: block.shape[0]], next_nodes)
        assert len(np.unique(nodes)) == len(nodes)
    last_nodes, last_block = blocks[-1]
    np.testing.assert_array_equal(last_nodes[: last_block.shape[0]], targets)


def test_two_layer_sage_matches_full_graph():
    graph = random_graph()
    adjacency = graph.adjacency.astype(np.float64)
    rng = np.random.default_rng(5)
    features = rng.standard_normal((graph.num_nodes, 6))
    weights = [(rng.standard_normal((6, 6)), rng.standard_normal((6, 6))) for _ in range(2)]
    targets = np.array([0, 13, 299, 305, 150])

    def relu(z):
        return np.maximum(z, 0.0)

    full = features
    for w_self, w_neigh in weights:
        full = relu(full @ w_self + (adjacency @ full) @ w_neigh)

    blocks = neighbourhood(adjacency, targets, hops=2)
    hidden = features[blocks[0][0]]
    for (nodes, block), (w_self, w_neigh) in zip(blocks, weights):
        n_out = block.shape[0]
        hidden = relu(hidden[:n_out] @ w_self + (block @ hidden) @ w_neigh)

    np.testing.assert_allclose(hidden, full[targets], rtol=1e-12, atol=1e-12)


def test_block_aggregation_equals_full_rows_bitwise():
    graph = random_graph()
    rng = np.random.default_rng(6)
    features = rng.standard_normal((graph.num_nodes, 4)).astype(np.float32)
    targets = np.array([3, 1, 320])

    for nodes, block in neighbourhood(graph.adjacency, targets, hops=2):
        outputs = nodes[: block.shape[0]]
        block_mean = block @ features[nodes]
        full_mean = (graph.adjacency @ features)[outputs]
        assert np.array_equal(block_mean, full_mean)


def test_neighbourhood_rejects_repeated_targets():
    with pytest.raises(ValueError, match="repeated nodes"):
        neighbourhood(small_graph(dim=2).adjacency, np.array([1, 1]))


def test_neighbourhood_rejects_out_of_range_target():
    with pytest.raises(ValueError, match=r"\[0, 5\)"):
        neighbourhood(small_graph(dim=2).adjacency, np.array([5]))


def test_neighbourhood_rejects_zero_hops():
    with pytest.raises(ValueError, match="hops"):
        neighbourhood(small_graph(dim=2).adjacency, np.array([0]), hops=0)


def test_real_news_entities_become_edges():
    news_path = DATA / "mind_tiny" / "news.tsv"
    if not news_path.exists():
        pytest.skip(f"real MIND data not found at {news_path}")
    news_entities = []
    with open(news_path, encoding="utf-8", newline="") as handle:
        for fields in csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
            ids = set()
            for column in (6, 7):
                if fields[column]:
                    ids.update(entity["WikidataId"] for entity in json.loads(fields[column]))
            news_entities.append(sorted(ids))

    graph = build_news_entity_graph(news_entities, None, max_neighbors=1000)

    assert graph.num_news == 500
    assert graph.counts["edges"] == sum(len(ids) for ids in news_entities)
    for news in (0, 250, 499):
        neighbours = graph.adjacency[news].indices
        assert sorted(graph.entity_ids[node - 500] for node in neighbours) == news_entities[news]
