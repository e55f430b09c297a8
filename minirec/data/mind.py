"""Read MIND's news.tsv and behaviors.tsv into plain Python and NumPy.

The files are tab-separated without a header. They are read line by line with quoting off, so a
title that begins with ``"`` is kept verbatim and the number of rows equals the number of lines.
Only ``\\n`` ends a line (a trailing ``\\r`` is dropped), and blank lines at the end of a file are
ignored. Every malformed line raises :class:`MindFormatError` with the file, the 1-based line
number, the field and what was expected. What is skipped on purpose is counted in a
:class:`~minirec.data.report.ReadReport`. :mod:`minirec.data.entity_vectors` reads
entity_embedding.vec with the same rules.
"""

from __future__ import annotations

import gc
import json
import logging
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from minirec.data.report import ReadReport

logger = logging.getLogger(__name__)

NEWS_FIELDS = (
    "NewsID", "Category", "SubCategory", "Title", "Abstract", "URL", "TitleEntities", "AbstractEntities",
)
BEHAVIORS_FIELDS = ("ImpressionID", "UserID", "Time", "History", "Impressions")
TIME_FORMAT = "%m/%d/%Y %I:%M:%S %p"

_FIX_LINE = "Fix the line or remove it."
_SHOWN_CHARS = 80
_UTF8_BOM = b"\xef\xbb\xbf"
# A whole labelled Impressions field, checked once per line because a regex per candidate is too slow.
_LABELLED_IMPRESSIONS = re.compile(r"\S+-[01](?: \S+-[01])*")
_LABEL_SUFFIX = re.compile(r"-\d+(?= |$)")


class MindFormatError(ValueError):
    """Malformed line in a MIND file.

    Attributes
    ----------
    path : str
        File as given to the reader.
    line : int
        1-based line number.
    field : str or None
        MIND field name (``"Impressions"``) or ``"column 7"``, or None when the whole line is wrong.
    expected : str
        What the field or line should contain.
    got : str, int or None
        The offending value (shown quoted when it is text).
    """

    def __init__(
        self,
        path: str | Path,
        line: int,
        field: str | None,
        expected: str,
        got: str | int | None = None,
        hint: str = _FIX_LINE,
    ) -> None:
        self.path = str(path)
        self.line = line
        self.field = field
        self.expected = expected
        self.got = got
        self.hint = hint
        super().__init__(self._format())

    def _format(self) -> str:
        where = f"{self.path}:{self.line}: "
        if self.field is not None:
            label = self.field if self.field.startswith("column ") else f"field {self.field}"
            where += f"{label}: "
        message = f"{where}expected {self.expected}"
        if isinstance(self.got, str):
            message += f", got {_quote(self.got)}"
        elif self.got is not None:
            message += f", got {self.got}"
        return f"{message}. {self.hint}"


def _quote(text: str) -> str:
    if len(text) > _SHOWN_CHARS:
        text = text[: _SHOWN_CHARS - 3] + "..."
    return f'"{text}"'


