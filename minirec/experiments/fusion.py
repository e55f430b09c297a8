"""Fusion experiments: the method that combines the views (``fusion``) and its learned weights (``fusion-weights``)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from minirec.experiments import reference
from minirec.experiments.report import ExperimentReport, plot_training_curves
from minirec.experiments.runner import ExperimentSession, ExperimentSettings, Variant, select_variants

logger = logging.getLogger(__name__)

FUSION_VARIANTS = [
    Variant("attention", "attention", model={"fusion": "attention"}),
    Variant("concat", "concat", model={"fusion": "concat"}),
    Variant("gate", "gate", model={"fusion": "gate"}),
]

WEIGHTS_VARIANT = Variant("attention, all three views", "attention", model={"fusion": "attention"})


def run_fusion(settings: ExperimentSettings) -> Path:
    """Train attention, concatenation and sigmoid-gate fusion; compare metrics and training time."""
    variants = select_variants("fusion", FUSION_VARIANTS, settings.only)
    session = ExperimentSession("fusion", settings)
    results = [session.run(variant) for variant in variants]

    report = ExperimentReport("fusion", "Fusion of the views: attention, concatenation, gate", session)
    report.text("s/epoch is wall-clock training time per epoch (validation excluded), averaged over the epochs run. "
                "CPU s/epoch is the processor time of the process per epoch, validation and checkpoints included: it "
                "depends far less on other processes sharing the machine, so it is the fairer comparison between "
                "rows. The original's hardware is not stated, so only the ratios between rows compare with it. "
                "A run reused from an earlier call keeps the times measured then.")
    rows = []
    for result in results:
        original = reference.FUSION[result.key]
        rows.append([result.label, result.reported["auc"], result.reported["mrr"], result.reported["ndcg10"],
                     f"{result.seconds_per_epoch:.1f}", _seconds(result.cpu_seconds_per_epoch), result.parameters,
                     result.best_epoch,
                     original["auc"], original["mrr"], f"{original['seconds_per_epoch']:.0f}"])
    report.table(f"Metrics on the reported split ({session.report_split})",
                 ["fusion", "AUC", "MRR", "nDCG@10", "s/epoch", "CPU s/epoch", "parameters", "best epoch",
                  "original AUC", "original MRR", "original s/epoch"], rows)
    report.results["runs"] = [result.summary() for result in results]
    plot_training_curves(report, results)
    return report.write()


def weight_statistics(weights: np.ndarray) -> dict[str, float]:
    """Return mean, standard deviation, minimum and maximum of a 1-D array (NaN when it is empty)."""
    if weights.size == 0:
        return {"mean": float("nan"), "std": float("nan"), "min": float("nan"), "max": float("nan"), "count": 0}
    return {"mean": float(weights.mean()), "std": float(weights.std()), "min": float(weights.min()),
            "max": float(weights.max()), "count": int(weights.size)}


def run_fusion_weights(settings: ExperimentSettings) -> Path:
    """Train the full model and describe its attention weights over the reported split's candidate news."""
    if settings.only:
        raise ValueError("experiment fusion-weights trains one model and has no variants to choose with --only")
    session = ExperimentSession("fusion-weights", settings)
    views = session.base_model.views
    if len(views) < 2:
        raise ValueError("fusion-weights needs at least two views")
    result = session.run(WEIGHTS_VARIANT)

    catalog = session.prepared.inputs.catalog
    rows = np.unique(np.concatenate(session.prepared.report_set.candidates))
    rows = rows[rows > 0]
    _, weights = result.model.encode_news(rows)
    available = result.model.news_encoder.availability(rows)
    # A news item with no view at all has no weights (all zero) and a constant score, so it is left out.
    with_view = available.any(axis=1)
    complete = available.all(axis=1)

    report = ExperimentReport("fusion-weights", "Fusion weights of the views", session)
    report.text(f"Attention weights of the trained full model (best epoch {result.best_epoch}, reported AUC "
                f"{result.reported['auc']:.4f}) over the {rows.size:,} distinct candidate news of the reported split. "
                "A view that a news item lacks gets weight 0 and the others share 1, so news with fewer views "
                f"pull the means apart. {int((~with_view).sum()):,} of these news have no view at all (neither "
                "seen in training nor a news.tsv row): they have no weights and share one vector, the bias of the "
                "news encoder's last layer, so they tie within every impression. They are left out below. "
                f"{int(complete.sum()):,} have all {len(views)} views, and the second table keeps only them.")
    report.table("News with each combination of views",
                 ["views available", "news"],
                 [[" + ".join(v for v, present in zip(views, pattern) if present) or "none", count]
                  for pattern, count in _patterns(available)])

    overall = {}
    for title, subset in (("news with at least one view", with_view), ("news with every view", complete)):
        table_rows = []
        overall[title] = {}
        for column, view in enumerate(views):
            stats = weight_statistics(weights[subset, column])
            overall[title][view] = stats
            original = reference.FUSION_WEIGHTS.get(view, {})
            table_rows.append([view, stats["mean"], stats["std"], f"{_cell(stats['min'])}–{_cell(stats['max'])}",
                               original.get("mean"), original.get("std"),
                               f"{original['min']:.2f}–{original['max']:.2f}" if original else ""])
        report.table(f"Per view, {title} ({int(subset.sum()):,} news)",
                     ["view", "mean", "std", "min–max", "original mean", "original std", "original min–max"],
                     table_rows)

    by_category = {}
    category_rows = []
    for index in np.unique(catalog.category[rows[with_view]]):
        in_category = (catalog.category[rows] == index) & with_view
        name = catalog.categories[index]
        means = {view: float(weights[in_category, column].mean()) for column, view in enumerate(views)}
        by_category[name] = dict(means, news=int(in_category.sum()))
        original = reference.FUSION_WEIGHTS_BY_CATEGORY.get(name, {})
        category_rows.append([name, int(in_category.sum())] + [means[v] for v in views]
                             + [" / ".join(f"{original[v]:.2f}" for v in views if v in original)])
    category_rows.sort(key=lambda row: -row[1])
    report.table("Mean weight per category (news with at least one view; `<unknown>` contains the news without a "
                 "news.tsv row)",
                 ["category", "news"] + [f"{v} mean" for v in views] + ["original " + " / ".join(views)],
                 category_rows)

    report.results["run"] = result.summary()
    report.results["candidate_news"] = int(rows.size)
    report.results["candidate_news_without_view"] = int((~with_view).sum())
    report.results["overall"] = overall
    report.results["by_category"] = by_category
    report.plot("fusion_weights.png", lambda axes: _draw_weight_histogram(axes, weights[complete], views))
    return report.write()


def _patterns(available: np.ndarray) -> list[tuple[tuple[bool, ...], int]]:
    patterns, counts = np.unique(available, axis=0, return_counts=True)
    order = np.argsort(-counts, kind="stable")
    return [(tuple(bool(x) for x in patterns[i]), int(counts[i])) for i in order]


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def _cell(value: float) -> str:
    return "n/a" if np.isnan(value) else f"{value:.2f}"


def _draw_weight_histogram(axes, weights: np.ndarray, views) -> None:
    for column, view in enumerate(views):
        axes.hist(weights[:, column], bins=30, range=(0, 1), alpha=0.5, label=view)
    axes.set_xlabel("fusion weight (news with every view)")
    axes.set_ylabel("news")
    axes.legend()
