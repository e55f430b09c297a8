"""Format generated news, impressions and entity vectors as MIND files, written atomically."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import numpy as np

from minirec.synth.catalogue import Entities, NewsCatalogue, Texts, Topics
from minirec.synth.scales import TRAIN_START

URL_PREFIX = "https://news.example.com/minirec-synth/"


@contextlib.contextmanager
def atomic_writer(path: Path) -> Iterator[TextIO]:
    """Open a temporary file next to ``path`` for writing and move it over ``path`` on success.

    Readers never see a half-written file: on an exception the temporary file is removed
    and ``path`` keeps its old content.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    # A plain open() gives the file the usual permissions under the process umask.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        # newline="" keeps "\n" line ends on every platform, as in MIND.
        with open(temporary, "w", encoding="utf-8", newline="") as stream:
            yield stream
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def format_times(seconds: np.ndarray) -> list[str]:
    """Format times like MIND: ``11/9/2019 8:05:02 AM``, without zero padding of month, day and hour."""
    stamps = TRAIN_START + seconds.astype("timedelta64[s]")
    days = stamps.astype("datetime64[D]")
    months = days.astype("datetime64[M]")
    years = months.astype("datetime64[Y]")
    month = (months - years.astype("datetime64[M]")).astype(np.int64) + 1
    day = (days - months.astype("datetime64[D]")).astype(np.int64) + 1
    year = years.astype(np.int64) + 1970
    second_of_day = (stamps - days.astype("datetime64[s]")).astype(np.int64)
    hour, rest = np.divmod(second_of_day, 3600)
    minute, second = np.divmod(rest, 60)
    hour12 = (hour + 11) % 12 + 1
    return [
        f"{mo}/{d}/{y} {h}:{mi:02d}:{s:02d} {'AM' if h24 < 12 else 'PM'}"
        for mo, d, y, h, mi, s, h24 in zip(
            month.tolist(), day.tolist(), year.tolist(), hour12.tolist(),
            minute.tolist(), second.tolist(), hour.tolist(),
        )
    ]


def format_impression(news_ids: np.ndarray, labels: np.ndarray) -> str:
    """Join candidates as ``N12-1 N34-0``."""
    return " ".join(f"{news}-{label}" for news, label in zip(news_ids.tolist(), labels.tolist()))


def _text_and_entities(catalogue: NewsCatalogue, entities: Entities, texts: Texts, news: int, sentence: bool) -> tuple[str, str]:
    start, stop = texts.offsets[news], texts.offsets[news + 1]
    if start == stop:
        return "", "[]"
    tokens = texts.tokens[start:stop]
    text = " ".join(catalogue.token_strings[tokens])
    text = text[0].upper() + text[1:] + ("." if sentence else "")

    found: dict[int, dict] = {}
    token_entity = catalogue.token_entity[tokens]
    for position in np.flatnonzero(token_entity >= 0).tolist():
        entity = int(token_entity[position])
        surface = catalogue.token_strings[tokens[position]]
        mention = found.get(entity)
        if mention is None:
            found[entity] = {
                "Label": entities.labels[entity],
                "Type": entities.types[entity],
                "WikidataId": entities.wikidata_ids[entity],
                "Confidence": float(texts.confidence[start + position]),
                "OccurrenceOffsets": [int(texts.char_offsets[start + position])],
                "SurfaceForms": [surface],
            }
        else:
            mention["OccurrenceOffsets"].append(int(texts.char_offsets[start + position]))
            mention["SurfaceForms"].append(surface)
    return text, json.dumps(list(found.values()))


def write_news(path: Path, catalogue: NewsCatalogue, topics: Topics, entities: Entities, news: np.ndarray) -> None:
    """Write the rows of ``news`` (catalogue indices) as a MIND news.tsv, sorted by news id."""
    news = news[np.argsort(catalogue.id_numbers[news], kind="stable")]
    with atomic_writer(path) as stream:
        lines = []
        for n in news.tolist():
            topic = catalogue.topic[n]
            title, title_entities = _text_and_entities(catalogue, entities, catalogue.title, n, sentence=False)
            abstract, abstract_entities = _text_and_entities(catalogue, entities, catalogue.abstract, n, sentence=True)
            news_id = catalogue.ids[n]
            lines.append(
                f"{news_id}\t{topics.category_names[topics.category[topic]]}\t"
                f"{topics.subcategory_names[catalogue.subcategory[n]]}\t{title}\t{abstract}\t"
                f"{URL_PREFIX}{news_id}.html\t{title_entities}\t{abstract_entities}\n"
            )
            if len(lines) >= 10_000:
                stream.write("".join(lines))
                lines = []
        stream.write("".join(lines))


def entities_of_news(catalogue: NewsCatalogue, news: np.ndarray) -> np.ndarray:
    """Return the sorted distinct entity indices mentioned in the titles and abstracts of ``news``."""
    found = []
    for texts in (catalogue.title, catalogue.abstract):
        lengths = texts.offsets[news + 1] - texts.offsets[news]
        starts = np.repeat(texts.offsets[news] - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
        positions = starts + np.arange(lengths.sum())
        entity = catalogue.token_entity[texts.tokens[positions]]
        found.append(entity[entity >= 0])
    mentioned = np.concatenate(found)
    return np.flatnonzero(np.bincount(mentioned, minlength=1))


def write_entity_vectors(path: Path, entities: Entities, selected: np.ndarray) -> None:
    """Write ``WikidataId<TAB>100 floats`` rows for the ``selected`` entities."""
    row_format = "%s" + "\t%.6f" * entities.embedding.shape[1] + "\n"
    with atomic_writer(path) as stream:
        lines = []
        for e in selected.tolist():
            lines.append(row_format % (entities.wikidata_ids[e], *entities.embedding[e].tolist()))
            if len(lines) >= 10_000:
                stream.write("".join(lines))
                lines = []
        stream.write("".join(lines))
