"""Generate the words, category names and entity labels that synthetic news are written with.

Content words are pronounceable tokens built from syllables ("drelo", "strainix"), so
titles read like text without carrying any real-world meaning. Common English words
are mixed in as function words that every topic shares.
"""

from __future__ import annotations

import numpy as np

# Words that appear in every topic, so they carry no topic signal.
FUNCTION_WORDS = (
    "the", "a", "of", "to", "in", "and", "for", "on", "with", "at", "after", "over",
    "from", "new", "how", "why", "what", "this", "is", "are", "as", "by", "about",
    "more", "first", "big", "last", "top", "up", "out", "you", "your", "its", "their",
    "will", "says", "could", "best", "all", "one", "two", "three", "day", "week",
    "year", "report", "photos", "time", "people", "world", "season", "home", "plan",
    "back", "against", "before", "during", "still", "just", "now", "may", "can", "get",
    "make", "show", "see", "look", "know", "here", "today", "gets", "takes", "set",
    "wins", "calls", "finds", "faces", "into", "than", "near", "under", "amid",
)

# MIND's top-level categories with their approximate share of news in MIND-small.
CATEGORY_WEIGHTS = {
    "news": 0.27, "sports": 0.27, "lifestyle": 0.07, "finance": 0.06,
    "foodanddrink": 0.06, "health": 0.05, "autos": 0.04, "travel": 0.04,
    "weather": 0.04, "video": 0.04, "tv": 0.02, "music": 0.02, "movies": 0.015,
    "entertainment": 0.015, "kids": 0.005,
}

ORGANIZATION_SUFFIXES = (
    "Group", "United", "Council", "Institute", "Motors", "Records", "Foundation",
    "Club", "Party", "Agency", "Studios", "Bank", "University", "Company", "Network",
)
PLACE_SUFFIXES = (
    "City", "County", "Valley", "Bay", "Island", "River", "Heights", "Springs",
    "Lake", "Park", "Beach", "Falls",
)
OTHER_SUFFIXES = (
    "Award", "Festival", "Act", "Cup", "Series", "Games", "Prize", "Summit", "Trial",
    "Open", "Show", "Tour",
)
# MIND entity types: person, organization, geographic place, and a few of the rarer ones.
PERSON, ORGANIZATION, PLACE = "P", "O", "G"
OTHER_TYPES = ("C", "U", "N", "E", "F", "M", "S", "W")
TYPE_SHARES = {PERSON: 0.24, ORGANIZATION: 0.28, PLACE: 0.24, "other": 0.24}

# Shares of words with one, two and three syllables.
SYLLABLE_COUNT_SHARES = np.array([0.2, 0.55, 0.25])
_ONSETS = (
    "b", "br", "c", "ch", "cl", "d", "dr", "f", "fr", "g", "gr", "h", "j", "k", "l",
    "m", "n", "p", "pl", "pr", "r", "s", "sh", "sl", "st", "t", "th", "tr", "v", "w", "z",
)
# Single vowels appear twice so that they are drawn more often than vowel pairs.
_VOWELS = ("a", "e", "i", "o", "u", "a", "e", "i", "o", "ai", "ea", "ee", "oa", "ou")
_CODAS = ("", "", "", "n", "r", "s", "l", "m", "t", "nd", "rk", "st", "x")


def generate_words(
    rng: np.random.Generator, count: int, exclude: set[str] | frozenset[str] = frozenset()
) -> list[str]:
    """Generate ``count`` distinct lowercase pronounceable words of one to three syllables.

    Words in ``exclude`` are never returned, so separate calls can build disjoint lists.
    """
    words: dict[str, None] = {}
    while len(words) < count:
        batch = 2 * (count - len(words)) + 16
        syllables = rng.choice(3, size=batch, p=SYLLABLE_COUNT_SHARES) + 1
        onsets = rng.integers(0, len(_ONSETS), size=(batch, 3))
        vowels = rng.integers(0, len(_VOWELS), size=(batch, 3))
        codas = rng.integers(0, len(_CODAS), size=batch)
        for i in range(batch):
            word = "".join(
                _ONSETS[onsets[i, j]] + _VOWELS[vowels[i, j]] for j in range(syllables[i])
            ) + _CODAS[codas[i]]
            if word not in exclude and word not in words:
                words[word] = None
                if len(words) == count:
                    break
    return list(words)


def zipf_cumulative(size: int, exponent: float = 0.9) -> np.ndarray:
    """Return the cumulative Zipf weights ``(r + 1) ** -exponent`` over ranks 0..size-1, ending at 1."""
    weights = np.arange(1, size + 1, dtype=np.float64) ** -exponent
    cumulative = np.cumsum(weights)
    return cumulative / cumulative[-1]


def sample_ranks(rng: np.random.Generator, cumulative: np.ndarray, count: int) -> np.ndarray:
    """Draw ``count`` ranks from the distribution whose cumulative weights are ``cumulative``."""
    ranks = np.searchsorted(cumulative, rng.random(count), side="right")
    return np.minimum(ranks, len(cumulative) - 1)


def generate_entity_labels(
    rng: np.random.Generator, count: int, names: list[str]
) -> tuple[list[str], list[str], list[str]]:
    """Generate ``count`` distinct entity labels with their MIND type and short surface form.

    A person is "First Last" and may be mentioned by the last name alone. Organizations,
    places and other entities are a name followed by a suffix such as "Group" or "Valley"
    and are always mentioned in full.

    Returns
    -------
    labels, types, short_forms : list of str
        ``short_forms[i]`` is the label itself except for persons.
    """
    names = [name.capitalize() for name in names]
    kinds = list(TYPE_SHARES)
    kind_of = rng.choice(len(kinds), size=count, p=np.array(list(TYPE_SHARES.values())))
    labels = [""] * count
    types = [""] * count
    short_forms = [""] * count

    n_names = len(names)
    suffixes = {ORGANIZATION: ORGANIZATION_SUFFIXES, PLACE: PLACE_SUFFIXES, "other": OTHER_SUFFIXES}
    for k, kind in enumerate(kinds):
        slots = np.flatnonzero(kind_of == k)
        second = names if kind == PERSON else suffixes[kind]
        space = n_names * len(second)
        if len(slots) > space:
            raise ValueError(
                f"cannot make {len(slots)} distinct {kind} entity labels from {n_names} names; "
                "raise name_parts in the ScaleSpec"
            )
        # Sampling pair codes without replacement keeps labels distinct.
        codes = rng.choice(space, size=len(slots), replace=False)
        first_index, second_index = np.divmod(codes, len(second))
        other_types = rng.integers(0, len(OTHER_TYPES), size=len(slots))
        for j, slot in enumerate(slots):
            first, last = names[first_index[j]], second[second_index[j]]
            labels[slot] = f"{first} {last}"
            if kind == PERSON:
                types[slot] = PERSON
                short_forms[slot] = last
            else:
                types[slot] = OTHER_TYPES[other_types[j]] if kind == "other" else kind
                short_forms[slot] = labels[slot]
    return labels, types, short_forms
