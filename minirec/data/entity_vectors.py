"""Read MIND's entity_embedding.vec: a WikidataId, then tab-separated numbers, per line.

Lines are read as in :mod:`minirec.data.mind`, and a malformed line raises its
:class:`~minirec.data.mind.MindFormatError` with the file, the line and the column.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from minirec.data.mind import MindFormatError, read_lines
from minirec.data.report import ReadReport

logger = logging.getLogger(__name__)

_FLOAT32_MAX = float(np.finfo(np.float32).max)


def read_entity_vectors(path: str | Path, report: ReadReport | None = None) -> tuple[list[str], np.ndarray]:
    """Read an entity_embedding.vec: a WikidataId, then tab-separated numbers, per line.

    Parameters
    ----------
    path : str or Path
        Vector file. Trailing tabs or spaces on a line are ignored.
    report : ReadReport, optional
        Receives the count of duplicate WikidataIds. The first row of each id is kept.

    Returns
    -------
    ids : list of str
        WikidataIds in file order.
    vectors : np.ndarray
        float32 array of shape (len(ids), d), or (0, 0) for an empty file.

    Raises
    ------
    MindFormatError
        On a row without numbers, a value that is not a finite float32 number (naming its 1-based column,
        the id being column 1), or a row whose length differs from the first row's.
    """
    report = report if report is not None else ReadReport()
    ids: list[str] = []
    rows: list[np.ndarray] = []
    seen: set[str] = set()
    dimension = 0
    first_line = 0

    for number, text in read_lines(path):
        parts = text.split()
        if len(parts) < 2:
            raise MindFormatError(path, number, None, "a WikidataId followed by tab-separated numbers", text)
        try:
            # float64 first, so that a value beyond float32's range is caught below without a warning.
            values = np.array(parts[1:], dtype=np.float64)
        except ValueError:
            values = None
        if values is not None and np.isfinite(values).all() and np.abs(values).max() <= _FLOAT32_MAX:
            vector = values.astype(np.float32)
        else:
            vector = None
        if vector is None:
            column = _first_bad_column(parts)
            raise MindFormatError(
                path, number, f"column {column}", "a finite number within float32 range", parts[column - 1],
            )

        if first_line == 0:
            dimension, first_line = vector.size, number
        elif vector.size != dimension:
            raise MindFormatError(
                path, number, None, f"{dimension} numbers after the id, as on line {first_line}", vector.size,
            )

        wikidata_id = parts[0]
        if wikidata_id in seen:
            report.add("duplicate_entity_vector")
            continue
        seen.add(wikidata_id)
        ids.append(wikidata_id)
        rows.append(vector)

    vectors = np.stack(rows) if rows else np.zeros((0, 0), dtype=np.float32)
    logger.info("read %d entity vectors of dimension %d from %s", len(ids), dimension, path)
    return ids, vectors


def _first_bad_column(parts: list[str]) -> int:
    for column, value in enumerate(parts[1:], start=2):
        try:
            number = float(value)
        except ValueError:
            return column
        if not np.isfinite(number) or abs(number) > _FLOAT32_MAX:
            return column
    raise AssertionError("no invalid value found in a row that failed to parse")
