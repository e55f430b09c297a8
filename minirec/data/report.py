"""Count what the readers and loaders skipped, mapped to unknown or truncated.

Every reader takes an optional :class:`ReadReport` and adds to it instead of dropping data silently.
A caller can then log one summary, for example ``12 history ids without a row in news.tsv
(ID-only news)``.
"""

from __future__ import annotations

import logging

#: Short descriptions of the known keys. ``ReadReport.lines()`` prints the count before the description.
DESCRIPTIONS: dict[str, str] = {
    "blank_line": "blank lines (skipped)",
    "entity_without_wikidata_id": "entity objects without a WikidataId (skipped)",
    "news_row_with_7_fields": "news.tsv rows of 7 fields, read as rows whose empty last field was stripped",
    "duplicate_entity_vector": "duplicate WikidataIds in entity_embedding.vec (first row kept)",
    "history_news_without_row": "history ids without a row in news.tsv (ID-only news)",
    "candidate_news_without_row": "candidate ids without a row in news.tsv (ID-only news)",
    "unknown_news": "news ids not in the catalogue (dropped from histories, candidates scored with row 0)",
    "unknown_user": "impressions of users not seen in training (scored with the unknown-user row)",
    "history_truncated": "histories cut to the most recent clicks",
    "title_truncated": "titles cut to the maximum number of tokens",
    "news_without_text_vector": "news without a text vector (zero vector used)",
    "entity_without_vector": "entities without a vector in entity_embedding.vec (skipped)",
    "impression_without_click_and_non_click": "impressions without both a click and a non-click (not scored)",
    "prediction_without_truth": "prediction lines whose impression id is not in the truth file (ignored)",
}


class ReadReport:
    """Counter of skipped, unknown and truncated items, keyed by a short name.

    Keys listed in :data:`DESCRIPTIONS` print with their description. Any other key is accepted and
    prints with its underscores replaced by spaces, so a new reader can count something before its
    description is registered.

    Examples
    --------
    >>> report = ReadReport()
    >>> report.add("history_news_without_row", 12)
    >>> report.lines()
    ['12 history ids without a row in news.tsv (ID-only news)']
    """

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}

    def add(self, key: str, n: int = 1) -> None:
        """Add ``n`` to the count of ``key``. Adding zero still records the key."""
        if n < 0:
            raise ValueError(f"count for {key!r} must be >= 0, got {n}")
        self._counts[key] = self._counts.get(key, 0) + int(n)

    @property
    def counts(self) -> dict[str, int]:
        """Copy of the counts, keys in the order they were first added."""
        return dict(self._counts)

    def merge(self, other: ReadReport) -> ReadReport:
        """Add every count of ``other`` to this report and return this report."""
        for key, n in other._counts.items():
            self.add(key, n)
        return self

    def lines(self) -> list[str]:
        """Format each non-zero count as one sentence fragment, in insertion order."""
        result = []
        for key, n in self._counts.items():
            if n == 0:
                continue
            description = DESCRIPTIONS.get(key, key.replace("_", " "))
            result.append(f"{n:,} {description}")
        return result

    def log(self, logger: logging.Logger, level: int = logging.INFO) -> None:
        """Write each line of :meth:`lines` to ``logger``."""
        for line in self.lines():
            logger.log(level, line)

    def __repr__(self) -> str:
        return f"ReadReport({self._counts!r})"
