from pathlib import Path

import numpy as np
import pytest

from minirec.text.vectors import TextVectors, align_text_vectors, load_text_vectors

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def write_vectors(folder, matrix, ids_name, ids_text):
    npy_path = folder / "emb.npy"
    np.save(npy_path, matrix)
    (folder / ids_name).write_text(ids_text, encoding="utf-8")
    return npy_path


def test_one_id_per_line_file_loads(tmp_path):
    matrix = np.arange(6, dtype=np.float64).reshape(3, 2)
    npy_path = write_vectors(tmp_path, matrix, "emb_ids.txt", "N1\nN2\nN3\n\n")

    vectors = load_text_vectors(npy_path)

    assert vectors.ids == ["N1", "N2", "N3"]
    assert vectors.matrix.dtype == np.float32
    np.testing.assert_array_equal(vectors.matrix, matrix.astype(np.float32))
    assert vectors.source == str(npy_path)


def test_shuffled_row_table_maps_ids_to_rows(tmp_path):
    rng = np.random.default_rng(3)
    ids = [f"N{100 + i}" for i in range(50)]
    matrix = rng.standard_normal((50, 4)).astype(np.float32)
    lines = [f"{row}\t{news_id}" for row, news_id in enumerate(ids)]
    rng.shuffle(lines)
    npy_path = write_vectors(tmp_path, matrix, "emb_ids.tsv", "row\tnews_id\n" + "\n".join(lines))

    vectors = load_text_vectors(npy_path)
    aligned, has_vector, missing = align_text_vectors(vectors, ["N137", "N100", "N149"])

    np.testing.assert_array_equal(aligned[0], matrix[37])
    np.testing.assert_array_equal(aligned[1], matrix[0])
    np.testing.assert_array_equal(aligned[2], matrix[49])
    assert has_vector.all()
    assert missing == 0


@pytest.mark.parametrize("ids_name", ["emb_ids.tsv", "emb_ids.txt", "emb.ids.txt"])
def test_ids_file_found_next_to_npy(tmp_path, ids_name):
    npy_path = write_vectors(tmp_path, np.ones((2, 3)), ids_name, "A\nB\n")

    assert load_text_vectors(npy_path).ids == ["A", "B"]


def test_explicit_ids_path_is_used(tmp_path):
    npy_path = write_vectors(tmp_path, np.ones((2, 3)), "emb_ids.txt", "A\nB\n")
    other = tmp_path / "other.txt"
    other.write_text("X\nY\n", encoding="utf-8")

    assert load_text_vectors(npy_path, other).ids == ["X", "Y"]


def test_missing_ids_file_names_tried_paths(tmp_path):
    npy_path = tmp_path / "emb.npy"
    np.save(npy_path, np.ones((2, 3)))

    with pytest.raises(FileNotFoundError, match="emb_ids.tsv, emb_ids.txt, emb.ids.txt"):
        load_text_vectors(npy_path)


def test_align_fills_missing_with_zeros():
    vectors = TextVectors(ids=["N1", "N2"], matrix=np.array([[1, 2], [3, 4]], np.float32), source="x")

    aligned, has_vector, missing = align_text_vectors(vectors, ["N2", "N9", "N1", "N8"])

    np.testing.assert_array_equal(aligned, [[3, 4], [0, 0], [1, 2], [0, 0]])
    np.testing.assert_array_equal(has_vector, [True, False, True, False])
    assert missing == 2


def test_row_count_mismatch_is_rejected(tmp_path):
    npy_path = write_vectors(tmp_path, np.ones((3, 2)), "emb_ids.txt", "A\nB\n")

    with pytest.raises(ValueError, match=r"emb_ids\.txt: 2 ids but .* has 3 rows"):
        load_text_vectors(npy_path)


def test_non_finite_row_names_its_id(tmp_path):
    matrix = np.ones((3, 2))
    matrix[1, 0] = np.nan
    matrix[2, 1] = np.inf
    npy_path = write_vectors(tmp_path, matrix, "emb_ids.txt", "A\nB\nC\n")

    with pytest.raises(ValueError, match=r"2 row\(s\) contain NaN or infinity, first row 1 \(news id B\)"):
        load_text_vectors(npy_path)


