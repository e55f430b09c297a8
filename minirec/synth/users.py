"""Generate users: sparse topic preferences, activity and click histories.

A user's preference vector is a Dirichlet draw over the K topics,
``theta_u ~ Dirichlet(A * share)`` with a small total concentration ``A``, so most of
its mass sits on a few topics. To keep memory bounded at a million users only the
``FAVOURITES`` largest entries are stored, and the remaining mass is spread over all
topics in proportion to their share:

    pref_u[k] = sum_j w_uj * [f_uj == k] + r_u * share[k],   r_u = 1 - sum_j w_uj

History clicks are drawn from the same ``pref_u``: a topic, then a news of that topic
published before the training week, weighted by ``exp(history_popularity * popularity_n)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from minirec.synth.catalogue import NewsCatalogue
from minirec.synth.scales import ScaleSpec

FAVOURITES = 6
# Users processed per step while drawing preferences and histories, to bound temporaries.
USER_BLOCK = 50_000
# Rounds of replacing history news that a user already clicked.
MAX_HISTORY_REDRAWS = 20


@dataclass
class Users:
    """Users with their hidden preferences and their fixed click histories (CSR layout)."""

    ids: np.ndarray  # (n,) object, "U123"
    favourite_topics: np.ndarray  # (n, FAVOURITES) int32
    favourite_weights: np.ndarray  # (n, FAVOURITES) float32
    background: np.ndarray  # (n,) float32, mass spread over topics by share
    topic_share: np.ndarray  # (K,)
    activity: np.ndarray  # (n,) relative number of impressions
    history_offsets: np.ndarray  # (n + 1,) int64
    history_news: np.ndarray  # (total,) int32 catalogue indices, oldest first

    def preference(self, users: np.ndarray, topics: np.ndarray) -> np.ndarray:
        """Return ``pref_u[k]`` for each pair ``(users[i], topics[i])``."""
        match = self.favourite_topics[users] == topics[:, None]
        sparse = (self.favourite_weights[users] * match).sum(axis=1, dtype=np.float64)
        return sparse + self.background[users] * self.topic_share[topics]


def _draw_preferences(
    rng: np.random.Generator, n_users: int, share: np.ndarray, concentration: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n_topics = len(share)
    keep = min(FAVOURITES, n_topics)
    topics = np.zeros((n_users, FAVOURITES), dtype=np.int32)
    weights = np.zeros((n_users, FAVOURITES), dtype=np.float32)
    for start in range(0, n_users, USER_BLOCK):
        stop = min(start + USER_BLOCK, n_users)
        gamma = rng.standard_gamma(concentration * share, size=(stop - start, n_topics))
        total = gamma.sum(axis=1, keepdims=True)
        # With tiny concentrations every gamma draw can underflow to zero; such a user
        # falls back to the topic shares.
        theta = np.where(total > 0, gamma / np.where(total > 0, total, 1.0), share)
        top = np.argpartition(-theta, keep - 1, axis=1)[:, :keep]
        topics[start:stop, :keep] = top
        weights[start:stop, :keep] = np.take_along_axis(theta, top, axis=1)
    background = np.clip(1.0 - weights.sum(axis=1, dtype=np.float64), 0.0, 1.0).astype(np.float32)
    return topics, weights, background


class _TopicPool:
    """Sampler of news of a given topic with given weights."""

    def __init__(self, news: np.ndarray, topic: np.ndarray, weight: np.ndarray, n_topics: int):
        order = np.argsort(topic, kind="stable")
        self.news = news[order]
        sorted_topic = topic[order]
        self.start = np.searchsorted(sorted_topic, np.arange(n_topics), side="left")
        self.stop = np.searchsorted(sorted_topic, np.arange(n_topics), side="right")
        self.cumulative = np.concatenate([[0.0], np.cumsum(weight[order])])

    def sample(self, rng: np.random.Generator, topics: np.ndarray) -> np.ndarray:
        start = self.start[topics]
        stop = self.stop[topics]
        # A topic without any news in the pool falls back to the whole pool.
        empty = stop == start
        start = np.where(empty, 0, start)
        stop = np.where(empty, len(self.news), stop)
        low = self.cumulative[start]
        high = self.cumulative[stop]
        index = np.searchsorted(self.cumulative, low + rng.random(len(topics)) * (high - low), side="right") - 1
        return self.news[np.clip(index, start, stop - 1)]


def _sample_topics(
    rng: np.random.Generator,
    favourite_topics: np.ndarray,
    favourite_weights: np.ndarray,
    share_cumulative: np.ndarray,
) -> np.ndarray:
    """Draw one topic per row from ``pref_u`` given the row's favourites."""
    n = len(favourite_topics)
    draw = rng.random(n)
    cumulative = np.cumsum(favourite_weights, axis=1, dtype=np.float64)
    chosen = (draw[:, None] >= cumulative).sum(axis=1)
    in_favourites = chosen < favourite_topics.shape[1]
    background_topic = np.searchsorted(share_cumulative, rng.random(n), side="right")
    background_topic = np.minimum(background_topic, len(share_cumulative) - 1)
    favourite = favourite_topics[np.arange(n), np.minimum(chosen, favourite_topics.shape[1] - 1)]
    return np.where(in_favourites, favourite, background_topic)


