"""News–entity bipartite graph and the per-layer neighbourhoods of a GraphSAGE mini-batch."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from minirec.files import save_arrays

logger = logging.getLogger(__name__)

_FORMAT_VERSION = 1
_INIT_STD = 0.1


@dataclass
class NewsEntityGraph:
    """Bipartite graph linking each news to the knowledge-graph entities it mentions.

    Nodes 0..num_news-1 are news, in the order of the list given to
    :func:`build_news_entity_graph`; nodes num_news..num_news+E-1 are the entities of
    ``entity_ids``, in that order.

    Attributes
    ----------
    num_news : int
        Number of news nodes N.
    entity_ids : list of str
        WikidataId of each entity node, sorted.
    adjacency : scipy.sparse.csr_matrix
        float32 of shape (N + E, N + E). Row i has weight 1 / deg(i) on each kept
        neighbour of node i, so ``adjacency @ H`` is the mean of the neighbours' rows.
        A row of an isolated node is all zero.
    entity_init : np.ndarray
        float32 of shape (E, dim): the pretrained TransE vector of the entity where one
        was given, else a draw from N(0, 0.1^2).
    pretrained_mask : np.ndarray
        bool of shape (E,), True where ``entity_init`` is a pretrained vector.
    counts : dict of str to int
        Build statistics: entities, entities_with_pretrained_vector,
        news_without_entities, edges (news–entity pairs), neighbours_dropped_by_cap,
        empty_entity_ids_skipped.
    """

    num_news: int
    entity_ids: list[str]
    adjacency: sp.csr_matrix
    entity_init: np.ndarray
    pretrained_mask: np.ndarray
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def num_nodes(self) -> int:
        """Number of news plus entity nodes."""
        return self.num_news + len(self.entity_ids)

    def save(self, path: str | os.PathLike) -> None:
        """Write the graph to an .npz file that loads without pickle, atomically."""
        path = Path(path)
        names = sorted(self.counts)
        arrays = {
            "format_version": np.array(_FORMAT_VERSION),
            "num_news": np.array(self.num_news),
            "entity_ids": np.array(self.entity_ids, dtype=str),
            "indptr": self.adjacency.indptr,
            "indices": self.adjacency.indices,
            "data": self.adjacency.data,
            "entity_init": self.entity_init,
            "pretrained_mask": self.pretrained_mask,
            "count_names": np.array(names, dtype=str),
            "count_values": np.array([self.counts[name] for name in names], dtype=np.int64),
        }
        save_arrays(path, arrays)
        logger.info("saved news-entity graph (%d nodes) to %s", self.num_nodes, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "NewsEntityGraph":
        """Read a graph written by :meth:`save`.

        Raises
        ------
        ValueError
            If the file lacks a field, has another format version, or its arrays
            disagree in size.
        """
        path = Path(path)
        with np.load(path, allow_pickle=False) as stored:
            required = ("format_version", "num_news", "entity_ids", "indptr", "indices",
                        "data", "entity_init", "pretrained_mask", "count_names",
                        "count_values")
            missing = [name for name in required if name not in stored.files]
            if missing:
                raise ValueError(
                    f"{path}: missing field(s) {missing}; expected a file written by "
                    "NewsEntityGraph.save (build and save the graph again)"
                )
            version = int(stored["format_version"])
            if version != _FORMAT_VERSION:
                raise ValueError(
                    f"{path}: format version {version}, expected {_FORMAT_VERSION} "
                    "(build and save the graph with this minirec version)"
                )
            num_news = int(stored["num_news"])
            entity_ids = [str(entity_id) for entity_id in stored["entity_ids"]]
            num_nodes = num_news + len(entity_ids)
            indptr, indices, data = stored["indptr"], stored["indices"], stored["data"]
            entity_init = stored["entity_init"]
            pretrained_mask = stored["pretrained_mask"].astype(bool)
            counts = {
                str(name): int(value)
                for name, value in zip(stored["count_names"], stored["count_values"])
            }
        consistent = (
            len(indptr) == num_nodes + 1
            and len(indices) == len(data) == int(indptr[-1])
            and entity_init.shape[0] == len(entity_ids)
            and pretrained_mask.shape == (len(entity_ids),)
        )
        if not consistent:
            raise ValueError(
                f"{path}: arrays disagree in size for {num_news} news and "
                f"{len(entity_ids)} entities (the file is damaged, build the graph again)"
            )
        adjacency = sp.csr_matrix((data, indices, indptr), shape=(num_nodes, num_nodes))
        return cls(num_news, entity_ids, adjacency, entity_init, pretrained_mask, counts)


def _collect_edges(
    news_entities: list[list[str]],
) -> tuple[list[str], np.ndarray, np.ndarray, int, int]:
    """Collect the sorted entity ids and one (news, entity) pair per distinct mention.

    Returns the entity ids, the news index and entity index of each pair, the number of
    news without entities and the number of empty ids skipped.
    """
    empty_skipped = 0
    entity_sets: list[set[str]] = []
    for position, entities in enumerate(news_entities):
        kept = set()
        for entity_id in entities:
            if not isinstance(entity_id, str):
                raise TypeError(
                    f"news_entities[{position}] contains {entity_id!r} of type "
                    f"{type(entity_id).__name__}; expected WikidataId strings such as 'Q42'"
                )
            entity_id = entity_id.strip()
            if entity_id:
                kept.add(entity_id)
            else:
                empty_skipped += 1
        entity_sets.append(kept)

    entity_ids = sorted(set().union(*entity_sets))
    column_of = {entity_id: column for column, entity_id in enumerate(entity_ids)}
    news_index = []
    entity_index = []
    for news, entities in enumerate(entity_sets):
        for entity_id in sorted(entities):
            news_index.append(news)
            entity_index.append(column_of[entity_id])
    news_without_entities = sum(1 for entities in entity_sets if not entities)
    return (
        entity_ids,
        np.asarray(news_index, dtype=np.int64),
        np.asarray(entity_index, dtype=np.int64),
        news_without_entities,
        empty_skipped,
    )


def _cap_degrees(
    rows: np.ndarray, columns: np.ndarray, num_nodes: int, max_neighbors: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Keep at most ``max_neighbors`` random neighbours in each row.

    Each entry gets a random key, and within a row the entries with the
    ``max_neighbors`` smallest keys survive: a uniform subset without replacement,
    drawn for all rows in one vectorised pass.
    """
    keys = rng.random(len(rows))
    order = np.lexsort((keys, rows))
    sorted_rows = rows[order]
    row_start = np.searchsorted(sorted_rows, np.arange(num_nodes), side="left")
    rank_in_row = np.arange(len(order)) - row_start[sorted_rows]
    kept = order[rank_in_row < max_neighbors]
    return rows[kept], columns[kept]


