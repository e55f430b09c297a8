"""``minirec-recommend`` and news added after training, on a small model saved from the demo data.

Expected rankings come from ``Recommender.predict``, the path evaluation uses, which encodes users
through padded batches independently of the recommender command.
"""

import json
import logging

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import prepared_run
from minirec.cli.recommend import main
from minirec.data.mind import read_news
from minirec.model.extend import add_news
from minirec.model.recommender import Recommender
from minirec.train.batches import ImpressionSet
from minirec.train.checkpoint import load_model, save_model
from minirec.train.pipeline import LSA_FILE


@pytest.fixture(scope="module")
def model_dir(demo_data, tmp_path_factory):
    """An untrained small model saved as minirec-train saves one, with its LSA encoder beside it."""
    folder = tmp_path_factory.mktemp("recommend")
    options, prepared = prepared_run(demo_data, folder, max_impressions=300)
    model = Recommender(options.model, prepared.inputs)
    save_model(folder / "model", model, prepared.user_ids)
    prepared.text_encoder.save(folder / "model" / LSA_FILE)
    return folder / "model"


@pytest.fixture(autouse=True)
def restore_logging():
    """Put back the root logger's handlers, which the command replaces with handlers on CliRunner's streams."""
    root = logging.getLogger()
    handlers = list(root.handlers)
    yield
    root.handlers[:] = handlers


@pytest.fixture
def new_news_file(model_dir, demo_data, tmp_path):
    """A news.tsv with one news item unknown to the model: two entities in the graph and one missing from it."""
    model, _ = load_model(model_dir)
    known = model.news_encoder.inputs.entity_ids[:2]
    entities = json.dumps([{"Label": e, "Type": "P", "WikidataId": e, "Confidence": 1.0, "OccurrenceOffsets": [0],
                            "SurfaceForms": [e]} for e in known + ["Q0"]])
    first = (demo_data / "train" / "news.tsv").read_text().splitlines()[0].split("\t")
    row = ["N999999", first[1], first[2], first[3], first[4], "", entities, "[]"]
    path = tmp_path / "new_news.tsv"
    path.write_text("\t".join(row) + "\n")
    return path, known


