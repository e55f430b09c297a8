"""Experiments of the original design's report, each reproduced by one ``minirec-experiment NAME DATA`` call.

:data:`EXPERIMENTS` maps each name to the function that runs it. Every function takes an
:class:`~minirec.experiments.runner.ExperimentSettings` and returns the path of the report it wrote.
"""

from __future__ import annotations

from minirec.experiments.ablation import run_coverage, run_views
from minirec.experiments.fusion import run_fusion, run_fusion_weights
from minirec.experiments.groups import run_groups
from minirec.experiments.objective import run_objective
from minirec.experiments.runner import ExperimentSettings
from minirec.experiments.sweeps import run_dropout, run_lr, run_tau

EXPERIMENTS = {
    "views": run_views,
    "fusion": run_fusion,
    "tau": run_tau,
    "coverage": run_coverage,
    "lr": run_lr,
    "dropout": run_dropout,
    "groups": run_groups,
    "fusion-weights": run_fusion_weights,
    "objective": run_objective,
}

__all__ = ["EXPERIMENTS", "ExperimentSettings"]