def _entity_init(
    entity_ids: list[str],
    entity_vectors: tuple[list[str], np.ndarray] | None,
    dim: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    # Every entity gets a random draw first, so an entity's random vector does not
    # depend on which other entities have pretrained ones.
    init = rng.normal(0.0, _INIT_STD, size=(len(entity_ids), dim)).astype(np.float32)
    pretrained_mask = np.zeros(len(entity_ids), dtype=bool)
    if entity_vectors is None:
        return init, pretrained_mask

    vector_ids, matrix = entity_vectors
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape != (len(vector_ids), dim):
        raise ValueError(
            f"entity vectors have shape {matrix.shape} for {len(vector_ids)} ids; expected "
            f"({len(vector_ids)}, {dim}) (pass dim={matrix.shape[-1]} to match the file)"
        )
    row_of = {}
    for row, entity_id in enumerate(vector_ids):
        if entity_id in row_of:
            raise ValueError(
                f"entity vectors give WikidataId {entity_id} twice (rows {row_of[entity_id]} "
                f"and {row}); expected each id once"
            )
        row_of[entity_id] = row
    for column, entity_id in enumerate(entity_ids):
        row = row_of.get(entity_id)
        if row is None:
            continue
        if not np.isfinite(matrix[row]).all():
            raise ValueError(
                f"entity vector of {entity_id} (row {row}) contains NaN or infinity; "
                "expected finite TransE values"
            )
        init[column] = matrix[row]
        pretrained_mask[column] = True
    return init, pretrained_mask


def build_news_entity_graph(
    news_entities: list[list[str]],
    entity_vectors: tuple[list[str], np.ndarray] | None,
    max_neighbors: int = 32,
    dim: int = 100,
    seed: int = 0,
) -> NewsEntityGraph:
    """Build the news–entity graph with mean-aggregation weights and entity features.

    Parameters
    ----------
    news_entities : list of list of str
        For each news, in news-vocabulary order, the WikidataIds found in its title and
        abstract. Repeated and blank ids are ignored.
    entity_vectors : (list of str, np.ndarray) or None
        Pretrained TransE vectors: WikidataIds and a matrix of shape (len(ids), dim).
    max_neighbors : int
        Maximum neighbours kept per node.
    dim : int
        Entity feature size.
    seed : int
        Seed of the random entity features and of the neighbour subsets.

    Returns
    -------
    NewsEntityGraph

    Notes
    -----
    Each news–entity pair gives one edge in both directions. A node with more than
    ``max_neighbors`` neighbours keeps a seeded random subset, chosen once here. If
    neighbours were re-sampled per batch, evaluation scores would change from run to
    run and would not match what training saw. A fixed subset makes the graph a pure
    function of the data and the seed. The cap acts on rows, so a popular entity reads from a
    subset of its news while each of its news still reads from the entity.

    Row i of the adjacency is ``A[i, j] = 1 / deg(i)`` for each kept neighbour j, so
    ``(A @ H)[i]`` is the mean of the neighbours' features.
    """
    if max_neighbors < 1:
        raise ValueError(f"max_neighbors must be at least 1, got {max_neighbors}")
    init_rng, cap_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))

    num_news = len(news_entities)
    entity_ids, news_index, entity_index, news_without_entities, empty_skipped = (
        _collect_edges(news_entities)
    )
    num_nodes = num_news + len(entity_ids)
    entity_nodes = num_news + entity_index
    rows = np.concatenate([news_index, entity_nodes])
    columns = np.concatenate([entity_nodes, news_index])
    capped_rows, capped_columns = _cap_degrees(rows, columns, num_nodes, max_neighbors, cap_rng)

    degree = np.bincount(capped_rows, minlength=num_nodes)
    # Degree clamped at 1: an isolated node's row stays all zero instead of 0 / 0.
    weights = (1.0 / np.maximum(degree, 1))[capped_rows].astype(np.float32)
    adjacency = sp.csr_matrix(
        (weights, (capped_rows, capped_columns)), shape=(num_nodes, num_nodes), dtype=np.float32
    )
    adjacency.sort_indices()

    entity_init, pretrained_mask = _entity_init(entity_ids, entity_vectors, dim, init_rng)
    counts = {
        "entities": len(entity_ids),
        "entities_with_pretrained_vector": int(pretrained_mask.sum()),
        "news_without_entities": news_without_entities,
        "edges": len(news_index),
        "neighbours_dropped_by_cap": len(rows) - len(capped_rows),
        "empty_entity_ids_skipped": empty_skipped,
    }
    logger.info(
        "built news-entity graph: %d news, %d entities (%d with pretrained vectors), "
        "%d edges, %d news without entities, %d neighbours dropped by the cap of %d, "
        "%d empty entity ids skipped",
        num_news, counts["entities"], counts["entities_with_pretrained_vector"],
        counts["edges"], news_without_entities, counts["neighbours_dropped_by_cap"],
        max_neighbors, empty_skipped,
    )
    return NewsEntityGraph(num_news, entity_ids, adjacency, entity_init, pretrained_mask, counts)


