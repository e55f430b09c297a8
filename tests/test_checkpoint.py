"""Checkpoints are written as a set: a save killed halfway leaves the previous one usable."""

import json

import numpy as np
import pytest

from conftest import prepared_run
from minirec.model.recommender import Recommender
from minirec.train import checkpoint


@pytest.fixture
def model(demo_data, tmp_path):
    options, prepared = prepared_run(demo_data, tmp_path / "run", max_impressions=64)
    return Recommender(options.model, prepared.inputs), prepared.user_ids


def test_load_returns_latest_save(model, tmp_path):
    recommender, users = model
    checkpoint.save_checkpoint(tmp_path, recommender, users, {"m": np.zeros(2)}, {"epoch": 1})
    checkpoint.save_checkpoint(tmp_path, recommender, users, {"m": np.ones(2)}, {"epoch": 2})

    folder, arrays, info = checkpoint.load_checkpoint(tmp_path)

    assert folder.name == "save-2"
    assert info == {"epoch": 2}
    assert arrays["m"].tolist() == [1.0, 1.0]
    assert sorted(p.name for p in tmp_path.glob("save-*")) == ["save-2"]


def test_no_checkpoint_gives_none(tmp_path):
    assert checkpoint.load_checkpoint(tmp_path) is None


def test_save_killed_halfway_keeps_previous(model, tmp_path, monkeypatch):
    recommender, users = model
    checkpoint.save_checkpoint(tmp_path, recommender, users, {"m": np.zeros(2)}, {"epoch": 1})
    first = {name: value.copy() for name, value in recommender.state_dict().items()}
    for value in recommender.state_dict().values():
        value += 1.0  # the second save gets other weights

    written = checkpoint.write_text_atomic

    def killed_at_state_json(path, text):
        if path.name == checkpoint.STATE_JSON:
            raise KeyboardInterrupt
        written(path, text)

    monkeypatch.setattr(checkpoint, "write_text_atomic", killed_at_state_json)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save_checkpoint(tmp_path, recommender, users, {"m": np.ones(2)}, {"epoch": 2})
    monkeypatch.undo()

    # The second save's model.npz exists, but latest.json still names the first save.
    assert (tmp_path / "save-2" / checkpoint.MODEL_FILE).is_file()
    folder, arrays, info = checkpoint.load_checkpoint(tmp_path)
    assert folder.name == "save-1"
    assert info == {"epoch": 1}
    assert arrays["m"].tolist() == [0.0, 0.0]
    restored, _ = checkpoint.load_model(folder)
    for name, value in restored.state_dict().items():
        assert np.array_equal(value, first[name]), name


def test_damaged_pointer_names_the_file(tmp_path):
    (tmp_path / checkpoint.LATEST_FILE).write_text("{not json")
    with pytest.raises(ValueError, match="latest.json is damaged"):
        checkpoint.load_checkpoint(tmp_path)


def test_pointer_to_missing_save_is_rejected(tmp_path):
    (tmp_path / checkpoint.LATEST_FILE).write_text(json.dumps({"save": "save-7"}))
    with pytest.raises(ValueError, match="save-7, which has no training_state.json"):
        checkpoint.load_checkpoint(tmp_path)


def test_damaged_model_file_names_it(model, tmp_path):
    recommender, users = model
    checkpoint.save_model(tmp_path, recommender, users)
    for content in (b"", b"not an npz file at all", (tmp_path / checkpoint.MODEL_FILE).read_bytes()[:500]):
        (tmp_path / checkpoint.MODEL_FILE).write_bytes(content)
        with pytest.raises(ValueError, match="model.npz is damaged"):
            checkpoint.load_model(tmp_path)


def _trainer(demo_data, out, **train):
    from minirec.train.trainer import Trainer

    options, prepared = prepared_run(demo_data, out, max_impressions=128, batch_size=64, **train)
    return Trainer(Recommender(options.model, prepared.inputs), prepared.train_set, prepared.valid_set,
                   options.train, out, prepared.user_ids, progress=False)


def test_resume_with_other_learning_rate_rejected(demo_data, tmp_path):
    _trainer(demo_data, tmp_path, epochs=1).fit()
    with pytest.raises(ValueError, match=r"lr 0\.001 -> 0\.01"):
        _trainer(demo_data, tmp_path, epochs=2, lr=0.01).resume()


def test_training_seconds_add_up_over_sessions(demo_data, tmp_path):
    first = _trainer(demo_data, tmp_path, epochs=1)
    first.fit()
    second = _trainer(demo_data, tmp_path, epochs=2)  # more epochs may be asked for on resume
    assert second.resume()
    # The last checkpoint is saved at the end of the epoch, just before fit() returns.
    resumed_from = second.training_seconds
    assert 0.0 < resumed_from <= first.training_seconds
    second.fit()
    assert second.training_seconds > resumed_from


def test_model_of_other_views_names_both_files(demo_data, tmp_path):
    from conftest import small_model_config

    options, prepared = prepared_run(demo_data, tmp_path / "run", small_model_config(views=("id",)), max_impressions=64)
    checkpoint.save_model(tmp_path / "id", Recommender(options.model, prepared.inputs), prepared.user_ids)
    options, prepared = prepared_run(demo_data, tmp_path / "run", max_impressions=64)
    checkpoint.save_model(tmp_path / "all", Recommender(options.model, prepared.inputs), prepared.user_ids)
    (tmp_path / "all" / checkpoint.CONFIG_FILE).write_bytes((tmp_path / "id" / checkpoint.CONFIG_FILE).read_bytes())
    with pytest.raises(ValueError, match="model.npz does not match .*config.json"):
        checkpoint.load_model(tmp_path / "all")


def test_config_of_wrong_shape_is_damaged(model, tmp_path):
    recommender, users = model
    checkpoint.save_model(tmp_path, recommender, users)
    (tmp_path / checkpoint.CONFIG_FILE).write_text("[1, 2]")
    with pytest.raises(ValueError, match="config.json is damaged"):
        checkpoint.load_model(tmp_path)


def test_resume_with_fewer_epochs_rejected(demo_data, tmp_path):
    _trainer(demo_data, tmp_path, epochs=2).fit()
    with pytest.raises(ValueError, match="already trained 2 epochs, more than --epochs 1"):
        _trainer(demo_data, tmp_path, epochs=1).resume()


def test_pointer_outside_directory_is_rejected(tmp_path):
    (tmp_path / checkpoint.LATEST_FILE).write_text(json.dumps({"save": "../../elsewhere/save-3"}))
    with pytest.raises(ValueError, match="expected a folder save-N"):
        checkpoint.load_checkpoint(tmp_path)
