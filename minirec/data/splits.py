"""Locate MIND split folders on disk and split impressions by time for validation."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from minirec.data.mind import Behaviors

logger = logging.getLogger(__name__)

SPLIT_FILES = ("news.tsv", "behaviors.tsv")
ENTITY_VECTOR_FILE = "entity_embedding.vec"
TRAIN_FOLDERS = ("train", "MINDsmall_train", "MINDlarge_train")
DEV_FOLDERS = ("dev", "valid", "MINDsmall_dev", "MINDlarge_dev")


@dataclass
class SplitPaths:
    """Folders of the training and (optional) dev split, each containing news.tsv and behaviors.tsv."""

    train: Path
    dev: Path | None = None
    entity_vectors: list[Path] = field(default_factory=list)


def find_splits(data: str | Path) -> SplitPaths:
    """Find the train and dev split folders under ``data``.

    ``data`` is either one split folder (containing news.tsv and behaviors.tsv), which becomes the
    training split, or a parent folder as MIND's zips unpack. The parent contains one training
    split named as in :data:`TRAIN_FOLDERS` and at most one dev split named as in :data:`DEV_FOLDERS`.

    Raises
    ------
    FileNotFoundError
        When ``data`` does not exist, or when no split folder is found. The message lists the
        names that were looked for.
    ValueError
        When a candidate folder lacks one of the two files, or several folders could be the same split.
    """
    data = Path(data)
    if not data.is_dir():
        raise FileNotFoundError(f"data folder {data} not found. Pass a MIND split folder or its parent.")

    if _is_split(data):
        return SplitPaths(train=data, dev=None, entity_vectors=_entity_vectors(data))

    train = _find_one(data, TRAIN_FOLDERS, "training")
    if train is None:
        raise FileNotFoundError(
            f"no MIND split found in {data}: expected {' and '.join(SPLIT_FILES)} directly in it, "
            f"or a training split folder named one of {', '.join(TRAIN_FOLDERS)} "
            f"(with an optional dev split named one of {', '.join(DEV_FOLDERS)}). "
            "Point to the folder that contains the unzipped MIND splits."
        )
    dev = _find_one(data, DEV_FOLDERS, "dev")
    folders = [train] if dev is None else [train, dev]
    vectors = [path for folder in folders for path in _entity_vectors(folder)]
    logger.info("training split %s, dev split %s, %d entity vector files", train, dev or "none", len(vectors))
    return SplitPaths(train=train, dev=dev, entity_vectors=vectors)


def _is_split(folder: Path) -> bool:
    return all((folder / name).is_file() for name in SPLIT_FILES)


def _entity_vectors(folder: Path) -> list[Path]:
    path = folder / ENTITY_VECTOR_FILE
    return [path] if path.is_file() else []


def _find_one(parent: Path, names: tuple[str, ...], role: str) -> Path | None:
    """Return the one folder among ``names`` that exists, after checking that it is a complete split."""
    present = [parent / name for name in names if (parent / name).is_dir()]
    if len(present) > 1:
        raise ValueError(
            f"several {role} split folders in {parent}: {', '.join(p.name for p in present)}. "
            "Keep one, or pass the split folder itself."
        )
    if not present:
        return None
    folder = present[0]
    missing = [name for name in SPLIT_FILES if not (folder / name).is_file()]
    if missing:
        raise ValueError(f"{role} split folder {folder} is missing {' and '.join(missing)}. Unzip the split again.")
    return folder


def split_by_time(behaviors: Behaviors, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Split impressions into an earlier part and the latest ``fraction`` of them.

    Impressions are ordered by time, and among equal times by file order, so the split is
    deterministic. Splitting whole impressions keeps the candidates of one impression out of both
    parts at once.

    Parameters
    ----------
    behaviors : Behaviors
        Impressions to split.
    fraction : float
        Share of impressions in the later part, strictly between 0 and 1. The count is rounded and
        then clamped so that each part contains at least one impression when there are two or more.
        A single impression goes to the earlier part.

    Returns
    -------
    earlier, later : np.ndarray
        int64 positions into ``behaviors``, each sorted ascending (file order).
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be strictly between 0 and 1, got {fraction}")
    n = len(behaviors)
    order = np.argsort(behaviors.times, kind="stable")
    n_later = int(round(n * fraction))
    if n >= 2:
        n_later = min(max(n_later, 1), n - 1)
    else:
        n_later = 0
    earlier = np.sort(order[: n - n_later]).astype(np.int64)
    later = np.sort(order[n - n_later:]).astype(np.int64)
    return earlier, later
