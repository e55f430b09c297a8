"""Offline text encoder: TF-IDF followed by a truncated SVD (latent semantic analysis)."""

from __future__ import annotations

import logging
import os
import re
import time
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import svds

from minirec.files import save_arrays

logger = logging.getLogger(__name__)

TOKEN_PATTERN = re.compile(r"[a-z0-9]+")

_FORMAT_VERSION = 1

# Below this many matrix entries (32 MB as float64) solver="auto" runs a dense LAPACK
# SVD, which is exact and robust where Lanczos solvers struggle: a rank-deficient
# matrix, or dim close to min(n_docs, n_terms).
_DENSE_MAX_ENTRIES = 4_000_000
_SOLVERS = ("auto", "dense", "propack", "arpack")


def tokenize(text: str) -> list[str]:
    """Split a text into lowercase ASCII word tokens.

    A token is a maximal run of ``[a-z0-9]`` after lowercasing, so punctuation,
    apostrophes and non-ASCII letters separate tokens ("Don't" gives "don", "t").

    Examples
    --------
    >>> tokenize("U.S. stocks rose 2%")
    ['u', 's', 'stocks', 'rose', '2']
    """
    return TOKEN_PATTERN.findall(text.lower())


def _count_matrix(
    texts: Sequence[str], vocabulary: dict[str, int], grow: bool
) -> sp.csr_matrix:
    """Count tokens per text into a (texts, terms) CSR matrix.

    With ``grow`` every new token is appended to ``vocabulary``; without it unknown
    tokens are dropped.
    """
    indptr = np.zeros(len(texts) + 1, dtype=np.int64)
    token_ids: list[int] = []
    for row, text in enumerate(texts):
        tokens = tokenize(text)
        if grow:
            ids = [vocabulary.setdefault(token, len(vocabulary)) for token in tokens]
        else:
            ids = [vocabulary[token] for token in tokens if token in vocabulary]
        token_ids.extend(ids)
        indptr[row + 1] = len(token_ids)
    indices = np.asarray(token_ids, dtype=np.int64)
    data = np.ones(len(indices), dtype=np.float64)
    counts = sp.csr_matrix((data, indices, indptr), shape=(len(texts), len(vocabulary)))
    # Repeated tokens of one text are separate entries until summed here.
    counts.sum_duplicates()
    return counts


def _as_text_list(texts: Iterable[str]) -> list[str]:
    texts = list(texts)
    for position, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(
                f"text at position {position} is {type(text).__name__}, expected str "
                "(compose texts with minirec.text.compose.news_texts)"
            )
    return texts


def _fix_signs(components: np.ndarray) -> np.ndarray:
    """Flip each row so that its entry of largest magnitude is positive.

    A singular vector is defined only up to sign, so without this rule two solvers,
    or two library versions, could return mirrored components. Entries within a
    relative 1e-6 of the largest magnitude count as tied, and the first of them
    decides, so rounding differences between solvers cannot pick different entries.
    """
    magnitudes = np.abs(components)
    near_max = magnitudes >= (1.0 - 1e-6) * magnitudes.max(axis=1, keepdims=True)
    deciding = np.argmax(near_max, axis=1)
    signs = np.sign(components[np.arange(len(components)), deciding])
    signs[signs == 0] = 1.0
    return components * signs[:, None]


