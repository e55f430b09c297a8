"""Generate the latent topics, the entity pool and the news catalogue with titles and abstracts.

Every news has one topic. The topic decides its category (a topic belongs to one
MIND category), usually its subcategory, a share of its title and abstract words and
most of its entities. Each of those columns carries the topic, but none of them alone
reveals it with certainty.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from minirec.synth import vocabulary
from minirec.synth.scales import ARCHIVE_START, DEV_END, DEV_START, LIVE_START, ScaleSpec

ENTITY_DIM = 100
# Probability that a news takes the subcategory of another topic in its category.
SUBCATEGORY_SWAP = 0.15
# Shares of function, general and topic words among the words of a title or abstract.
WORD_KIND_SHARES = np.array([0.40, 0.30, 0.30])
# Probability that an entity mention picks a globally popular entity, not the topic's.
GLOBAL_MENTION_SHARE = 0.12
# Probability that a person is mentioned by the last name only.
SHORT_FORM_SHARE = 0.35
# Distribution of the number of entity mentions in a title (0..3) and an abstract (0..4).
TITLE_MENTIONS = np.array([0.50, 0.32, 0.13, 0.05])
ABSTRACT_MENTIONS = np.array([0.50, 0.22, 0.14, 0.09, 0.05])
EMPTY_ABSTRACT_SHARE = 0.05


@dataclass
class Topics:
    """Latent topics and the category names derived from them."""

    share: np.ndarray  # (K,) probability that a news has topic k
    category: np.ndarray  # (K,) index into category_names
    subcategory: np.ndarray  # (K,) primary subcategory, index into subcategory_names
    category_names: list[str]
    subcategory_names: list[str]


@dataclass
class Entities:
    """Entity pool: global entities first, then one contiguous block per topic."""

    wikidata_ids: list[str]
    labels: list[str]
    types: list[str]
    short_forms: list[str]
    topic: np.ndarray  # (E,) topic of each entity, -1 for global entities
    embedding: np.ndarray  # (E, ENTITY_DIM) float32
    n_global: int
    per_topic: int


@dataclass
class Texts:
    """Titles or abstracts of all news as token sequences (CSR layout)."""

    offsets: np.ndarray  # (n_news + 1,) start of each text in tokens
    tokens: np.ndarray  # (n_segments,) index into the catalogue's token table
    char_offsets: np.ndarray  # (n_segments,) character offset of each token in its text
    confidence: np.ndarray  # (n_segments,) linker confidence, meaningful for entity tokens


@dataclass
class NewsCatalogue:
    """All news of a generated dataset with their hidden topic, time and popularity."""

    ids: np.ndarray  # (n,) object, "N123"
    id_numbers: np.ndarray  # (n,) int64
    topic: np.ndarray  # (n,) int
    subcategory: np.ndarray  # (n,) int
    published: np.ndarray  # (n,) int64 seconds relative to TRAIN_START
    popularity: np.ndarray  # (n,) float64, standard normal latent popularity
    title: Texts
    abstract: Texts
    # Token table: words first, then entity labels, then entity short forms.
    token_strings: np.ndarray  # (n_tokens,) object
    token_entity: np.ndarray  # (n_tokens,) entity index of a token, -1 for words
    n_words: int


def generate_topics(rng: np.random.Generator, spec: ScaleSpec) -> Topics:
    """Draw the topics' shares, categories and primary subcategories."""
    names = list(vocabulary.CATEGORY_WEIGHTS)
    weights = np.array(list(vocabulary.CATEGORY_WEIGHTS.values()))
    weights = weights / weights.sum()
    category = rng.choice(len(names), size=spec.n_topics, p=weights)
    # A topic's share is its category's share split among the category's topics, jittered.
    topics_in_category = np.bincount(category, minlength=len(names))
    share = weights[category] / topics_in_category[category] * rng.lognormal(0.0, 0.3, spec.n_topics)
    share = share / share.sum()
    subcategory_names = vocabulary.generate_words(
        rng, spec.n_topics, exclude=set(vocabulary.FUNCTION_WORDS) | set(names)
    )
    return Topics(
        share=share,
        category=category,
        subcategory=np.arange(spec.n_topics),
        category_names=names,
        subcategory_names=subcategory_names,
    )


