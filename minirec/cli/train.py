"""``minirec-train``: train and evaluate the multi-modal recommender on a MIND folder."""

from __future__ import annotations

import logging
import shutil
import sys
from pathlib import Path

import click

from minirec.model.config import FUSIONS, OBJECTIVES, VIEWS, ModelConfig, TrainConfig


def setup_logging(log_file: Path | None) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S",
                        handlers=handlers, force=True)


def parse_views(_ctx, _param, value: str) -> tuple[str, ...]:
    views = tuple(v.strip() for v in value.split(",") if v.strip())
    unknown = [v for v in views if v not in VIEWS]
    if len(set(views)) != len(views):
        raise click.BadParameter(f"{value!r}: each view may appear once")
    if unknown or not views:
        raise click.BadParameter(f"{value!r}: use a comma-separated subset of {','.join(VIEWS)}")
    return views


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("data", required=False, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("runs/minirec"),
              show_default=True, help="Output folder: model/, checkpoint/, metrics.json, prediction.txt, train.log.")
@click.option("--epochs", type=click.IntRange(1), default=10, show_default=True)
@click.option("--views", callback=parse_views, default="id,text,graph", show_default=True,
              help="News views to use, comma-separated (ablations: id / id,text / id,graph).")
@click.option("--fusion", type=click.Choice(FUSIONS), default="attention", show_default=True,
              help="How the views are combined: attention gate, concatenation + MLP, or sigmoid gate.")
@click.option("--tau", type=click.FloatRange(min=0, min_open=True), default=2.0, show_default=True,
              help="Temperature: the logit is tau * cos(user, news).")
@click.option("--text-embeddings", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Precomputed text vectors (.npy); ids from the file beside it (<stem>_ids.tsv or .txt) "
                   "or --text-ids. Without it, an LSA encoder is fitted on the news text.")
@click.option("--text-ids", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="News ids of the --text-embeddings rows, one per line or a row<TAB>news_id table.")
@click.option("--text-dim", type=click.IntRange(2), default=256, show_default=True, help="LSA dimensions.")
@click.option("--batch-size", type=click.IntRange(1), default=64, show_default=True, help="Impressions per step.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=1e-3, show_default=True)
@click.option("--dropout", type=click.FloatRange(0, 1, max_open=True), default=0.3, show_default=True)
@click.option("--id-view-dropout", type=click.FloatRange(0, 1, max_open=True), default=0.2, show_default=True,
              help="Share of news whose ID view is hidden in a training step, so text and graph learn to "
                   "carry news unseen in training.")
@click.option("--objective", type=click.Choice(OBJECTIVES), default="listwise", show_default=True,
              help="Training loss: a softmax of each click against --negatives non-clicks of the same "
                   "impression (as in NRMS), or binary cross-entropy over every candidate (the design's).")
@click.option("--negatives", type=click.IntRange(1), default=4, show_default=True,
              help="Non-clicks drawn per click by the listwise objective.")
@click.option("--max-impressions", type=click.IntRange(1), default=None,
              help="Train on the latest N training impressions only (quick runs).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--fresh", is_flag=True, help="Ignore a checkpoint in --out and start again.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def main(data, out, epochs, views, fusion, tau, text_embeddings, text_ids, text_dim, batch_size, lr, dropout,
         id_view_dropout, objective, negatives, max_impressions, seed, fresh, quiet):
    """Train the recommender on DATA and report AUC, MRR, nDCG@5 and nDCG@10.

    DATA is a MIND split folder (news.tsv + behaviors.tsv) or a parent holding train/ and dev/
    (or valid/, MINDsmall_train/ and MINDsmall_dev/). Without DATA, a small generated MIND-format
    dataset is written to OUT/demo-data and used.

    An interrupted run resumes from OUT/checkpoint when started again with the same arguments.
    """
    from minirec.train.pipeline import RunOptions, run

    if fresh and out.exists():
        shutil.rmtree(out / "checkpoint", ignore_errors=True)
    try:
        setup_logging(out / "train.log")
    except OSError as error:
        raise click.ClickException(f"cannot write to the output folder {out}: {error}; choose another --out") from None
    log = logging.getLogger("minirec")
    if data is None:
        from minirec.synth.generate import generate_mind

        data = out / "demo-data"
        if not (data / "train" / "behaviors.tsv").exists():
            log.info("no DATA given: writing the generated demo dataset to %s", data)
            generate_mind(data, scale="demo", seed=seed)
        else:
            log.info("no DATA given: using the generated demo dataset in %s", data)

    try:
        model_config = ModelConfig(views=views, fusion=fusion, tau=tau, dropout=dropout,
                                   id_view_dropout=id_view_dropout, seed=seed)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    options = RunOptions(
        data=data, out=out, model=model_config,
        train=TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, max_impressions=max_impressions, seed=seed,
                          objective=objective, negatives=negatives),
        text_embeddings=text_embeddings, text_ids=text_ids, text_dim=text_dim, progress=not quiet,
    )
    try:
        metrics = run(options)
    except (ValueError, FileNotFoundError) as error:
        log.error("%s", error)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        log.error("interrupted: run the same command again (same --out) to resume from the last checkpoint")
        raise SystemExit(130) from None

    click.echo(f"\nResults on {metrics['split']}:")
    if "auc" in metrics:
        click.echo(f"  AUC {metrics['auc']:.4f}  MRR {metrics['mrr']:.4f}  "
                   f"nDCG@5 {metrics['ndcg5']:.4f}  nDCG@10 {metrics['ndcg10']:.4f}  "
                   f"({metrics['n_scored']} impressions scored, {metrics['n_skipped']} without both a click "
                   f"and a non-click skipped)")
    click.echo(f"  training {metrics['training_seconds']:.0f}s, best epoch {metrics['best_epoch']}")
    click.echo(f"  written: {out / 'model'}, {out / 'metrics.json'}, {out / 'prediction.txt'}, {out / 'train.log'}")


if __name__ == "__main__":
    main()
