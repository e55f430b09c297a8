"""Each awkward condition of real MIND files, carried through training, prediction and evaluation.

Every test reads a tiny MIND folder that :func:`write_mind_folder` writes by hand. Its 12 news
include a title opening with a quote, empty titles and abstracts, news without entities and
entities without a vector. Its impressions mention ID-only news that no news.tsv row describes,
users that training never saw, empty histories and a history longer than the cap, and include an
impression with one candidate and one without a click. Expected values are counted in this file
from the lists that wrote the folder.
"""

from __future__ import annotations

import json
import logging
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import prepared_run
from minirec.autograd import Tensor, no_grad, ops
from minirec.cli.eval import main as eval_main
from minirec.cli.predict import main as predict_main
from minirec.cli.train import main as train_main
from minirec.data.mind import read_behaviors
from minirec.eval.prediction import read_prediction, write_prediction
from minirec.text.lsa import LSAEncoder
from minirec.train.batches import encode_impressions, make_batch
from minirec.train.checkpoint import load_model
from minirec.train.pipeline import run

N_ENTITY_DIMS = 100  # MIND's TransE vectors, the width ModelConfig.entity_dim expects
DAY_START_HOUR = 8


def entity_json(*wikidata_ids: str) -> str:
    """Write an entity field as MIND does: a JSON list with one object per mention."""
    objects = [
        f'{{"Label": "L{q}", "Type": "P", "WikidataId": "{q}", "Confidence": 0.9, '
        f'"OccurrenceOffsets": [0], "SurfaceForms": ["S{q}"]}}'
        for q in wikidata_ids
    ]
    return "[" + ", ".join(objects) + "]"


@dataclass
class NewsRow:
    news_id: str
    category: str
    subcategory: str
    title: str
    abstract: str
    title_entities: str = "[]"
    abstract_entities: str = "[]"

    def line(self) -> str:
        url = f"https://assets.example.com/{self.news_id}.html"
        return "\t".join([self.news_id, self.category, self.subcategory, self.title, self.abstract, url,
                          self.title_entities, self.abstract_entities])


@dataclass
class Impression:
    impression_id: str
    user_id: str
    day: int        # day of November 2019
    minute: int     # minutes after 8:00 AM
    history: list[str]
    candidates: list[str]
    labels: list[int] | None = None  # None writes MIND's unlabelled test format

    def line(self) -> str:
        hour, minute = divmod(DAY_START_HOUR * 60 + self.minute, 60)
        clock = f"11/{self.day}/2019 {(hour - 1) % 12 + 1}:{minute:02d}:00 {'AM' if hour < 12 else 'PM'}"
        if self.labels is None:
            tokens = self.candidates
        else:
            tokens = [f"{news_id}-{label}" for news_id, label in zip(self.candidates, self.labels)]
        return "\t".join([self.impression_id, self.user_id, clock, " ".join(self.history), " ".join(tokens)])