def recommend_json(*args):
    result = CliRunner().invoke(main, [*map(str, args), "--json"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return json.loads(result.stdout)


def predicted_scores(model, user_row, history_ids, candidate_ids):
    catalog = model.news_encoder.inputs.catalog
    impressions = ImpressionSet(impression_ids=["1"], user_rows=np.array([user_row]),
                                histories=[catalog.rows(history_ids)], candidates=[catalog.rows(candidate_ids)],
                                labels=None, times=np.zeros(1))
    return model.predict(impressions)[0]


def test_unseen_user_gets_recommendations(model_dir):
    result = recommend_json(model_dir, "--user", "U_NEVER_SEEN", "--history", "N1,N2,N3", "--k", "5")

    assert not result["user_seen_in_training"]
    assert len(result["recommendations"]) == 5
    assert any("not seen in training" in note for note in result["notes"])
    assert all(np.isfinite(item["score"]) for item in result["recommendations"])


def test_top_k_sorted_without_history(model_dir):
    history = ["N5", "N17", "N40"]
    result = recommend_json(model_dir, "--history", ",".join(history), "--k", "25")

    items = result["recommendations"]
    scores = [item["score"] for item in items]
    assert scores == sorted(scores, reverse=True)
    assert not {item["news_id"] for item in items} & set(history)
    assert [item["rank"] for item in items] == list(range(1, 26))


def test_top_k_matches_predict(model_dir):
    model, _ = load_model(model_dir)
    catalog = model.news_encoder.inputs.catalog
    history = ["N5", "N17", "N40"]
    with_row = [catalog.ids[row - 1] for row in np.flatnonzero(catalog.has_row)]
    candidates = [news_id for news_id in with_row if news_id not in history]

    expected = predicted_scores(model, 0, history, candidates)
    result = recommend_json(model_dir, "--history", ",".join(history), "--k", "10")

    top = np.argsort(-expected, kind="stable")[:10]
    assert [item["news_id"] for item in result["recommendations"]] == [candidates[i] for i in top]
    assert [item["score"] for item in result["recommendations"]] == pytest.approx(expected[top], abs=1e-6)


def test_known_user_history_from_behaviors(model_dir, demo_data):
    model, user_ids = load_model(model_dir)
    user = user_ids[0]
    lines = [line.split("\t") for line in (demo_data / "train" / "behaviors.tsv").read_text().splitlines()]
    mine = [fields for fields in lines if fields[1] == user]
    from datetime import datetime
    latest = max(mine, key=lambda fields: datetime.strptime(fields[2], "%m/%d/%Y %I:%M:%S %p"))

    result = recommend_json(model_dir, "--user", user, "--behaviors", demo_data / "train" / "behaviors.tsv", "--k", "3")

    assert result["user_seen_in_training"]
    assert result["history"] == latest[3].split()[-model.config.history_length:]
    assert len(result["attention"]) == len(result["history"])
    assert sum(item["weight"] for item in result["attention"]) == pytest.approx(1.0, abs=1e-5)


def test_added_news_scored_by_text_and_graph(model_dir, new_news_file):
    path, _ = new_news_file
    candidates = path.parent / "candidates.txt"
    candidates.write_text("N999999\nN10\n\nN11\n")

    result = recommend_json(model_dir, "--history", "N1,N2", "--news", path, "--candidates", candidates, "--k", "3")

    added = [item for item in result["recommendations"] if item["news_id"] == "N999999"]
    assert len(added) == 1
    assert added[0]["added_after_training"]
    assert np.isfinite(added[0]["score"])
    weights = added[0]["view_weights"]
    assert weights["id"] == 0.0
    assert weights["text"] > 0
    assert weights["graph"] > 0
    assert weights["text"] + weights["graph"] == pytest.approx(1.0, abs=1e-5)


def test_added_news_links_known_entities(model_dir, new_news_file):
    path, known = new_news_file
    model, _ = load_model(model_dir)
    extended, summary = add_news(model, read_news(path), text_encoder=None)

    inputs = extended.news_encoder.inputs
    row = inputs.catalog.index["N999999"]
    neighbours = inputs.adjacency[row]
    linked = {inputs.entity_ids[node - len(inputs.catalog)] for node in neighbours.indices}
    assert linked == set(known)
    assert neighbours.data == pytest.approx([0.5, 0.5])  # mean over its two known entities
    assert summary.unknown_entities == 1
    assert summary.entity_links == 2


def test_added_news_keeps_known_scores(model_dir, new_news_file):
    path, _ = new_news_file
    model, _ = load_model(model_dir)
    extended, _ = add_news(model, read_news(path), text_encoder=None)

    rows = np.arange(1, len(model.news_encoder.inputs.catalog))
    before, _ = model.encode_news(rows)
    after, _ = extended.encode_news(rows)
    np.testing.assert_array_equal(before, after)


def test_added_news_without_encoder_lacks_text(model_dir, new_news_file):
    path, _ = new_news_file
    model, _ = load_model(model_dir)
    extended, summary = add_news(model, read_news(path), text_encoder=None)

    row = extended.news_encoder.inputs.catalog.index["N999999"]
    _, weights = extended.encode_news(np.array([row]))
    assert not extended.news_encoder.inputs.has_text[row]
    assert "no text view" in summary.text_note
    assert weights[0].tolist() == pytest.approx([0.0, 0.0, 1.0])


def test_id_only_model_rejects_added_news(demo_data, tmp_path, new_news_file):
    from conftest import small_model_config

    options, prepared = prepared_run(demo_data, tmp_path, small_model_config(views=("id",)), max_impressions=300)
    model = Recommender(options.model, prepared.inputs)

    with pytest.raises(ValueError, match="uses only the ID view"):
        add_news(model, read_news(new_news_file[0]))


def test_unknown_candidates_skipped_with_line(model_dir, tmp_path):
    candidates = tmp_path / "candidates.txt"
    candidates.write_text("N10\nN_UNKNOWN\nN11\n")

    result = recommend_json(model_dir, "--history", "N1", "--candidates", candidates)

    assert {item["news_id"] for item in result["recommendations"]} == {"N10", "N11"}
    assert any("N_UNKNOWN (line 2)" in note for note in result["notes"])


def test_no_known_candidate_is_an_error(model_dir, tmp_path):
    candidates = tmp_path / "candidates.txt"
    candidates.write_text("N_UNKNOWN\n")

    result = CliRunner().invoke(main, [str(model_dir), "--history", "N1", "--candidates", str(candidates)])

    assert result.exit_code == 1
    assert "none of its news ids is in the model's catalogue" in result.output


def test_user_or_history_required(model_dir):
    result = CliRunner().invoke(main, [str(model_dir)])

    assert result.exit_code == 2
    assert "give --user ID, --history N1,N2,... or both" in result.output


def test_table_output_lists_attention(model_dir):
    result = CliRunner().invoke(main, [str(model_dir), "--history", "N1,N2,N3", "--k", "4"])

    assert result.exit_code == 0, result.output
    assert "drew the user's attention most" in result.stdout
    ranks = [line.split()[0] for line in result.stdout.splitlines() if line.strip()[:1].isdigit()]
    assert ranks == ["1", "2", "3", "4"]


def test_id_only_news_encoded_alone(model_dir):
    model, _ = load_model(model_dir)
    inputs = model.news_encoder.inputs
    # The demo catalogue gives every news a news.tsv row, so one trained news item is made ID-only.
    row = int(np.flatnonzero(inputs.catalog.id_row > 0)[0])
    inputs.catalog.has_row[row] = False
    inputs.has_text[row] = False

    _, weights = model.encode_news(np.array([row]))

    assert weights[0].tolist() == pytest.approx([1.0, 0.0, 0.0])
