"""``minirec-experiment``: reproduce one experiment of the original design's report."""

from __future__ import annotations

import logging
import shlex
import time
from pathlib import Path

import click

from minirec.cli.train import setup_logging

NAMES = ("views", "fusion", "tau", "coverage", "lr", "dropout", "groups", "fusion-weights", "objective")


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("name", type=click.Choice(NAMES))
@click.argument("data", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("runs/experiments"),
              show_default=True, help="Output folder; the experiment writes OUT/NAME/report.md, results.json, "
                                      "experiment.log and one training folder per run in OUT/NAME/runs/.")
@click.option("--epochs", type=click.IntRange(1), default=None,
              help="Maximum epochs per run (early stopping may end a run sooner). Default: 10, or 1 with --quick.")
@click.option("--max-impressions", type=click.IntRange(1), default=None,
              help="Train on the latest N training impressions only.")
@click.option("--quick", is_flag=True,
              help="Small model (dim 32, ID embeddings 16, 4 heads, 32-d LSA) and 1 epoch, for tests and smoke runs.")
@click.option("--only", default="",
              help="Comma-separated variants of the sweep to run (for example --only 1,2 for tau); default: all.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--fresh", is_flag=True,
              help="Train every run again instead of reusing or resuming runs in OUT/NAME/runs.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def main(name, data, out, epochs, max_impressions, quick, only, seed, fresh, quiet):
    """Run experiment NAME on the MIND folder DATA and write its report with the original figures beside it.

    \b
    views           ID only, ID + text, ID + graph, all three views
    fusion          attention, concatenation and gate fusion: metrics and seconds per epoch
    tau             tau in {0.5, 1, 2, 5, 10}: initial score range, final AUC, best epoch
    coverage        text vectors for 3%, 10%, 50%, 100% of the news that have one
    lr              learning rate in {1e-4, 5e-4, 1e-3, 5e-3}
    dropout         dropout in {0.1, 0.2, 0.3, 0.4}
    groups          metrics per user history length and per news age, with the gain over ID only
    fusion-weights  attention weights per view, overall and per category
    objective       pointwise BCE against the listwise softmax of NRMS (K=4)

    DATA is a MIND split folder or a parent holding train/ and dev/, as for minirec-train. Runs that
    finished in an earlier call with the same settings are reused, and interrupted runs resume.
    """
    from minirec.data.mind import MindFormatError
    from minirec.experiments import EXPERIMENTS, ExperimentSettings

    setup_logging(out / name / "experiment.log")
    log = logging.getLogger("minirec")
    settings = ExperimentSettings(
        data=data, out=out, epochs=epochs, max_impressions=max_impressions, quick=quick,
        only=tuple(choice.strip() for choice in only.split(",") if choice.strip()), fresh=fresh,
        progress=not quiet, seed=seed, command=_command(click.get_current_context()),
    )
    started = time.monotonic()
    try:
        report = EXPERIMENTS[name](settings)
    except (ValueError, FileNotFoundError, MindFormatError) as error:
        log.error("%s", error)
        raise SystemExit(1) from None
    click.echo(f"{name}: report written to {report} in {time.monotonic() - started:.0f}s")


def _command(context: click.Context) -> str:
    """Rebuild the command line from the parsed parameters, for the top of the report."""
    params = context.params
    parts = ["minirec-experiment", params["name"], str(params["data"]), "--out", str(params["out"])]
    for option in ("epochs", "max_impressions", "seed"):
        if params[option] is not None and not (option == "seed" and params[option] == 0):
            parts += ["--" + option.replace("_", "-"), str(params[option])]
    for flag in ("quick", "fresh"):
        if params[flag]:
            parts.append("--" + flag)
    if params["only"]:
        parts += ["--only", params["only"]]
    return " ".join(shlex.quote(part) for part in parts)


if __name__ == "__main__":
    main()
