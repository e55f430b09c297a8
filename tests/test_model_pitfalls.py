"""The recommender as a whole: each test guards against a failure seen in earlier builds of this design."""

import json

import numpy as np
import pytest

from conftest import prepared_run, small_model_config
from minirec.autograd import functional as F
from minirec.eval.metrics import evaluate
from minirec.eval.prediction import read_prediction
from minirec.model.recommender import Recommender
from minirec.train.batches import make_batch
from minirec.train.checkpoint import load_model, save_model
from minirec.train.pipeline import run
from minirec.train.trainer import Trainer


@pytest.mark.parametrize("fusion", ["attention", "concat", "gate"])
def test_every_parameter_receives_gradient(demo_data, tmp_path, fusion):
    _, prepared = prepared_run(demo_data, tmp_path, small_model_config(fusion=fusion))
    model = Recommender(small_model_config(fusion=fusion, **_sizes(prepared)), prepared.inputs)
    batch = make_batch(prepared.train_set, np.arange(64))
    logits, _ = model(batch)
    F.binary_cross_entropy_with_logits(logits, batch.labels, batch.candidate_mask).backward()

    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, f"{name} received no gradient"
        grad = parameter.grad.to_dense() if hasattr(parameter.grad, "to_dense") else parameter.grad
        assert np.any(grad != 0), f"{name} received an all-zero gradient"


def test_untrained_scores_fall_on_both_sides_of_half(demo_data, tmp_path):
    # A non-negative last layer on either side makes every cosine >= 0 and every score >= 0.5.
    options, prepared = prepared_run(demo_data, tmp_path)
    per_impression = Recommender(options.model, prepared.inputs).predict(prepared.valid_set)
    scores = np.concatenate(per_impression)
    assert 0.2 < (scores < 0.5).mean() < 0.8
    assert _tied_share(per_impression) < 0.01


def test_trained_scores_spread_without_ties(demo_data, tmp_path):
    options, prepared = prepared_run(demo_data, tmp_path, epochs=1)
    model = Recommender(options.model, prepared.inputs)
    Trainer(model, prepared.train_set, prepared.valid_set, options.train, tmp_path, prepared.user_ids,
            progress=False).fit()

    per_impression = model.predict(prepared.report_set)
    scores = np.concatenate(per_impression)
    labels = np.concatenate(prepared.report_set.labels)
    assert (scores < 0.5).mean() > 0.5  # most candidates are not clicked, so most scores fall below 0.5
    assert (scores == 0.5).mean() < 0.001
    assert _tied_share(per_impression) < 0.01
    assert scores[labels == 1].mean() > scores[labels == 0].mean()


def test_text_vector_is_joined_by_news_id(demo_data, tmp_path):
    from minirec.data.mind import read_news

    news = read_news(demo_data / "train" / "news.tsv")
    shuffled = list(np.random.default_rng(1).permutation(news.ids))
    # Each id's vector encodes the id's number, so a vector that lands on another id is detected.
    vectors = np.array([[float(news_id[1:]), 1.0, -1.0] for news_id in shuffled], dtype=np.float32)
    np.save(tmp_path / "vectors.npy", vectors)
    (tmp_path / "vectors_ids.txt").write_text("\n".join(shuffled) + "\n")

    options, prepared = prepared_run(demo_data, tmp_path / "run")
    options.text_embeddings = tmp_path / "vectors.npy"
    from minirec.train.pipeline import prepare

    prepared = prepare(options)
    catalog = prepared.inputs.catalog
    for news_id in news.ids[:200]:
        row = catalog.index[news_id]
        assert prepared.inputs.text_vectors[row, 0] == float(news_id[1:])
        assert prepared.inputs.has_text[row]


def test_graph_node_links_its_own_entities(demo_data, tmp_path):
    from minirec.data.mind import read_news

    _, prepared = prepared_run(demo_data, tmp_path)
    news = read_news(demo_data / "train" / "news.tsv")
    inputs = prepared.inputs
    num_news = len(inputs.catalog)
    checked = 0
    for i, news_id in enumerate(news.ids[:300]):
        expected = set(news.title_entities[i]) | set(news.abstract_entities[i])
        row = inputs.catalog.index[news_id]
        neighbours = inputs.adjacency[row].indices
        linked = {inputs.entity_ids[node - num_news] for node in neighbours}
        if len(expected) <= 32:  # larger sets are capped to a fixed subset
            assert linked == expected, news_id
            checked += 1
    assert checked > 100


def test_saved_model_predicts_identically(demo_data, tmp_path):
    options, prepared = prepared_run(demo_data, tmp_path)
    model = Recommender(options.model, prepared.inputs)
    save_model(tmp_path / "model", model, prepared.user_ids)
    restored, user_ids = load_model(tmp_path / "model")

    assert user_ids == prepared.user_ids
    before = model.predict(prepared.valid_set)
    after = restored.predict(prepared.valid_set)
    assert all(np.array_equal(a, b) for a, b in zip(before, after))


