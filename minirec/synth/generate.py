"""Generate synthetic MIND-format datasets with a planted click model.

The generated world
-------------------
* K latent topics, each with a share of all news and one MIND category. Each topic has
  its own subcategory, which 15% of its news swap for a sibling topic's subcategory.
* News: one topic each, a publication time, a latent popularity ``popularity_n ~ N(0, 1)``,
  a title and an abstract. Texts mix common English words (no signal), general
  pronounceable words (no signal) and the topic's own words. Entities come from the
  topic's entity pool (88%) or from a pool of globally popular entities (12%). An
  entity's embedding is its topic's centroid plus noise, so the entity columns carry the
  topic as well. News ids are random numbers, so an id reveals nothing about the news.
* Users: a sparse preference vector ``pref_u`` over topics (a Dirichlet draw with small
  concentration, see ``minirec.synth.users``) and an activity level. Each user also has a
  fixed history of clicks on news published in the four weeks before the training week.
  History clicks are drawn from ``pref_u`` and popularity and listed oldest first.
* Impressions: training impressions fall on 9-14 November 2019 and dev impressions on
  15 November, with MIND's daily rhythm. Each shows 2 or more distinct news published
  shortly before (at most about two days), popular ones more often. So the dev split
  shows many news that the training split never contains.

Planted click model
-------------------
A shown news ``n`` is clicked by user ``u`` with probability

    p_un = sigmoid(a * pref_u[topic_n] + b * popularity_n + c + noise_un),
    noise_un ~ N(0, noise_sd^2),

with the constants of ``ScaleSpec.click``. Clicks are drawn from ``p_un``. An impression
without a click gets one, and an impression without a non-click gets one (see
``minirec.synth.clicks``). The topic and the preferences are never written. A model has to
infer the topic from the category, subcategory, words and entities of the news, and the
preferences from the history. News ids alone cannot score news unseen in training.

Measured on the dev split with seed 0, the mean per-impression AUC of ranking by ``p_un``
is 0.79 (demo) and 0.77 (small), by the noise-free logit 0.77 and 0.75, and by
``popularity_n`` alone 0.58 and 0.59.

With ``return_truth=True`` the hidden click probabilities are returned next to the
statistics, for measuring how well an oracle or a baseline could rank the candidates.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from minirec.synth import catalogue as catalogue_module
from minirec.synth import clicks, impressions, mind_files, vocabulary
from minirec.synth.catalogue import Entities, NewsCatalogue, Topics
from minirec.synth.scales import DEV_START, SCALES, TRAIN_DAY_WEIGHTS, ScaleSpec
from minirec.synth.users import Users, generate_users

logger = logging.getLogger(__name__)

SPLITS = ("train", "dev")


@dataclass
class SplitTruth:
    """Hidden click model values of every candidate of one split, in file order."""

    offsets: np.ndarray  # (n_impressions + 1,) candidates of impression i: offsets[i]:offsets[i+1]
    news_ids: np.ndarray  # (n_candidates,) object, "N123"
    label: np.ndarray  # (n_candidates,) int8, the written click label
    click_probability: np.ndarray  # (n_candidates,) p_un, noise included
    score: np.ndarray  # (n_candidates,) a * pref_u[topic_n] + b * popularity_n
    popularity: np.ndarray  # (n_candidates,) popularity_n


@dataclass
class NewsTruth:
    """Hidden values of every news in the catalogue, written or not."""

    ids: np.ndarray  # (n_news,) object, "N123"
    topic: np.ndarray  # (n_news,) int
    published: np.ndarray  # (n_news,) int64 seconds after 2019-11-09 00:00:00
    popularity: np.ndarray  # (n_news,) float64


@dataclass
class _World:
    spec: ScaleSpec
    topics: Topics
    entities: Entities
    catalogue: NewsCatalogue
    users: Users


def _build_world(rng: np.random.Generator, spec: ScaleSpec) -> _World:
    began = time.perf_counter()
    topics = catalogue_module.generate_topics(rng, spec)
    name_parts = vocabulary.generate_words(
        rng, spec.name_parts, exclude=set(vocabulary.FUNCTION_WORDS) | set(topics.subcategory_names)
    )
    entities = catalogue_module.generate_entities(rng, spec, name_parts)
    catalogue = catalogue_module.generate_catalogue(rng, spec, topics, entities, name_parts)
    users = generate_users(rng, spec, topics.share, catalogue)
    logger.info(
        "Drew %d news, %d entities and %d users with %d history clicks in %.1f s",
        len(catalogue.ids), len(entities.labels), len(users.ids), len(users.history_news),
        time.perf_counter() - began,
    )
    return _World(spec=spec, topics=topics, entities=entities, catalogue=catalogue, users=users)


def _write_behaviors(
    rng: np.random.Generator,
    world: _World,
    split: str,
    user: np.ndarray,
    when: np.ndarray,
    path: Path,
    progress: bool,
    collect_truth: bool,
) -> tuple[dict, np.ndarray, SplitTruth | None]:
    """Draw candidates and clicks chunk by chunk and stream them to ``path``.

    Returns the split's statistics, the mask of referenced catalogue news and,
    on request, the hidden truth.
    """
    spec, catalogue, users = world.spec, world.catalogue, world.users
    n_news = len(catalogue.ids)
    pool = impressions.CandidatePool(catalogue, spec.click.exposure)
    referenced = np.zeros(n_news, dtype=bool)
    seen_users = np.zeros(len(users.ids), dtype=bool)
    totals = {"candidates": 0, "clicks": 0, "empty_histories": 0, "history_length": 0}
    truth_parts: dict[str, list] = {key: [] for key in ("sizes", "news", "label", "probability", "score", "popularity")}
    n_impressions = len(user)
    log = logger.info if progress else logger.debug
    history_offsets, history_news = users.history_offsets, users.history_news
    clicked_tokens = np.array([f"{news_id}-1" for news_id in catalogue.ids], dtype=object)
    skipped_tokens = np.array([f"{news_id}-0" for news_id in catalogue.ids], dtype=object)

    with mind_files.atomic_writer(path) as stream:
        for start in range(0, n_impressions, spec.impressions_per_chunk):
            stop = min(start + spec.impressions_per_chunk, n_impressions)
            chunk_user, chunk_time = user[start:stop], when[start:stop]
            counts = impressions.draw_candidate_counts(rng, spec, stop - start)
            news = impressions.draw_candidates(rng, pool, chunk_time, counts, n_news)
            offsets = np.concatenate([[0], np.cumsum(counts)])
            owner = np.repeat(chunk_user, counts)

            preference = users.preference(owner, catalogue.topic[news])
            score = clicks.score_candidates(spec.click, preference, catalogue.popularity[news])
            probability = clicks.click_probability(rng, spec.click, score)
            label = clicks.draw_clicks(rng, probability, offsets)

            referenced[news] = True
            seen_users[chunk_user] = True
            totals["candidates"] += len(news)
            totals["clicks"] += int(label.sum())
            history_lengths = history_offsets[chunk_user + 1] - history_offsets[chunk_user]
            totals["empty_histories"] += int((history_lengths == 0).sum())
            totals["history_length"] += int(history_lengths.sum())

            tokens = np.where(label == 1, clicked_tokens[news], skipped_tokens[news]).tolist()
            times = mind_files.format_times(chunk_time)
            lines = []
            for i, u in enumerate(chunk_user.tolist()):
                history = " ".join(catalogue.ids[history_news[history_offsets[u]:history_offsets[u + 1]]])
                candidates = " ".join(tokens[offsets[i]:offsets[i + 1]])
                lines.append(f"{start + i + 1}\t{users.ids[u]}\t{times[i]}\t{history}\t{candidates}\n")
            stream.write("".join(lines))

            if collect_truth:
                truth_parts["sizes"].append(counts)
                truth_parts["news"].append(catalogue.ids[news])
                truth_parts["label"].append(label)
                truth_parts["probability"].append(probability)
                truth_parts["score"].append(score)
                truth_parts["popularity"].append(catalogue.popularity[news])
            log("%s: %d/%d impressions written", split, stop, n_impressions)

    # The histories of every user seen in the split are part of it.
    lengths = np.diff(history_offsets)
    referenced[history_news[np.repeat(seen_users, lengths)]] = True

    clicks_total = totals["clicks"]
    non_clicks = totals["candidates"] - clicks_total
    statistics = {
        "impressions": n_impressions,
        "users": int(seen_users.sum()),
        "news": int(referenced.sum()),
        "mean_candidates": totals["candidates"] / max(n_impressions, 1),
        "clicks": clicks_total,
        "non_clicks": non_clicks,
        "non_clicks_per_click": non_clicks / max(clicks_total, 1),
        "empty_history_share": totals["empty_histories"] / max(n_impressions, 1),
        "mean_history": totals["history_length"] / max(n_impressions, 1),
    }
    truth = None
    if collect_truth:
        truth = SplitTruth(
            offsets=np.concatenate([[0], np.cumsum(np.concatenate(truth_parts["sizes"]))]),
            news_ids=np.concatenate(truth_parts["news"]),
            label=np.concatenate(truth_parts["label"]),
            click_probability=np.concatenate(truth_parts["probability"]),
            score=np.concatenate(truth_parts["score"]),
            popularity=np.concatenate(truth_parts["popularity"]),
        )
    return statistics, referenced, truth


def _write_news_files(world: _World, split_dir: Path, referenced: np.ndarray) -> dict:
    """Write news.tsv and entity_embedding.vec of one split and return their statistics."""
    news = np.flatnonzero(referenced)
    mind_files.write_news(split_dir / "news.tsv", world.catalogue, world.topics, world.entities, news)
    entities = mind_files.entities_of_news(world.catalogue, news)
    mind_files.write_entity_vectors(split_dir / "entity_embedding.vec", world.entities, entities)

    with_entity = np.zeros(len(world.catalogue.ids), dtype=bool)
    for texts in (world.catalogue.title, world.catalogue.abstract):
        owner = np.repeat(np.arange(len(world.catalogue.ids)), np.diff(texts.offsets))
        with_entity[owner[world.catalogue.token_entity[texts.tokens] >= 0]] = True
    return {
        "entities": len(entities),
        "news_with_entities_share": float(with_entity[news].mean()) if len(news) else 0.0,
    }


def generate_mind(
    out_dir: Path,
    scale: str = "demo",
    seed: int = 0,
    progress: bool = False,
    *,
    return_truth: bool = False,
) -> dict:
    """Generate a synthetic MIND dataset under ``out_dir/train`` and ``out_dir/dev``.

    Parameters
    ----------
    out_dir : Path
        Folder to write into; created if missing. Existing files are replaced.
    scale : str
        A key of ``SCALES``: "demo", "small" (MIND-small sizes) or "large" (MIND-large sizes).
    seed : int
        Seed of ``numpy.random.default_rng``; the same scale and seed give byte-identical files.
    progress : bool
        Log progress per chunk of impressions at INFO level instead of DEBUG.
    return_truth : bool
        Also return the hidden values under the key "truth" as
        ``{"train": SplitTruth, "dev": SplitTruth, "news": NewsTruth}``.
        Holds every candidate in memory, so it suits the demo and small scales.

    Returns
    -------
    dict
        Statistics: "scale", "seed", "seconds", "topics" and "vocabulary_words". Per split,
        "train" and "dev" map to the counts of news, users, impressions, clicks and
        entities, the mean number of candidates, non-clicks per click, the share of news
        with entities and the share of empty histories. "dev" also has "news_not_in_train".
    """
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; expected one of {', '.join(sorted(SCALES))}")
    spec = SCALES[scale]
    out_dir = Path(out_dir)
    began = time.perf_counter()
    rng = np.random.default_rng(seed)
    logger.info("Generating the %s-scale world (seed %d): %d topics, %d news, %d users",
                scale, seed, spec.n_topics, spec.archive_news + spec.live_news + spec.dev_day_news, spec.n_users)
    world = _build_world(rng, spec)
    users = world.users
    # User indices carry no meaning (ids are shuffled), so the first train_users users
    # are the training split's and the last dev_users users the dev split's.
    train_users = np.arange(spec.train_users)
    dev_users = np.arange(spec.train_users - spec.shared_users, spec.n_users)
    schedules = {
        "train": impressions.schedule_impressions(
            rng, users, spec.train_impressions, train_users, start=0, day_weights=TRAIN_DAY_WEIGHTS
        ),
        "dev": impressions.schedule_impressions(
            rng, users, spec.dev_impressions, dev_users, start=DEV_START, day_weights=np.ones(1)
        ),
    }

    statistics: dict = {
        "scale": scale,
        "seed": seed,
        "topics": spec.n_topics,
        "vocabulary_words": world.catalogue.n_words,
    }
    referenced = {}
    truth = {}
    for split in SPLITS:
        split_dir = out_dir / split
        user, when = schedules[split]
        logger.info("Writing %s (%d impressions)", split_dir / "behaviors.tsv", len(user))
        split_statistics, referenced[split], truth[split] = _write_behaviors(
            rng, world, split, user, when, split_dir / "behaviors.tsv", progress, return_truth
        )
        logger.info("Writing %s and entity_embedding.vec (%d news)", split_dir / "news.tsv", referenced[split].sum())
        split_statistics.update(_write_news_files(world, split_dir, referenced[split]))
        statistics[split] = split_statistics
    statistics["dev"]["news_not_in_train"] = int((referenced["dev"] & ~referenced["train"]).sum())
    statistics["seconds"] = time.perf_counter() - began
    if return_truth:
        catalogue = world.catalogue
        truth["news"] = NewsTruth(
            ids=catalogue.ids, topic=catalogue.topic, published=catalogue.published, popularity=catalogue.popularity
        )
        statistics["truth"] = truth
    logger.info("Generated %s in %.1f s", out_dir, statistics["seconds"])
    return statistics
