"""Planted click model: click probabilities of shown news and the clicks drawn from them.

    p_un = sigmoid(a * pref_u[topic_n] + b * popularity_n + c + noise_un),
    noise_un ~ N(0, noise_sd^2)

Clicks are Bernoulli(p_un). An impression without any click gets one, picked with
probability proportional to ``p_un``. An impression where everything was clicked gets one
non-click, picked with probability proportional to ``1 - p_un``. So every impression has
at least one click and one non-click, as in MIND.
"""

from __future__ import annotations

import numpy as np

from minirec.synth.scales import ClickModel


def score_candidates(
    model: ClickModel, preference: np.ndarray, popularity: np.ndarray
) -> np.ndarray:
    """Return the part of the click logit that news content and popularity can explain.

    ``a * pref_u[topic_n] + b * popularity_n``; the bias and the per-impression noise are
    left out because they do not change the ranking a model could learn.
    """
    return model.a * preference + model.b * popularity


def click_probability(
    rng: np.random.Generator, model: ClickModel, score: np.ndarray
) -> np.ndarray:
    """Add the bias and fresh noise to ``score`` and return ``sigmoid`` of the logit."""
    logit = score + model.c + model.noise_sd * rng.standard_normal(len(score))
    return 1.0 / (1.0 + np.exp(-logit))


def _pick_one(
    rng: np.random.Generator, weight: np.ndarray, offsets: np.ndarray
) -> np.ndarray:
    """Pick one position per impression with probability proportional to ``weight``.

    The Gumbel-max trick: the argmax of ``log(weight) + Gumbel noise`` within a group is
    a draw proportional to ``weight``. Returns absolute positions.
    """
    owner = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    with np.errstate(divide="ignore"):
        key = np.log(weight) + rng.gumbel(size=len(weight))
    order = np.lexsort((-key, owner))
    return order[offsets[:-1]]


def draw_clicks(
    rng: np.random.Generator, probability: np.ndarray, offsets: np.ndarray
) -> np.ndarray:
    """Draw click labels (int8, 1 = clicked) for impressions laid out by ``offsets``.

    Every impression must have at least two candidates.
    """
    if np.any(np.diff(offsets) < 2):
        raise ValueError("every impression needs at least two candidates to get a click and a non-click")
    label = (rng.random(len(probability)) < probability).astype(np.int8)
    clicks = np.add.reduceat(label, offsets[:-1], dtype=np.int64)
    sizes = np.diff(offsets)

    forced_click = _pick_one(rng, probability, offsets)
    forced_skip = _pick_one(rng, 1.0 - probability, offsets)
    label[forced_click[clicks == 0]] = 1
    label[forced_skip[clicks == sizes]] = 0
    return label
