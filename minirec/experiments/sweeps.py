"""One-setting sweeps of the full model: temperature ``tau``, learning rate ``lr`` and ``dropout``."""

from __future__ import annotations

from pathlib import Path

from minirec.experiments import reference
from minirec.experiments.report import ExperimentReport, plot_sweep, plot_training_curves
from minirec.experiments.runner import ExperimentSession, ExperimentSettings, Variant, select_variants

TAU_VARIANTS = [Variant(label, label, model={"tau": value}, value=value)
                for label, value in (("0.5", 0.5), ("1", 1.0), ("2", 2.0), ("5", 5.0), ("10", 10.0))]

LR_VARIANTS = [Variant(label, label, train={"lr": value}, value=value)
               for label, value in (("1e-4", 1e-4), ("5e-4", 5e-4), ("1e-3", 1e-3), ("5e-3", 5e-3))]

DROPOUT_VARIANTS = [Variant(label, label, model={"dropout": value}, value=value)
                    for label, value in (("0.1", 0.1), ("0.2", 0.2), ("0.3", 0.3), ("0.4", 0.4))]

CONVERGENCE_NOTE = ("The best epoch is the epoch with the highest validation AUC, whose weights are kept and "
                    "reported. Training stops 3 epochs after it (early stopping) or at the epoch limit, so a best "
                    "epoch equal to the limit means the run had not converged.")


def run_tau(settings: ExperimentSettings) -> Path:
    """Sweep the temperature of sigmoid(tau * cos): the initial score range, final AUC and best epoch."""
    variants = select_variants("tau", TAU_VARIANTS, settings.only)
    session = ExperimentSession("tau", settings)
    results = [session.run(variant) for variant in variants]

    report = ExperimentReport("tau", "Temperature tau of the score sigmoid(tau * cos)", session)
    report.text("The initial range is the lowest and highest score of the untrained model over every "
                "candidate of the validation split. Every row starts from the same weights (one seed), so "
                "the cosines are the same and only tau stretches them. " + CONVERGENCE_NOTE)
    rows = []
    for result in results:
        original = reference.TAU[result.key]
        low, high = result.initial_range
        rows.append([result.label, f"[{low:.3f}, {high:.3f}]", result.validation["auc"], result.best_epoch,
                     len(result.epochs), result.reported["auc"], result.reported["mrr"],
                     f"[{original['initial_min']:.2f}, {original['initial_max']:.2f}]",
                     original["auc"] if original["auc"] is not None else "failed", original["convergence"]])
    report.table(f"Initial range on validation, metrics on the reported split ({session.report_split})",
                 ["tau", "initial range", "validation AUC", "best epoch", "epochs run", "AUC", "MRR",
                  "original range", "original AUC", "original convergence"], rows)
    report.results["runs"] = [result.summary() for result in results]
    plot_sweep(report, "tau.png", "tau", [v.value for v in variants],
               {"AUC": [r.reported["auc"] for r in results],
                "validation AUC": [r.validation["auc"] for r in results]}, log_x=True)
    plot_training_curves(report, results)
    return report.write()


def run_lr(settings: ExperimentSettings) -> Path:
    """Sweep the AdamW learning rate: best epoch and metrics."""
    variants = select_variants("lr", LR_VARIANTS, settings.only)
    session = ExperimentSession("lr", settings)
    results = [session.run(variant) for variant in variants]

    report = ExperimentReport("lr", "Learning rate", session)
    report.text("The learning rate is the starting one. The plateau schedule halves it after 3 epochs without "
                "a better validation AUC, which is also when early stopping ends training, so a run keeps its "
                "starting rate unless validation AUC rises by less than the schedule's relative threshold of "
                "1e-4. " + CONVERGENCE_NOTE)
    rows = []
    for result in results:
        original = reference.LEARNING_RATE[result.key]
        rows.append([result.label, result.best_epoch, len(result.epochs), result.validation["auc"],
                     result.reported["auc"], result.reported["mrr"], result.reported["ndcg10"],
                     original["best_epoch"], original["auc"]])
    report.table(f"Metrics on the reported split ({session.report_split})",
                 ["lr", "best epoch", "epochs run", "validation AUC", "AUC", "MRR", "nDCG@10",
                  "original best epoch", "original AUC"], rows)
    report.results["runs"] = [result.summary() for result in results]
    plot_sweep(report, "lr.png", "learning rate", [v.value for v in variants],
               {"AUC": [r.reported["auc"] for r in results]}, log_x=True)
    plot_training_curves(report, results)
    return report.write()


def run_dropout(settings: ExperimentSettings) -> Path:
    """Sweep the dropout of the view projections and the user encoder."""
    variants = select_variants("dropout", DROPOUT_VARIANTS, settings.only)
    session = ExperimentSession("dropout", settings)
    results = [session.run(variant) for variant in variants]

    report = ExperimentReport("dropout", "Dropout", session)
    report.text("The swept dropout applies after each view projection and in the user encoder; GraphSAGE keeps "
                "its own dropout of 0.2.")
    rows = []
    for result in results:
        original = reference.DROPOUT[result.key]
        rows.append([result.label, result.reported["auc"], result.reported["mrr"], result.reported["ndcg10"],
                     result.validation["auc"], result.best_epoch, original["auc"]])
    report.table(f"Metrics on the reported split ({session.report_split})",
                 ["dropout", "AUC", "MRR", "nDCG@10", "validation AUC", "best epoch", "original AUC"], rows)
    report.results["runs"] = [result.summary() for result in results]
    plot_sweep(report, "dropout.png", "dropout", [v.value for v in variants],
               {"AUC": [r.reported["auc"] for r in results]})
    plot_training_curves(report, results)
    return report.write()
