"""Command line entry point ``minirec-synth``: write a synthetic MIND-format dataset."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from minirec.synth import SCALES, generate_mind

logger = logging.getLogger("minirec.cli.synth")


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--scale",
    type=click.Choice(list(SCALES)),
    default="demo",
    show_default=True,
    help="Dataset size: demo (2,000 news, seconds), small (MIND-small sizes) or large (MIND-large sizes).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed; the same seed gives identical files.")
@click.option("--force", is_flag=True, help="Overwrite news.tsv, behaviors.tsv and entity_embedding.vec already in OUT.")
def main(out: Path, scale: str, seed: int, force: bool) -> None:
    """Write a synthetic MIND-format dataset to OUT/train and OUT/dev.

    The files follow MIND's format (news.tsv, behaviors.tsv, entity_embedding.vec), and
    clicks come from a planted model in which users prefer some topics.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S",
                        stream=sys.stderr)
    existing = [out / split / name for split in ("train", "dev")
                for name in ("news.tsv", "behaviors.tsv", "entity_embedding.vec") if (out / split / name).exists()]
    if existing and not force:
        raise click.ClickException(f"{existing[0]} already exists: choose an empty OUT folder, or pass --force to "
                                   "overwrite the MIND files in it")
    statistics = generate_mind(out, scale=scale, seed=seed, progress=True)
    for split in ("train", "dev"):
        numbers = statistics[split]
        logger.info(
            "%s: %d news, %d users, %d impressions, %.1f candidates per impression, "
            "%d clicks (1 click per %.1f non-clicks), %d entities, %.0f%% of news with entities, "
            "%.1f%% empty histories",
            split, numbers["news"], numbers["users"], numbers["impressions"], numbers["mean_candidates"],
            numbers["clicks"], numbers["non_clicks_per_click"], numbers["entities"],
            100 * numbers["news_with_entities_share"], 100 * numbers["empty_history_share"],
        )
    logger.info("dev: %d news not in train", statistics["dev"]["news_not_in_train"])
    logger.info("Wrote %s (%s scale, seed %d) in %.1f s", out, scale, seed, statistics["seconds"])


if __name__ == "__main__":
    main()
