"""Numba kernels for tau * cosine scores: grouped by impression for inference, padded with a gradient for training.

The candidates of all impressions lie in one flat array of news rows, and impression i owns the
positions ``offsets[i]:offsets[i + 1]`` of it (the CSR layout). For user vector u_i and news
vector n_r the kernel returns

    logit = tau * cos(u_i, n_r) = tau * u_i . n_r / (max(||u_i||, eps) * max(||n_r||, eps))
    score = sigmoid(logit)

Without padding, the work is the number of candidates, not the number of impressions times
the longest candidate list of their batch.

Training scores padded (impression, candidate) arrays, because its batches are padded anyway,
and it needs the gradient. :func:`padded_cosine_logits` and :func:`padded_cosine_logits_backward`
compute ``Recommender.score_logits`` and its backward rule in one pass each. Normalising,
multiplying and summing as separate autograd operations would write several temporaries of the
full (impression, candidate, dim) size instead.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from scipy.special import expit

# The eps of minirec.autograd.functional.l2_normalize, so the kernel reproduces score_logits.
NORM_EPS = 1e-12

# Letting LLVM reorder the float64 sums lets it vectorise the dot products. In a one-off measurement
# on one thread, 2.9 million candidates drawn from 11,000 random 256-d news vectors took 1.1 s with
# these flags and 2.5 s without (load average 5). NaN and infinity keep their IEEE meaning, because
# only these two fast-math flags are set.
SUM_FLAGS = {"reassoc", "contract"}

# Multiply-adds (candidates * dim) from which the threaded kernel is used.
# NOTE: a rough threshold, as in minirec.graph.kernels: below it, starting Numba's
# worker threads can cost more than they save, most of all on a busy machine.
PARALLEL_MIN_WORK = 20_000_000


@numba.njit(cache=True)
def _sigmoid(z):
    # exp of a non-positive number never overflows.
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


@numba.njit(cache=True, fastmath=SUM_FLAGS)
def _score_impression(users, news, rows, offsets, tau, apply_sigmoid, out, impression):
    user = users[impression]
    squared = 0.0
    for k in range(len(user)):
        squared += user[k] * user[k]
    user_norm = max(math.sqrt(squared), NORM_EPS)
    for position in range(offsets[impression], offsets[impression + 1]):
        candidate = news[rows[position]]
        # float64 accumulators keep the rounding error of these long sums far below float32's.
        dot = 0.0
        squared = 0.0
        for k in range(len(candidate)):
            dot += user[k] * candidate[k]
            squared += candidate[k] * candidate[k]
        logit = tau * dot / (user_norm * max(math.sqrt(squared), NORM_EPS))
        out[position] = _sigmoid(logit) if apply_sigmoid else logit


@numba.njit(cache=True)
def _score_serial(users, news, rows, offsets, tau, apply_sigmoid, out):
    for impression in range(len(offsets) - 1):
        _score_impression(users, news, rows, offsets, tau, apply_sigmoid, out, impression)


@numba.njit(cache=True, parallel=True)
def _score_parallel(users, news, rows, offsets, tau, apply_sigmoid, out):
    # Impressions write disjoint slices of ``out``, so threads never write the same position.
    for impression in numba.prange(len(offsets) - 1):
        _score_impression(users, news, rows, offsets, tau, apply_sigmoid, out, impression)


@numba.njit(cache=True, fastmath=SUM_FLAGS)
def _padded_forward_impression(users, candidates, tau, logits, cosines, user_norms, candidate_norms, impression):
    user = users[impression]
    squared = 0.0
    for k in range(len(user)):
        squared += user[k] * user[k]
    user_norms[impression] = math.sqrt(squared)
    user_scale = max(user_norms[impression], NORM_EPS)
    for position in range(candidates.shape[1]):
        candidate = candidates[impression, position]
        dot = 0.0
        squared = 0.0
        for k in range(len(candidate)):
            dot += user[k] * candidate[k]
            squared += candidate[k] * candidate[k]
        candidate_norms[impression, position] = math.sqrt(squared)
        cosines[impression, position] = dot / (user_scale * max(math.sqrt(squared), NORM_EPS))
        logits[impression, position] = tau * cosines[impression, position]


@numba.njit(cache=True)
def _padded_forward_serial(users, candidates, tau, logits, cosines, user_norms, candidate_norms):
    for impression in range(len(users)):
        _padded_forward_impression(users, candidates, tau, logits, cosines, user_norms, candidate_norms, impression)


@numba.njit(cache=True, parallel=True)
def _padded_forward_parallel(users, candidates, tau, logits, cosines, user_norms, candidate_norms):
    for impression in numba.prange(len(users)):
        _padded_forward_impression(users, candidates, tau, logits, cosines, user_norms, candidate_norms, impression)


@numba.njit(cache=True, fastmath=SUM_FLAGS)
def _padded_backward_impression(users, candidates, grad_logits, cosines, user_norms, candidate_norms, tau,
                                grad_users, grad_candidates, impression):
    user = users[impression]
    user_scale = max(user_norms[impression], NORM_EPS)
    # sum over candidates of dL/d(unit user), projected at the end.
    grad_unit_user = np.zeros(len(user))
    for position in range(candidates.shape[1]):
        candidate = candidates[impression, position]
        candidate_scale = max(candidate_norms[impression, position], NORM_EPS)
        weight = grad_logits[impression, position] * tau
        cosine = cosines[impression, position]
        # A vector whose norm is clamped to eps is divided by eps, and its gradient is not projected.
        projection = cosine if candidate_norms[impression, position] > NORM_EPS else 0.0
        out = grad_candidates[impression, position]
        for k in range(len(candidate)):
            unit_candidate = candidate[k] / candidate_scale
            out[k] = weight * (user[k] / user_scale - projection * unit_candidate) / candidate_scale
            grad_unit_user[k] += weight * unit_candidate
    along_user = 0.0
    if user_norms[impression] > NORM_EPS:
        for k in range(len(user)):
            along_user += grad_unit_user[k] * user[k] / user_scale
    for k in range(len(user)):
        grad_users[impression, k] = (grad_unit_user[k] - along_user * user[k] / user_scale) / user_scale


@numba.njit(cache=True)
def _padded_backward_serial(users, candidates, grad_logits, cosines, user_norms, candidate_norms, tau,
                            grad_users, grad_candidates):
    for impression in range(len(users)):
        _padded_backward_impression(users, candidates, grad_logits, cosines, user_norms, candidate_norms, tau,
                                    grad_users, grad_candidates, impression)


@numba.njit(cache=True, parallel=True)
def _padded_backward_parallel(users, candidates, grad_logits, cosines, user_norms, candidate_norms, tau,
                              grad_users, grad_candidates):
    # Each impression writes its own row of grad_users and its own slice of grad_candidates.
    for impression in numba.prange(len(users)):
        _padded_backward_impression(users, candidates, grad_logits, cosines, user_norms, candidate_norms, tau,
                                    grad_users, grad_candidates, impression)


def padded_cosine_logits(
    users: np.ndarray, candidates: np.ndarray, tau: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Compute tau * cos(u_b, c_bj) for users (B, D) and padded candidates (B, C, D).

    Returns
    -------
    logits : np.ndarray
        (B, C) in the dtype of the inputs.
    cosines, user_norms, candidate_norms : np.ndarray
        (B, C), (B,) and (B, C) float64: the cosines and the Euclidean norms, which
        :func:`padded_cosine_logits_backward` reuses.
    """
    if users.ndim != 2 or candidates.ndim != 3 or candidates.shape[::2] != users.shape:
        raise ValueError(
            f"users must be (batch, dim) and candidates (batch, candidates, dim), got shapes {users.shape} "
            f"and {candidates.shape}"
        )
    dtype = np.result_type(users.dtype, candidates.dtype, np.float32)
    users = np.ascontiguousarray(users, dtype=dtype)
    candidates = np.ascontiguousarray(candidates, dtype=dtype)
    logits = np.empty(candidates.shape[:2], dtype=dtype)
    cosines = np.empty(candidates.shape[:2])
    user_norms = np.empty(len(users))
    candidate_norms = np.empty(candidates.shape[:2])
    parallel = candidates.size >= PARALLEL_MIN_WORK
    kernel = _padded_forward_parallel if parallel else _padded_forward_serial
    kernel(users, candidates, float(tau), logits, cosines, user_norms, candidate_norms)
    return logits, cosines, user_norms, candidate_norms