def write_lines(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------- the tiny folder

TRAIN_NEWS = [
    NewsRow("N1", "sports", "football", '"Quoted" words open this title', "A match report.",
            entity_json("Q1"), entity_json("Q2")),
    NewsRow("N2", "sports", "tennis", "Final set decided late", "", entity_json("Q2")),
    NewsRow("N3", "news", "politics", "", "The vote was counted twice.", "[]", "[]"),
    NewsRow("N4", "news", "politics", "", "", "", ""),
    NewsRow("N5", "finance", "markets", "Shares rise", "Markets closed higher.", entity_json("Q3")),
    NewsRow("N6", "finance", "markets", "Bonds fall", "Yields climbed.", entity_json("Q4", "Q3")),
    NewsRow("N7", "weather", "forecast", "Snow expected", "Cold air moves south.", "[]", "[]"),
    NewsRow("N8", "travel", "cities", "A weekend in Rome", "Where to eat.", entity_json("Q1", "Q5")),
    NewsRow("N9", "sports", "football", '"Unclosed quote in a title', 'An abstract ending in a quote"'),
    NewsRow("N10", "lifestyle", "food", "Soup for winter", "Three recipes.", entity_json("Q5")),
]
# The dev split repeats a train row (N1, as MIND's splits do) and adds two news of its own.
DEV_NEWS = [TRAIN_NEWS[0], NewsRow("N11", "autos", "cars", "New hatchback", "Test drive.", entity_json("Q6")),
            NewsRow("N12", "sports", "tennis", '"Comeback" of the year', "", "[]", "")]
# Q3, Q4 and Q6 get no row, Q99 is in no news.
ENTITY_VECTOR_IDS = ["Q1", "Q2", "Q5", "Q99"]

# 60 distinct clicks, oldest first: the last 50 must survive the cap.
LONG_HISTORY = [f"N{i}" for i in range(1, 11)] + [f"N7{i:02d}" for i in range(50)]


def train_impressions() -> list[Impression]:
    """30 labelled impressions a minute apart; the latest 3 become validation."""
    impressions = []
    for i in range(30):
        history = [f"N{(i + k) % 10 + 1}" for k in range(3)] + [f"N90{i % 5}"]
        candidates = [f"N{i % 10 + 1}", f"N{(i + 3) % 10 + 1}", f"N91{i % 4}"]
        labels = [1, 0, 0]
        if i % 5 == 0:
            history = []
        if i == 7:
            history = LONG_HISTORY
        if i == 11:
            candidates, labels = ["N2"], [1]
        if i == 13:
            candidates, labels = ["N3", "N4"], [0, 0]
        user = "U9" if i == 28 else f"U{i % 8 + 1}"  # U9 appears only in validation
        impressions.append(Impression(str(i + 1), user, 11, i, history, candidates, labels))
    return impressions


def dev_impressions() -> list[Impression]:
    """12 labelled impressions four days later, with ids of their own (101-112)."""
    rows = [
        ("U1", ["N1", "N2"], ["N11-1", "N5-0", "N6-0"]),
        ("U2", [], ["N12-0", "N7-1"]),
        ("U20", ["N3", "N950"], ["N1-0", "N11-1", "N920-0"]),      # unseen user, unseen ID-only news
        ("U21", [], ["N8-1", "N9-0"]),                             # unseen user, empty history
        ("U3", ["N4"], ["N10-1"]),                                 # one candidate
        ("U4", ["N5", "N6"], ["N2-0", "N3-0", "N921-0"]),          # no click
        ("U5", LONG_HISTORY, ["N12-1", "N1-0"]),
        ("U6", ["N901"], ["N921-0", "N922-1", "N11-0"]),
        ("U7", ["N7"], ["N5-1", "N6-0", "N7-0", "N8-0"]),
        ("U8", ["N8", "N9", "N10"], ["N9-0", "N10-1"]),
        ("U20", ["N11"], ["N12-0", "N2-1"]),
        ("U1", ["N2"], ["N4-1", "N3-0"]),
    ]
    impressions = []
    for i, (user, history, tokens) in enumerate(rows):
        candidates = [token.rsplit("-", 1)[0] for token in tokens]
        labels = [int(token.rsplit("-", 1)[1]) for token in tokens]
        impressions.append(Impression(str(101 + i), user, 15, i, history, candidates, labels))
    return impressions


def write_split(folder: Path, news: list[NewsRow], impressions: list[Impression],
                entity_ids: list[str] | None = None) -> Path:
    write_lines(folder / "news.tsv", [row.line() for row in news])
    write_lines(folder / "behaviors.tsv", [impression.line() for impression in impressions])
    if entity_ids is not None:
        rng = np.random.default_rng(0)
        lines = ["\t".join([q] + [f"{v:.6f}" for v in rng.normal(0, 0.1, N_ENTITY_DIMS)]) + "\t" for q in entity_ids]
        write_lines(folder / "entity_embedding.vec", lines)
    return folder


def write_mind_folder(parent: Path) -> Path:
    """Write ``parent/train`` and ``parent/dev`` as MIND's zips unpack."""
    write_split(parent / "train", TRAIN_NEWS, train_impressions(), ENTITY_VECTOR_IDS)
    write_split(parent / "dev", DEV_NEWS, dev_impressions())
    return parent


@dataclass
class Expected:
    """Counts of one run, computed from the lists above rather than by minirec."""

    training: list[Impression]
    validation: list[Impression]
    reported: list[Impression]
    news_rows: set[str] = field(default_factory=set)

    @property
    def every_impression(self) -> list[Impression]:
        return self.training + self.validation + self.reported

    def catalog_ids(self) -> set[str]:
        mentioned = {n for imp in self.every_impression for n in imp.history + imp.candidates}
        return self.news_rows | mentioned

    def trained_news_ids(self) -> set[str]:
        return {n for imp in self.training for n in imp.history + imp.candidates}

    def training_users(self) -> set[str]:
        return {imp.user_id for imp in self.training}


def expected_with_dev() -> Expected:
    train = train_impressions()
    news_rows = {row.news_id for row in TRAIN_NEWS + DEV_NEWS}
    return Expected(training=train[:27], validation=train[27:], reported=dev_impressions(), news_rows=news_rows)


def expected_single_split() -> Expected:
    """A lone train/ folder: the latest 3 of 30 impressions are reported as test, the 3 before validate."""
    train = train_impressions()
    return Expected(training=train[:24], validation=train[24:27], reported=train[27:],
                    news_rows={row.news_id for row in TRAIN_NEWS})


# Unlabelled, as MIND's test split: unseen users (U9 appeared only in validation), ids that no file of
# the training run mentions, an empty history and a history over the cap.
TEST_SPLIT = [
    Impression("1", "U1", 16, 0, ["N1", "N2"], ["N3", "N5", "N11"]),
    Impression("2", "U50", 16, 1, [], ["N995"]),
    Impression("3", "U51", 16, 2, ["N996", "N1"], ["N997", "N998", "N2"]),
    Impression("4", "U2", 16, 3, LONG_HISTORY, ["N4", "N12"]),
    Impression("5", "U9", 16, 4, ["N7"], ["N8", "N999", "N10"]),
]

# Labelled, with candidates the model has never seen: they share one vector and so tie exactly.
TIED = [
    Impression("1", "U1", 16, 0, ["N1"], ["N991", "N992", "N993"], [0, 1, 0]),
    Impression("2", "U2", 16, 1, [], ["N994", "N995"], [1, 0]),
    Impression("3", "U3", 16, 2, ["N2", "N3"], ["N1", "N996", "N5", "N997"], [0, 1, 0, 0]),
    Impression("4", "U4", 16, 3, ["N4"], ["N8", "N998", "N999", "N2"], [0, 0, 1, 0]),
]


def official_mrr_score(y_true, y_score) -> float:
    """``mrr_score`` of MIND's evaluate.py, its ``np.argsort(y_score)[::-1]`` made stable."""
    order = np.argsort(y_score, kind="stable")[::-1]
    y_true = np.take(y_true, order)
    rr_score = y_true / (np.arange(len(y_true)) + 1)
    return float(np.sum(rr_score) / np.sum(y_true))


def report_counts(messages: list[str]) -> dict[str, int]:
    """Read ``ReadReport`` lines (``"  3 user ids not in ..."``) from log messages into {description: count}."""
    counts = {}
    for message in messages:
        match = re.fullmatch(r"\s+([\d,]+) (.+)", message)
        if match:
            counts[match.group(2)] = int(match.group(1).replace(",", ""))
    return counts


@contextmanager
def root_logging_restored():
    """Undo the root-logger setup of ``minirec-train`` (handlers replaced, train.log left open)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        for handler in root.handlers:
            if handler not in handlers:
                handler.close()
        root.handlers[:] = handlers
        root.setLevel(level)


def invoke_train(arguments: list[str]):
    with root_logging_restored():
        return CliRunner().invoke(train_main, arguments)


# ------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def mind_folder(tmp_path_factory) -> Path:
    return write_mind_folder(tmp_path_factory.mktemp("mind"))


@pytest.fixture(scope="module")
def cli_run(mind_folder, tmp_path_factory) -> Path:
    """Train with ``minirec-train`` (full model widths, one epoch) on train/ + dev/; return --out."""
    out = tmp_path_factory.mktemp("cli_run")
    result = invoke_train([str(mind_folder), "--out", str(out), "--epochs", "1", "--batch-size", "8", "--quiet"])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def single_split_run(mind_folder, tmp_path_factory):
    """Train on the train/ folder alone; return --out and the prepared data."""
    out = tmp_path_factory.mktemp("single_split_run")
    options, prepared = prepared_run(mind_folder / "train", out, epochs=1, batch_size=8)
    run(options)
    return out, prepared


def read_metrics(out: Path) -> dict:
    return json.loads((out / "metrics.json").read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- 1. unlabelled behaviors


def test_predict_unlabelled_writes_every_line(cli_run, tmp_path):
    behaviors = write_lines(tmp_path / "test" / "behaviors.tsv", [imp.line() for imp in TEST_SPLIT])
    out = tmp_path / "submission" / "prediction.zip"
    result = CliRunner().invoke(predict_main, [str(cli_run / "model"), str(behaviors), "--out", str(out)])

    assert result.exit_code == 0, result.output
    assert "AUC" not in result.output  # nothing to score against
    impression_ids, ranks = read_prediction(out)
    assert impression_ids == [imp.impression_id for imp in TEST_SPLIT]
    for imp, impression_ranks in zip(TEST_SPLIT, ranks):
        assert sorted(impression_ranks.tolist()) == list(range(1, len(imp.candidates) + 1))


def test_eval_rejects_unlabelled_truth(tmp_path):
    truth = write_lines(tmp_path / "behaviors.tsv", [imp.line() for imp in TEST_SPLIT])
    prediction = write_prediction(tmp_path / "prediction.txt", [imp.impression_id for imp in TEST_SPLIT],
                                  [np.arange(1, len(imp.candidates) + 1) for imp in TEST_SPLIT])
    result = CliRunner().invoke(eval_main, [str(prediction), str(truth)])

    assert result.exit_code == 1
    assert f"Error: {truth} has no click labels" in result.output
    assert "Traceback" not in result.output


def test_train_rejects_unlabelled_split(tmp_path):
    data = write_split(tmp_path / "data", TRAIN_NEWS, TEST_SPLIT)
    out = tmp_path / "out"
    result = invoke_train([str(data), "--out", str(out), "--epochs", "1", "--quiet"])

    assert result.exit_code == 1
    log = (out / "train.log").read_text(encoding="utf-8")
    assert f"{data / 'behaviors.tsv'} has no click labels" in log
    assert not (out / "model").exists()
    assert not (out / "metrics.json").exists()


def test_unlabelled_dev_gets_prediction_only(tmp_path):
    data = tmp_path / "data"
    write_split(data / "train", TRAIN_NEWS, train_impressions())
    write_split(data / "dev", DEV_NEWS, TEST_SPLIT)
    options, _ = prepared_run(data, tmp_path / "out", epochs=1, batch_size=8)
    metrics = run(options)

    impression_ids, _ = read_prediction(tmp_path / "out" / "prediction.txt")
    assert impression_ids == [imp.impression_id for imp in TEST_SPLIT]
    assert metrics["split"].startswith("dev")
    assert "auc" not in metrics
    assert "most_popular_baseline" not in metrics


# -------------------------------------------------------------------- 2. ID-only news, unknown users


def test_id_only_news_unseen_users_counted(cli_run):
    expected = expected_with_dev()
    data = read_metrics(cli_run)["data"]
    training_users = expected.training_users()
    history_refs = [n for imp in expected.every_impression for n in imp.history[-50:]]
    candidate_refs = [n for imp in expected.every_impression for n in imp.candidates]

    assert data["news_in_catalog"] == len(expected.catalog_ids())
    assert data["news_with_row"] == 12
    assert data["id_only_news"] == len(expected.catalog_ids() - expected.news_rows)
    assert data["users"] == len(training_users)
    counts = data["skipped_and_mapped"]
    assert counts["unknown_user"] == sum(imp.user_id not in training_users for imp in expected.every_impression)
    assert counts["history_news_without_row"] == sum(n not in expected.news_rows for n in history_refs)
    assert counts["candidate_news_without_row"] == sum(n not in expected.news_rows for n in candidate_refs)
    assert "unknown_news" not in counts  # the catalogue contains every id of the run's own files


def test_dev_impressions_of_unseen_users_scored(cli_run):
    impression_ids, ranks = read_prediction(cli_run / "prediction.txt")
    by_id = dict(zip(impression_ids, ranks))
    # 103: unseen user U20 with an unseen ID-only candidate N920. 104: unseen user U21, empty history.
    assert sorted(by_id["103"].tolist()) == [1, 2, 3]
    assert sorted(by_id["104"].tolist()) == [1, 2]
    assert impression_ids == [imp.impression_id for imp in dev_impressions()]


def test_predict_counts_unknown_news_and_users(cli_run, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    behaviors = write_lines(tmp_path / "behaviors.tsv", [imp.line() for imp in TEST_SPLIT])
    result = CliRunner().invoke(predict_main, [str(cli_run / "model"), str(behaviors),
                                               "--out", str(tmp_path / "prediction.txt")])
    assert result.exit_code == 0, result.output

    expected = expected_with_dev()
    catalog_ids = expected.catalog_ids()
    unknown_news = sum(n not in catalog_ids for imp in TEST_SPLIT for n in imp.history[-50:] + imp.candidates)
    unknown_users = sum(imp.user_id not in expected.training_users() for imp in TEST_SPLIT)
    counts = report_counts(caplog.messages)
    assert unknown_news == 5  # N995 to N999
    assert unknown_users == 3  # U50, U51 and U9
    assert counts["news ids not in the catalogue (dropped from histories, candidates scored with row 0)"] == unknown_news
    assert counts["impressions of users not seen in training (scored with the unknown-user row)"] == unknown_users


# ------------------------------------------------------------------------------------ 3. empty history


def user_vectors(model, impressions):
    """Encode the users of ``impressions`` as ``Recommender.predict`` does; return vectors and the batch."""
    news_vectors, _ = model.encode_news(np.arange(len(model.news_encoder.inputs.catalog)))
    batch = make_batch(impressions, np.arange(len(impressions)))
    model.eval()
    with no_grad():
        history = ops.take_rows(Tensor(news_vectors), batch.news_rows[batch.history_position])
        users, _ = model.user_encoder(batch.user_rows, history, batch.history_mask, batch.history_age)
    return users.data, batch


def test_empty_history_gives_finite_user(cli_run, tmp_path):
    model, user_ids = load_model(cli_run / "model")
    lines = [
        Impression("1", "U1", 16, 0, [], ["N1", "N2"], [1, 0]).line(),    # known user
        Impression("2", "U77", 16, 1, [], ["N3", "N5"], [0, 1]).line(),   # unseen user: nothing to go on
        Impression("3", "U2", 16, 2, ["N1", "N8"], ["N7", "N9"], [1, 0]).line(),
    ]
    behaviors = read_behaviors(write_lines(tmp_path / "behaviors.tsv", lines))
    user_index = {user: row for row, user in enumerate(user_ids, start=1)}
    impressions = encode_impressions(behaviors, model.news_encoder.inputs.catalog, user_index,
                                     model.config.history_length)
    vectors, batch = user_vectors(model, impressions)

    assert not batch.history_mask[0].any()
    assert not batch.history_mask[1].any()
    assert impressions.user_rows.tolist()[:2] == [user_ids.index("U1") + 1, 0]
    assert np.isfinite(vectors).all()
    # A zero user vector would give every candidate exactly 0.5: the projection's bias still points somewhere.
    assert (np.linalg.norm(vectors, axis=1) > 0).all()
    scores = model.predict(impressions)
    assert [s.size for s in scores] == [2, 2, 2]
    assert all(np.isfinite(s).all() and ((s > 0) & (s < 1)).all() for s in scores)


# --------------------------------------------------------------------------------------- 4. history cap


def test_long_history_keeps_latest_fifty(mind_folder, tmp_path):
    options, prepared = prepared_run(mind_folder, tmp_path)
    cap = options.model.history_length
    catalog = prepared.inputs.catalog
    assert cap == 50
    assert len(LONG_HISTORY) == 60
    latest = np.array([catalog.index[news_id] for news_id in LONG_HISTORY[-cap:]])

    train_position = prepared.train_set.impression_ids.index("8")
    dev_position = prepared.report_set.impression_ids.index("107")
    assert np.array_equal(prepared.train_set.histories[train_position], latest)
    assert np.array_equal(prepared.report_set.histories[dev_position], latest)
    assert prepared.summary["skipped_and_mapped"]["history_truncated"] == 2

    # In the batch the last of MIND's order is the most recent click: age 0.
    batch = make_batch(prepared.train_set, np.array([train_position]))
    assert np.array_equal(batch.news_rows[batch.history_position[0]], latest)
    assert batch.history_age[0].tolist() == list(range(cap - 1, -1, -1))


# ------------------------------------------------------------------- 5 and 6. empty text, quoted titles


@pytest.fixture
def lsa_corpus(monkeypatch) -> list[str]:
    """Record the texts that the pipeline passes to the LSA encoder."""
    corpus: list[str] = []
    original = LSAEncoder.fit_transform

    def recording_fit_transform(self, texts):
        texts = list(texts)
        corpus.extend(texts)
        return original(self, texts)

    monkeypatch.setattr(LSAEncoder, "fit_transform", recording_fit_transform)
    return corpus


def text_of(prepared, corpus: list[str], news_id: str) -> str:
    """The LSA input of ``news_id``; the corpus lists the news with a row in catalogue order."""
    rows_with_text = np.flatnonzero(prepared.inputs.catalog.has_row).tolist()
    return corpus[rows_with_text.index(prepared.inputs.catalog.index[news_id])]


def test_empty_title_or_abstract_text(mind_folder, tmp_path, lsa_corpus):
    _, prepared = prepared_run(mind_folder, tmp_path)

    assert len(lsa_corpus) == 12
    for text in lsa_corpus:
        assert re.search(r"\bnan\b", text, flags=re.IGNORECASE) is None, text
        assert text.strip()
    assert text_of(prepared, lsa_corpus, "N2") == "Category: sports - tennis | Title: Final set decided late | Abstract: "
    assert text_of(prepared, lsa_corpus, "N3") == ("Category: news - politics | Title:  | "
                                                   "Abstract: The vote was counted twice.")
    assert text_of(prepared, lsa_corpus, "N4") == "Category: news - politics | Title:  | Abstract: "


def test_quoted_titles_keep_every_row(mind_folder, tmp_path, lsa_corpus):
    _, prepared = prepared_run(mind_folder, tmp_path)
    catalog = prepared.inputs.catalog
    train_lines = (mind_folder / "train" / "news.tsv").read_text(encoding="utf-8").splitlines()
    dev_lines = (mind_folder / "dev" / "news.tsv").read_text(encoding="utf-8").splitlines()
    distinct_ids = {line.split("\t")[0] for line in train_lines + dev_lines}

    assert len(train_lines) == 10
    assert len(dev_lines) == 3
    assert len(distinct_ids) == 12  # N1 is in both files
    assert int(catalog.has_row.sum()) == len(distinct_ids)
    assert prepared.summary["news_with_row"] == len(distinct_ids)
    assert text_of(prepared, lsa_corpus, "N1").startswith('Category: sports - football | Title: "Quoted" words')
    assert text_of(prepared, lsa_corpus, "N9") == ('Category: sports - football | Title: "Unclosed quote in a title'
                                                   ' | Abstract: An abstract ending in a quote"')
    assert text_of(prepared, lsa_corpus, "N12").startswith('Category: sports - tennis | Title: "Comeback" of')
    # The row after the unclosed quote is its own row, not swallowed into N9's title.
    assert catalog.categories[catalog.category[catalog.index["N10"]]] == "lifestyle"


# -------------------------------------------------------------------- 7. one candidate, no click


def test_single_candidate_and_no_click(cli_run):
    metrics = read_metrics(cli_run)
    impression_ids, ranks = read_prediction(cli_run / "prediction.txt")
    by_id = dict(zip(impression_ids, ranks))
    dev = dev_impressions()
    without_both = [imp.impression_id for imp in dev if len(set(imp.labels)) < 2]

    assert without_both == ["105", "106"]  # one clicked candidate; three candidates, none clicked
    assert by_id["105"].tolist() == [1]
    assert sorted(by_id["106"].tolist()) == [1, 2, 3]
    assert metrics["n_impressions"] == len(dev)
    assert metrics["n_skipped"] == len(without_both)
    assert metrics["n_scored"] == len(dev) - len(without_both)
    assert metrics["most_popular_baseline"]["n_skipped"] == len(without_both)
    # Training saw the same two shapes (train impressions 12 and 14) without a NaN loss.
    assert np.isfinite(metrics["epochs"][0]["loss"])


# ------------------------------------------------------------------------------------- 8. tied scores


def test_tied_scores_match_official_mrr(cli_run, tmp_path):
    truth = write_lines(tmp_path / "behaviors.tsv", [imp.line() for imp in TIED])
    prediction = tmp_path / "prediction.txt"
    result = CliRunner().invoke(predict_main, [str(cli_run / "model"), str(truth), "--out", str(prediction)])
    assert result.exit_code == 0, result.output

    model, user_ids = load_model(cli_run / "model")
    user_index = {user: row for row, user in enumerate(user_ids, start=1)}
    impressions = encode_impressions(read_behaviors(truth), model.news_encoder.inputs.catalog, user_index,
                                     model.config.history_length)
    scores = model.predict(impressions)
    assert np.unique(scores[0]).size == 1  # unseen candidates share one vector
    assert scores[2][1] == scores[2][3]

    # Among equal scores the later candidate ranks first: the click of impression 1 is second.
    _, ranks = read_prediction(prediction)
    assert ranks[0].tolist() == [3, 2, 1]
    assert ranks[1].tolist() == [2, 1]
    expected = [official_mrr_score(np.array(imp.labels), s) for imp, s in zip(TIED, scores)]
    assert expected[:2] == [0.5, 0.5]

    result = CliRunner().invoke(eval_main, [str(prediction), str(truth), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["mrr"] == pytest.approx(np.mean(expected), abs=1e-12)


def test_metrics_json_matches_eval_cli(cli_run, mind_folder):
    truth = mind_folder / "dev" / "behaviors.tsv"
    stored = read_metrics(cli_run)
    result = CliRunner().invoke(eval_main, [str(cli_run / "prediction.txt"), str(truth), "--json"])
    assert result.exit_code == 0, result.output
    values = json.loads(result.output)

    assert values["n_impressions"] == 12
    assert values["n_skipped"] == 2
    assert values["n_scored"] == 10
    # Dev impression 108 ties N921 and N922, both unseen and without a row. MRR and nDCG follow the
    # tie rule on both sides. AUC is left out: metrics.json counts the tied pair as one half, while
    # the ranks of the leaderboard file have already broken the tie.
    model, user_ids = load_model(cli_run / "model")
    user_index = {user: row for row, user in enumerate(user_ids, start=1)}
    impressions = encode_impressions(read_behaviors(truth), model.news_encoder.inputs.catalog, user_index,
                                     model.config.history_length)
    scores_108 = model.predict(impressions)[impressions.impression_ids.index("108")]
    assert scores_108[0] == scores_108[1]
    for key in ("mrr", "ndcg5", "ndcg10"):
        assert values[key] == pytest.approx(stored[key], abs=1e-12), key


# --------------------------------------------------------------------- 9. entities without vectors


def test_missing_entity_vectors_stay_finite(cli_run):
    graph = read_metrics(cli_run)["data"]["graph"]
    mentioned = {q for row in TRAIN_NEWS + DEV_NEWS
                 for q in re.findall(r'"WikidataId": "(Q\d+)"', row.title_entities + row.abstract_entities)}
    assert mentioned == {"Q1", "Q2", "Q3", "Q4", "Q5", "Q6"}
    assert graph["entities"] == len(mentioned)
    assert graph["entities_with_pretrained_vector"] == len(mentioned & set(ENTITY_VECTOR_IDS))

    model, _ = load_model(cli_run / "model")
    catalog = model.news_encoder.inputs.catalog
    vectors, weights = model.encode_news(np.arange(len(catalog)))
    assert np.isfinite(vectors).all()
    assert np.isfinite(weights).all()
    without_entities = [catalog.index[n] for n in ("N3", "N4", "N7", "N9", "N12")]
    assert all(catalog.entities[row] == [] for row in without_entities)
    assert (np.linalg.norm(vectors[without_entities], axis=1) > 0).all()


# ------------------------------------------------------------------- 10. row 0 pads every table


def test_tables_have_padding_row(cli_run):
    expected = expected_with_dev()
    model, user_ids = load_model(cli_run / "model")
    encoder = model.news_encoder
    catalog = encoder.inputs.catalog
    categories = {row.category for row in TRAIN_NEWS + DEV_NEWS}

    assert len(catalog) == len(expected.catalog_ids()) + 1
    assert sorted(user_ids) == sorted(expected.training_users())
    assert model.user_encoder.user_embedding.weight.shape[0] == len(expected.training_users()) + 1
    assert encoder.id_embedding.weight.shape[0] == len(expected.trained_news_ids()) + 1
    assert encoder.category_embedding.weight.shape[0] == len(categories) + 1
    assert encoder.inputs.text_vectors.shape[0] == len(catalog)
    assert encoder.inputs.adjacency.shape == (len(catalog) + 6, len(catalog) + 6)
    for table in (model.user_encoder.user_embedding, encoder.id_embedding, encoder.category_embedding):
        assert not table.weight.data[0].any()


def test_encoded_indices_within_tables(cli_run, mind_folder, tmp_path):
    model, user_ids = load_model(cli_run / "model")
    encoder = model.news_encoder
    catalog = encoder.inputs.catalog
    user_index = {user: row for row, user in enumerate(user_ids, start=1)}
    unlabelled = write_lines(tmp_path / "behaviors.tsv", [imp.line() for imp in TEST_SPLIT])
    files = [mind_folder / "train" / "behaviors.tsv", mind_folder / "dev" / "behaviors.tsv", unlabelled]

    for path in files:
        impressions = encode_impressions(read_behaviors(path), catalog, user_index, model.config.history_length)
        news_rows = np.concatenate(impressions.histories + impressions.candidates)
        assert impressions.user_rows.min() >= 0, path
        assert impressions.user_rows.max() < len(user_ids) + 1, path
        assert news_rows.min() >= 0, path
        assert news_rows.max() < len(catalog), path
        assert catalog.id_row[news_rows].max() < encoder.id_embedding.weight.shape[0], path
        assert catalog.category[news_rows].max() < encoder.category_embedding.weight.shape[0], path
        assert len(model.predict(impressions)) == len(impressions), path


# ----------------------------------------------------------------------------------- 11. honest splits


def test_dev_run_reports_dev_only(cli_run, mind_folder, tmp_path):
    metrics = read_metrics(cli_run)
    assert metrics["split"] == f"dev ({mind_folder / 'dev'})"
    assert metrics["data"]["impressions"] == {"train": 27, "validation": 3, "reported": 12}
    impression_ids, _ = read_prediction(cli_run / "prediction.txt")
    assert impression_ids == [imp.impression_id for imp in dev_impressions()]

    _, prepared = prepared_run(mind_folder, tmp_path)
    train_ids = [imp.impression_id for imp in train_impressions()]
    assert prepared.train_set.impression_ids == train_ids[:27]
    assert prepared.valid_set.impression_ids == train_ids[27:]  # the latest three by time
    assert not set(prepared.valid_set.impression_ids) & set(prepared.report_set.impression_ids)


def test_single_split_holds_out_test(single_split_run):
    out, prepared = single_split_run
    metrics = read_metrics(out)
    expected = expected_single_split()
    ids = {name: [imp.impression_id for imp in getattr(expected, name)]
           for name in ("training", "validation", "reported")}

    assert metrics["split"].startswith("test")
    assert metrics["data"]["impressions"] == {"train": 24, "validation": 3, "reported": 3}
    assert prepared.train_set.impression_ids == ids["training"]
    assert prepared.valid_set.impression_ids == ids["validation"]
    assert prepared.report_set.impression_ids == ids["reported"]
    impression_ids, _ = read_prediction(out / "prediction.txt")
    assert impression_ids == ids["reported"]
    assert metrics["n_impressions"] == 3
    # The news-ID table contains only news that the training part shows, so held-out clicks leave no trace.
    catalog = prepared.inputs.catalog
    trained = expected.trained_news_ids()
    assert {news_id for news_id in catalog.ids if catalog.id_row[catalog.index[news_id]] > 0} == trained
