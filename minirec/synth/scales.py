"""Sizes of the generated datasets, the planted click model's constants and the calendar.

All times inside the generator are integer seconds relative to ``TRAIN_START``
(midnight, 9 November 2019), the first day of MIND's training week.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

DAY = 86_400
HOUR = 3_600

TRAIN_START = np.datetime64("2019-11-09T00:00:00", "s")
TRAIN_DAYS = 6
DEV_START = TRAIN_DAYS * DAY
DEV_END = DEV_START + DAY
# MIND builds user histories from the four weeks before the training week.
ARCHIVE_START = -28 * DAY
# News published in the last two days before TRAIN_START can be both clicked in a
# history and shown as candidates on the first training day.
LIVE_START = -2 * DAY

# Relative number of impressions per hour of day (0-23), shaped like the hour-of-day
# histogram of MIND-small training impressions: quiet at night, peak in the morning.
HOUR_WEIGHTS = np.array(
    [0.4, 0.7, 0.8, 1.1, 2.4, 3.5, 4.8, 5.2, 5.4, 4.5, 4.9, 5.3,
     4.8, 4.3, 3.3, 2.8, 2.6, 2.4, 1.9, 1.6, 1.3, 1.1, 0.7, 0.5]
)
# Relative number of training impressions per day, 9 to 14 November 2019. The first two
# days are a weekend and carry about half the traffic of a weekday, as in MIND-small.
TRAIN_DAY_WEIGHTS = np.array([0.45, 0.48, 1.15, 1.07, 1.01, 0.96])


@dataclass(frozen=True)
class ClickModel:
    """Constants of the planted click probability.

    ``p = sigmoid(a * pref_u[topic_n] + b * popularity_n + c + noise)`` with
    ``noise ~ N(0, noise_sd**2)`` drawn per shown candidate. ``exposure`` sets how
    strongly popular news are favoured when candidates are shown:
    a news is shown with weight ``exp(exposure * popularity_n)``.
    """

    a: float = 9.5
    b: float = 0.4
    c: float = -4.85
    noise_sd: float = 0.4
    exposure: float = 0.5


@dataclass(frozen=True)
class ScaleSpec:
    """Sizes and shape parameters of one generated dataset.

    Counts of news are catalogue sizes. A split's news.tsv lists only the news that its
    behaviors reference, so the written counts differ. The statistics returned by
    ``generate_mind`` report the written counts.
    """

    name: str
    n_topics: int
    # Users with at least one training impression, with at least one dev impression, and
    # with both; MIND-small's two splits each have 50,000 users and few in common.
    train_users: int
    dev_users: int
    shared_users: int
    train_impressions: int
    dev_impressions: int
    # Catalogue: published in [ARCHIVE_START, LIVE_START), in [LIVE_START, DEV_START)
    # and on the dev day.
    archive_news: int
    live_news: int
    dev_day_news: int
    # Candidates per impression: 2 + lognormal with this median and sigma, capped.
    candidates_median: float
    candidates_sigma: float
    max_candidates: int
    # History length: lognormal with this median and sigma, capped; a share is empty.
    history_median: float
    history_sigma: float
    max_history: int
    empty_history_share: float
    # Exponent of popularity in the weight of a news in histories: larger values
    # concentrate history clicks on fewer news.
    history_popularity: float
    # Dirichlet concentration summed over topics; small values give sparse preferences.
    preference_concentration: float
    topic_words: int
    general_words: int
    entities_per_topic: int
    global_entities: int
    name_parts: int
    click: ClickModel = field(default_factory=ClickModel)
    # Impressions generated and written per step; bounds memory at every scale.
    impressions_per_chunk: int = 20_000

    @property
    def n_users(self) -> int:
        """Number of distinct users over both splits."""
        return self.train_users + self.dev_users - self.shared_users


SCALES: dict[str, ScaleSpec] = {
    "demo": ScaleSpec(
        name="demo",
        n_topics=12,
        train_users=800,
        dev_users=400,
        shared_users=200,
        train_impressions=6_000,
        dev_impressions=2_000,
        archive_news=650,
        live_news=1_050,
        dev_day_news=350,
        candidates_median=16.0,
        candidates_sigma=0.6,
        max_candidates=80,
        history_median=12.0,
        history_sigma=0.9,
        max_history=120,
        empty_history_share=0.02,
        history_popularity=1.0,
        preference_concentration=1.5,
        topic_words=40,
        general_words=300,
        entities_per_topic=60,
        global_entities=20,
        name_parts=300,
        click=ClickModel(a=4.5, c=-5.5),
    ),
    # NOTE: the dev split comes out near 45,500 news, not MIND-small's 42,416, because
    # the users of each split click nearly every news of the archive in their histories.
    "small": ScaleSpec(
        name="small",
        n_topics=50,
        train_users=50_000,
        dev_users=50_000,
        shared_users=5_943,
        train_impressions=156_965,
        dev_impressions=73_152,
        archive_news=19_000,
        live_news=32_000,
        dev_day_news=11_000,
        candidates_median=22.0,
        candidates_sigma=1.0,
        max_candidates=300,
        history_median=18.0,
        history_sigma=1.1,
        max_history=560,
        empty_history_share=0.02,
        history_popularity=1.0,
        preference_concentration=2.0,
        topic_words=60,
        general_words=1_500,
        entities_per_topic=2_400,
        global_entities=200,
        name_parts=3_000,
    ),
    "large": ScaleSpec(
        name="large",
        n_topics=50,
        train_users=711_222,
        dev_users=255_990,
        shared_users=90_000,
        train_impressions=2_232_748,
        dev_impressions=376_471,
        archive_news=60_000,
        live_news=101_000,
        dev_day_news=15_000,
        candidates_median=22.0,
        candidates_sigma=1.0,
        max_candidates=300,
        history_median=18.0,
        history_sigma=1.1,
        max_history=560,
        empty_history_share=0.02,
        history_popularity=1.0,
        preference_concentration=2.0,
        topic_words=60,
        general_words=3_000,
        entities_per_topic=3_000,
        global_entities=400,
        name_parts=5_000,
    ),
}