def _draw_histories(
    rng: np.random.Generator,
    block: np.ndarray,
    lengths: np.ndarray,
    favourite_topics: np.ndarray,
    favourite_weights: np.ndarray,
    share_cumulative: np.ndarray,
    pool: _TopicPool,
    n_news: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``lengths[i]`` distinct history news for each user of ``block``, in no particular order."""
    keys = np.zeros(0, dtype=np.int64)
    missing = lengths
    for _ in range(MAX_HISTORY_REDRAWS):
        owner = np.repeat(block, missing)
        if len(owner) == 0:
            break
        topics = _sample_topics(rng, favourite_topics[owner], favourite_weights[owner], share_cumulative)
        news = pool.sample(rng, topics)
        # A user clicks a news at most once, so repeated draws are replaced in the next round.
        keys = np.sort(np.concatenate([keys, owner.astype(np.int64) * n_news + news]))
        keys = keys[np.concatenate([[True], keys[1:] != keys[:-1]])]
        missing = lengths - np.bincount(keys // n_news - block[0], minlength=len(block))
    # NOTE: a user whose topics have fewer news than the history length keeps a shorter history.
    return np.divmod(keys, n_news)


def generate_users(
    rng: np.random.Generator, spec: ScaleSpec, topic_share: np.ndarray, catalogue: NewsCatalogue
) -> Users:
    """Draw preferences, activity levels and histories of ``spec.n_users`` users."""
    n = spec.n_users
    favourite_topics, favourite_weights, background = _draw_preferences(
        rng, n, topic_share, spec.preference_concentration
    )
    activity = rng.lognormal(0.0, 1.0, n)

    lengths = np.clip(np.rint(rng.lognormal(np.log(spec.history_median), spec.history_sigma, n)), 1, spec.max_history)
    lengths[rng.random(n) < spec.empty_history_share] = 0
    lengths = lengths.astype(np.int64)

    # Histories are clicks from the four weeks before the training week, so every
    # history news was published before any impression.
    before_training = np.flatnonzero(catalogue.published < 0)
    pool = _TopicPool(
        before_training,
        catalogue.topic[before_training],
        np.exp(spec.history_popularity * catalogue.popularity[before_training]),
        len(topic_share),
    )
    share_cumulative = np.cumsum(topic_share) / topic_share.sum()

    n_news = len(catalogue.ids)
    blocks_offsets = [np.zeros(1, dtype=np.int64)]
    blocks_news = []
    done = 0
    for start in range(0, n, USER_BLOCK):
        stop = min(start + USER_BLOCK, n)
        owner, news = _draw_histories(rng, np.arange(start, stop), lengths[start:stop], favourite_topics,
                                      favourite_weights, share_cumulative, pool, n_news)
        order = np.lexsort((news, catalogue.published[news], owner))
        owner, news = owner[order], news[order]
        counts = np.bincount(owner - start, minlength=stop - start)
        blocks_offsets.append(done + np.cumsum(counts))
        blocks_news.append(news.astype(np.int32))
        done += len(news)

    id_numbers = rng.permutation(n) + 1
    return Users(
        ids=np.array([f"U{number}" for number in id_numbers], dtype=object),
        favourite_topics=favourite_topics,
        favourite_weights=favourite_weights,
        background=background,
        topic_share=topic_share,
        activity=activity,
        history_offsets=np.concatenate(blocks_offsets),
        history_news=np.concatenate(blocks_news) if blocks_news else np.zeros(0, dtype=np.int32),
    )
