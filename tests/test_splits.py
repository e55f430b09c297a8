"""Finding MIND split folders and splitting impressions by time."""

from pathlib import Path

import numpy as np
import pytest

from minirec.data.mind import Behaviors
from minirec.data.splits import find_splits, split_by_time


def make_split(folder: Path, entity_vectors: bool = False) -> Path:
    folder.mkdir(parents=True)
    (folder / "news.tsv").write_text("", encoding="utf-8")
    (folder / "behaviors.tsv").write_text("", encoding="utf-8")
    if entity_vectors:
        (folder / "entity_embedding.vec").write_text("", encoding="utf-8")
    return folder


def make_behaviors(times: list[float]) -> Behaviors:
    n = len(times)
    return Behaviors(
        path=Path("behaviors.tsv"),
        impression_ids=[str(i + 1) for i in range(n)],
        user_ids=[f"U{i}" for i in range(n)],
        times=np.asarray(times, dtype=np.float64),
        histories=[[] for _ in range(n)],
        candidates=[["N1", "N2"] for _ in range(n)],
        labels=[np.array([1, 0], dtype=np.int8) for _ in range(n)],
    )


def test_split_folder_itself_is_train(tmp_path):
    folder = make_split(tmp_path / "somewhere", entity_vectors=True)
    paths = find_splits(folder)
    assert paths.train == folder
    assert paths.dev is None
    assert paths.entity_vectors == [folder / "entity_embedding.vec"]


def test_parent_with_train_and_dev(tmp_path):
    train = make_split(tmp_path / "train", entity_vectors=True)
    dev = make_split(tmp_path / "dev", entity_vectors=True)
    paths = find_splits(tmp_path)
    assert paths.train == train
    assert paths.dev == dev
    assert paths.entity_vectors == [train / "entity_embedding.vec", dev / "entity_embedding.vec"]


@pytest.mark.parametrize("train_name, dev_name", [
    ("MINDsmall_train", "MINDsmall_dev"),
    ("MINDlarge_train", "MINDlarge_dev"),
    ("train", "valid"),
])
def test_parent_with_mind_zip_names(tmp_path, train_name, dev_name):
    train = make_split(tmp_path / train_name)
    dev = make_split(tmp_path / dev_name)
    paths = find_splits(tmp_path)
    assert paths.train == train
    assert paths.dev == dev
    assert paths.entity_vectors == []


def test_parent_with_train_only(tmp_path):
    train = make_split(tmp_path / "MINDsmall_train")
    paths = find_splits(tmp_path)
    assert paths.train == train
    assert paths.dev is None


def test_nothing_found_lists_names(tmp_path):
    (tmp_path / "other").mkdir()
    with pytest.raises(FileNotFoundError) as caught:
        find_splits(tmp_path)
    message = str(caught.value)
    for name in ("news.tsv", "behaviors.tsv", "train", "MINDsmall_train", "MINDlarge_train", "dev", "valid"):
        assert name in message


def test_missing_data_folder_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        find_splits(tmp_path / "absent")


def test_incomplete_split_folder_raises(tmp_path):
    make_split(tmp_path / "train")
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev" / "news.tsv").write_text("", encoding="utf-8")
    with pytest.raises(ValueError, match="missing behaviors.tsv"):
        find_splits(tmp_path)


def test_two_train_folders_raise(tmp_path):
    make_split(tmp_path / "train")
    make_split(tmp_path / "MINDsmall_train")
    with pytest.raises(ValueError, match="several training split folders"):
        find_splits(tmp_path)


def test_time_split_takes_latest_fraction():
    # By time: 1 (row 1), 2 (row 4), 3 (row 2), 3 (row 3), 5 (row 0). The last two are rows 3 and 0.
    earlier, later = split_by_time(make_behaviors([5, 1, 3, 3, 2]), 0.4)
    assert earlier.tolist() == [1, 2, 4]
    assert later.tolist() == [0, 3]


def test_time_split_breaks_ties_by_file_order():
    earlier, later = split_by_time(make_behaviors([7, 7, 7, 7]), 0.25)
    assert earlier.tolist() == [0, 1, 2]
    assert later.tolist() == [3]


def test_time_split_keeps_both_parts_nonempty():
    behaviors = make_behaviors([1, 2])
    for fraction in (0.01, 0.5, 0.99):
        earlier, later = split_by_time(behaviors, fraction)
        assert earlier.tolist() == [0]
        assert later.tolist() == [1]


def test_time_split_parts_cover_all_once():
    rng = np.random.default_rng(0)
    behaviors = make_behaviors(rng.integers(0, 20, size=101).tolist())
    earlier, later = split_by_time(behaviors, 0.2)
    assert len(later) == 20
    assert sorted(earlier.tolist() + later.tolist()) == list(range(101))
    assert behaviors.times[earlier].max() <= behaviors.times[later].min()


def test_time_split_rejects_bad_fraction():
    for fraction in (0.0, 1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="fraction"):
            split_by_time(make_behaviors([1, 2, 3]), fraction)
