"""Schedule impressions in time and draw the recent news that each one shows."""

from __future__ import annotations

import numpy as np

from minirec.synth.catalogue import NewsCatalogue
from minirec.synth.scales import DAY, HOUR, HOUR_WEIGHTS, ScaleSpec
from minirec.synth.users import Users

# Age of a shown news: exponential with this mean. Ages beyond MAX_AGE are redrawn
# uniformly below it, so shown news are at most about two days old.
MEAN_AGE = 16 * HOUR
MAX_AGE = 2 * DAY
# A shown news is drawn among the WINDOW news published closest before the drawn age,
# so the pool adapts to how many news are published per hour.
WINDOW = 50
# Rounds of redrawing duplicate candidates of an impression before giving up.
MAX_REDRAWS = 50


def schedule_impressions(
    rng: np.random.Generator,
    users: Users,
    n_impressions: int,
    members: np.ndarray,
    start: int,
    day_weights: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw the user and the time of each impression of a split.

    Each user in ``members`` gets one impression (while there are enough impressions),
    and the remaining impressions go to members in proportion to their activity.
    Impressions come in random order, not sorted by time, as in MIND.

    Returns
    -------
    user : (n_impressions,) int64
    time : (n_impressions,) int64 seconds relative to TRAIN_START
    """
    guaranteed = rng.permutation(members)[:n_impressions]
    weight = users.activity[members]
    rest = rng.choice(members, size=n_impressions - len(guaranteed), p=weight / weight.sum())
    user = rng.permutation(np.concatenate([guaranteed, rest]).astype(np.int64))

    day = rng.choice(len(day_weights), size=n_impressions, p=day_weights / day_weights.sum())
    hour = rng.choice(24, size=n_impressions, p=HOUR_WEIGHTS / HOUR_WEIGHTS.sum())
    time = start + day * DAY + hour * HOUR + rng.integers(0, HOUR, n_impressions)
    return user, time.astype(np.int64)


def draw_candidate_counts(rng: np.random.Generator, spec: ScaleSpec, n: int) -> np.ndarray:
    """Draw the number of candidates per impression: 2 + lognormal, long-tailed."""
    extra = np.rint(rng.lognormal(np.log(spec.candidates_median), spec.candidates_sigma, n))
    return np.clip(2 + extra, 2, spec.max_candidates).astype(np.int64)


class CandidatePool:
    """Sampler of news shown at a given time: recent, and popular ones more often."""

    def __init__(self, catalogue: NewsCatalogue, exposure: float):
        self.order = np.argsort(catalogue.published, kind="stable")
        self.published = catalogue.published[self.order]
        weight = np.exp(exposure * catalogue.popularity[self.order])
        self.cumulative = np.concatenate([[0.0], np.cumsum(weight)])

    def sample(self, rng: np.random.Generator, time: np.ndarray) -> np.ndarray:
        """Draw one news per entry of ``time``, published before that time."""
        n = len(time)
        age = rng.exponential(MEAN_AGE, n)
        too_old = age > MAX_AGE
        age[too_old] = rng.uniform(0, MAX_AGE, int(too_old.sum()))
        centre = np.searchsorted(self.published, time - age.astype(np.int64), side="left")
        # Only news published strictly before the impression can be shown.
        limit = np.searchsorted(self.published, time, side="left")
        if np.any(limit == 0):
            raise ValueError("an impression precedes every news in the catalogue")
        high = np.minimum(centre + WINDOW // 2, limit)
        low = np.maximum(high - WINDOW, 0)
        lower = self.cumulative[low]
        upper = self.cumulative[high]
        index = np.searchsorted(self.cumulative, lower + rng.random(n) * (upper - lower), side="right") - 1
        return self.order[np.clip(index, low, high - 1)]


def draw_candidates(
    rng: np.random.Generator, pool: CandidatePool, time: np.ndarray, counts: np.ndarray, n_news: int
) -> np.ndarray:
    """Draw ``counts[i]`` distinct news for impression ``i`` shown at ``time[i]``, concatenated."""
    owner = np.repeat(np.arange(len(counts)), counts)
    slot_time = time[owner]
    news = pool.sample(rng, slot_time)
    for _ in range(MAX_REDRAWS):
        key = owner * n_news + news
        order = np.argsort(key, kind="stable")
        duplicate = np.zeros(len(key), dtype=bool)
        duplicate[order[1:]] = key[order[1:]] == key[order[:-1]]
        if not duplicate.any():
            return news
        news[duplicate] = pool.sample(rng, slot_time[duplicate])
    raise RuntimeError(
        f"impressions still show the same news twice after {MAX_REDRAWS} redraws; "
        "the catalogue has too few recent news for the candidate counts of this scale"
    )
