"""Training objective: pointwise binary cross-entropy against the listwise softmax of NRMS."""

from __future__ import annotations

from pathlib import Path

from minirec.experiments.report import ExperimentReport, plot_training_curves
from minirec.experiments.runner import ExperimentSession, ExperimentSettings, Variant, select_variants

NEGATIVES = 4

OBJECTIVE_VARIANTS = [
    Variant("pointwise BCE", "bce", train={"objective": "bce"}),
    Variant(f"listwise, K={NEGATIVES}", "listwise", train={"objective": "listwise", "negatives": NEGATIVES}),
]


def run_objective(settings: ExperimentSettings) -> Path:
    """Train the full model with each objective; compare validation and reported metrics."""
    variants = select_variants("objective", OBJECTIVE_VARIANTS, settings.only)
    session = ExperimentSession("objective", settings)
    results = [session.run(variant) for variant in variants]

    report = ExperimentReport("objective", "Training objective: pointwise BCE or listwise softmax", session)
    report.text("Pointwise BCE scores every candidate of an impression as an independent click or non-click. "
                f"The listwise objective draws, for each click, {NEGATIVES} non-clicks of the same impression "
                "(with replacement when fewer exist) and minimises the cross-entropy of a softmax over those "
                f"{NEGATIVES + 1} scores, as NRMS does. Validation decides the best epoch of each run. "
                "The original report has no figures for this comparison.")
    rows = []
    for result in results:
        rows.append([result.label, result.validation["auc"], result.best_epoch, len(result.epochs),
                     result.reported["auc"], result.reported["mrr"], result.reported["ndcg5"],
                     result.reported["ndcg10"], f"{result.seconds_per_epoch:.1f}"])
    report.table(f"Validation AUC of the best epoch, metrics on the reported split ({session.report_split})",
                 ["objective", "validation AUC", "best epoch", "epochs run", "AUC", "MRR", "nDCG@5", "nDCG@10",
                  "s/epoch"], rows)
    report.results["runs"] = [result.summary() for result in results]
    plot_training_curves(report, results)
    return report.write()
