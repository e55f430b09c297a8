"""``minirec-embed``: write one text embedding per news of a MIND data folder.

The output is a pair of files: ``FILE.npy`` (float32, one row per news) and
``FILE_ids.txt`` (one news id per line, line i naming row i).
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import click
import numpy as np

from minirec.files import write_atomically

logger = logging.getLogger(__name__)

ENCODERS = ("openai", "lsa", "minilm", "file")


def ids_path_for(out: Path) -> Path:
    """Return the ids file that goes with the vectors file ``out`` (``X.npy`` -> ``X_ids.txt``)."""
    return out.with_name(f"{out.stem}_ids.txt")


def read_news_texts(data: Path) -> tuple[list[str], list[str], int]:
    """Read the news of the train and dev splits under ``data`` and compose their texts.

    A news id present in both splits is kept once, with its train row.

    Returns
    -------
    ids, texts : list of str
        One entry per distinct news id, train news first, each in file order.
    repeated : int
        Number of dev rows skipped because train has the same id.
    """
    # Imported here so that a missing or broken reader fails this command only.
    from minirec.data.mind import read_news
    from minirec.data.splits import find_splits
    from minirec.text.compose import news_text

    splits = find_splits(data)
    ids: list[str] = []
    texts: list[str] = []
    seen: set[str] = set()
    repeated = 0
    for folder in (splits.train, splits.dev):
        if folder is None:
            continue
        news = read_news(folder / "news.tsv")
        for row, news_id in enumerate(news.ids):
            if news_id in seen:
                repeated += 1
                continue
            seen.add(news_id)
            ids.append(news_id)
            texts.append(news_text(news.category[row], news.subcategory[row], news.title[row], news.abstract[row]))
    return ids, texts, repeated


def write_vectors(out: Path, ids: list[str], matrix: np.ndarray) -> Path:
    """Write ``matrix`` to ``out`` and ``ids`` to its ids file, each atomically, and return the ids path.

    NOTE: the two files are replaced one after the other, so a process killed between the
    two replacements leaves new vectors next to the previous run's ids.
    """
    if matrix.shape[0] != len(ids):
        raise ValueError(f"got {matrix.shape[0]} vectors for {len(ids)} ids")
    ids_path = ids_path_for(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(out, lambda handle: np.save(handle, np.ascontiguousarray(matrix, dtype=np.float32)))
    write_atomically(ids_path, lambda handle: handle.write("".join(f"{news_id}\n" for news_id in ids).encode("utf-8")))
    return ids_path


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("data", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--encoder", "encoder_name", type=click.Choice(ENCODERS), required=True,
              help="Text encoder: the OpenAI API, LSA fitted on these news, MiniLM, or vectors from --input.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Vectors file (.npy) to write; the ids go next to it as <name>_ids.txt. "
                   "Default: ./text_embeddings_<encoder>.npy.")
@click.option("--model", default="text-embedding-3-small", show_default=True, help="OpenAI embedding model.")
@click.option("--dimensions", type=click.IntRange(min=1), default=1536, show_default=True,
              help="Length of the OpenAI vectors.")
@click.option("--base-url", default=None,
              help="Root URL of an OpenAI-compatible API, such as http://127.0.0.1:8000/v1. "
                   "Default: OPENAI_BASE_URL, else api.openai.com.")
@click.option("--batch-size", type=click.IntRange(1, 2048), default=100, show_default=True,
              help="Maximum texts per OpenAI request.")
@click.option("--max-batch-tokens", type=click.IntRange(1, 300_000), default=250_000, show_default=True,
              help="Maximum UTF-8 bytes (an upper bound on tokens) per OpenAI request.")
@click.option("--max-tries", type=click.IntRange(min=1), default=3, show_default=True,
              help="Attempts per OpenAI request before the run stops.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=60.0, show_default=True,
              help="Seconds to wait for each OpenAI response.")
@click.option("--cache", "cache_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Cache of OpenAI vectors (.npz) that makes interrupted runs resumable. "
                   "Default: openai_cache_<model>_<dimensions>.npz next to --out.")
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=5000, show_default=True,
              help="Save the cache after this many new OpenAI vectors; a killed run loses at most "
                   "this many plus one batch.")
@click.option("--dry-run", is_flag=True,
              help="Count texts (and, for openai, cached texts, requests, tokens and cost), then stop.")
@click.option("--input", "input_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Vectors file (.npy) for --encoder file.")
@click.option("--input-ids", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="News ids of the --input rows. Default: found next to --input.")
@click.option("--dim", type=click.IntRange(min=1), default=256, show_default=True,
              help="Number of LSA dimensions.")
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
def main(
    data: Path, encoder_name: str, out: Path | None, model: str, dimensions: int, base_url: str | None,
    batch_size: int, max_batch_tokens: int, max_tries: int, timeout: float, cache_path: Path | None,
    checkpoint_every: int, dry_run: bool, input_path: Path | None, input_ids: Path | None, dim: int,
    verbose: bool,
) -> None:
    """Embed the news of DATA (a MIND split folder, or the parent of train and dev splits).

    News of the train and dev splits are embedded once per news id. The text of a news is
    "Category: <category> - <subcategory> | Title: <title> | Abstract: <abstract>".
    The OpenAI encoder reads the API key from the OPENAI_API_KEY environment variable.
    """
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S",
                        stream=sys.stderr)
    # httpx2 logs every HTTP request at INFO, one line per batch.
    logging.getLogger("httpx2").setLevel(logging.DEBUG if verbose else logging.WARNING)
    started = time.monotonic()

    out = out if out is not None else Path(f"text_embeddings_{encoder_name}.npy")
    if out.suffix != ".npy":
        raise click.BadParameter(f"{out} must end with .npy", param_hint="--out")
    if encoder_name == "file" and input_path is None:
        raise click.BadParameter("--encoder file needs the vectors file", param_hint="--input")

    try:
        ids, texts, repeated = read_news_texts(data)
    except (ValueError, FileNotFoundError) as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"{len(ids):,} news in {data} ({repeated:,} dev rows repeat a train news id and were skipped)")
    if not ids:
        raise click.ClickException(f"no news found in {data}; nothing to embed")

    try:
        if encoder_name == "openai":
            result = _embed_openai(
                ids, texts, out, model, dimensions, base_url, batch_size, max_batch_tokens,
                max_tries, timeout, cache_path, checkpoint_every, dry_run,
            )
        elif dry_run:
            click.echo(f"Dry run: {len(texts):,} texts would be embedded with {encoder_name}; nothing written")
            return
        elif encoder_name == "lsa":
            result = _embed_lsa(ids, texts, dim)
        elif encoder_name == "minilm":
            result = _embed_minilm(ids, texts)
        else:
            result = _embed_file(ids, input_path, input_ids)
    except (ValueError, RuntimeError, FileNotFoundError) as error:
        raise click.ClickException(str(error)) from None
    if result is None:
        return

    written_ids, matrix = result
    try:
        ids_path = write_vectors(out, written_ids, matrix)
    except OSError as error:
        raise click.ClickException(f"could not write {out}: {error}. Pass a writable --out path.") from None
    click.echo(
        f"Wrote {matrix.shape[0]:,} x {matrix.shape[1]} vectors to {out} and their ids to {ids_path} "
        f"in {time.monotonic() - started:.1f} s"
    )


def _embed_openai(
    ids, texts, out, model, dimensions, base_url, batch_size, max_batch_tokens, max_tries,
    timeout, cache_path, checkpoint_every, dry_run,
):
    from minirec.text.cache import EmbeddingCache
    from minirec.text.openai_encoder import OpenAIEncoder

    if cache_path is None:
        cache_path = out.with_name(f"openai_cache_{model.replace('/', '_')}_{dimensions}.npz")
    encoder = OpenAIEncoder(
        model=model, dimensions=dimensions, base_url=base_url, batch_size=batch_size,
        max_batch_tokens=max_batch_tokens, max_tries=max_tries, timeout=timeout,
        cache=EmbeddingCache(cache_path, model, dimensions), checkpoint_every=checkpoint_every,
    )
    if dry_run:
        click.echo(f"Dry run, nothing requested or written: {encoder.describe(encoder.plan(texts, ids))}")
        return None

    matrix = encoder.encode(texts, ids)
    stats = encoder.last_stats
    click.echo(
        f"openai: {stats.texts:,} texts, {stats.cached:,} cached, {stats.requested:,} requested "
        f"in {stats.requests_sent:,} requests ({stats.retries:,} retries), {stats.empty:,} empty, "
        f"{stats.truncated:,} truncated, {stats.duplicates:,} duplicates; cache {cache_path}"
    )
    return ids, matrix


def _embed_lsa(ids, texts, dim):
    from minirec.text.lsa import LSAEncoder

    matrix = LSAEncoder(dim=dim).fit_transform(texts)
    click.echo(f"lsa: {len(texts):,} texts, {matrix.shape[1]} dimensions")
    return ids, matrix


def _embed_minilm(ids, texts):
    from minirec.text.minilm import MiniLMEncoder

    matrix = MiniLMEncoder().encode(texts)
    click.echo(f"minilm: {len(texts):,} texts, {matrix.shape[1]} dimensions")
    return ids, matrix


def _embed_file(ids, input_path, input_ids):
    """Take the rows of ``input_path`` that belong to the news in ``ids``, in that order."""
    from minirec.text.vectors import load_text_vectors

    vectors = load_text_vectors(input_path, input_ids)
    row_of_id = {news_id: row for row, news_id in enumerate(vectors.ids)}
    covered = [news_id for news_id in ids if news_id in row_of_id]
    missing = len(ids) - len(covered)
    if not covered:
        raise ValueError(
            f"{input_path} has no vector for any of the {len(ids):,} news (first news id {ids[0]}, "
            f"first id in the file {vectors.ids[0] if len(vectors.ids) else 'none'}). "
            "Check that the file belongs to this data."
        )
    matrix = np.asarray(vectors.matrix)[[row_of_id[news_id] for news_id in covered]]
    click.echo(
        f"file: {len(covered):,} of {len(ids):,} news have a vector in {input_path}; "
        f"{missing:,} without one are left out of the output"
    )
    if missing:
        logger.warning("%d news have no vector in %s and are left out, for example %s",
                       missing, input_path, next(i for i in ids if i not in row_of_id))
    return covered, matrix


if __name__ == "__main__":
    main()