def test_duplicate_id_is_rejected(tmp_path):
    npy_path = write_vectors(tmp_path, np.ones((3, 2)), "emb_ids.txt", "A\nB\nA\n")

    with pytest.raises(ValueError, match="news id A is given for rows 0 and 2"):
        load_text_vectors(npy_path)


def test_one_dimensional_array_is_rejected(tmp_path):
    npy_path = write_vectors(tmp_path, np.ones(3), "emb_ids.txt", "A\nB\nC\n")

    with pytest.raises(ValueError, match=r"shape \(3,\).*expected a 2-D float array"):
        load_text_vectors(npy_path)


def test_integer_array_is_rejected(tmp_path):
    npy_path = write_vectors(tmp_path, np.ones((2, 2), dtype=np.int64), "emb_ids.txt", "A\nB\n")

    with pytest.raises(ValueError, match="dtype int64"):
        load_text_vectors(npy_path)


def test_object_array_is_not_unpickled(tmp_path):
    npy_path = tmp_path / "emb.npy"
    np.save(npy_path, np.array([[{"a": 1}]], dtype=object), allow_pickle=True)
    (tmp_path / "emb_ids.txt").write_text("A\n", encoding="utf-8")

    with pytest.raises(ValueError, match=r"emb\.npy: cannot be read as a plain \.npy array"):
        load_text_vectors(npy_path)


def test_row_out_of_range_names_line(tmp_path):
    npy_path = write_vectors(tmp_path, np.ones((2, 2)), "emb_ids.tsv", "row\tnews_id\n0\tA\n2\tB\n")

    with pytest.raises(ValueError, match=r"emb_ids\.tsv, line 3: row 2 is out of range"):
        load_text_vectors(npy_path)


def test_repeated_row_names_both_lines(tmp_path):
    npy_path = write_vectors(tmp_path, np.ones((2, 2)), "emb_ids.tsv", "row\tnews_id\n1\tA\n1\tB\n")

    with pytest.raises(ValueError, match="line 3: row 1 already appeared on line 2"):
        load_text_vectors(npy_path)


def test_row_without_id_is_rejected(tmp_path):
    npy_path = write_vectors(tmp_path, np.ones((3, 2)), "emb_ids.tsv", "row\tnews_id\n0\tA\n2\tC\n")

    with pytest.raises(ValueError, match=r"1 of 3 matrix rows have no id \(first: row 1\)"):
        load_text_vectors(npy_path)


def test_non_integer_row_names_line(tmp_path):
    npy_path = write_vectors(tmp_path, np.ones((1, 2)), "emb_ids.tsv", "row\tnews_id\nzero\tA\n")

    with pytest.raises(ValueError, match="line 2: row 'zero' is not an integer"):
        load_text_vectors(npy_path)


def test_tab_in_plain_id_file_is_rejected(tmp_path):
    npy_path = write_vectors(tmp_path, np.ones((2, 2)), "emb_ids.txt", "A\n1\tB\n")

    with pytest.raises(ValueError, match="line 2: '1\\\\tB' is not a news id"):
        load_text_vectors(npy_path)


def test_real_mind_tiny_vectors_load():
    npy_path = DATA / "mind_tiny" / "llm_embeddings.npy"
    if not npy_path.exists():
        pytest.skip(f"real MIND data not found at {npy_path}")
    raw = np.load(npy_path, allow_pickle=False)

    vectors = load_text_vectors(npy_path)
    aligned, has_vector, missing = align_text_vectors(vectors, ["N55528", "N00000"])

    assert vectors.matrix.shape == (500, 1536)
    assert vectors.ids[0] == "N55528"
    np.testing.assert_array_equal(aligned[0], raw[0].astype(np.float32))
    np.testing.assert_array_equal(has_vector, [True, False])
    assert missing == 1