def _warn_if_blas_may_thrash() -> None:
    """Log a warning when busy cores could make multi-threaded BLAS stall the SVD."""
    if any(name in os.environ for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")):
        return
    cores = os.cpu_count() or 1
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if load > cores:
        logger.warning(
            "load average %.1f exceeds the %d cores; multi-threaded OpenBLAS can make "
            "the SVD more than 10x slower on busy cores, so set OPENBLAS_NUM_THREADS=1 before "
            "starting Python if this fit is slow", load, cores,
        )


def _top_right_singular_vectors(
    matrix: sp.csr_matrix, rank: int, seed: int, solver: str
) -> np.ndarray:
    """Compute the top ``rank`` right singular vectors of ``matrix`` as rows, largest first.

    The Lanczos solvers start from a vector drawn from ``seed``, so a fit repeats
    exactly on the same machine and library versions. The dense solver needs no start.
    The Lanczos solvers run in float32: on a 51k x 45k TF-IDF matrix at rank 256 that
    cut PROPACK's time by about 30% against float64, and every singular vector kept a
    cosine above 0.99999 with its float64 counterpart. The encoder stores float32
    components anyway.
    """
    if solver == "auto":
        small = matrix.shape[0] * matrix.shape[1] <= _DENSE_MAX_ENTRIES
        solver = "dense" if small else "propack"
    if solver in ("propack", "arpack"):
        _warn_if_blas_may_thrash()
        single = matrix.astype(np.float32)
    if solver == "propack":
        # PROPACK takes a start vector in the row space (length n_docs).
        rng = np.random.default_rng(seed)
        v0 = rng.uniform(-1.0, 1.0, size=matrix.shape[0]).astype(np.float32)
        try:
            _, singular_values, vt = svds(single, k=rank, v0=v0, solver="propack")
        except np.linalg.LinAlgError as error:
            # LinAlgError subclasses ValueError, so it is caught first.
            logger.warning("PROPACK failed (%s); using ARPACK, which is slower", error)
            solver = "arpack"
        except ValueError as error:
            # Some SciPy releases make PROPACK opt-in through the SCIPY_USE_PROPACK
            # (earlier USE_PROPACK) environment variable and raise ValueError without it.
            if "USE_PROPACK" not in str(error):
                raise
            logger.warning("PROPACK is disabled in this SciPy; using ARPACK, which is slower")
            solver = "arpack"
    if solver == "arpack":
        # ARPACK takes a start vector of length min(n_docs, n_terms). A fresh generator
        # makes a fallback from PROPACK give the same result as solver="arpack".
        rng = np.random.default_rng(seed)
        v0 = rng.uniform(-1.0, 1.0, size=min(matrix.shape)).astype(np.float32)
        _, singular_values, vt = svds(single, k=rank, v0=v0, solver="arpack")
    elif solver == "dense":
        _, singular_values, vt = np.linalg.svd(matrix.toarray(), full_matrices=False)
        singular_values, vt = singular_values[:rank], vt[:rank]
    order = np.argsort(singular_values, kind="stable")[::-1]
    singular_values, vt = singular_values[order], vt[order]

    # A matrix of rank below `rank` (duplicate texts in a tiny corpus) has zero singular
    # values, and their vectors are arbitrary null-space directions. Zeroing them keeps
    # new texts from being projected onto noise.
    tolerance = max(matrix.shape) * np.finfo(vt.dtype).eps * singular_values[0]
    null = singular_values <= tolerance
    if null.any():
        logger.warning(
            "TF-IDF matrix has rank %d below dim %d; the last %d LSA dimensions are zero",
            rank - int(null.sum()), rank, int(null.sum()),
        )
        vt[null] = 0.0
    return vt.astype(np.float64)


class LSAEncoder:
    """Encode texts as L2-normalised LSA vectors.

    Fitting builds a vocabulary, computes inverse document frequencies and keeps the
    top right singular vectors of the TF-IDF matrix. Encoding a text projects its
    TF-IDF row onto those vectors, so news seen after fitting are encoded without
    refitting.

    Parameters
    ----------
    dim : int
        Number of latent dimensions requested. Fitting lowers it to
        ``min(dim, n_docs - 1, n_terms - 1)`` when the corpus is too small, and logs that.
    min_df : int
        Minimum number of documents a token must occur in to enter the vocabulary.
    max_features : int
        Maximum vocabulary size; the most frequent tokens by document frequency are
        kept, ties broken alphabetically.
    sublinear_tf : bool
        Use ``1 + log(tf)`` instead of the raw count ``tf``.
    seed : int
        Seed of the SVD's start vector, so fitting twice gives the same encoder.
    solver : {"auto", "dense", "propack", "arpack"}
        SVD method. "dense" is LAPACK on the dense float64 matrix. "propack" and
        "arpack" are the Lanczos solvers of ``scipy.sparse.linalg.svds``, run in
        float32 at their default tolerance. Each component agrees across the three to a
        cosine above 0.9999 (a test checks this on a small corpus). "auto" picks
        "dense" for a matrix of at most 4 million entries and "propack" otherwise.
        PROPACK falls back to ARPACK when it fails.

    Notes
    -----
    For a text with term counts ``tf`` the encoder computes

        x_t = w(tf_t) * idf_t,   idf_t = ln((1 + n_docs) / (1 + df_t)) + 1,
        x   = x / ||x||_2,       z = x @ V.T,   output = z / ||z||_2,

    where ``w(tf) = 1 + ln(tf)`` with sublinear_tf, else ``tf``, and the rows of V
    (dim, n_terms) are the top right singular vectors of the training TF-IDF matrix,
    each signed so that its entry of largest magnitude is positive. A text with no
    vocabulary token gets a zero row.

    Singular vectors that share one singular value are unique only up to a rotation,
    so on such ties the solvers can return different (equally valid) components.

    NOTE: PROPACK makes many small BLAS calls, and multi-threaded OpenBLAS degrades
    badly when other processes keep the cores busy. On a 2-core machine at load
    average 5, fitting 51,282 texts of about 53 tokens (dim 256, 45k terms) took 322 s
    with two BLAS threads and 23 s with ``OPENBLAS_NUM_THREADS=1``. OpenBLAS reads
    that variable only when it loads, so set it before importing NumPy. :meth:`fit`
    logs a warning when the load suggests it.
    """

    def __init__(
        self,
        dim: int = 256,
        min_df: int = 2,
        max_features: int = 50000,
        sublinear_tf: bool = True,
        seed: int = 0,
        solver: str = "auto",
    ) -> None:
        if dim < 1:
            raise ValueError(f"dim must be at least 1, got {dim}")
        if min_df < 1:
            raise ValueError(f"min_df must be at least 1, got {min_df}")
        if max_features < 1:
            raise ValueError(f"max_features must be at least 1, got {max_features}")
        if solver not in _SOLVERS:
            raise ValueError(f"solver must be one of {_SOLVERS}, got {solver!r}")
        self.dim = int(dim)
        self.min_df = int(min_df)
        self.max_features = int(max_features)
        self.sublinear_tf = bool(sublinear_tf)
        self.seed = int(seed)
        self.solver = solver
        self.vocabulary: dict[str, int] | None = None
        self.idf: np.ndarray | None = None  # (n_terms,) float64
        self.components: np.ndarray | None = None  # (dim, n_terms) float32

    # fitting ---------------------------------------------------------------

    def fit(self, texts: Iterable[str]) -> "LSAEncoder":
        """Learn the vocabulary, IDF weights and SVD components from ``texts``.

        Raises
        ------
        ValueError
            If fewer than two texts are given, or fewer than two tokens pass ``min_df``.
        """
        self._fit(_as_text_list(texts))
        return self

    def fit_transform(self, texts: Iterable[str]) -> np.ndarray:
        """Fit on ``texts`` and return their vectors, float32 of shape (n, dim)."""
        texts = _as_text_list(texts)
        tfidf = self._fit(texts)
        return self._project(tfidf)

    def _fit(self, texts: list[str]) -> sp.csr_matrix:
        started = time.perf_counter()
        n_docs = len(texts)
        if n_docs < 2:
            raise ValueError(f"LSA needs at least 2 texts to fit, got {n_docs}")

        all_terms: dict[str, int] = {}
        counts = _count_matrix(texts, all_terms, grow=True)
        document_frequency = np.bincount(counts.indices, minlength=len(all_terms))
        kept = self._select_terms(all_terms, document_frequency)
        if len(kept) < 2:
            raise ValueError(
                f"only {len(kept)} token(s) occur in at least min_df={self.min_df} of "
                f"{n_docs} texts; LSA needs at least 2 (lower min_df or give more texts)"
            )

        terms = sorted(kept)
        old_columns = np.array([all_terms[term] for term in terms], dtype=np.int64)
        counts = counts[:, old_columns].tocsr()
        self.vocabulary = {term: column for column, term in enumerate(terms)}
        df_kept = document_frequency[old_columns].astype(np.float64)
        self.idf = np.log((1.0 + n_docs) / (1.0 + df_kept)) + 1.0
        tfidf = self._weight(counts)

        rank = min(self.dim, n_docs - 1, len(terms) - 1)
        if rank < self.dim:
            logger.warning(
                "LSA dim lowered from %d to %d: the corpus has %d texts and %d terms",
                self.dim, rank, n_docs, len(terms),
            )
            self.dim = rank
        components = _top_right_singular_vectors(tfidf, rank, self.seed, self.solver)
        self.components = _fix_signs(components).astype(np.float32)
        logger.info(
            "fitted LSA on %d texts: %d of %d terms kept (min_df=%d), dim %d, %.1f s",
            n_docs, len(terms), len(all_terms), self.min_df, rank,
            time.perf_counter() - started,
        )
        return tfidf

    def _select_terms(
        self, all_terms: dict[str, int], document_frequency: np.ndarray
    ) -> list[str]:
        frequent = [
            term for term, column in all_terms.items()
            if document_frequency[column] >= self.min_df
        ]
        if len(frequent) > self.max_features:
            frequent.sort(key=lambda term: (-document_frequency[all_terms[term]], term))
            frequent = frequent[: self.max_features]
        return frequent

    # encoding ----------------------------------------------------------------

    def transform(self, texts: Iterable[str]) -> np.ndarray:
        """Encode ``texts`` with the fitted vocabulary and components.

        Returns
        -------
        np.ndarray
            float32 of shape (n, dim); each row has unit L2 norm, or is zero when the
            text has no vocabulary token.
        """
        self._require_fitted()
        counts = _count_matrix(_as_text_list(texts), self.vocabulary, grow=False)
        return self._project(self._weight(counts))

    def _weight(self, counts: sp.csr_matrix) -> sp.csr_matrix:
        tfidf = counts.astype(np.float64, copy=True)
        if self.sublinear_tf:
            tfidf.data = 1.0 + np.log(tfidf.data)
        tfidf = tfidf.multiply(self.idf[None, :]).tocsr()
        return _normalize_rows(tfidf)

    def _project(self, tfidf: sp.csr_matrix) -> np.ndarray:
        vectors = np.asarray(tfidf @ self.components.T.astype(np.float64))
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        # A zero row stays zero instead of becoming NaN.
        vectors = vectors / np.maximum(norms, np.finfo(np.float64).tiny)
        return vectors.astype(np.float32)

    def _require_fitted(self) -> None:
        if self.components is None:
            raise RuntimeError("LSAEncoder is not fitted; call fit() or load() first")

    # persistence ---------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> None:
        """Write the fitted encoder to an .npz file, atomically.

        The vocabulary is stored as a unicode array in column order, so the file loads
        with ``allow_pickle=False``.
        """
        self._require_fitted()
        path = Path(path)
        terms = sorted(self.vocabulary, key=self.vocabulary.__getitem__)
        arrays = {
            "format_version": np.array(_FORMAT_VERSION),
            "vocabulary": np.array(terms, dtype=str),
            "idf": self.idf,
            "components": self.components,
            "min_df": np.array(self.min_df),
            "max_features": np.array(self.max_features),
            "sublinear_tf": np.array(self.sublinear_tf),
            "seed": np.array(self.seed),
            "solver": np.array(self.solver),
        }
        save_arrays(path, arrays)
        logger.info("saved LSA encoder (%d terms, dim %d) to %s", len(terms), self.dim, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "LSAEncoder":
        """Read an encoder written by :meth:`save`.

        Raises
        ------
        ValueError
            If the file lacks a field or its arrays disagree in shape.
        """
        path = Path(path)
        with np.load(path, allow_pickle=False) as stored:
            required = ("format_version", "vocabulary", "idf", "components", "min_df",
                        "max_features", "sublinear_tf", "seed", "solver")
            missing = [name for name in required if name not in stored.files]
            if missing:
                raise ValueError(
                    f"{path}: missing field(s) {missing}; expected a file written by "
                    "LSAEncoder.save (refit and save the encoder again)"
                )
            version = int(stored["format_version"])
            if version != _FORMAT_VERSION:
                raise ValueError(
                    f"{path}: format version {version}, expected {_FORMAT_VERSION} "
                    "(refit and save the encoder with this minirec version)"
                )
            terms = [str(term) for term in stored["vocabulary"]]
            idf = stored["idf"].astype(np.float64)
            components = stored["components"].astype(np.float32)
            encoder = cls(
                dim=components.shape[0],
                min_df=int(stored["min_df"]),
                max_features=int(stored["max_features"]),
                sublinear_tf=bool(stored["sublinear_tf"]),
                seed=int(stored["seed"]),
                solver=str(stored["solver"]),
            )
        if components.ndim != 2 or components.shape[1] != len(terms) or idf.shape != (len(terms),):
            raise ValueError(
                f"{path}: vocabulary has {len(terms)} terms but idf has shape {idf.shape} "
                f"and components {components.shape}; expected ({len(terms)},) and "
                f"(dim, {len(terms)}) (the file is damaged, save it again)"
            )
        encoder.vocabulary = {term: column for column, term in enumerate(terms)}
        encoder.idf = idf
        encoder.components = components
        return encoder


def _normalize_rows(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """Scale each row of a CSR matrix to unit L2 norm, leaving all-zero rows at zero."""
    squared = np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel()
    norms = np.sqrt(squared)
    norms[norms == 0.0] = 1.0
    return sp.diags(1.0 / norms) @ matrix