def generate_entities(rng: np.random.Generator, spec: ScaleSpec, name_parts: list[str]) -> Entities:
    """Draw the entity pool and its embeddings, each a topic centroid plus noise."""
    n_entities = spec.global_entities + spec.n_topics * spec.entities_per_topic
    labels, types, short_forms = vocabulary.generate_entity_labels(rng, n_entities, name_parts)
    numbers = rng.choice(9_000_000, size=n_entities, replace=False) + 100
    topic = np.concatenate([
        np.full(spec.global_entities, -1),
        np.repeat(np.arange(spec.n_topics), spec.entities_per_topic),
    ])
    centroids = rng.normal(0.0, 0.2, size=(spec.n_topics, ENTITY_DIM))
    embedding = rng.normal(0.0, 0.1, size=(n_entities, ENTITY_DIM))
    topical = topic >= 0
    embedding[topical] += centroids[topic[topical]]
    embedding[~topical] *= 2.0  # global entities get the spread of a centroid, no topic
    return Entities(
        wikidata_ids=[f"Q{number}" for number in numbers],
        labels=labels,
        types=types,
        short_forms=short_forms,
        topic=topic,
        embedding=embedding.astype(np.float32),
        n_global=spec.global_entities,
        per_topic=spec.entities_per_topic,
    )


class _TokenTable:
    """Words and entity surface forms with the samplers that pick them per topic."""

    def __init__(self, rng: np.random.Generator, spec: ScaleSpec, entities: Entities, reserved: set[str]):
        function_words = list(vocabulary.FUNCTION_WORDS)
        content = vocabulary.generate_words(
            rng, spec.general_words + spec.n_topics * spec.topic_words,
            exclude=reserved | set(function_words),
        )
        words = function_words + content
        self.n_function = len(function_words)
        self.general_start = self.n_function
        self.topic_start = self.n_function + spec.general_words
        self.topic_words = spec.topic_words
        self.general_words = spec.general_words
        self.n_words = len(words)
        self.n_entities = len(entities.labels)
        self.strings = np.array(words + entities.labels + entities.short_forms, dtype=object)
        self.lengths = np.array([len(s) for s in self.strings], dtype=np.int64)
        self.entity = np.concatenate([
            np.full(self.n_words, -1),
            np.arange(self.n_entities),
            np.arange(self.n_entities),
        ])
        self.is_person = np.array([t == vocabulary.PERSON for t in entities.types])
        self.entities = entities

    def sample_words(self, rng: np.random.Generator, topic: np.ndarray) -> np.ndarray:
        """Draw one word per slot: a function, general or topic word (Zipf within each list)."""
        n = len(topic)
        kind = rng.choice(3, size=n, p=WORD_KIND_SHARES)
        tokens = np.empty(n, dtype=np.int64)
        is_function = kind == 0
        is_general = kind == 1
        is_topic = kind == 2
        tokens[is_function] = vocabulary.sample_ranks(
            rng, vocabulary.zipf_cumulative(self.n_function, 1.0), int(is_function.sum())
        )
        tokens[is_general] = self.general_start + vocabulary.sample_ranks(
            rng, vocabulary.zipf_cumulative(self.general_words, 1.0), int(is_general.sum())
        )
        tokens[is_topic] = (
            self.topic_start
            + topic[is_topic] * self.topic_words
            + vocabulary.sample_ranks(rng, vocabulary.zipf_cumulative(self.topic_words, 0.9), int(is_topic.sum()))
        )
        return tokens

    def sample_mentions(self, rng: np.random.Generator, topic: np.ndarray) -> np.ndarray:
        """Draw one entity surface form per slot, from the topic's pool or the global pool."""
        n = len(topic)
        entities = self.entities
        is_global = rng.random(n) < GLOBAL_MENTION_SHARE
        entity = np.empty(n, dtype=np.int64)
        entity[is_global] = vocabulary.sample_ranks(
            rng, vocabulary.zipf_cumulative(entities.n_global, 1.0), int(is_global.sum())
        )
        topical = ~is_global
        entity[topical] = (
            entities.n_global
            + topic[topical] * entities.per_topic
            + vocabulary.sample_ranks(rng, vocabulary.zipf_cumulative(entities.per_topic, 1.0), int(topical.sum()))
        )
        short = self.is_person[entity] & (rng.random(n) < SHORT_FORM_SHARE)
        return self.n_words + entity + short * self.n_entities


