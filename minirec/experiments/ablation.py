"""Ablations of the news encoder's inputs: the views it fuses (``views``) and the news with text (``coverage``)."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np

from minirec.experiments import reference
from minirec.experiments.report import ExperimentReport, plot_sweep, plot_training_curves
from minirec.experiments.runner import ExperimentSession, ExperimentSettings, Variant, select_variants
from minirec.model.news_encoder import NewsInputs

logger = logging.getLogger(__name__)

VIEW_VARIANTS = [
    Variant("ID only", "id", model={"views": ("id",)}),
    Variant("ID + text", "id+text", model={"views": ("id", "text")}),
    Variant("ID + graph", "id+graph", model={"views": ("id", "graph")}),
    Variant("all three", "id+text+graph", model={"views": ("id", "text", "graph")}),
]

COVERAGE_VARIANTS = [
    Variant("3%", "3pct", value=0.03),
    Variant("10%", "10pct", value=0.10),
    Variant("50%", "50pct", value=0.50),
    Variant("100%", "100pct", value=1.00),
]


def run_views(settings: ExperimentSettings) -> Path:
    """Train ID only, ID + text, ID + graph and all three views; compare them on the reported split."""
    variants = select_variants("views", VIEW_VARIANTS, settings.only)
    session = ExperimentSession("views", settings)
    results = [session.run(variant) for variant in variants]

    report = ExperimentReport("views", "Views: ID, text and graph", session)
    report.text("Each row trains the recommender with the listed news views, fused by attention. "
                "A news item lacking one of the views (no news.tsv row, or not seen in training) is "
                "encoded from the views it has.")
    rows = []
    for result in results:
        original = reference.VIEWS[result.key]
        rows.append([result.label, result.reported["auc"], result.reported["mrr"], result.reported["ndcg5"],
                     result.reported["ndcg10"], result.validation["auc"], result.best_epoch,
                     original["auc"], original["mrr"]])
    report.table(f"Metrics on the reported split ({session.report_split})",
                 ["views", "AUC", "MRR", "nDCG@5", "nDCG@10", "validation AUC", "best epoch",
                  "original AUC", "original MRR"], rows)
    report.results["runs"] = [result.summary() for result in results]
    plot_training_curves(report, results)
    return report.write()


def hide_text(inputs: NewsInputs, share: float, seed: int) -> tuple[NewsInputs, int]:
    """Return inputs in which only a seeded random ``share`` of the news with text keep their text vector.

    The subsets are nested: with one seed, the news kept at 10% include those kept at 3%, so the
    runs differ only in how many news have text. Returns the new inputs and the number of news kept.
    """
    with_text = np.flatnonzero(inputs.has_text)
    order = np.random.default_rng(seed).permutation(with_text)
    kept_rows = order[:int(round(share * with_text.size))]
    has_text = np.zeros_like(inputs.has_text)
    has_text[kept_rows] = True
    return dataclasses.replace(inputs, has_text=has_text), int(kept_rows.size)


def run_coverage(settings: ExperimentSettings) -> Path:
    """Train with text vectors for 3%, 10%, 50% and 100% of the news that have one."""
    variants = select_variants("coverage", COVERAGE_VARIANTS, settings.only)
    session = ExperimentSession("coverage", settings)
    inputs = session.prepared.inputs
    if inputs.has_text is None:
        raise ValueError("the coverage experiment needs the text view, but the prepared data has no text vectors")
    available = int(inputs.has_text.sum())
    catalogue = len(inputs.catalog) - 1

    results, text_counts = [], []
    for variant in variants:
        masked, with_text = hide_text(inputs, variant.value, settings.seed)
        logger.info("coverage %s: %d of the %d news with a text vector keep it", variant.label, with_text, available)
        results.append(session.run(variant, inputs=masked,
                                   extra={"text_share": variant.value, "news_with_text": with_text}))
        text_counts.append(with_text)

    report = ExperimentReport("coverage", "Coverage of the text view", session)
    report.text(f"{available:,} of the {catalogue:,} catalogue news have a text vector. Each row hides the text "
                "vector of all but a seeded random share of them (nested subsets), and trains the full model "
                "(ID, text and graph views) on what remains.")
    rows = []
    for result, with_text in zip(results, text_counts):
        original = reference.COVERAGE[result.label]
        rows.append([result.label, with_text, f"{100.0 * with_text / max(catalogue, 1):.1f}", result.reported["auc"],
                     result.reported["mrr"], result.reported["ndcg10"], f"{100.0 * original['share']:.2f}",
                     original["auc"], original["ndcg10"]])
    report.table(f"Metrics on the reported split ({session.report_split})",
                 ["text share", "news with text", "% of catalogue", "AUC", "MRR", "nDCG@10",
                  "original share (%)", "original AUC", "original nDCG@10"], rows)
    report.results["runs"] = [dict(result.summary(), news_with_text=with_text)
                              for result, with_text in zip(results, text_counts)]
    plot_sweep(report, "coverage.png", "share of news with a text vector",
               [r.value for r in variants],
               {"AUC": [r.reported["auc"] for r in results], "nDCG@10": [r.reported["ndcg10"] for r in results]},
               log_x=True)
    plot_training_curves(report, results)
    return report.write()
