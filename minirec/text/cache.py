"""On-disk cache of text embeddings, keyed by the SHA-256 of each text.

One cache file belongs to one (model, dimensions) pair, so together with the digest each
vector is keyed by (model, dimensions, sha256(text)). The file is an uncompressed ``.npz``
with four arrays:

``keys``
    (n,) unicode hex digests of the UTF-8 texts.
``vectors``
    (n, dimensions) float32, row i belongs to ``keys[i]``.
``model``, ``dimensions``
    0-d arrays naming what produced the vectors.

It stores no texts, so it can be shared without sharing the corpus.
"""

import hashlib
import logging
import os
import zipfile
from pathlib import Path
from typing import BinaryIO, Sequence

import numpy as np

from minirec.files import write_atomically

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
_STORED_ARRAYS = {"format_version", "keys", "vectors", "model", "dimensions"}


def text_digest(text: str) -> str:
    """Return the hex SHA-256 digest of the UTF-8 encoding of ``text``."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class CacheMismatchError(ValueError):
    """Raised when a cache file was written for another model or dimension."""


class EmbeddingCache:
    """Embeddings of one model and dimension, stored in an ``.npz`` file.

    New vectors stay in memory until ``flush`` rewrites the whole file atomically.
    A process killed at any moment therefore loses only the vectors added since the last
    flush, and a rerun finds every flushed vector again. ``OpenAIEncoder`` flushes every
    ``checkpoint_every`` new vectors, at the end of a run and when a run fails.

    Parameters
    ----------
    path : str or os.PathLike
        Cache file. It is created on the first flush when missing.
    model : str
        Embedding model name, for example ``"text-embedding-3-small"``.
    dimensions : int
        Vector length.

    Raises
    ------
    CacheMismatchError
        If ``path`` exists and was written for another model or dimension.
    ValueError
        If ``path`` exists but is not a valid cache file.

    Notes
    -----
    Each flush rewrites the whole file, so with n cached vectors of d floats it writes
    4 n d bytes. Flushing every 5,000 vectors while filling a cache of 100,000 vectors of
    dimension 1536 writes about 12 GB in total.

    NOTE: two processes sharing one cache file overwrite each other's flushes: the
    later flush wins and the vectors only the other process added are lost (not corrupted).
    """

    def __init__(self, path: str | os.PathLike, model: str, dimensions: int):
        if dimensions < 1:
            raise ValueError(f"dimensions must be at least 1, got {dimensions}")
        self.path = Path(path)
        self.model = model
        self.dimensions = int(dimensions)
        self._row_of_key: dict[str, int] = {}
        self._vectors = np.zeros((0, self.dimensions), dtype=np.float32)
        self._pending: list[np.ndarray] = []
        self._pending_count = 0
        if self.path.exists():
            self._load()

    def __len__(self) -> int:
        return len(self._row_of_key)

    @property
    def pending_count(self) -> int:
        """Number of vectors added since the last flush."""
        return self._pending_count

    def _load(self) -> None:
        try:
            stored = np.load(self.path, allow_pickle=False)
            if not isinstance(stored, np.lib.npyio.NpzFile):
                raise ValueError("expected an .npz archive, found a single .npy array")
            with stored:
                missing = _STORED_ARRAYS - set(stored.files)
                if missing:
                    raise ValueError(f"arrays {sorted(missing)} are missing")
                version = int(stored["format_version"])
                model = str(stored["model"])
                dimensions = int(stored["dimensions"])
                keys = stored["keys"]
                vectors = stored["vectors"]
        except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile) as error:
            raise ValueError(
                f"{self.path} is not a valid embedding cache ({error}). "
                "Delete it to start a new cache, or use another cache file."
            ) from error

        if version != FORMAT_VERSION:
            raise ValueError(
                f"{self.path} has cache format version {version}, expected {FORMAT_VERSION}. "
                "Delete it to start a new cache."
            )
        if model != self.model or dimensions != self.dimensions:
            raise CacheMismatchError(
                f"{self.path} caches {model} vectors of dimension {dimensions}, but "
                f"{self.model} vectors of dimension {self.dimensions} were requested. "
                "Pass a separate cache file for each model and dimension."
            )
        if keys.ndim != 1 or vectors.shape != (len(keys), dimensions) or vectors.dtype != np.float32:
            raise ValueError(
                f"{self.path} is not a valid embedding cache: expected keys of shape (n,) and "
                f"float32 vectors of shape (n, {dimensions}), got keys {keys.shape} and "
                f"vectors {vectors.shape} {vectors.dtype}. Delete it to start a new cache."
            )

        self._row_of_key = {str(key): row for row, key in enumerate(keys)}
        if len(self._row_of_key) != len(keys):
            raise ValueError(f"{self.path} contains duplicate keys. Delete it to start a new cache.")
        self._vectors = vectors
        logger.info("Loaded %d cached %s vectors from %s", len(keys), self.model, self.path)

    def _consolidate(self) -> None:
        if self._pending:
            self._vectors = np.concatenate([self._vectors, *self._pending])
            self._pending = []

    def get_many(self, texts: Sequence[str]) -> tuple[np.ndarray, list[int]]:
        """Look up the vectors of ``texts``, including those not flushed yet.

        Returns
        -------
        vectors : np.ndarray
            (len(texts), dimensions) float32. Rows of texts not in the cache are NaN,
            so that a row used before it is filled shows up in any finiteness check.
        missing : list of int
            Indices into ``texts`` of the texts not in the cache, in increasing order.
        """
        self._consolidate()
        vectors = np.full((len(texts), self.dimensions), np.nan, dtype=np.float32)
        missing = []
        for i, text in enumerate(texts):
            row = self._row_of_key.get(text_digest(text))
            if row is None:
                missing.append(i)
            else:
                vectors[i] = self._vectors[row]
        return vectors, missing

    def put_many(self, texts: Sequence[str], vectors: np.ndarray) -> int:
        """Add the vectors of ``texts`` in memory and return how many were new.

        Texts already cached keep their stored vector. Call ``flush`` to write to disk.

        Raises
        ------
        ValueError
            If ``vectors`` is not (len(texts), dimensions) or contains NaN or infinity.
        """
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.shape != (len(texts), self.dimensions):
            raise ValueError(
                f"expected vectors of shape ({len(texts)}, {self.dimensions}) for "
                f"{len(texts)} texts, got {vectors.shape}"
            )
        if not np.isfinite(vectors).all():
            raise ValueError("vectors to cache contain NaN or infinity")

        new_rows = []
        for i, text in enumerate(texts):
            key = text_digest(text)
            if key not in self._row_of_key:
                self._row_of_key[key] = len(self._row_of_key)
                new_rows.append(i)
        if new_rows:
            self._pending.append(vectors[new_rows].copy())
            self._pending_count += len(new_rows)
        return len(new_rows)

    def flush(self) -> None:
        """Write all vectors to ``path`` atomically, if any were added since the last flush."""
        if self._pending_count == 0 and self.path.exists():
            return
        self._consolidate()
        # Dict insertion order is row order: rows were appended as keys were added.
        keys = np.array(list(self._row_of_key), dtype="<U64")

        def write(handle: BinaryIO) -> None:
            np.savez(
                handle,
                format_version=np.int64(FORMAT_VERSION),
                keys=keys,
                vectors=self._vectors,
                model=np.array(self.model),
                dimensions=np.int64(self.dimensions),
            )

        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(self.path, write)
        logger.debug("Flushed %d new vectors to %s (%d in total)", self._pending_count, self.path, len(keys))
        self._pending_count = 0
