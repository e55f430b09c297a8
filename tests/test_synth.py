"""Tests of the synthetic MIND generator, read back with a small parser written here."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from minirec.cli.synth import main as synth_main
from minirec.synth import SCALES, generate_mind
from minirec.synth.mind_files import atomic_writer

FILES = ("news.tsv", "behaviors.tsv", "entity_embedding.vec")
ENTITY_KEYS = ["Label", "Type", "WikidataId", "Confidence", "OccurrenceOffsets", "SurfaceForms"]
MIND_TIME = re.compile(r"^(1[0-2]|[1-9])/([1-9]|[12]\d|3[01])/2019 (1[0-2]|[1-9]):[0-5]\d:[0-5]\d (AM|PM)$")
TRAIN_START = datetime(2019, 11, 9)


def read_news(path: Path) -> dict[str, list[str]]:
    rows = {}
    with open(path, encoding="utf-8", newline="") as stream:
        for line_number, line in enumerate(stream, 1):
            fields = line.rstrip("\n").split("\t")
            assert len(fields) == 8, f"{path}:{line_number} has {len(fields)} fields"
            rows[fields[0]] = fields
    return rows


def read_behaviors(path: Path) -> list[dict]:
    impressions = []
    with open(path, encoding="utf-8", newline="") as stream:
        for line_number, line in enumerate(stream, 1):
            fields = line.rstrip("\n").split("\t")
            assert len(fields) == 5, f"{path}:{line_number} has {len(fields)} fields"
            candidates = [token.rsplit("-", 1) for token in fields[4].split(" ")]
            impressions.append({
                "id": int(fields[0]),
                "user": fields[1],
                "time": fields[2],
                "history": fields[3].split(" ") if fields[3] else [],
                "news": [news for news, _ in candidates],
                "labels": [label for _, label in candidates],
            })
    return impressions


def read_vectors(path: Path) -> dict[str, list[str]]:
    with open(path, encoding="utf-8", newline="") as stream:
        return {fields[0]: fields[1:] for fields in (line.rstrip("\n").split("\t") for line in stream)}


def seconds_after_train_start(mind_time: str) -> int:
    return int((datetime.strptime(mind_time, "%m/%d/%Y %I:%M:%S %p") - TRAIN_START).total_seconds())


def mean_auc(offsets: np.ndarray, score: np.ndarray, label: np.ndarray) -> float:
    """Mean per-impression AUC by the Mann-Whitney count, ties counting one half."""
    aucs = []
    for start, stop in zip(offsets[:-1], offsets[1:]):
        positive = score[start:stop][label[start:stop] == 1]
        negative = score[start:stop][label[start:stop] == 0]
        wins = (positive[:, None] > negative[None, :]).sum() + 0.5 * (positive[:, None] == negative[None, :]).sum()
        aucs.append(wins / (len(positive) * len(negative)))
    return float(np.mean(aucs))


def sha256_of_files(root: Path) -> dict[str, str]:
    return {
        f"{split}/{name}": hashlib.sha256((root / split / name).read_bytes()).hexdigest()
        for split in ("train", "dev") for name in FILES
    }


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    statistics = generate_mind(root, scale="demo", seed=0, return_truth=True)
    return root, statistics


def test_demo_writes_all_mind_files(demo):
    root, _ = demo
    for split in ("train", "dev"):
        for name in FILES:
            assert (root / split / name).stat().st_size > 0


def test_demo_sizes_match_scale(demo):
    root, statistics = demo
    train = read_behaviors(root / "train" / "behaviors.tsv")
    dev = read_behaviors(root / "dev" / "behaviors.tsv")
    assert len(train) == 6_000
    assert len(dev) == 2_000
    assert [row["id"] for row in train] == list(range(1, 6_001))
    news = set(read_news(root / "train" / "news.tsv")) | set(read_news(root / "dev" / "news.tsv"))
    assert 1_500 <= len(news) <= 2_500
    users = {row["user"] for row in train + dev}
    assert 800 <= len(users) <= 1_200
    mean_candidates = np.mean([len(row["news"]) for row in train])
    assert 15 <= mean_candidates <= 25
    assert statistics["train"]["impressions"] == 6_000
    assert statistics["train"]["news"] == len(read_news(root / "train" / "news.tsv"))


def test_news_rows_parse_as_mind(demo):
    root, _ = demo
    for split in ("train", "dev"):
        for news_id, fields in read_news(root / split / "news.tsv").items():
            assert re.fullmatch(r"N\d+", news_id)
            assert fields[1], news_id
            assert fields[2], news_id
            assert fields[3], news_id
            assert fields[5].startswith("https://")
            for column in (6, 7):
                entities = json.loads(fields[column])
                assert isinstance(entities, list)
                for entity in entities:
                    assert list(entity) == ENTITY_KEYS
                    assert re.fullmatch(r"Q\d+", entity["WikidataId"])
                    assert 0.0 < entity["Confidence"] <= 1.0


def test_entity_offsets_point_at_surface_forms(demo):
    root, _ = demo
    checked = 0
    for fields in read_news(root / "train" / "news.tsv").values():
        for text, column in ((fields[3], 6), (fields[4], 7)):
            for entity in json.loads(fields[column]):
                assert len(entity["OccurrenceOffsets"]) == len(entity["SurfaceForms"])
                for offset, surface in zip(entity["OccurrenceOffsets"], entity["SurfaceForms"]):
                    assert text[offset:offset + len(surface)] == surface
                    checked += 1
    assert checked > 500


def test_most_news_have_entities(demo):
    root, _ = demo
    rows = read_news(root / "train" / "news.tsv").values()
    share = np.mean([fields[6] != "[]" or fields[7] != "[]" for fields in rows])
    assert 0.6 <= share <= 0.85


def test_entity_vectors_cover_news_entities(demo):
    root, _ = demo
    for split in ("train", "dev"):
        vectors = read_vectors(root / split / "entity_embedding.vec")
        for values in vectors.values():
            assert len(values) == 100
            assert all(re.fullmatch(r"-?\d+\.\d{6}", value) for value in values)
        mentioned = {
            entity["WikidataId"]
            for fields in read_news(root / split / "news.tsv").values()
            for column in (6, 7)
            for entity in json.loads(fields[column])
        }
        assert mentioned == set(vectors)


def test_behaviors_times_and_labels_follow_mind(demo):
    root, _ = demo
    for split, days in (("train", range(9, 15)), ("dev", [15])):
        for row in read_behaviors(root / split / "behaviors.tsv"):
            assert MIND_TIME.match(row["time"]), row["time"]
            assert datetime.strptime(row["time"], "%m/%d/%Y %I:%M:%S %p").day in days
            assert set(row["labels"]) <= {"0", "1"}
            assert len(set(row["news"])) == len(row["news"])


def test_every_impression_has_click_and_non_click(demo):
    root, _ = demo
    for split in ("train", "dev"):
        for row in read_behaviors(root / split / "behaviors.tsv"):
            assert "1" in row["labels"], row["id"]
            assert "0" in row["labels"], row["id"]


def test_click_ratio_is_mind_like(demo):
    root, _ = demo
    labels = [label for row in read_behaviors(root / "train" / "behaviors.tsv") for label in row["labels"]]
    non_clicks_per_click = labels.count("0") / labels.count("1")
    # With about 20 candidates and at least one click each, the ratio cannot exceed about 20 non-clicks per click.
    assert 12 <= non_clicks_per_click <= 24


def test_referenced_news_have_rows(demo):
    root, _ = demo
    for split in ("train", "dev"):
        news = read_news(root / split / "news.tsv")
        for row in read_behaviors(root / split / "behaviors.tsv"):
            assert set(row["history"]) <= news.keys()
            assert set(row["news"]) <= news.keys()


def test_dev_contains_news_absent_from_train(demo):
    root, statistics = demo
    train = read_news(root / "train" / "news.tsv")
    dev = read_news(root / "dev" / "news.tsv")
    unseen = dev.keys() - train.keys()
    assert len(unseen) > 100
    assert statistics["dev"]["news_not_in_train"] == len(unseen)
    shown_unseen = {news for row in read_behaviors(root / "dev" / "behaviors.tsv") for news in row["news"]} & unseen
    assert len(shown_unseen) > 100


def test_news_published_before_impression(demo):
    root, statistics = demo
    truth = statistics["truth"]["news"]
    published = dict(zip(truth.ids.tolist(), truth.published.tolist()))
    for split in ("train", "dev"):
        for row in read_behaviors(root / split / "behaviors.tsv"):
            shown_at = seconds_after_train_start(row["time"])
            assert all(published[news] < shown_at for news in row["history"])
            assert all(published[news] < shown_at for news in row["news"])
            history_times = [published[news] for news in row["history"]]
            assert history_times == sorted(history_times)


def test_candidates_are_mostly_recent(demo):
    root, statistics = demo
    truth = statistics["truth"]["news"]
    published = dict(zip(truth.ids.tolist(), truth.published.tolist()))
    ages = [
        seconds_after_train_start(row["time"]) - published[news]
        for row in read_behaviors(root / "dev" / "behaviors.tsv")
        for news in row["news"]
    ]
    assert np.mean(np.array(ages) < 2 * 86_400) > 0.8


def test_histories_are_long_tailed(demo):
    root, _ = demo
    lengths = np.array([len(row["history"]) for row in read_behaviors(root / "train" / "behaviors.tsv")])
    assert 0.005 <= np.mean(lengths == 0) <= 0.05
    assert np.median(lengths) < np.mean(lengths)
    assert lengths.max() >= 60


def test_truth_matches_written_impressions(demo):
    root, statistics = demo
    truth = statistics["truth"]["dev"]
    rows = read_behaviors(root / "dev" / "behaviors.tsv")
    assert truth.news_ids.tolist() == [news for row in rows for news in row["news"]]
    assert truth.label.tolist() == [int(label) for row in rows for label in row["labels"]]


def test_oracle_auc_beats_popularity_auc(demo):
    _, statistics = demo
    truth = statistics["truth"]["dev"]
    oracle = mean_auc(truth.offsets, truth.click_probability, truth.label)
    popularity = mean_auc(truth.offsets, truth.popularity, truth.label)
    random_scores = np.random.default_rng(0).random(len(truth.label))
    chance = mean_auc(truth.offsets, random_scores, truth.label)
    assert 0.70 <= oracle <= 0.85
    assert 0.52 <= popularity <= 0.65
    assert oracle > popularity + 0.1
    assert abs(chance - 0.5) < 0.03


def test_same_seed_gives_identical_files(demo, tmp_path):
    root, _ = demo
    generate_mind(tmp_path / "again", scale="demo", seed=0)
    generate_mind(tmp_path / "other", scale="demo", seed=1)
    first = sha256_of_files(root)
    assert sha256_of_files(tmp_path / "again") == first
    other = sha256_of_files(tmp_path / "other")
    assert all(other[name] != first[name] for name in first)


def test_unknown_scale_raises(tmp_path):
    with pytest.raises(ValueError, match="unknown scale 'huge'"):
        generate_mind(tmp_path, scale="huge")


def test_large_path_streams_in_chunks(tmp_path, monkeypatch):
    tiny = dataclasses.replace(
        SCALES["large"],
        name="tiny-large",
        n_topics=8,
        train_users=60,
        dev_users=30,
        shared_users=10,
        train_impressions=250,
        dev_impressions=90,
        archive_news=300,
        live_news=500,
        dev_day_news=80,
        entities_per_topic=30,
        global_entities=10,
        name_parts=200,
        general_words=100,
        topic_words=20,
        max_history=50,
        candidates_median=10.0,
        max_candidates=40,
        impressions_per_chunk=37,
    )
    monkeypatch.setitem(SCALES, "tiny-large", tiny)
    statistics = generate_mind(tmp_path, scale="tiny-large", seed=3)

    for split, count in (("train", 250), ("dev", 90)):
        rows = read_behaviors(tmp_path / split / "behaviors.tsv")
        assert [row["id"] for row in rows] == list(range(1, count + 1))
        news = read_news(tmp_path / split / "news.tsv")
        assert {news_id for row in rows for news_id in row["news"] + row["history"]} == news.keys()
        assert statistics[split]["impressions"] == count
        assert statistics[split]["clicks"] == sum(row["labels"].count("1") for row in rows)


def test_atomic_writer_keeps_old_file_on_error(tmp_path):
    target = tmp_path / "news.tsv"
    target.write_text("old\n")
    with pytest.raises(RuntimeError):
        with atomic_writer(target) as stream:
            stream.write("partial")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old\n"
    assert [path.name for path in tmp_path.iterdir()] == ["news.tsv"]


def test_cli_writes_demo_dataset(tmp_path):
    result = CliRunner().invoke(synth_main, [str(tmp_path / "out"), "--scale", "demo", "--seed", "2"])
    assert result.exit_code == 0, result.output
    for split in ("train", "dev"):
        for name in FILES:
            assert (tmp_path / "out" / split / name).is_file()


def test_cli_refuses_to_overwrite_data(tmp_path):
    news = tmp_path / "out" / "train" / "news.tsv"
    news.parent.mkdir(parents=True)
    news.write_text("my data\n")
    result = CliRunner().invoke(synth_main, [str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "already exists" in result.output
    assert news.read_text() == "my data\n"
    assert CliRunner().invoke(synth_main, [str(tmp_path / "out"), "--force"]).exit_code == 0
    assert news.read_text() != "my data\n"
