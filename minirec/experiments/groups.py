"""Metrics per group of users (history length) and per group of candidate news (age), against an ID-only model.

MIND gives no publication time, so a news item's age at an impression is the time since its first
appearance in any behaviors file of the data folder, as a candidate or in a history. That first
appearance is the impression time of the earliest impression listing the news. A news item that
sits in a history at the first impression of the files is older than its measured age, so the
oldest group is the least exact.
"""

from __future__ import annotations

import logging
from itertools import chain
from pathlib import Path

import numpy as np

from minirec.data.mind import Behaviors, read_behaviors
from minirec.data.splits import find_splits
from minirec.eval.metrics import evaluate
from minirec.experiments import reference
from minirec.experiments.report import ExperimentReport
from minirec.experiments.runner import ExperimentSession, ExperimentSettings, Variant

logger = logging.getLogger(__name__)

HOUR = 3600.0

# (label, smallest, largest) clicks in the history, both ends included.
USER_GROUPS = [("1-3", 1, 3), ("4-10", 4, 10), ("11-30", 11, 30), ("31+", 31, None)]
# (label, from, to) age in seconds, from included, to excluded.
NEWS_AGE_GROUPS = [("0-6 h", 0.0, 6 * HOUR), ("6-24 h", 6 * HOUR, 24 * HOUR),
                   ("1-3 d", 24 * HOUR, 72 * HOUR), ("3 d+", 72 * HOUR, np.inf)]

FULL_VARIANT = Variant("all three views", "id+text+graph", model={"views": ("id", "text", "graph")})
ID_ONLY_VARIANT = Variant("ID only", "id", model={"views": ("id",)})


def first_appearance(tables: list[Behaviors]) -> dict[str, float]:
    """Return, per news id, the earliest impression time (Unix seconds) of any impression listing it."""
    first: dict[str, float] = {}
    for table in tables:
        for time, history, candidates in zip(table.times.tolist(), table.histories, table.candidates):
            for news_id in chain(history, candidates):
                known = first.get(news_id)
                if known is None or time < known:
                    first[news_id] = time
    return first


def read_behavior_files(data: Path) -> tuple[list[Behaviors], Behaviors]:
    """Read every behaviors file of ``data``; return them all and the one whose impressions are reported.

    The reported impressions come from the dev split when there is one, else from the train split
    (its latest impressions are held out as test).
    """
    splits = find_splits(data)
    train = read_behaviors(splits.train / "behaviors.tsv")
    if splits.dev is None:
        return [train], train
    dev = read_behaviors(splits.dev / "behaviors.tsv")
    return [train, dev], dev


def user_group_of(history_length: int) -> str | None:
    for label, low, high in USER_GROUPS:
        if history_length >= low and (high is None or history_length <= high):
            return label
    return None


def age_group_of(age_seconds: float) -> str:
    for label, low, high in NEWS_AGE_GROUPS:
        if low <= age_seconds < high:
            return label
    raise ValueError(f"negative news age {age_seconds} s: an impression precedes the first appearance of its news")


def compare(labels, full_scores, id_scores) -> dict:
    """Evaluate both models on the same impressions; the gain is the full model's AUC over ID-only's."""
    full = evaluate(labels, full_scores).as_dict()
    id_only = evaluate(labels, id_scores).as_dict()
    gain = full["auc"] - id_only["auc"]
    return {"full": full, "id_only": id_only, "auc_gain": gain,
            "auc_gain_percent": 100.0 * gain / id_only["auc"] if id_only["auc"] > 0 else float("nan")}


def run_groups(settings: ExperimentSettings) -> Path:
    """Train the full model and an ID-only model; compare them per user group and per news-age group."""
    if settings.only:
        raise ValueError("experiment groups trains two fixed models (all views and ID only) and has no variants "
                         "to choose with --only")
    session = ExperimentSession("groups", settings)
    full = session.run(FULL_VARIANT)
    id_only = session.run(ID_ONLY_VARIANT)
    full_scores, id_scores = session.report_scores(full), session.report_scores(id_only)
    report_set = session.prepared.report_set
    catalog = session.prepared.inputs.catalog

    tables, reported_table = read_behavior_files(Path(settings.data))
    first = first_appearance(tables)
    position = {impression_id: i for i, impression_id in enumerate(reported_table.impression_ids)}
    missing = [i for i in report_set.impression_ids if i not in position]
    if missing:
        raise ValueError(f"{len(missing)} reported impressions (first: {missing[0]}) are not in "
                         f"{reported_table.path}: the data folder changed after it was prepared")
    rows_in_file = [position[i] for i in report_set.impression_ids]
    history_lengths = np.array([len(reported_table.histories[i]) for i in rows_in_file])
    users = np.array([reported_table.user_ids[i] for i in rows_in_file])

    report = ExperimentReport("groups", "Metrics per user group and per news-age group", session)
    report.text("Two models are trained: the full model (ID, text and graph views) and an ID-only model. The "
                "gain is the full model's AUC minus the ID-only model's, also given relative to the ID-only AUC. "
                "A user's group is the number of clicks in the impression's history, as behaviors.tsv lists it "
                "(before the model keeps the latest 50).")
    user_results = _user_groups(report, report_set, history_lengths, users, full_scores, id_scores)

    report.text("A candidate's age is the impression time minus the news item's first appearance in any "
                "behaviors file of the data folder (as a candidate or in a history), since MIND has no "
                "publication times. Metrics of a news group score each impression on its candidates of that "
                "group only; an impression without both a click and a non-click among them is left out.")
    ages = []
    for i, candidates in enumerate(report_set.candidates):
        # Row 0 (an id the catalogue lacks) gets age NaN, which falls in no group.
        ages.append(np.array([report_set.times[i] - first[catalog.ids[row - 1]] if row > 0 else np.nan
                              for row in candidates]))
    news_results = _news_groups(report, report_set, ages, full_scores, id_scores)

    report.results["runs"] = [full.summary(), id_only.summary()]
    report.results["user_groups"] = user_results
    report.results["news_age_groups"] = news_results
    report.plot("groups.png", lambda axes: _draw_groups(axes, user_results, news_results))
    return report.write()


