"""``minirec-predict``: rank the candidates of a behaviors file with a trained model."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import click


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("behaviors", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("prediction.zip"),
              show_default=True, help="prediction.txt, or a .zip holding prediction.txt at its root (leaderboard format).")
def main(model_dir, behaviors, out):
    """Write MIND's leaderboard file for BEHAVIORS (labelled or not) using the model in MODEL_DIR.

    MODEL_DIR is the model/ folder that minirec-train writes. Every impression gets a line, in file
    order: users and news the model has not seen are scored with its unknown-user row and whatever
    views exist for the news.
    """
    from minirec.data.mind import MindFormatError, read_behaviors
    from minirec.data.report import ReadReport
    from minirec.eval.metrics import evaluate, ranks_from_scores
    from minirec.eval.prediction import write_prediction
    from minirec.train.batches import encode_impressions
    from minirec.train.checkpoint import load_model

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr)
    log = logging.getLogger("minirec")
    try:
        model, user_ids = load_model(model_dir)
        report = ReadReport()
        table = read_behaviors(behaviors, report)
    except (MindFormatError, FileNotFoundError, ValueError) as error:
        raise click.ClickException(str(error)) from None
    if len(table) == 0:
        raise click.ClickException(f"{behaviors} has no impressions: nothing to predict")
    started = time.monotonic()
    user_index = {user: row for row, user in enumerate(user_ids, start=1)}
    impressions = encode_impressions(table, model.news_encoder.inputs.catalog, user_index,
                                     model.config.history_length, report)
    scores = model.predict(impressions)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_prediction(out, impressions.impression_ids, [ranks_from_scores(s) for s in scores])
    for line in report.lines():
        log.info("  %s", line)
    click.echo(f"{len(scores)} impressions ranked in {time.monotonic() - started:.1f}s, written to {out}")
    if impressions.labels is not None:
        result = evaluate(impressions.labels, scores)
        click.echo(f"AUC {result.auc:.4f}  MRR {result.mrr:.4f}  nDCG@5 {result.ndcg5:.4f}  nDCG@10 {result.ndcg10:.4f}  "
                   f"({result.n_scored} impressions scored, {result.n_skipped} without both a click and a "
                   "non-click skipped)")


if __name__ == "__main__":
    main()
