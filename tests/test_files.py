"""Atomic writes: the old content survives a failed write, and no temporary file is left behind."""

import numpy as np
import pytest

from minirec.files import save_arrays, write_atomically, write_text_atomic


def test_text_round_trip(tmp_path):
    write_text_atomic(tmp_path / "a.json", "{\"x\": 1}\n")
    assert (tmp_path / "a.json").read_text(encoding="utf-8") == "{\"x\": 1}\n"


def test_failed_write_keeps_old_content(tmp_path):
    target = tmp_path / "a.txt"
    write_text_atomic(target, "old")

    def fail_halfway(handle):
        handle.write(b"ne")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomically(target, fail_halfway)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_arrays_round_trip_without_pickle(tmp_path):
    save_arrays(tmp_path / "a.npz", {"x": np.arange(3), "names": np.array(["N1", "N2"])})
    with np.load(tmp_path / "a.npz", allow_pickle=False) as stored:
        assert stored["x"].tolist() == [0, 1, 2]
        assert stored["names"].tolist() == ["N1", "N2"]