def _compose_texts(
    rng: np.random.Generator,
    table: _TokenTable,
    topic: np.ndarray,
    n_words: np.ndarray,
    n_mentions: np.ndarray,
) -> Texts:
    """Compose one text per news from its topic's words and entities, in random order."""
    lengths = n_words + n_mentions
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    owner = np.repeat(np.arange(len(topic)), lengths)
    position = np.arange(offsets[-1]) - offsets[owner]
    is_mention = position >= n_words[owner]

    tokens = np.empty(offsets[-1], dtype=np.int64)
    tokens[~is_mention] = table.sample_words(rng, topic[owner[~is_mention]])
    tokens[is_mention] = table.sample_mentions(rng, topic[owner[is_mention]])
    # Owners stay grouped while the random key shuffles tokens within each text.
    tokens = tokens[np.lexsort((rng.random(offsets[-1]), owner))]

    # Tokens are joined by single spaces, so a token starts after the lengths of the
    # earlier tokens of its text plus one space each.
    step = table.lengths[tokens] + 1
    ends = np.concatenate([[0], np.cumsum(step)])
    char_offsets = ends[:-1] - ends[offsets[owner]]

    confidence = np.where(
        rng.random(offsets[-1]) < 0.6, 1.0, np.round(rng.uniform(0.6, 1.0, offsets[-1]), 3)
    )
    return Texts(offsets=offsets, tokens=tokens, char_offsets=char_offsets, confidence=confidence)


def generate_catalogue(
    rng: np.random.Generator, spec: ScaleSpec, topics: Topics, entities: Entities, name_parts: list[str]
) -> NewsCatalogue:
    """Draw every news: topic, subcategory, publication time, popularity, title and abstract."""
    n = spec.archive_news + spec.live_news + spec.dev_day_news
    published = np.concatenate([
        rng.integers(ARCHIVE_START, LIVE_START, spec.archive_news),
        rng.integers(LIVE_START, DEV_START, spec.live_news),
        rng.integers(DEV_START, DEV_END, spec.dev_day_news),
    ]).astype(np.int64)
    topic = rng.choice(spec.n_topics, size=n, p=topics.share)
    popularity = rng.standard_normal(n)

    # Some news are filed under the subcategory of a sibling topic in the same category.
    by_category = np.argsort(topics.category, kind="stable")
    category_start = np.searchsorted(topics.category[by_category], topics.category)
    category_size = np.bincount(topics.category, minlength=len(topics.category_names))[topics.category]
    pick = (rng.random(n) * category_size[topic]).astype(np.int64)
    sibling = by_category[category_start[topic] + pick]
    subcategory = np.where(rng.random(n) < SUBCATEGORY_SWAP, topics.subcategory[sibling], topics.subcategory[topic])

    reserved = set(topics.subcategory_names) | {p.lower() for p in name_parts}
    table = _TokenTable(rng, spec, entities, reserved)
    title_words = np.clip(np.rint(rng.normal(9.0, 2.5, n)), 3, 20).astype(np.int64)
    title_mentions = rng.choice(len(TITLE_MENTIONS), size=n, p=TITLE_MENTIONS)
    title_words = np.maximum(title_words - title_mentions, 2)
    empty_abstract = rng.random(n) < EMPTY_ABSTRACT_SHARE
    abstract_words = np.clip(np.rint(rng.lognormal(np.log(20.0), 0.6, n)), 3, 90).astype(np.int64)
    abstract_mentions = rng.choice(len(ABSTRACT_MENTIONS), size=n, p=ABSTRACT_MENTIONS)
    abstract_words[empty_abstract] = 0
    abstract_mentions[empty_abstract] = 0

    title = _compose_texts(rng, table, topic, title_words, title_mentions)
    abstract = _compose_texts(rng, table, topic, abstract_words, abstract_mentions)

    # Random id numbers, so that an id reveals nothing about a news' age or topic.
    id_numbers = rng.permutation(n) + 1
    return NewsCatalogue(
        ids=np.array([f"N{number}" for number in id_numbers], dtype=object),
        id_numbers=id_numbers,
        topic=topic,
        subcategory=subcategory,
        published=published,
        popularity=popularity,
        title=title,
        abstract=abstract,
        token_strings=table.strings,
        token_entity=table.entity,
        n_words=table.n_words,
    )