def test_splits_are_by_impression_and_time(demo_data, tmp_path):
    _, prepared = prepared_run(demo_data, tmp_path)
    train, valid = prepared.train_set, prepared.valid_set
    assert not set(train.impression_ids) & set(valid.impression_ids)
    assert train.times.max() <= valid.times.min()
    assert len(valid) == pytest.approx(0.1 * (len(train) + len(valid)), abs=2)


def test_train_only_folder_reports_held_out_test(demo_data, tmp_path):
    _, prepared = prepared_run(demo_data / "train", tmp_path)
    ids = [set(s.impression_ids) for s in (prepared.train_set, prepared.valid_set, prepared.report_set)]
    assert not ids[0] & ids[1]
    assert not ids[0] & ids[2]
    assert not ids[1] & ids[2]
    assert prepared.valid_set.times.max() <= prepared.report_set.times.min()
    assert prepared.report_split.startswith("test")


def test_run_writes_a_line_for_every_impression(demo_data, tmp_path):
    options, _ = prepared_run(demo_data, tmp_path, epochs=1, max_impressions=1000)
    metrics = run(options)

    impression_ids, ranks = read_prediction(tmp_path / "prediction.txt")
    dev_lines = (demo_data / "dev" / "behaviors.tsv").read_text().splitlines()
    assert impression_ids == [line.split("\t")[0] for line in dev_lines]
    assert metrics["n_impressions"] == len(dev_lines)
    assert all(sorted(r) == list(range(1, len(r) + 1)) for r in ranks)
    stored = json.loads((tmp_path / "metrics.json").read_text())
    weights = stored["epochs"][0]["view_weights"]
    assert set(weights) == {"id", "text", "graph"}
    assert sum(weights.values()) == pytest.approx(1.0, abs=1e-3)
    assert stored["split"].startswith("dev")


def test_resume_after_interruption_matches_uninterrupted_run(demo_data, tmp_path, monkeypatch):
    options, prepared = prepared_run(demo_data, tmp_path / "a", epochs=2, max_impressions=640, batch_size=64)

    def train(out):
        model = Recommender(options.model, prepared.inputs)
        return model, Trainer(model, prepared.train_set, prepared.valid_set, options.train, out,
                              prepared.user_ids, progress=False, checkpoint_seconds=0.0)

    uninterrupted, trainer = train(tmp_path / "a")
    trainer.fit()

    interrupted, trainer = train(tmp_path / "b")
    calls = {"n": 0}
    original_step = Trainer.train_step

    def failing_step(self, indices):
        calls["n"] += 1
        if calls["n"] == 14:  # in the middle of the second epoch (10 batches per epoch)
            raise KeyboardInterrupt
        return original_step(self, indices)

    monkeypatch.setattr(Trainer, "train_step", failing_step)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    monkeypatch.setattr(Trainer, "train_step", original_step)

    resumed, trainer = train(tmp_path / "b")
    assert trainer.resume()
    assert (trainer.epoch, trainer.next_batch) == (2, 3)
    trainer.fit()
    for name, value in uninterrupted.state_dict().items():
        assert np.array_equal(value, resumed.state_dict()[name]), name


def test_full_model_beats_popularity_and_id_only(demo_data, tmp_path):
    from minirec.eval.baselines import popularity_scores

    results = {}
    for views in [("id",), ("id", "text", "graph")]:
        options, prepared = prepared_run(demo_data, tmp_path / "_".join(views),
                                         small_model_config(views=views), epochs=2)
        model = Recommender(options.model, prepared.inputs)
        Trainer(model, prepared.train_set, prepared.valid_set, options.train, tmp_path / "_".join(views),
                prepared.user_ids, progress=False).fit()
        results[views] = evaluate(prepared.report_set.labels, model.predict(prepared.report_set)).auc
    popularity = evaluate(prepared.report_set.labels,
                          popularity_scores(prepared.train_set, prepared.report_set)).auc
    print(f"dev AUC: full {results[('id', 'text', 'graph')]:.4f}, ID only {results[('id',)]:.4f}, "
          f"most popular {popularity:.4f}")
    assert results[("id", "text", "graph")] > popularity + 0.02
    assert results[("id", "text", "graph")] > results[("id",)] + 0.02


def _sizes(prepared):
    catalog = prepared.inputs.catalog
    return dict(num_news=len(catalog), num_news_ids=catalog.num_news_ids, num_users=len(prepared.user_ids) + 1,
                num_categories=len(catalog.categories), num_entities=prepared.inputs.entity_init.shape[0],
                text_dim=prepared.inputs.text_vectors.shape[1])


def _tied_share(per_impression):
    """Share of candidates whose score equals another candidate's in the same impression."""
    tied = sum(s.size - np.unique(s).size for s in per_impression)
    return tied / sum(s.size for s in per_impression)

