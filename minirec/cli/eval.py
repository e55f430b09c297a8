"""``minirec-eval``: score a MIND prediction file against a labelled behaviors.tsv."""

from __future__ import annotations

import json
import logging
import math
import zipfile
from pathlib import Path

import click

from minirec.data.mind import MindFormatError
from minirec.eval.prediction import score_prediction


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("prediction", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("truth_behaviors", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def main(prediction: Path, truth_behaviors: Path, as_json: bool) -> None:
    """Score PREDICTION (prediction.txt or a zip containing it) against TRUTH_BEHAVIORS.

    Prints MIND's metrics, each averaged over impressions: AUC, MRR, nDCG@5 and nDCG@10.
    Impressions without both a click and a non-click are skipped and counted.
    """
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        result = score_prediction(prediction, truth_behaviors)
    except (MindFormatError, ValueError, FileNotFoundError, zipfile.BadZipFile) as error:
        raise click.ClickException(str(error)) from None

    if as_json:
        # JSON has no NaN, which is what the means are when no impression was scored.
        fields = {
            key: None if isinstance(value, float) and math.isnan(value) else value
            for key, value in result.as_dict().items()
        }
        click.echo(json.dumps(fields))
        return
    click.echo(f"AUC      {result.auc:.4f}")
    click.echo(f"MRR      {result.mrr:.4f}")
    click.echo(f"nDCG@5   {result.ndcg5:.4f}")
    click.echo(f"nDCG@10  {result.ndcg10:.4f}")
    click.echo(f"scored impressions   {result.n_scored:,} of {result.n_impressions:,}")
    click.echo(f"skipped impressions  {result.n_skipped:,} (without both a click and a non-click)")


if __name__ == "__main__":
    main()