def padded_cosine_logits_backward(
    users: np.ndarray,
    candidates: np.ndarray,
    grad_logits: np.ndarray,
    cosines: np.ndarray,
    user_norms: np.ndarray,
    candidate_norms: np.ndarray,
    tau: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Return dL/d(users) (B, D) and dL/d(candidates) (B, C, D) given dL/d(logits) (B, C).

    With unit vectors u' = u / ||u||, c' = c / ||c|| and cos = u' . c', a logit z = tau * cos has

        dz/dc = tau * (u' - cos * c') / ||c||,    dz/du = tau * (c' - cos * u') / ||u||.

    A norm at or below ``NORM_EPS`` is replaced by ``NORM_EPS`` and its projection term dropped,
    as in the backward rule of ``minirec.autograd.functional.l2_normalize``.
    """
    dtype = np.result_type(users.dtype, candidates.dtype, np.float32)
    users = np.ascontiguousarray(users, dtype=dtype)
    candidates = np.ascontiguousarray(candidates, dtype=dtype)
    grad_logits = np.ascontiguousarray(grad_logits, dtype=dtype)
    grad_users = np.empty_like(users)
    grad_candidates = np.empty_like(candidates)
    parallel = candidates.size >= PARALLEL_MIN_WORK
    kernel = _padded_backward_parallel if parallel else _padded_backward_serial
    kernel(users, candidates, grad_logits, cosines, user_norms, candidate_norms, float(tau),
           grad_users, grad_candidates)
    return grad_users, grad_candidates


def concatenate_groups(groups: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Join per-impression arrays of news rows into one flat array and its offsets.

    Returns
    -------
    rows : np.ndarray
        int64 of shape (total,), the groups one after another.
    offsets : np.ndarray
        int64 of shape (len(groups) + 1,): group i is ``rows[offsets[i]:offsets[i + 1]]``.
    """
    lengths = np.fromiter((len(group) for group in groups), dtype=np.int64, count=len(groups))
    offsets = np.zeros(len(groups) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    rows = np.concatenate(groups).astype(np.int64, copy=False) if groups else np.zeros(0, dtype=np.int64)
    return rows, offsets


def _check_inputs(users: np.ndarray, news: np.ndarray, rows: np.ndarray, offsets: np.ndarray) -> None:
    if users.ndim != 2 or news.ndim != 2 or users.shape[1] != news.shape[1]:
        raise ValueError(
            f"users must be (impressions, dim) and news (rows, dim) with the same dim, got shapes "
            f"{users.shape} and {news.shape}"
        )
    if rows.ndim != 1 or rows.dtype.kind not in "iu":
        raise ValueError(f"candidate rows must be a 1-D integer array, got shape {rows.shape} and dtype {rows.dtype}")
    if offsets.ndim != 1 or len(offsets) != len(users) + 1:
        raise ValueError(
            f"offsets must have one entry per impression plus one ({len(users) + 1}), got shape {offsets.shape}"
        )
    if offsets[0] != 0 or offsets[-1] != len(rows) or np.any(np.diff(offsets) < 0):
        raise ValueError(
            f"offsets must rise from 0 to the number of candidate rows ({len(rows)}), got "
            f"offsets[0] = {offsets[0]}, offsets[-1] = {offsets[-1]}; build them with concatenate_groups"
        )
    # An index outside [0, len(news)) would make the kernel read out of bounds, which Numba does not check.
    if len(rows) and (rows.min() < 0 or rows.max() >= len(news)):
        raise ValueError(f"candidate rows range from {rows.min()} to {rows.max()}; expected values in [0, {len(news)})")


def score_grouped(
    users: np.ndarray,
    news: np.ndarray,
    rows: np.ndarray,
    offsets: np.ndarray,
    tau: float,
    apply_sigmoid: bool = False,
) -> np.ndarray:
    """Score every candidate against the user of its impression: tau * cosine, or its sigmoid.

    Parameters
    ----------
    users : np.ndarray
        (impressions, dim), the user vector of each impression.
    news : np.ndarray
        (news rows, dim), the vectors that ``rows`` index.
    rows : np.ndarray
        (candidates,) int, the news row of each candidate, impression after impression.
    offsets : np.ndarray
        (impressions + 1,) int: impression i owns ``rows[offsets[i]:offsets[i + 1]]``.
    tau : float
        Temperature of the cosine.
    apply_sigmoid : bool
        Return click probabilities ``sigmoid(tau * cos)`` instead of logits.

    Returns
    -------
    np.ndarray
        (candidates,), in the dtype of ``users`` and ``news`` combined (float32 for float32 inputs).
    """
    dtype = np.result_type(users.dtype, news.dtype, np.float32)
    users = np.ascontiguousarray(users, dtype=dtype)
    news = np.ascontiguousarray(news, dtype=dtype)
    rows = np.asarray(rows)
    offsets = np.asarray(offsets, dtype=np.int64)
    _check_inputs(users, news, rows, offsets)
    out = np.empty(len(rows), dtype=dtype)
    kernel = _score_parallel if len(rows) * users.shape[1] >= PARALLEL_MIN_WORK else _score_serial
    kernel(users, news, rows, offsets, float(tau), bool(apply_sigmoid), out)
    return out


def score_grouped_reference(
    users: np.ndarray,
    news: np.ndarray,
    rows: np.ndarray,
    offsets: np.ndarray,
    tau: float,
    apply_sigmoid: bool = False,
) -> np.ndarray:
    """Compute :func:`score_grouped` with NumPy (each user repeated once per candidate); the reference."""
    dtype = np.result_type(users.dtype, news.dtype, np.float32)
    counts = np.diff(np.asarray(offsets))
    unit_users = users / np.maximum(np.linalg.norm(users, axis=1, keepdims=True), NORM_EPS)
    candidates = news[np.asarray(rows)]
    unit_candidates = candidates / np.maximum(np.linalg.norm(candidates, axis=1, keepdims=True), NORM_EPS)
    logits = tau * np.einsum("ij,ij->i", unit_candidates, np.repeat(unit_users, counts, axis=0))
    return (expit(logits) if apply_sigmoid else logits).astype(dtype)
