"""Write, read and score MIND leaderboard prediction files.

A prediction file has one line per impression, ``ImpressionID [r1,r2,...,rn]``, where ``rj`` is the
rank (1 = best) of the j-th candidate in the order of behaviors.tsv, not the index of the j-th best
candidate. The leaderboard takes a zip whose root contains ``prediction.txt``.
"""

from __future__ import annotations

import logging
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

import numpy as np

from minirec.data.mind import MindFormatError, read_behaviors
from minirec.eval.metrics import EvaluationResult, evaluate
from minirec.files import write_atomically

logger = logging.getLogger(__name__)

PREDICTION_NAME = "prediction.txt"
_RANKS_EXPECTED = "a list of ranks such as [3,1,2], a permutation of 1..n"


def _check_permutation(ranks: np.ndarray) -> bool:
    return bool(np.array_equal(np.sort(ranks), np.arange(1, ranks.size + 1)))


def _validated_ranks(
    impression_ids: Sequence[str], ranks_list: Sequence[Sequence[int] | np.ndarray],
) -> list[np.ndarray]:
    """Check ids and ranks before anything is written, so a bad call leaves no partial file."""
    if len(impression_ids) != len(ranks_list):
        raise ValueError(f"{len(impression_ids)} impression ids but {len(ranks_list)} rank lists")
    seen: set[str] = set()
    checked = []
    for impression_id, ranks in zip(impression_ids, ranks_list):
        impression_id = str(impression_id)
        if not impression_id or any(c.isspace() for c in impression_id):
            raise ValueError(f"impression id {impression_id!r} must be non-empty and contain no whitespace")
        if impression_id in seen:
            raise ValueError(f"impression id {impression_id} appears twice. Write one line per impression.")
        seen.add(impression_id)

        ranks = np.asarray(ranks)
        if ranks.ndim != 1 or ranks.size == 0 or not np.issubdtype(ranks.dtype, np.integer):
            raise ValueError(
                f"impression {impression_id}: ranks must be a non-empty 1-D array of integers, "
                f"got dtype {ranks.dtype} and shape {ranks.shape}"
            )
        if not _check_permutation(ranks):
            raise ValueError(
                f"impression {impression_id}: ranks {ranks.tolist()[:20]} are not a permutation of 1..{ranks.size}. "
                "Convert scores with minirec.eval.metrics.ranks_from_scores."
            )
        checked.append(ranks)
    return checked


def _prediction_lines(impression_ids: Sequence[str], ranks_list: list[np.ndarray]) -> Iterator[str]:
    for impression_id, ranks in zip(impression_ids, ranks_list):
        yield f"{impression_id} [{','.join(map(str, ranks.tolist()))}]\n"


def write_prediction(
    path: str | Path,
    impression_ids: Sequence[str],
    ranks_list: Sequence[Sequence[int] | np.ndarray],
) -> Path:
    """Write a prediction file atomically, as text or, for a ``.zip`` path, as a leaderboard zip.

    Parameters
    ----------
    path : str or Path
        Output file. A name ending in ``.zip`` gets a zip archive whose root contains ``prediction.txt``.
    impression_ids : sequence of str
        One id per line, written in this order.
    ranks_list : sequence of array-like of int
        Per impression, the rank of each candidate, a permutation of 1..n.

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    ValueError
        Before anything is written, when lengths differ, an id repeats or contains whitespace, or
        ranks are not a permutation.
    """
    path = Path(path)
    ranks_checked = _validated_ranks(impression_ids, ranks_list)
    lines = _prediction_lines([str(i) for i in impression_ids], ranks_checked)

    def write(raw) -> None:
        if path.suffix.lower() == ".zip":
            with zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                with archive.open(PREDICTION_NAME, "w") as member:
                    for line in lines:
                        member.write(line.encode("utf-8"))
        else:
            for line in lines:
                raw.write(line.encode("utf-8"))

    write_atomically(path, write)
    logger.info("wrote %d prediction lines to %s", len(ranks_checked), path)
    return path


