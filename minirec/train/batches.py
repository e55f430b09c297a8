"""From behaviors to mini-batches: catalogue rows per impression, padded, with each news item once.

A batch of impressions mentions the same news many times (a popular story sits in many histories
and candidate lists). The batch therefore lists its distinct news once (``news_rows``), the encoder
runs on those, and histories and candidates are gathered from the result by position.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

from minirec.data.catalog import NewsCatalog
from minirec.data.mind import Behaviors
from minirec.data.report import ReadReport


@dataclass
class ImpressionSet:
    """Impressions as catalogue rows; histories keep the most recent ``history_length`` clicks."""

    impression_ids: list[str]
    user_rows: np.ndarray            # (n,) int, 0 = user not seen in training
    histories: list[np.ndarray]      # catalogue rows, oldest first
    candidates: list[np.ndarray]     # catalogue rows in the impression's order
    labels: list[np.ndarray] | None  # 0/1 per candidate, None for an unlabelled (test) file
    times: np.ndarray                # Unix seconds

    def __len__(self) -> int:
        return len(self.impression_ids)


def encode_impressions(behaviors: Behaviors, catalog: NewsCatalog, user_index: dict[str, int],
                       history_length: int, report: ReadReport | None = None,
                       indices: np.ndarray | None = None) -> ImpressionSet:
    """Map the impressions at ``indices`` (all by default) to catalogue rows and user rows.

    A history keeps its last ``history_length`` ids, which in MIND's order are the most recent
    clicks. History ids missing from the catalogue are then dropped, and candidate ids missing from
    it map to row 0, so every candidate is still scored.

    Counted in ``report``: histories cut to ``history_length``, ids the catalogue does not hold,
    history and candidate ids without a news.tsv row (ID-only news), and impressions of users not
    seen in training (they are still scored, with the unknown-user row).
    """
    report = report if report is not None else ReadReport()
    if indices is None:
        indices = np.arange(len(behaviors))
    histories, candidates, labels, users = [], [], [], []
    for i in indices:
        history = behaviors.histories[i]
        if len(history) > history_length:
            report.add("history_truncated")
            history = history[-history_length:]
        history_rows = catalog.rows(history)
        candidate_rows = catalog.rows(behaviors.candidates[i])
        unknown = int((history_rows == 0).sum() + (candidate_rows == 0).sum())
        if unknown:
            report.add("unknown_news", unknown)
        histories.append(history_rows[history_rows > 0])
        candidates.append(candidate_rows)
        if behaviors.labels is not None:
            labels.append(np.asarray(behaviors.labels[i], dtype=np.int8))
        user_row = user_index.get(behaviors.user_ids[i], 0)
        if user_row == 0:
            report.add("unknown_user")
        users.append(user_row)
    _count_id_only_news(catalog, histories, candidates, report)
    return ImpressionSet(
        impression_ids=[behaviors.impression_ids[i] for i in indices],
        user_rows=np.asarray(users, dtype=np.int64),
        histories=histories,
        candidates=candidates,
        labels=labels if behaviors.labels is not None else None,
        times=np.asarray(behaviors.times)[indices],
    )


def _count_id_only_news(catalog: NewsCatalog, histories: list[np.ndarray], candidates: list[np.ndarray],
                        report: ReadReport) -> None:
    """Count history and candidate ids that the catalogue contains without a news.tsv row.

    Row 0 (an id missing from the catalogue) is left out, because ``unknown_news`` counts it already.
    """
    for key, rows_list in (("history_news_without_row", histories), ("candidate_news_without_row", candidates)):
        if not rows_list:
            continue
        rows = np.concatenate(rows_list)
        count = int((~catalog.has_row[rows[rows > 0]]).sum())
        if count:
            report.add(key, count)


@dataclass
class Batch:
    """Padded arrays for ``B`` impressions; positions index into ``news_rows``."""

    user_rows: np.ndarray        # (B,)
    news_rows: np.ndarray        # (U,) distinct catalogue rows
    history_position: np.ndarray  # (B, L) into news_rows
    history_mask: np.ndarray     # (B, L) bool
    history_age: np.ndarray      # (B, L) clicks since this one, 0 for the most recent
    candidate_position: np.ndarray  # (B, C)
    candidate_mask: np.ndarray   # (B, C) bool
    labels: np.ndarray | None    # (B, C) float32, 0 at padding


def make_batch(impressions: ImpressionSet, indices: np.ndarray) -> Batch:
    histories = [impressions.histories[i] for i in indices]
    candidates = [impressions.candidates[i] for i in indices]
    batch = len(indices)
    length = max(1, max(len(h) for h in histories))
    width = max(len(c) for c in candidates)

    history_rows = np.zeros((batch, length), dtype=np.int64)
    history_mask = np.zeros((batch, length), dtype=bool)
    history_age = np.zeros((batch, length), dtype=np.float32)
    candidate_rows = np.zeros((batch, width), dtype=np.int64)
    candidate_mask = np.zeros((batch, width), dtype=bool)
    labels = np.zeros((batch, width), dtype=np.float32) if impressions.labels is not None else None
    for b, (history, candidate) in enumerate(zip(histories, candidates)):
        n = len(history)
        history_rows[b, :n] = history
        history_mask[b, :n] = True
        history_age[b, :n] = np.arange(n - 1, -1, -1)
        candidate_rows[b, :len(candidate)] = candidate
        candidate_mask[b, :len(candidate)] = True
        if labels is not None:
            labels[b, :len(candidate)] = impressions.labels[indices[b]]

    news_rows, inverse = np.unique(np.concatenate([history_rows.ravel(), candidate_rows.ravel()]), return_inverse=True)
    history_position = inverse[:history_rows.size].reshape(history_rows.shape)
    candidate_position = inverse[history_rows.size:].reshape(candidate_rows.shape)
    return Batch(impressions.user_rows[indices], news_rows, history_position, history_mask, history_age,
                 candidate_position, candidate_mask, labels)


def batch_order(count: int, batch_size: int, rng: np.random.Generator | None) -> list[np.ndarray]:
    """Split ``range(count)`` into batches, shuffled when ``rng`` is given."""
    order = rng.permutation(count) if rng is not None else np.arange(count)
    return [order[i:i + batch_size] for i in range(0, count, batch_size)]


def iterate_batches(impressions: ImpressionSet, batch_size: int,
                    rng: np.random.Generator | None = None) -> Iterator[Batch]:
    for indices in batch_order(len(impressions), batch_size, rng):
        yield make_batch(impressions, indices)