def _gather_rows(
    adjacency: sp.csr_matrix, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the CSR row pointer, column indices and values of ``adjacency[rows]``.

    Entries keep their stored order, so a sum over a gathered row adds the same terms
    in the same order as the full matrix does.
    """
    starts = adjacency.indptr[rows]
    lengths = adjacency.indptr[rows + 1] - starts
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    positions = np.arange(indptr[-1]) - np.repeat(indptr[:-1] - starts, lengths)
    return indptr, adjacency.indices[positions], adjacency.data[positions]


def neighbourhood(
    adjacency: sp.csr_matrix, targets: np.ndarray, hops: int = 2
) -> list[tuple[np.ndarray, sp.csr_matrix]]:
    """Extract the blocks that a ``hops``-layer GraphSAGE needs to compute ``targets``.

    Parameters
    ----------
    adjacency : scipy.sparse.csr_matrix
        Square mean-aggregation matrix of the full graph, for example
        ``NewsEntityGraph.adjacency``.
    targets : np.ndarray
        Distinct node ids whose outputs are needed.
    hops : int
        Number of GraphSAGE layers.

    Returns
    -------
    list of (np.ndarray, scipy.sparse.csr_matrix)
        ``hops`` blocks, from the input layer to the output layer.
        ``blocks[l] = (nodes_l, A_l)``: ``nodes_l`` are the global ids of the input
        nodes of layer l + 1, and ``A_l`` of shape ``(n_out, len(nodes_l))`` maps that
        layer's output nodes to their neighbours among ``nodes_l``. The output nodes
        come FIRST in ``nodes_l``, so ``nodes_l[:n_out]`` are they and rows
        ``H[:n_out]`` of the layer input are their "self" features. The output nodes
        of block l are the input nodes of block l + 1, and those of the last block are
        ``targets`` in the given order.

    Notes
    -----
    Layer l + 1 on block l computes, with H the features of ``nodes_l``,

        H_out = act(H[:n_out] @ W_self + (A_l @ H) @ W_neigh),

    and starting from ``H = X[blocks[0][0]]`` the last layer's rows equal the full-graph
    output at ``targets``. Two facts make that hold: each input set contains every
    neighbour of the block's output nodes, and the rows of ``A_l`` carry the full
    graph's weights 1 / deg(i), not weights renormalised inside the block. Rows also
    keep the full matrix's entry order, so ``A_l @ H`` adds the same terms in the same
    order as ``adjacency @ H``.
    """
    if not sp.issparse(adjacency) or adjacency.format != "csr":
        raise TypeError(f"adjacency must be a scipy.sparse CSR matrix, got {type(adjacency).__name__}")
    num_nodes = adjacency.shape[0]
    if adjacency.shape != (num_nodes, num_nodes):
        raise ValueError(f"adjacency must be square, got shape {adjacency.shape}")
    if hops < 1:
        raise ValueError(f"hops must be at least 1, got {hops}")
    targets = np.asarray(targets)
    if targets.ndim != 1 or not np.issubdtype(targets.dtype, np.integer):
        raise ValueError(
            f"targets must be a 1-D integer array, got shape {targets.shape} and dtype {targets.dtype}"
        )
    targets = targets.astype(np.int64)
    if len(targets) and (targets.min() < 0 or targets.max() >= num_nodes):
        raise ValueError(f"targets must lie in [0, {num_nodes}), got values from {targets.min()} to {targets.max()}")
    if len(np.unique(targets)) != len(targets):
        raise ValueError(
            "targets contain repeated nodes; pass np.unique(targets, return_inverse=True)[0] "
            "and index the output with the inverse"
        )

    local_id = np.full(num_nodes, -1, dtype=np.int64)
    blocks = []
    outputs = targets
    for _ in range(hops):
        indptr, global_columns, values = _gather_rows(adjacency, outputs)
        extra = np.setdiff1d(global_columns, outputs)  # sorted, unique
        inputs = np.concatenate([outputs, extra])
        local_id[inputs] = np.arange(len(inputs))
        block = sp.csr_matrix(
            (values, local_id[global_columns], indptr), shape=(len(outputs), len(inputs))
        )
        local_id[inputs] = -1
        blocks.append((inputs, block))
        outputs = inputs
    return blocks[::-1]