@contextmanager
def _garbage_collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector, which otherwise rescans the growing lists of lists
    again and again while a large file is read.

    On a synthetic behaviors.tsv of 160,000 impressions (2-core Xeon), reading took 3.5 s with the
    collector running and 2.4 s with it paused.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def read_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, text)`` for each non-blank line of a UTF-8 file.

    A blank line followed by data raises, because it usually means a broken write. Decoding line
    by line lets a bad byte be reported with its line number.
    """
    first_blank = None
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if number == 1 and raw.startswith(_UTF8_BOM):
                raw = raw[len(_UTF8_BOM):]
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise MindFormatError(
                    path, number, None, "UTF-8 text", f"byte 0x{raw[error.start]:02x} at offset {error.start}",
                    hint="Re-encode the file as UTF-8.",
                ) from None
            text = text.rstrip("\n")
            if text.endswith("\r"):
                text = text[:-1]
            if not text.strip():
                if first_blank is None:
                    first_blank = number
                continue
            if first_blank is not None:
                raise MindFormatError(
                    path, first_blank, None, "a data row, not a blank line", hint="Remove the blank line.",
                )
            yield number, text


# ---------------------------------------------------------------------------------------------- news


@dataclass
class News:
    """Columns of news.tsv, one list entry per row in file order.

    Empty or missing text is the empty string. Entity lists contain WikidataIds in order of first
    appearance, de-duplicated within each field. URL is not kept.
    """

    path: Path
    ids: list[str]
    category: list[str]
    subcategory: list[str]
    title: list[str]
    abstract: list[str]
    title_entities: list[list[str]]
    abstract_entities: list[list[str]]

    def __len__(self) -> int:
        return len(self.ids)

    def index(self) -> dict[str, int]:
        """Map each news id to its row number."""
        return {news_id: row for row, news_id in enumerate(self.ids)}


@_garbage_collector_paused()
def read_news(path: str | Path, report: ReadReport | None = None) -> News:
    """Read a MIND news.tsv.

    Parameters
    ----------
    path : str or Path
        news.tsv with 8 tab-separated fields per row. A row of 7 fields is accepted, and counted, as a
        row whose empty AbstractEntities field was stripped with the trailing tab, unless its URL column
        contains an entity list (then a field before URL is missing, which is an error).
    report : ReadReport, optional
        Receives the count of entity objects without a WikidataId, which are skipped, and of rows of 7 fields.

    Returns
    -------
    News

    Raises
    ------
    MindFormatError
        On a wrong field count, an empty or duplicate news id, or entities that are not a JSON list of objects.
    """
    report = report if report is not None else ReadReport()
    columns: dict[str, list] = {name: [] for name in NEWS_FIELDS if name != "URL"}
    first_line_of: dict[str, int] = {}

    for number, text in read_lines(path):
        fields = text.split("\t")
        if len(fields) == len(NEWS_FIELDS) - 1:
            # Only the last field (AbstractEntities) may be missing. If a field before URL is missing
            # instead, the TitleEntities list sits where URL belongs.
            if fields[5].lstrip().startswith("["):
                raise MindFormatError(
                    path, number, None,
                    f"{len(NEWS_FIELDS)} tab-separated fields ({', '.join(NEWS_FIELDS)}); this row has 7 and an "
                    "entity list in the URL column, so a field before URL is missing", len(fields),
                )
            fields.append("")
            report.add("news_row_with_7_fields")
        if len(fields) != len(NEWS_FIELDS):
            raise MindFormatError(
                path, number, None, f"{len(NEWS_FIELDS)} tab-separated fields ({', '.join(NEWS_FIELDS)})", len(fields),
            )

        news_id = fields[0]
        if not news_id.strip():
            raise MindFormatError(path, number, "NewsID", "a news id such as N55528", news_id)
        if news_id in first_line_of:
            raise MindFormatError(
                path, number, "NewsID", f"a news id not used before, but line {first_line_of[news_id]} has the same id",
                news_id, hint="Remove one of the two rows.",
            )
        first_line_of[news_id] = number

        columns["NewsID"].append(news_id)
        for name, value in zip(NEWS_FIELDS[1:5], fields[1:5]):
            columns[name].append(value)
        for name, value in zip(NEWS_FIELDS[6:], fields[6:]):
            columns[name].append(_parse_entities(value, path, number, name, report))

    logger.info("read %d news from %s", len(first_line_of), path)
    return News(
        path=Path(path),
        ids=columns["NewsID"],
        category=columns["Category"],
        subcategory=columns["SubCategory"],
        title=columns["Title"],
        abstract=columns["Abstract"],
        title_entities=columns["TitleEntities"],
        abstract_entities=columns["AbstractEntities"],
    )


def _parse_entities(text: str, path: str | Path, line: int, field: str, report: ReadReport) -> list[str]:
    """Return the distinct WikidataIds of one entity field in order of first appearance."""
    if text == "" or text == "[]":
        return []
    expected = 'a JSON list of entity objects such as [{"WikidataId": "Q80976", ...}] or []'
    try:
        items = json.loads(text)
    except json.JSONDecodeError as error:
        raise MindFormatError(
            path, line, field, f"{expected} (invalid JSON at character {error.pos}: {error.msg})", text,
        ) from None
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise MindFormatError(path, line, field, expected, text)

    wikidata_ids: list[str] = []
    for item in items:
        wikidata_id = item.get("WikidataId")
        if not isinstance(wikidata_id, str) or not wikidata_id:
            report.add("entity_without_wikidata_id")
            continue
        if wikidata_id not in wikidata_ids:
            wikidata_ids.append(wikidata_id)
    return wikidata_ids


# ----------------------------------------------------------------------------------------- behaviors


@dataclass
class Behaviors:
    """Columns of behaviors.tsv, one entry per impression in file order.

    ``times`` are Unix seconds (float64) with the file's clock time read as UTC. Histories keep
    MIND's order, oldest click first. ``labels[i][j]`` is 1 when candidate ``j`` of impression ``i``
    was clicked. ``labels`` is None for an unlabelled file such as MIND's test split.
    """

    path: Path
    impression_ids: list[str]
    user_ids: list[str]
    times: np.ndarray
    histories: list[list[str]]
    candidates: list[list[str]]
    labels: list[np.ndarray] | None

    def __len__(self) -> int:
        return len(self.impression_ids)

    @property
    def has_labels(self) -> bool:
        """Whether every candidate carries a click label."""
        return self.labels is not None

    def subset(self, indices: Sequence[int] | np.ndarray) -> Behaviors:
        """Select impressions by position, in the order of ``indices``."""
        positions = [int(i) for i in np.asarray(indices, dtype=np.int64).ravel()]
        return Behaviors(
            path=self.path,
            impression_ids=[self.impression_ids[i] for i in positions],
            user_ids=[self.user_ids[i] for i in positions],
            times=self.times[np.asarray(positions, dtype=np.int64)],
            histories=[self.histories[i] for i in positions],
            candidates=[self.candidates[i] for i in positions],
            labels=None if self.labels is None else [self.labels[i] for i in positions],
        )


@_garbage_collector_paused()
def read_behaviors(path: str | Path, report: ReadReport | None = None) -> Behaviors:
    """Read a MIND behaviors.tsv, labelled (``N123-1``) or unlabelled (``N123``).

    Parameters
    ----------
    path : str or Path
        behaviors.tsv with 5 tab-separated fields: ImpressionID, UserID, Time, History, Impressions.
    report : ReadReport, optional
        Accepted for symmetry with the other readers. A well-formed behaviors file skips nothing.

    Returns
    -------
    Behaviors

    Raises
    ------
    MindFormatError
        On a wrong field count, an empty or duplicate impression id, an empty user id, or a time
        not in the format ``%m/%d/%Y %I:%M:%S %p``. Also on an impression without candidates, a
        label other than 0 or 1, or a file that mixes labelled and unlabelled lines.
    """
    impression_ids: list[str] = []
    user_ids: list[str] = []
    times: list[float] = []
    histories: list[list[str]] = []
    candidates: list[list[str]] = []
    labels: list[np.ndarray] = []
    first_line_of: dict[str, int] = {}
    day_seconds: dict[str, float] = {}
    # Set by the first data line: every later line must agree.
    labelled: bool | None = None
    labelled_line = 0

    for number, text in read_lines(path):
        fields = text.split("\t")
        if len(fields) != len(BEHAVIORS_FIELDS):
            raise MindFormatError(
                path, number, None,
                f"{len(BEHAVIORS_FIELDS)} tab-separated fields ({', '.join(BEHAVIORS_FIELDS)})", len(fields),
            )
        impression_id, user_id, time_text, history_text, impressions_text = fields

        if not impression_id.strip():
            raise MindFormatError(path, number, "ImpressionID", "an impression id such as 1", impression_id)
        if impression_id in first_line_of:
            raise MindFormatError(
                path, number, "ImpressionID",
                f"an impression id not used before, but line {first_line_of[impression_id]} has the same id",
                impression_id, hint="Remove one of the two rows.",
            )
        first_line_of[impression_id] = number
        if not user_id.strip():
            raise MindFormatError(path, number, "UserID", "a user id such as U13740", user_id)

        tokens = impressions_text.split()
        if not tokens:
            raise MindFormatError(
                path, number, "Impressions", 'at least one candidate such as "N55689-1"', impressions_text,
            )
        line_labelled = _LABEL_SUFFIX.search(impressions_text) is not None
        if labelled is None:
            labelled, labelled_line = line_labelled, number

        if labelled:
            if not line_labelled:
                raise MindFormatError(
                    path, number, "Impressions",
                    f'"NewsID-0" or "NewsID-1" on every candidate, because line {labelled_line} is labelled',
                    tokens[0],
                )
            if _LABELLED_IMPRESSIONS.fullmatch(impressions_text) is None:
                _check_labelled_tokens(tokens, path, number)
            candidates.append([token[:-2] for token in tokens])
            label_chars = "".join([token[-1] for token in tokens]).encode("ascii")
            labels.append(np.frombuffer(label_chars, dtype=np.int8) - ord("0"))
        else:
            if line_labelled:
                suffixed = next(token for token in tokens if _LABEL_SUFFIX.search(token))
                raise MindFormatError(
                    path, number, "Impressions",
                    f"candidates without a label suffix, because line {labelled_line} has none "
                    "(a file is either labelled or unlabelled like MIND's test split)",
                    suffixed,
                )
            candidates.append(tokens)

        times.append(_parse_time(time_text, day_seconds, path, number))
        impression_ids.append(impression_id)
        user_ids.append(user_id)
        histories.append(history_text.split())

    # An empty file counts as labelled, so that it can be scored (to nothing).
    has_labels = labelled is not False
    logger.info("read %d impressions from %s (%s)", len(impression_ids), path,
                "labelled" if has_labels else "unlabelled")
    return Behaviors(
        path=Path(path),
        impression_ids=impression_ids,
        user_ids=user_ids,
        times=np.asarray(times, dtype=np.float64),
        histories=histories,
        candidates=candidates,
        labels=labels if has_labels else None,
    )


def _check_labelled_tokens(tokens: list[str], path: str | Path, line: int) -> None:
    """Raise on the first candidate that is not ``NewsID-0`` or ``NewsID-1``.

    Only reached when the fast whole-line check failed, which also happens for a line separated by
    several spaces. Such a line passes here.
    """
    for token in tokens:
        if len(token) < 3 or token[-2] != "-" or token[-1] not in "01":
            raise MindFormatError(path, line, "Impressions", '"NewsID-0" or "NewsID-1"', token)


def _parse_time(text: str, day_seconds: dict[str, float], path: str | Path, line: int) -> float:
    """Convert ``11/11/2019 9:05:58 AM`` to Unix seconds, reading the clock time as UTC.

    ``datetime.strptime`` takes about 6 microseconds per call (Python 3.11, 2-core Xeon), too slow
    for millions of impressions. So only the date goes through it, cached in ``day_seconds``, and the
    clock time is parsed here.
    """
    expected = f'a time such as "11/11/2019 9:05:58 AM" (format {TIME_FORMAT})'
    date_text, _, rest = text.partition(" ")
    clock_text, _, meridiem = rest.partition(" ")
    day = day_seconds.get(date_text)
    try:
        if day is None:
            day = datetime.strptime(date_text, "%m/%d/%Y").replace(tzinfo=timezone.utc).timestamp()
            day_seconds[date_text] = day
        hour_text, minute_text, second_text = clock_text.split(":")
        hour, minute, second = int(hour_text), int(minute_text), int(second_text)
    except ValueError:
        raise MindFormatError(path, line, "Time", expected, text) from None

    meridiem = meridiem.upper()
    if not (1 <= hour <= 12 and 0 <= minute <= 59 and 0 <= second <= 59 and meridiem in ("AM", "PM")):
        raise MindFormatError(path, line, "Time", expected, text)
    # 12 AM is midnight and 12 PM is noon.
    hour_of_day = hour % 12 + (12 if meridiem == "PM" else 0)
    return day + 3600 * hour_of_day + 60 * minute + second