def _user_groups(report, report_set, history_lengths, users, full_scores, id_scores) -> dict:
    results = {}
    rows = []
    labels_by_group = [("0 (empty history)", history_lengths == 0)]
    labels_by_group += [(label, np.array([user_group_of(n) == label for n in history_lengths], dtype=bool))
                        for label, _, _ in USER_GROUPS]
    for label, selected in labels_by_group:
        indices = np.flatnonzero(selected)
        if indices.size == 0:
            results[label] = {"users": 0, "impressions": 0}
            rows.append([label, 0, 0, None, None, None, None, None, None] + _original_user(label))
            continue
        comparison = compare([report_set.labels[i] for i in indices], [full_scores[i] for i in indices],
                             [id_scores[i] for i in indices])
        count_users = int(np.unique(users[indices]).size)
        results[label] = dict(comparison, users=count_users, impressions=int(indices.size))
        rows.append([label, count_users, int(indices.size), comparison["full"]["auc"], comparison["full"]["mrr"],
                     comparison["full"]["ndcg10"], comparison["id_only"]["auc"],
                     _signed(comparison["auc_gain"]), _signed(comparison["auc_gain_percent"], 1, "%")]
                    + _original_user(label))
    report.table("Users by clicks in their history (reported split)",
                 ["history clicks", "users", "impressions", "AUC", "MRR", "nDCG@10", "ID-only AUC", "AUC gain",
                  "gain %", "original users", "original AUC", "original nDCG@10"], rows)
    return results


def _news_groups(report, report_set, ages, full_scores, id_scores) -> dict:
    results = {}
    rows = []
    for label, low, high in NEWS_AGE_GROUPS:
        labels, full, id_only = [], [], []
        clicks = candidates = 0
        for i, age in enumerate(ages):
            selected = (age >= low) & (age < high)
            if not selected.any():
                continue
            candidates += int(selected.sum())
            clicks += int(report_set.labels[i][selected].sum())
            labels.append(report_set.labels[i][selected])
            full.append(full_scores[i][selected])
            id_only.append(id_scores[i][selected])
        original = reference.NEWS_AGE_GROUPS[label]
        originals = [original["clicks"], original["auc"], _signed(original["gain_percent"], 1, "%")]
        if not labels:
            results[label] = {"clicks": 0, "candidates": 0}
            rows.append([label, 0, 0, 0, None, None, None, None, None] + originals)
            continue
        comparison = compare(labels, full, id_only)
        results[label] = dict(comparison, clicks=clicks, candidates=candidates)
        rows.append([label, clicks, candidates, comparison["full"]["n_scored"], comparison["full"]["auc"],
                     comparison["full"]["ndcg10"], comparison["id_only"]["auc"], _signed(comparison["auc_gain"]),
                     _signed(comparison["auc_gain_percent"], 1, "%")] + originals)
    report.table("Candidate news by age at impression time (reported split)",
                 ["news age", "clicks", "candidates", "impressions scored", "AUC", "nDCG@10", "ID-only AUC",
                  "AUC gain", "gain %", "original clicks", "original AUC", "original gain %"], rows)
    return results


def _original_user(label: str) -> list:
    original = reference.USER_GROUPS.get(label)
    if original is None:
        return [None, None, None]
    return [original["users"], original["auc"], original["ndcg10"]]


def _signed(value: float, digits: int = 4, unit: str = "") -> str:
    if value is None or np.isnan(value):
        return "n/a"
    return f"{value:+.{digits}f}{unit}"


def _draw_groups(axes, user_results: dict, news_results: dict) -> None:
    labels, full, id_only = [], [], []
    for prefix, results in (("history ", user_results), ("age ", news_results)):
        for label, values in results.items():
            if "full" in values:
                labels.append(prefix + label)
                full.append(values["full"]["auc"])
                id_only.append(values["id_only"]["auc"])
    positions = np.arange(len(labels))
    axes.bar(positions - 0.2, full, width=0.4, label="all views")
    axes.bar(positions + 0.2, id_only, width=0.4, label="ID only")
    axes.set_xticks(positions, labels, rotation=45, ha="right")
    axes.set_ylabel("AUC")
    axes.set_ylim(0.4, max(full + id_only + [0.6]) + 0.02)
    axes.legend()
