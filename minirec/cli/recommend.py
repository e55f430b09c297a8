"""``minirec-recommend``: the top-K news for one user, with the reasons the model can show.

For each recommended news item the output gives the fusion weights of its views, and for the user
the history items with the largest attention-pooling weights. Those pooling weights do not depend
on the candidate, so one list serves every recommendation.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import click
import numpy as np

logger = logging.getLogger("minirec.cli.recommend")

TOP_HISTORY = 5   # history items listed in the attention summary


@dataclass
class Recommendation:
    rank: int
    news_id: str
    score: float
    category: str
    view_weights: dict[str, float]
    added_after_training: bool


@dataclass
class RecommendationList:
    user_id: str | None
    user_seen_in_training: bool
    history: list[str]                       # the history used, oldest first
    attention: list[dict]                    # history items by pooling weight, largest first
    candidates: int                          # candidates scored (history items excluded)
    recommendations: list[Recommendation] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def score_for_user(model, user_row: int, history_rows: np.ndarray, candidate_rows: np.ndarray):
    """Score ``candidate_rows`` for one user; return scores, the candidates' view weights and the pooling weights.

    The user is encoded as in training: the user-ID row (0 for a user not seen in training) and
    the history, oldest first, with each item's age counted in clicks since the latest one.
    """
    from minirec.autograd import Tensor, no_grad
    from minirec.autograd import functional as F

    rows = np.unique(np.concatenate([history_rows, candidate_rows]))
    vectors, view_weights = model.encode_news(rows)
    history_vectors = vectors[np.searchsorted(rows, history_rows)]
    candidate_positions = np.searchsorted(rows, candidate_rows)

    count = len(history_rows)
    length = max(1, count)
    history = np.zeros((1, length, vectors.shape[1]), dtype=vectors.dtype)
    history[0, :count] = history_vectors
    mask = np.zeros((1, length), dtype=bool)
    mask[0, :count] = True
    age = np.zeros((1, length), dtype=np.float32)
    age[0, :count] = np.arange(count - 1, -1, -1)

    model.eval()
    with no_grad():
        user, pooling = model.user_encoder(np.array([user_row]), Tensor(history), mask, age)
        logits = model.score_logits(user, Tensor(vectors[candidate_positions][None]))
        scores = F.sigmoid(logits).data[0]
    return scores, view_weights[candidate_positions], pooling.data[0, :count]


def recommend(model, user_ids: list[str], user_id: str | None, history_ids: list[str],
              candidate_rows: np.ndarray | None, k: int, added: set[str] | None = None) -> RecommendationList:
    """Rank candidate news for a user and return the top ``k`` with their view and attention weights.

    ``candidate_rows`` defaults to every catalogue news with a news.tsv row. History items are never
    recommended. History ids the catalogue does not hold are dropped and noted.
    """
    catalog = model.news_encoder.inputs.catalog
    added = added or set()
    notes = []
    user_row = 0
    if user_id is not None:
        user_row = user_ids.index(user_id) + 1 if user_id in user_ids else 0
        if user_row == 0:
            notes.append(f"user {user_id} was not seen in training: scored with the unknown-user row and the history")

    rows = catalog.rows(history_ids)
    unknown = [news_id for news_id, row in zip(history_ids, rows) if row == 0]
    if unknown:
        notes.append(f"{len(unknown)} history ids not in the model's catalogue dropped (first: {unknown[0]}); "
                     "pass their news.tsv rows with --news to use them")
    history_rows = rows[rows > 0][-model.config.history_length:]
    if len(rows[rows > 0]) > len(history_rows):
        notes.append(f"history cut to its latest {model.config.history_length} clicks, as in training")
    if not len(history_rows):
        notes.append("empty history: the user vector comes from the user-ID row alone")

    if candidate_rows is None:
        candidate_rows = np.flatnonzero(catalog.has_row)
    excluded = np.isin(candidate_rows, history_rows)
    candidate_rows = candidate_rows[~excluded]
    if not len(candidate_rows):
        raise ValueError("no candidate news left to rank after excluding the history")

    scores, view_weights, pooling = score_for_user(model, user_row, history_rows, candidate_rows)
    order = np.argsort(-scores, kind="stable")[:k]
    views = model.config.views
    result = RecommendationList(
        user_id=user_id, user_seen_in_training=user_row > 0,
        history=[catalog.ids[row - 1] for row in history_rows],
        attention=[{"news_id": catalog.ids[history_rows[i] - 1], "weight": float(pooling[i])}
                   for i in np.argsort(-pooling, kind="stable")],
        candidates=int(len(candidate_rows)), notes=notes,
    )
    for rank, i in enumerate(order, start=1):
        row = candidate_rows[i]
        news_id = catalog.ids[row - 1]
        result.recommendations.append(Recommendation(
            rank=rank, news_id=news_id, score=float(scores[i]), category=catalog.categories[catalog.category[row]],
            view_weights={v: float(w) for v, w in zip(views, view_weights[i])},
            added_after_training=news_id in added))
    return result


def read_candidates(path: Path, catalog) -> tuple[np.ndarray, list[str]]:
    """Read news ids, one per line, and return their catalogue rows and notes on what was skipped."""
    rows, unknown, duplicates = [], [], 0
    seen = set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        news_id = line.strip()
        if not news_id:
            continue
        if "\t" in news_id or " " in news_id:
            raise ValueError(f"{path}:{number}: expected one news id per line, got {news_id[:60]!r}. "
                             "Put each id on its own line.")
        row = catalog.index.get(news_id, 0)
        if row == 0:
            unknown.append(f"{news_id} (line {number})")
        elif row in seen:
            duplicates += 1
        else:
            seen.add(row)
            rows.append(row)
    notes = []
    if unknown:
        notes.append(f"{len(unknown)} candidate ids of {path} are not in the model's catalogue and were skipped "
                     f"(first: {', '.join(unknown[:3])}); pass their news.tsv rows with --news to score them")
    if duplicates:
        notes.append(f"{duplicates} repeated candidate ids of {path} scored once")
    if not rows:
        raise ValueError(f"{path}: none of its news ids is in the model's catalogue; expected news ids such as "
                         "N55528, one per line")
    return np.array(rows, dtype=np.int64), notes


def history_of_user(behaviors_path: Path, user_id: str) -> list[str]:
    """Return the history of ``user_id``'s latest impression in a behaviors.tsv (empty when absent)."""
    from minirec.data.mind import read_behaviors

    table = read_behaviors(behaviors_path)
    latest = None
    for i, user in enumerate(table.user_ids):
        if user == user_id and (latest is None or table.times[i] >= table.times[latest]):
            latest = i
    return [] if latest is None else list(table.histories[latest])


