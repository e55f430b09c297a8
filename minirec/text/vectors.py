"""Load precomputed news text vectors (.npy matrix plus ids file) and join them by news id."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

# Names tried next to `<stem>.npy` when no ids file is given, in this order.
_IDS_SUFFIXES = ("_ids.tsv", "_ids.txt", ".ids.txt")
_TSV_HEADER = ("row", "news_id")


@dataclass
class TextVectors:
    """Text vectors with the news id of each row.

    Attributes
    ----------
    ids : list of str
        News id of each matrix row.
    matrix : np.ndarray
        float32 of shape (n, d).
    source : str
        Path of the .npy file the vectors came from.
    """

    ids: list[str]
    matrix: np.ndarray
    source: str


def find_ids_file(npy_path: str | os.PathLike) -> Path:
    """Locate the ids file that belongs to ``npy_path``.

    Tries ``<stem>_ids.tsv``, ``<stem>_ids.txt`` and ``<stem>.ids.txt`` in the folder
    of the .npy file.

    Raises
    ------
    FileNotFoundError
        If none of them exists.
    """
    npy_path = Path(npy_path)
    candidates = [npy_path.with_name(npy_path.stem + suffix) for suffix in _IDS_SUFFIXES]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    tried = ", ".join(candidate.name for candidate in candidates)
    raise FileNotFoundError(
        f"{npy_path}: no ids file found next to it (tried {tried} in {npy_path.parent}); "
        "write one news id per line in the row order of the matrix, or name the ids file (--text-ids, --input-ids)"
    )


def _read_ids(ids_path: Path, n_rows: int) -> list[str]:
    """Read the news id of every matrix row from an ids file.

    Two formats are accepted: one id per line in row order, or a TSV whose header is
    ``row<TAB>news_id`` and whose lines may come in any order.
    """
    with open(ids_path, encoding="utf-8-sig") as handle:
        lines = handle.read().splitlines()
    # Trailing blank lines are what editors leave behind, not missing ids.
    while lines and not lines[-1].strip():
        lines.pop()
    if lines and tuple(field.strip() for field in lines[0].split("\t")) == _TSV_HEADER:
        return _read_row_table(ids_path, lines, n_rows)
    return _read_id_lines(ids_path, lines)


def _read_id_lines(ids_path: Path, lines: list[str]) -> list[str]:
    ids = []
    for line_number, line in enumerate(lines, start=1):
        news_id = line.strip()
        if not news_id or "\t" in news_id:
            raise ValueError(
                f"{ids_path}, line {line_number}: {line!r} is not a news id; expected one "
                "id per line, or a TSV with the header 'row<TAB>news_id'"
            )
        ids.append(news_id)
    return ids


def _read_row_table(ids_path: Path, lines: list[str], n_rows: int) -> list[str]:
    ids: list[str | None] = [None] * n_rows
    first_line_of_row: dict[int, int] = {}
    for line_number, line in enumerate(lines[1:], start=2):
        fields = line.split("\t")
        if len(fields) != 2 or not fields[1].strip():
            raise ValueError(
                f"{ids_path}, line {line_number}: {line!r} has {len(fields)} field(s); "
                "expected '<row><TAB><news_id>'"
            )
        row_text, news_id = fields[0].strip(), fields[1].strip()
        try:
            row = int(row_text)
        except ValueError:
            raise ValueError(
                f"{ids_path}, line {line_number}: row {row_text!r} is not an integer; "
                "expected '<row><TAB><news_id>'"
            ) from None
        if not 0 <= row < n_rows:
            raise ValueError(
                f"{ids_path}, line {line_number}: row {row} is out of range; the matrix "
                f"has rows 0 to {n_rows - 1} (is this the ids file of another matrix?)"
            )
        if row in first_line_of_row:
            raise ValueError(
                f"{ids_path}, line {line_number}: row {row} already appeared on line "
                f"{first_line_of_row[row]}; expected each row once"
            )
        first_line_of_row[row] = line_number
        ids[row] = news_id
    missing_rows = [row for row, news_id in enumerate(ids) if news_id is None]
    if missing_rows:
        raise ValueError(
            f"{ids_path}: {len(missing_rows)} of {n_rows} matrix rows have no id "
            f"(first: row {missing_rows[0]}); expected one line per row"
        )
    return ids


def load_text_vectors(
    npy_path: str | os.PathLike, ids_path: str | os.PathLike | None = None
) -> TextVectors:
    """Load a matrix of text vectors and the news id of each row.

    Parameters
    ----------
    npy_path : path
        A 2-D float array saved with ``np.save``; row i is the vector of news i.
    ids_path : path, optional
        The ids file. By default it is looked up next to the .npy file as
        ``<stem>_ids.tsv``, ``<stem>_ids.txt`` or ``<stem>.ids.txt``.

    Returns
    -------
    TextVectors
        The ids in matrix row order and the matrix as float32.

    Raises
    ------
    ValueError
        If the array is not 2-D float, its row count differs from the id count, a row
        contains NaN or infinity, an id repeats, or a row index is invalid. The message
        names the file and, where there is one, the line.
    """
    npy_path = Path(npy_path)
    try:
        matrix = np.load(npy_path, allow_pickle=False)
    except (EOFError, OSError) as error:
        raise ValueError(f"{npy_path}: cannot be read ({error or 'the file is empty'}); expected a 2-D float "
                         "array saved with np.save") from error
    except ValueError as error:
        # np.load raises ValueError for object arrays (which would need unpickling)
        # and for files that are not .npy at all.
        raise ValueError(
            f"{npy_path}: cannot be read as a plain .npy array ({error}); expected a "
            "2-D float array saved with np.save"
        ) from error
    if not isinstance(matrix, np.ndarray):  # an .npz archive loads as a mapping of arrays
        raise ValueError(f"{npy_path}: is an .npz archive; expected one 2-D float array saved with np.save (.npy)")
    if matrix.ndim != 2 or not np.issubdtype(matrix.dtype, np.floating):
        raise ValueError(
            f"{npy_path}: array has shape {matrix.shape} and dtype {matrix.dtype}; expected "
            "a 2-D float array (n_news, dim) saved with np.save"
        )
    ids_path = find_ids_file(npy_path) if ids_path is None else Path(ids_path)
    ids = _read_ids(ids_path, len(matrix))

    if len(ids) != len(matrix):
        raise ValueError(
            f"{ids_path}: {len(ids)} ids but {npy_path} has {len(matrix)} rows; expected "
            "one id per matrix row"
        )
    first_row_of_id: dict[str, int] = {}
    for row, news_id in enumerate(ids):
        if news_id in first_row_of_id:
            raise ValueError(
                f"{ids_path}: news id {news_id} is given for rows {first_row_of_id[news_id]} "
                f"and {row}; expected each id once (remove the duplicate vector)"
            )
        first_row_of_id[news_id] = row
    # Checked after the cast to float32, because a float64 value beyond its range becomes infinity there.
    matrix = matrix.astype(np.float32, copy=False)
    finite = np.isfinite(matrix).all(axis=1)
    if not finite.all():
        bad_rows = np.flatnonzero(~finite)
        raise ValueError(
            f"{npy_path}: {len(bad_rows)} row(s) contain NaN or infinity, first row "
            f"{bad_rows[0]} (news id {ids[bad_rows[0]]}) after conversion to float32; recompute those vectors"
        )

    logger.info(
        "loaded %d text vectors of dim %d from %s (ids from %s)",
        matrix.shape[0], matrix.shape[1], npy_path, ids_path.name,
    )
    return TextVectors(ids=ids, matrix=matrix, source=str(npy_path))


def align_text_vectors(
    vectors: TextVectors, news_ids: list[str]
) -> tuple[np.ndarray, np.ndarray, int]:
    """Arrange text vectors in the order of ``news_ids``, joining by news id.

    Parameters
    ----------
    vectors : TextVectors
        Loaded vectors, in any row order.
    news_ids : list of str
        Target order, for example a news vocabulary.

    Returns
    -------
    matrix : np.ndarray
        float32 of shape (len(news_ids), d); row i is the vector of ``news_ids[i]``, or
        zeros when that news has no vector.
    has_vector : np.ndarray
        bool of shape (len(news_ids),).
    missing : int
        Number of news ids without a vector.
    """
    row_of_id = {news_id: row for row, news_id in enumerate(vectors.ids)}
    source_rows = np.array([row_of_id.get(news_id, -1) for news_id in news_ids], dtype=np.int64)
    has_vector = source_rows >= 0
    matrix = np.zeros((len(news_ids), vectors.matrix.shape[1]), dtype=np.float32)
    matrix[has_vector] = vectors.matrix[source_rows[has_vector]]
    missing = int((~has_vector).sum())
    if missing:
        logger.info(
            "%d of %d news have no text vector in %s; they get zero vectors",
            missing, len(news_ids), vectors.source,
        )
    return matrix, has_vector, missing
