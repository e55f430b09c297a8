"""Markdown reports and JSON results of the experiments, with optional PNG plots.

Each experiment writes ``DIR/NAME/report.md`` (its tables, with the original report's figures in
columns beside minirec's) and ``DIR/NAME/results.json`` (the same numbers, machine-readable).
Plots need matplotlib (the ``plot`` extra). Without it the report has tables only, and one log line
reports that.
"""

from __future__ import annotations

import json
import logging
import math
import shlex
import sys
from pathlib import Path
from typing import Sequence

from minirec.experiments.reference import ORIGINAL_SOURCE
from minirec.files import write_atomically, write_text_atomic
from minirec.model.config import TrainConfig

logger = logging.getLogger(__name__)

METRIC_NAMES = {"auc": "AUC", "mrr": "MRR", "ndcg5": "nDCG@5", "ndcg10": "nDCG@10"}


def fmt(value, digits: int = 4) -> str:
    """Format a table cell: numbers to ``digits`` decimals, a missing value as an empty cell."""
    if value is None:
        return ""
    if isinstance(value, bool) or isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if math.isnan(value):
        return "n/a"
    return f"{value:.{digits}f}"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(cell if isinstance(cell, str) else fmt(cell) for cell in row) + " |")
    return "\n".join(lines)


class ExperimentReport:
    """Collect the sections of one experiment's report, then write report.md and results.json."""

    def __init__(self, name: str, title: str, session):
        self.name, self.title, self.session = name, title, session
        self.directory = session.directory
        self.sections: list[str] = []
        self.results: dict = {"experiment": name, "data": session.describe_data(),
                              "settings": _settings_dict(session.settings),
                              "most_popular_baseline": session.popularity_baseline()}
        self.plots: list[str] = []

    def text(self, paragraph: str) -> None:
        self.sections.append(paragraph.strip())

    def table(self, caption: str, headers: Sequence[str], rows: Sequence[Sequence]) -> None:
        self.sections.append(f"### {caption}\n\n{markdown_table(headers, rows)}")

    def plot(self, filename: str, draw) -> None:
        """Draw a figure with ``draw(axes)`` and save it as ``filename`` when matplotlib is present."""
        pyplot = _pyplot()
        if pyplot is None:
            return
        figure, axes = pyplot.subplots(figsize=(6, 4))
        try:
            draw(axes)
            axes.grid(alpha=0.3)
            figure.tight_layout()
            _save_figure_atomic(figure, self.directory / filename)
        finally:
            pyplot.close(figure)
        self.plots.append(filename)

    def write(self) -> Path:
        """Write report.md and results.json atomically; return the path of report.md."""
        body = "\n\n".join(self._header() + self.sections)
        if self.plots:
            body += "\n\n## Plots\n\n" + "\n\n".join(f"![{name}]({name})" for name in self.plots)
        write_text_atomic(self.directory / "report.md", body + "\n")
        write_text_atomic(self.directory / "results.json", json.dumps(self.results, indent=2, default=_json_value))
        logger.info("%s: wrote %s and results.json", self.name, self.directory / "report.md")
        return self.directory / "report.md"

    def _header(self) -> list[str]:
        data, settings = self.results["data"], self.results["settings"]
        impressions = data["impressions"]
        popular = self.results["most_popular_baseline"]
        size = "quick (dim 32, ID embeddings 16, 4 heads)" if settings["quick"] else "full size"
        plural = "s" if settings["epochs"] != 1 else ""
        return [
            f"# {self.title}",
            f"Command: `{self.session.settings.command or _command_line()}`",
            f"Data: `{data['data']}`. Reported split: {data['reported_split']}. Impressions: "
            f"{impressions['train']:,} training, {impressions['validation']:,} validation (early stopping and "
            f"learning-rate schedule), {impressions['reported']:,} reported. Catalogue: {data['news_in_catalog']:,} "
            f"news, {data['news_with_row']:,} of them with a news.tsv row; {data['users']:,} training users.",
            f"Most-popular baseline on the reported split (candidates ranked by their clicks in the training "
            f"impressions): AUC {popular['auc']:.4f}, MRR {popular['mrr']:.4f}, nDCG@10 {popular['ndcg10']:.4f}.",
            f"Model: {size}; {_objective_text()} unless a row says otherwise; at most {settings['epochs']} "
            f"epoch{plural} per run, with early stopping on validation AUC; seed {settings['seed']}.",
            f"Columns named *original* give the {ORIGINAL_SOURCE}. The data differ, so compare the direction and "
            "the size of the differences between rows, not the absolute values.",
        ]


def _objective_text() -> str:
    default = TrainConfig()
    if default.objective == "listwise":
        return f"trained with the listwise objective (each click against {default.negatives} non-clicks)"
    return "trained with binary cross-entropy over every candidate"


def run_table_rows(results, columns: Sequence[str]) -> list[list]:
    """Return the reported metrics of each run, in ``columns`` order (keys of METRIC_NAMES)."""
    return [[r.reported[c] for c in columns] for r in results]


def plot_training_curves(report: ExperimentReport, results, filename: str = "training_curves.png") -> None:
    """Plot validation AUC per epoch, one line per run."""
    def draw(axes):
        for result in results:
            epochs = [h["epoch"] for h in result.epochs]
            axes.plot(epochs, [h["validation"]["auc"] for h in result.epochs], marker="o", label=result.label)
        axes.set_xlabel("epoch")
        axes.xaxis.get_major_locator().set_params(integer=True)
        axes.set_ylabel("validation AUC")
        axes.legend()

    report.plot(filename, draw)


def plot_sweep(report: ExperimentReport, filename: str, xlabel: str, xs: Sequence[float],
               series: dict[str, Sequence[float]], log_x: bool = False) -> None:
    """Plot each metric of ``series`` against the swept values ``xs``."""
    def draw(axes):
        for name, ys in series.items():
            axes.plot(xs, ys, marker="o", label=name)
        if log_x:
            axes.set_xscale("log")
        axes.set_xlabel(xlabel)
        axes.legend()

    report.plot(filename, draw)


_PYPLOT_STATE: dict = {}


def _pyplot():
    """Return matplotlib.pyplot with a file-only backend, or None (logged once) when it is missing."""
    if "module" not in _PYPLOT_STATE:
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as pyplot
        except ImportError:
            pyplot = None
            logger.info("matplotlib is not installed, so the reports have tables only; "
                        "install the plot extra (pip install 'minirec[plot]') for PNG plots")
        _PYPLOT_STATE["module"] = pyplot
    return _PYPLOT_STATE["module"]


def _save_figure_atomic(figure, path: Path) -> None:
    write_atomically(path, lambda handle: figure.savefig(handle, format="png", dpi=120))


def _settings_dict(settings) -> dict:
    epochs = settings.train_config().epochs
    return {"epochs": epochs, "max_impressions": settings.max_impressions, "quick": settings.quick,
            "seed": settings.seed, "only": list(settings.only)}


def _command_line() -> str:
    program = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "minirec-experiment"
    return " ".join(shlex.quote(part) for part in [program, *sys.argv[1:]])


def _json_value(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)