def read_prediction(path: str | Path) -> tuple[list[str], list[np.ndarray]]:
    """Read a prediction file, plain text or a zip with ``prediction.txt`` at its root.

    Returns
    -------
    impression_ids : list of str
        In file order.
    ranks_list : list of np.ndarray
        int64 ranks per line.

    Raises
    ------
    MindFormatError
        On a malformed line, ranks that are not a permutation of 1..n (the ranking would then depend
        on how ties are broken), or a repeated impression id. The error names the file and line.
    FileNotFoundError
        When a zip has no ``prediction.txt`` at its root.
    """
    path = Path(path)
    if path.suffix.lower() == ".zip":
        if not zipfile.is_zipfile(path):
            raise ValueError(f"{path} is not a zip file: zip prediction.txt again, or pass the plain text file")
        with zipfile.ZipFile(path) as archive:
            if PREDICTION_NAME not in archive.namelist():
                members = ", ".join(archive.namelist()[:10]) or "nothing"
                raise FileNotFoundError(
                    f"{path} has no {PREDICTION_NAME} at its root (it contains {members}). "
                    f"Zip the file itself, not the folder around it."
                )
            with archive.open(PREDICTION_NAME) as member:
                return _parse_prediction(member, f"{path}:{PREDICTION_NAME}")
    with open(path, "rb") as handle:
        return _parse_prediction(handle, str(path))


def _parse_prediction(handle: IO[bytes], name: str) -> tuple[list[str], list[np.ndarray]]:
    impression_ids: list[str] = []
    ranks_list: list[np.ndarray] = []
    first_line_of: dict[str, int] = {}
    first_blank = None
    for number, raw in enumerate(handle, start=1):
        try:
            text = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise MindFormatError(name, number, None, "UTF-8 text", hint="Re-encode the file as UTF-8.") from None
        if not text:
            first_blank = first_blank or number
            continue
        if first_blank is not None:
            raise MindFormatError(name, first_blank, None, "a prediction line, not a blank line",
                                  hint="Remove the blank line.")

        impression_id, _, ranks_text = text.partition(" ")
        ranks_text = ranks_text.strip()
        if not (ranks_text.startswith("[") and ranks_text.endswith("]")):
            raise MindFormatError(name, number, None, f"an impression id, a space and {_RANKS_EXPECTED}", text)
        try:
            ranks = np.array([int(value) for value in ranks_text[1:-1].split(",")], dtype=np.int64)
        except ValueError:
            raise MindFormatError(name, number, "ranks", _RANKS_EXPECTED, ranks_text) from None
        if not _check_permutation(ranks):
            raise MindFormatError(name, number, "ranks", _RANKS_EXPECTED, ranks_text)
        if impression_id in first_line_of:
            raise MindFormatError(
                name, number, "impression id",
                f"one line per impression, but line {first_line_of[impression_id]} has the same id",
                impression_id, hint="Remove one of the two lines.",
            )
        first_line_of[impression_id] = number
        impression_ids.append(impression_id)
        ranks_list.append(ranks)
    return impression_ids, ranks_list


def score_prediction(prediction_path: str | Path, truth_behaviors_path: str | Path) -> EvaluationResult:
    """Score a prediction file against a labelled behaviors.tsv, as MIND's leaderboard does.

    Lines are matched by impression id. A rank r becomes the score 1/r, as in MIND's official
    ``evaluate.py``, and the metrics of :func:`minirec.eval.metrics.evaluate` are averaged over
    the truth file's impressions.

    Raises
    ------
    ValueError
        When the truth file has no labels, or a truth impression has no prediction line, or the
        two differ in the number of candidates. The message names the impression id.
    """
    truth = read_behaviors(truth_behaviors_path)
    if len(truth) == 0:
        raise ValueError(f"{truth_behaviors_path} has no impressions, so there is nothing to score against")
    if not truth.has_labels:
        raise ValueError(
            f"{truth_behaviors_path} has no click labels (like MIND's test split), so it cannot be scored. "
            "Score against a labelled behaviors.tsv such as the dev split."
        )
    impression_ids, ranks_list = read_prediction(prediction_path)
    position_of = {impression_id: i for i, impression_id in enumerate(impression_ids)}

    missing = [i for i in truth.impression_ids if i not in position_of]
    if missing:
        raise ValueError(
            f"{prediction_path} has no line for {len(missing)} of {len(truth)} impressions in "
            f"{truth_behaviors_path}, for example impression {', '.join(missing[:5])}. Every impression needs a line."
        )
    extra = len(impression_ids) - len(truth)
    if extra > 0:
        logger.warning("ignoring %d prediction lines whose impression id is not in %s",
                       extra, truth_behaviors_path)

    scores_list = []
    for impression_id, candidates in zip(truth.impression_ids, truth.candidates):
        ranks = ranks_list[position_of[impression_id]]
        if ranks.size != len(candidates):
            raise ValueError(
                f"impression {impression_id}: {ranks.size} ranks in {prediction_path} but "
                f"{len(candidates)} candidates in {truth_behaviors_path}. Predict against the same behaviors file."
            )
        scores_list.append(1.0 / ranks)
    return evaluate(truth.labels, scores_list)