def format_text(result: RecommendationList, views: tuple[str, ...]) -> str:
    user = result.user_id or "(no user id)"
    lines = [f"User {user}{' (seen in training)' if result.user_seen_in_training else ''}: "
             f"{len(result.history)} history clicks, {result.candidates:,} candidates ranked."]
    lines += [f"note: {note}" for note in result.notes]
    if result.attention:
        lines.append("History items that drew the user's attention most (pooling weights; the same for every "
                     "recommendation):")
        lines += [f"  {item['news_id']:<10} {item['weight']:.3f}" for item in result.attention[:TOP_HISTORY]]
    lines.append("")
    header = f"{'rank':>4}  {'news':<10} {'score':>7}  " + "  ".join(f"{v:>5}" for v in views) + "  category"
    lines.append(header)
    for item in result.recommendations:
        weights = "  ".join(f"{item.view_weights[v]:5.2f}" for v in views)
        added = "  (added after training)" if item.added_after_training else ""
        lines.append(f"{item.rank:>4}  {item.news_id:<10} {item.score:7.4f}  {weights}  {item.category}{added}")
    return "\n".join(lines)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--user", "user_id", help="User id; a user not seen in training is scored from the history alone.")
@click.option("--history", "history_text",
              help="Clicked news ids, comma-separated, oldest first (as in behaviors.tsv).")
@click.option("--behaviors", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Take --user's history from their latest impression in this behaviors.tsv "
                   "(when --history is absent).")
@click.option("--k", type=click.IntRange(1), default=10, show_default=True, help="Number of news to recommend.")
@click.option("--candidates", "candidates_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="News ids to rank, one per line. Default: every catalogue news with a news.tsv row.")
@click.option("--news", "news_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A news.tsv whose rows unknown to the model are added as new news (text and graph views only, "
                   "no retraining).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON instead of a table.")
def main(model_dir, user_id, history_text, behaviors, k, candidates_file, news_file, as_json):
    """Recommend the top K news of MODEL_DIR (the model/ folder minirec-train writes) to one user.

    Give --user, --history or both. Each recommendation lists its score and the fusion weights of
    its views, and the user's most attended history items are listed once.
    """
    from minirec.data.mind import MindFormatError, read_news
    from minirec.model.extend import add_news
    from minirec.train.checkpoint import load_model
    from minirec.train.pipeline import LSA_FILE

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr)
    if user_id is None and history_text is None:
        raise click.UsageError("give --user ID, --history N1,N2,... or both")
    if behaviors is not None and user_id is None:
        raise click.UsageError("--behaviors needs --user, whose history it looks up")

    try:
        model, user_ids = load_model(model_dir)
        added: set[str] = set()
        notes = []
        if news_file is not None:
            encoder = None
            if "text" in model.config.views and (model_dir / LSA_FILE).exists():
                from minirec.text.lsa import LSAEncoder

                encoder = LSAEncoder.load(model_dir / LSA_FILE)
            model, summary = add_news(model, read_news(news_file), encoder, seed=model.config.seed)
            added = set(summary.added)
            notes.append(f"{len(summary.added)} news of {news_file} added after training "
                         f"({summary.already_in_catalog} already in the catalogue kept as trained)")
            if summary.text_note:
                notes.append(summary.text_note)
        catalog = model.news_encoder.inputs.catalog

        if history_text is not None:
            history_ids = [h for h in history_text.replace(",", " ").split() if h]
        elif behaviors is not None:
            history_ids = history_of_user(behaviors, user_id)
            if not history_ids:
                logger.warning("user %s has no impression with a history in %s", user_id, behaviors)
        else:
            history_ids = []
        candidate_rows = None
        if candidates_file is not None:
            candidate_rows, candidate_notes = read_candidates(candidates_file, catalog)
            notes += candidate_notes
        result = recommend(model, user_ids, user_id, history_ids, candidate_rows, k, added)
    except (MindFormatError, FileNotFoundError, ValueError) as error:
        raise click.ClickException(str(error)) from None
    result.notes = notes + result.notes

    if as_json:
        click.echo(json.dumps(asdict(result), indent=2))
    else:
        click.echo(format_text(result, model.config.views))


if __name__ == "__main__":
    main()
