"""Add news to a trained model's catalogue after training, without retraining.

A news item published after training has no trained ID vector, but it has a news.tsv row, so the
trained model can still encode its text and graph views:

* **text**: the LSA encoder fitted at training time (saved beside the model) embeds the composed
  text of the new row. A model trained on precomputed text vectors has no encoder to embed new
  text, so its new news get no text view.
* **graph**: a new news node reads, by mean aggregation, from its entities that the graph already
  holds. Entity nodes keep their neighbours, so the graph view, and hence the score, of every news
  item the model already had stays exactly as it was.

The ID view of a new news item is simply unavailable (ID row 0), and fusion masks it out.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from minirec.data.catalog import NewsCatalog
from minirec.data.mind import News
from minirec.graph.build import build_news_entity_graph
from minirec.model.news_encoder import NewsInputs
from minirec.model.recommender import Recommender

logger = logging.getLogger(__name__)

# The pipeline builds the graph with build_news_entity_graph's default cap of neighbours per node.
MAX_NEIGHBORS = inspect.signature(build_news_entity_graph).parameters["max_neighbors"].default


@dataclass
class AddedNews:
    """Counts and notes of one :func:`add_news` call."""

    added: list[str] = field(default_factory=list)  # ids of the new catalogue rows, in file order
    already_in_catalog: int = 0                     # rows whose id the catalogue contains already (kept as trained)
    with_text: int = 0                              # new news with a non-zero text vector
    text_note: str = ""                             # why new news have no text view, when they have none
    entity_links: int = 0                           # new news -> known entity edges
    unknown_entities: int = 0                       # entity mentions missing from the graph (dropped)
    without_known_entity: int = 0                   # new news whose graph node reads only its category
    unknown_categories: int = 0                     # new news whose category training never saw


def add_news(model: Recommender, news: News, text_encoder=None, seed: int = 0) -> tuple[Recommender, AddedNews]:
    """Return a model whose catalogue also contains the rows of ``news`` that it lacks, and what was done.

    Parameters
    ----------
    model : Recommender
        A trained model; it is not modified.
    news : News
        Rows as read from a news.tsv. Rows whose id the catalogue already contains are left out and counted.
    text_encoder : LSAEncoder, optional
        The encoder that produced the model's text vectors. Without it, new news get no text view.
    seed : int
        Seed of the neighbour subset of a new news item with more than ``MAX_NEIGHBORS`` known entities.

    Raises
    ------
    ValueError
        When the model has neither a text nor a graph view, or the encoder's width differs from the
        model's text vectors.
    """
    config = model.config
    inputs = model.news_encoder.inputs
    catalog = inputs.catalog
    if "text" not in config.views and "graph" not in config.views:
        raise ValueError("the model uses only the ID view, so news added after training have no view it can "
                         "encode: train with the text or the graph view (--views id,text,graph)")

    result = AddedNews()
    positions = []
    for position, news_id in enumerate(news.ids):
        if news_id in catalog.index:
            result.already_in_catalog += 1
        else:
            positions.append(position)
    if result.already_in_catalog:
        logger.info("%d rows of %s are already in the model's catalogue and keep their trained views",
                    result.already_in_catalog, news.path)
    if not positions:
        return model, result

    result.added = [news.ids[p] for p in positions]
    extended = _extend_catalog(catalog, news, positions, result)
    new_inputs = NewsInputs(catalog=extended, entity_init=inputs.entity_init, entity_ids=inputs.entity_ids)
    if "text" in config.views:
        new_inputs.text_vectors, new_inputs.has_text = _extend_text(inputs, news, positions, text_encoder, result)
    if "graph" in config.views:
        new_inputs.adjacency = _extend_graph(inputs, extended, len(catalog), seed, result)

    extended_model = Recommender(dataclasses.replace(config, num_news=len(extended)), new_inputs)
    extended_model.load_state_dict(model.state_dict())
    extended_model.eval()
    logger.info("added %d news after training: %d with a text vector, %d links to known entities "
                "(%d entity mentions unknown to the graph dropped), %d news with no known entity, "
                "%d with a category unseen in training", len(positions), result.with_text, result.entity_links,
                result.unknown_entities, result.without_known_entity, result.unknown_categories)
    return extended_model, result


def _extend_catalog(catalog: NewsCatalog, news: News, positions: list[int], result: AddedNews) -> NewsCatalog:
    category_index = {name: i for i, name in enumerate(catalog.categories)}
    categories = []
    for p in positions:
        index = category_index.get(news.category[p], 0)
        if index == 0:
            result.unknown_categories += 1
        categories.append(index)
    count = len(positions)
    return NewsCatalog(
        ids=catalog.ids + [news.ids[p] for p in positions],
        has_row=np.concatenate([catalog.has_row, np.ones(count, dtype=bool)]),
        category=np.concatenate([catalog.category, np.array(categories, dtype=np.int64)]),
        categories=list(catalog.categories),
        id_row=np.concatenate([catalog.id_row, np.zeros(count, dtype=np.int64)]),
        entities=catalog.entities + [list(dict.fromkeys(news.title_entities[p] + news.abstract_entities[p]))
                                     for p in positions],
    )


def _extend_text(inputs: NewsInputs, news: News, positions: list[int], text_encoder,
                 result: AddedNews) -> tuple[np.ndarray, np.ndarray]:
    from minirec.text.compose import news_text

    width = inputs.text_vectors.shape[1]
    vectors = np.zeros((len(positions), width), dtype=np.float32)
    if text_encoder is None:
        result.text_note = ("the model's text vectors were precomputed, so no text encoder is saved with it: "
                            "news added after training have no text view")
        logger.warning("%s", result.text_note)
    else:
        texts = [news_text(news.category[p], news.subcategory[p], news.title[p], news.abstract[p]) for p in positions]
        encoded = text_encoder.transform(texts)
        if encoded.shape[1] != width:
            raise ValueError(f"the text encoder gives {encoded.shape[1]}-d vectors but the model's text vectors are "
                             f"{width}-d: use the encoder saved with this model")
        vectors[:] = encoded
    has_text = np.abs(vectors).sum(axis=1) > 0
    result.with_text = int(has_text.sum())
    if text_encoder is not None and result.with_text < len(positions):
        result.text_note = (f"{len(positions) - result.with_text} added news have no word of the encoder's "
                            "vocabulary and get no text view")
    return np.concatenate([inputs.text_vectors, vectors]), np.concatenate([inputs.has_text, has_text])


def _extend_graph(inputs: NewsInputs, extended: NewsCatalog, old_news: int, seed: int,
                  result: AddedNews) -> sp.csr_matrix:
    """Rebuild the adjacency with the new news nodes inserted before the entity nodes.

    Nodes are the catalogue rows followed by the entities, so every entity node moves up by the
    number of added news. A new news row gets weight 1 / degree on each of its known entities (at
    most MAX_NEIGHBORS, a seeded subset beyond that), the mean aggregation the graph was built with.
    """
    added = len(extended) - old_news
    entity_node = {entity_id: i for i, entity_id in enumerate(inputs.entity_ids)}
    old = inputs.adjacency.tocoo()
    old_rows = np.where(old.row >= old_news, old.row + added, old.row)
    old_columns = np.where(old.col >= old_news, old.col + added, old.col)
    rows, columns, weights = [old_rows], [old_columns], [old.data]

    rng = np.random.default_rng(seed)
    first_entity = len(extended)
    for offset in range(added):
        mentions = extended.entities[old_news + offset]
        known = [entity_node[e] for e in mentions if e in entity_node]
        result.unknown_entities += len(mentions) - len(known)
        if not known:
            result.without_known_entity += 1
            continue
        if len(known) > MAX_NEIGHBORS:
            known = sorted(rng.choice(known, size=MAX_NEIGHBORS, replace=False).tolist())
        result.entity_links += len(known)
        rows.append(np.full(len(known), old_news + offset))
        columns.append(first_entity + np.array(known))
        weights.append(np.full(len(known), 1.0 / len(known), dtype=old.data.dtype))

    size = first_entity + len(inputs.entity_ids)
    adjacency = sp.csr_matrix((np.concatenate(weights), (np.concatenate(rows), np.concatenate(columns))),
                              shape=(size, size), dtype=old.data.dtype)
    adjacency.sort_indices()
    return adjacency
