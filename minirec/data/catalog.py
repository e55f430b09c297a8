"""The news catalogue: one row per news id, holding everything the news encoder reads about it.

Every lookup from a news id to a vector goes through :attr:`NewsCatalog.index`, so the ID row, the
text vector and the graph node of an item always belong to that item, whatever order the files
list news in. Row 0 is padding: empty history slots and ids the catalogue has never seen map there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from minirec.data.mind import Behaviors, News


@dataclass
class NewsCatalog:
    """News ids and their per-row features; arrays have ``len(ids) + 1`` rows (row 0 = padding)."""

    ids: list[str]
    has_row: np.ndarray          # bool: the id has a row in some news.tsv (category, title, entities)
    category: np.ndarray         # int: index into ``categories``, 0 when unknown
    categories: list[str]        # category names, position 0 = "<unknown>"
    id_row: np.ndarray           # int: row in the news-ID embedding table, 0 when not seen in training
    entities: list[list[str]]    # WikidataIds of title and abstract, per row
    texts_available: int = 0
    index: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self):
        if not self.index:
            self.index = {news_id: row for row, news_id in enumerate(self.ids, start=1)}

    def __len__(self) -> int:
        """Number of rows, padding row included."""
        return len(self.ids) + 1

    @property
    def num_news_ids(self) -> int:
        return int(self.id_row.max()) + 1

    def rows(self, news_ids: Iterable[str]) -> np.ndarray:
        """Return the catalogue row of each id, 0 for an id the catalogue does not hold."""
        get = self.index.get
        return np.fromiter((get(news_id, 0) for news_id in news_ids), dtype=np.int64)

    # ----------------------------------------------------------------- saving
    def to_arrays(self) -> dict[str, np.ndarray]:
        flat_entities = [e for row in self.entities for e in row]
        offsets = np.cumsum([0] + [len(row) for row in self.entities])
        return {
            "catalog_ids": np.array(self.ids, dtype=str),
            "catalog_has_row": self.has_row,
            "catalog_category": self.category,
            "catalog_categories": np.array(self.categories, dtype=str),
            "catalog_id_row": self.id_row,
            "catalog_entities": np.array(flat_entities, dtype=str),
            "catalog_entity_offsets": offsets.astype(np.int64),
        }

    @classmethod
    def from_arrays(cls, arrays) -> "NewsCatalog":
        offsets = arrays["catalog_entity_offsets"]
        flat = [str(e) for e in arrays["catalog_entities"]]
        entities = [flat[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]
        return cls(
            ids=[str(i) for i in arrays["catalog_ids"]],
            has_row=np.asarray(arrays["catalog_has_row"], dtype=bool),
            category=np.asarray(arrays["catalog_category"], dtype=np.int64),
            categories=[str(c) for c in arrays["catalog_categories"]],
            id_row=np.asarray(arrays["catalog_id_row"], dtype=np.int64),
            entities=entities,
        )


def build_catalog(news_tables: list[News], training: Behaviors, others: list[Behaviors]) -> NewsCatalog:
    """Build the catalogue of every news id that a news table or a behaviors file mentions.

    The news-ID embedding gets a row only for news that the ``training`` impressions mention (in a
    history or as a candidate). An ID vector of a news item that training never showed would stay at
    its random start, so such news get ID row 0 and the model relies on their text and graph views.
    When two news tables list the same id, the first one's row is kept.
    """
    rows: dict[str, tuple] = {}
    for table in news_tables:
        for i, news_id in enumerate(table.ids):
            if news_id not in rows:
                rows[news_id] = (table.category[i], table.title_entities[i], table.abstract_entities[i])

    ordered: dict[str, None] = dict.fromkeys(rows)
    trained: dict[str, None] = {}
    for behaviors in [training, *others]:
        is_training = behaviors is training
        for history, candidates in zip(behaviors.histories, behaviors.candidates):
            for news_id in history:
                ordered.setdefault(news_id)
                if is_training:
                    trained.setdefault(news_id)
            for news_id in candidates:
                ordered.setdefault(news_id)
                if is_training:
                    trained.setdefault(news_id)

    ids = list(ordered)
    categories = ["<unknown>"] + sorted({row[0] for row in rows.values() if row[0]})
    category_index = {name: i for i, name in enumerate(categories)}
    trained_row = {news_id: i for i, news_id in enumerate(trained, start=1)}

    n = len(ids) + 1
    has_row = np.zeros(n, dtype=bool)
    category = np.zeros(n, dtype=np.int64)
    id_row = np.zeros(n, dtype=np.int64)
    entities: list[list[str]] = [[]]
    for row, news_id in enumerate(ids, start=1):
        id_row[row] = trained_row.get(news_id, 0)
        found = rows.get(news_id)
        if found is None:
            entities.append([])
            continue
        has_row[row] = True
        category[row] = category_index.get(found[0], 0)
        entities.append(list(dict.fromkeys(found[1] + found[2])))
    return NewsCatalog(ids=ids, has_row=has_row, category=category, categories=categories, id_row=id_row,
                       entities=entities)
