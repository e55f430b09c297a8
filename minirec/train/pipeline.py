"""The main job, from a MIND folder to a trained model, metrics and a leaderboard file.

Splits. The impressions used for early stopping and the learning-rate schedule are never the ones
whose metrics are reported:

* with a dev split: the latest 10% of train impressions (by time) validate; dev is reported;
* with a train split only: the latest 10% of it is held out and reported as "test", and the 10%
  before that validate.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from minirec.data.catalog import NewsCatalog, build_catalog
from minirec.data.entity_vectors import read_entity_vectors
from minirec.data.mind import read_behaviors, read_news
from minirec.data.report import ReadReport
from minirec.data.splits import find_splits, split_by_time
from minirec.eval.baselines import popularity_scores
from minirec.eval.metrics import evaluate, ranks_from_scores
from minirec.eval.prediction import write_prediction
from minirec.model.config import ModelConfig, TrainConfig
from minirec.model.news_encoder import NewsInputs
from minirec.model.recommender import Recommender
from minirec.train.batches import encode_impressions
from minirec.files import write_text_atomic
from minirec.train.trainer import Trainer

logger = logging.getLogger(__name__)

LSA_FILE = "text_encoder_lsa.npz"


@dataclass
class RunOptions:
    data: Path
    out: Path
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    text_embeddings: Path | None = None
    text_ids: Path | None = None
    text_dim: int = 256
    progress: bool = True
    checkpoint_seconds: float = 300.0


@dataclass
class PreparedData:
    """Everything training needs, built once from the files."""

    inputs: NewsInputs
    user_ids: list[str]
    text_encoder: object
    train_set: object
    valid_set: object
    report_set: object
    report_split: str
    summary: dict


def _text_inputs(catalog: NewsCatalog, news_tables, options: RunOptions, summary: dict):
    """Return text vectors and availability per catalogue row, and the fitted LSA encoder (or None)."""
    from minirec.text.compose import news_text

    rows_with_text = np.flatnonzero(catalog.has_row)
    if options.text_embeddings is not None:
        from minirec.text.vectors import align_text_vectors, load_text_vectors

        vectors = load_text_vectors(options.text_embeddings, options.text_ids)
        aligned, found, _ = align_text_vectors(vectors, catalog.ids)
        # Row 0 of the catalogue is the padding row, which has no text.
        matrix = np.vstack([np.zeros((1, aligned.shape[1]), dtype=np.float32), aligned])
        has_text = np.concatenate([[False], found])
        summary["text_source"] = f"file {options.text_embeddings}"
        logger.info("text vectors: %d of %d catalogue news from %s (%d-d)", int(has_text.sum()), len(catalog) - 1,
                    options.text_embeddings, matrix.shape[1])
        return matrix.astype(np.float32), has_text, None

    from minirec.text.lsa import LSAEncoder

    texts = {}
    for table in news_tables:
        for i, news_id in enumerate(table.ids):
            texts.setdefault(news_id, news_text(table.category[i], table.subcategory[i], table.title[i], table.abstract[i]))
    corpus = [texts[catalog.ids[row - 1]] for row in rows_with_text]
    encoder = LSAEncoder(dim=options.text_dim)
    vectors = encoder.fit_transform(corpus)
    matrix = np.zeros((len(catalog), vectors.shape[1]), dtype=np.float32)
    matrix[rows_with_text] = vectors
    has_text = np.zeros(len(catalog), dtype=bool)
    has_text[rows_with_text] = np.abs(vectors).sum(axis=1) > 0
    summary["text_source"] = f"LSA ({vectors.shape[1]}-d) fitted on {len(corpus)} news texts"
    return matrix, has_text, encoder


def _graph_inputs(catalog: NewsCatalog, entity_files: list[Path], config: ModelConfig, report: ReadReport, summary: dict):
    from minirec.graph.build import build_news_entity_graph

    ids, matrices = [], []
    for path in entity_files:
        file_ids, matrix = read_entity_vectors(path, report)
        ids.extend(file_ids)
        matrices.append(matrix)
    pretrained = None
    if ids:
        first = {}
        for position, entity_id in enumerate(ids):
            first.setdefault(entity_id, position)
        keep = np.array(sorted(first.values()))
        stacked = np.concatenate(matrices)[keep]
        pretrained = ([ids[i] for i in keep], stacked)
    else:
        logger.info("no entity_embedding.vec found: entity vectors start random and are learned")
    graph = build_news_entity_graph(catalog.entities, pretrained, dim=config.entity_dim, seed=config.seed)
    summary["graph"] = {k: int(v) for k, v in graph.counts.items()}
    # The graph's own count includes the padding row and every ID-only news; this one does not.
    summary["graph"]["news_with_row_without_entities"] = int(
        sum(1 for row in np.flatnonzero(catalog.has_row) if not catalog.entities[row]))
    return graph.adjacency.tocsr(), graph.entity_init, graph.entity_ids


def prepare(options: RunOptions) -> PreparedData:
    started = time.monotonic()
    report = ReadReport()
    splits = find_splits(options.data)
    news_tables = [read_news(splits.train / "news.tsv", report)]
    train_behaviors = read_behaviors(splits.train / "behaviors.tsv", report)
    if not train_behaviors.has_labels:
        raise ValueError(f"{splits.train / 'behaviors.tsv'} has no click labels (like MIND's test split): "
                         "training needs labelled impressions")

    fraction = options.train.validation_fraction
    if splits.dev is not None:
        if (splits.dev / "news.tsv").exists():
            news_tables.append(read_news(splits.dev / "news.tsv", report))
        report_behaviors = read_behaviors(splits.dev / "behaviors.tsv", report)
        train_idx, valid_idx = split_by_time(train_behaviors, fraction)
        report_split = f"dev ({splits.dev})"
        validation_split = f"the latest {fraction:.0%} of train impressions by time ({splits.train})"
        logger.info("validation: the latest %.0f%% of train impressions; reported metrics: dev", fraction * 100)
    else:
        earlier, test_idx = split_by_time(train_behaviors, fraction)
        report_behaviors = train_behaviors.subset(test_idx)
        earlier_behaviors = train_behaviors.subset(earlier)
        inner_train, inner_valid = split_by_time(earlier_behaviors, fraction / (1 - fraction))
        train_idx, valid_idx = earlier[inner_train], earlier[inner_valid]
        report_split = f"test (the latest {fraction:.0%} of train impressions, held out)"
        validation_split = f"the {fraction:.0%} of train impressions before the held-out test ({splits.train})"
        logger.info("no dev split in %s: the latest %.0f%% of train impressions are held out as the reported test "
                    "split, and the %.0f%% before them validate", options.data, fraction * 100, fraction * 100)

    if len(train_idx) == 0 or len(valid_idx) == 0:
        raise ValueError(f"{splits.train / 'behaviors.tsv'} has {len(train_behaviors)} impressions: too few to "
                         "split into training and validation by time; at least 10 are needed")
    if options.train.max_impressions is not None:
        latest = np.argsort(train_behaviors.times[train_idx], kind="stable")[-options.train.max_impressions:]
        train_idx = np.sort(train_idx[latest])
    training = train_behaviors.subset(train_idx)
    validation = train_behaviors.subset(valid_idx)

    user_ids = list(dict.fromkeys(training.user_ids))
    user_index = {user: row for row, user in enumerate(user_ids, start=1)}
    catalog = build_catalog(news_tables, training, [validation, report_behaviors])
    summary = {
        "data": str(options.data),
        "impressions": {"train": len(training), "validation": len(validation), "reported": len(report_behaviors)},
        "reported_split": report_split,
        "validation_split": validation_split,
        "news_in_catalog": len(catalog) - 1,
        "news_with_row": int(catalog.has_row.sum()),
        "id_only_news": int((~catalog.has_row[1:]).sum()),
        "news_with_trained_id": int((catalog.id_row > 0).sum()),
        "users": len(user_ids),
    }
    logger.info("%d training, %d validation and %d reported impressions; %d news (%d with a news.tsv row, "
                "%d ID-only), %d users", len(training), len(validation), len(report_behaviors),
                summary["news_in_catalog"], summary["news_with_row"], summary["id_only_news"], len(user_ids))

    config = options.model
    config.num_news = len(catalog)
    config.num_news_ids = catalog.num_news_ids
    config.num_users = len(user_ids) + 1
    config.num_categories = len(catalog.categories)
    inputs = NewsInputs(catalog=catalog)
    text_encoder = None
    if "graph" in config.views and not catalog.has_row.any():
        raise ValueError(f"no news id has a row in news.tsv under {options.data}, so the graph view is empty: "
                         "drop 'graph' from --views")
    if "text" in config.views:
        if not catalog.has_row.any() and options.text_embeddings is None:
            raise ValueError(f"no news id has a row in news.tsv under {options.data}, so there is no text to "
                             "encode: drop 'text' from --views or pass --text-embeddings")
        inputs.text_vectors, inputs.has_text, text_encoder = _text_inputs(catalog, news_tables, options, summary)
        if not inputs.has_text.any():
            raise ValueError(f"no news of the data has a text vector ({summary['text_source']}): check that the "
                             "ids file matches news.tsv, or drop 'text' from --views")
        config.text_dim = inputs.text_vectors.shape[1]
    if "graph" in config.views:
        inputs.adjacency, inputs.entity_init, inputs.entity_ids = _graph_inputs(catalog, splits.entity_vectors, config, report, summary)
        config.num_entities = inputs.entity_init.shape[0]

    length = config.history_length
    train_set = encode_impressions(training, catalog, user_index, length, report)
    valid_set = encode_impressions(validation, catalog, user_index, length, report)
    report_set = encode_impressions(report_behaviors, catalog, user_index, length, report)
    summary["skipped_and_mapped"] = report.counts
    for line in report.lines():
        logger.info("  %s", line)
    logger.info("data prepared in %.1fs", time.monotonic() - started)
    return PreparedData(inputs, user_ids, text_encoder, train_set, valid_set, report_set, report_split, summary)


def run(options: RunOptions) -> dict:
    """Train, evaluate on the reported split, and write model/, metrics.json and prediction.txt."""
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    prepared = prepare(options)
    model = Recommender(options.model, prepared.inputs)
    logger.info("model: views %s, fusion %s, tau %.2f, %s parameters", ",".join(options.model.views),
                options.model.fusion, options.model.tau, f"{model.num_parameters():,}")

    trainer = Trainer(model, prepared.train_set, prepared.valid_set, options.train, out, prepared.user_ids,
                      progress=options.progress, checkpoint_seconds=options.checkpoint_seconds)
    trainer.resume()
    if prepared.text_encoder is not None:
        # Saved beside the model so that news added after training can be embedded the same way.
        (out / "model").mkdir(parents=True, exist_ok=True)
        prepared.text_encoder.save(out / "model" / LSA_FILE)
    history = trainer.fit()
    training_seconds = trainer.training_seconds

    started = time.monotonic()
    scores = model.predict(prepared.report_set)
    scoring_seconds = time.monotonic() - started
    report_set = prepared.report_set
    ranks = [ranks_from_scores(s) for s in scores]
    write_prediction(out / "prediction.txt", report_set.impression_ids, ranks)

    metrics = {"split": prepared.report_split, "training_seconds": round(training_seconds, 1),
               "scoring_seconds": round(scoring_seconds, 1)}
    if report_set.labels is not None:
        # The headline metrics are computed from the written ranks, as MIND's leaderboard and
        # minirec-eval compute them: there ties are already broken, while AUC on raw scores counts
        # a tie as 1/2. The raw-score AUC is kept beside them.
        metrics.update(evaluate(report_set.labels, [1.0 / r for r in ranks]).as_dict())
        metrics["auc_raw_scores"] = evaluate(report_set.labels, scores).auc
        popular_ranks = [ranks_from_scores(s) for s in popularity_scores(prepared.train_set, report_set)]
        popular = evaluate(report_set.labels, [1.0 / r for r in popular_ranks])
        metrics["most_popular_baseline"] = popular.as_dict()
        logger.info("most-popular baseline on the same split: AUC %.4f, MRR %.4f", popular.auc, popular.mrr)
    else:
        logger.info("the reported split has no labels: prediction.txt written, no metrics")
    metrics["best_epoch"] = trainer.stopper.best_epoch
    metrics["epochs"] = [asdict(h) for h in history]
    metrics["data"] = prepared.summary
    metrics["config"] = json.loads(options.model.to_json())
    metrics["training"] = asdict(options.train)
    write_text_atomic(out / "metrics.json", json.dumps(_without_nan(metrics), indent=2, default=str, allow_nan=False))
    return metrics


def _without_nan(value):
    """Replace NaN (a metric with nothing to average) by None, so metrics.json stays valid JSON."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: _without_nan(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nan(v) for v in value]
    return value

