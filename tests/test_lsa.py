import logging
import math

import numpy as np
import pytest

import minirec.text.lsa as lsa
from minirec.text.lsa import LSAEncoder, tokenize


def random_word_corpus(n_docs=300, n_words=400, words_per_doc=12, seed=7):
    rng = np.random.default_rng(seed)
    words = [f"w{index}" for index in range(n_words)]
    # Zipf-like frequencies give the TF-IDF matrix distinct singular values.
    weights = 1.0 / np.arange(1, n_words + 1)
    weights /= weights.sum()
    return [
        " ".join(words[j] for j in rng.choice(n_words, size=words_per_doc, p=weights))
        for _ in range(n_docs)
    ]


def hand_tfidf(counts, n_docs, document_frequency, sublinear):
    """TF-IDF of one document from its term counts, by the textbook smooth-idf formula."""
    vector = {}
    for term, count in counts.items():
        tf = 1.0 + math.log(count) if sublinear else float(count)
        idf = math.log((1.0 + n_docs) / (1.0 + document_frequency[term])) + 1.0
        vector[term] = tf * idf
    norm = math.sqrt(sum(value * value for value in vector.values()))
    return {term: value / norm for term, value in vector.items()}


def cosine(a, b):
    return sum(a[t] * b.get(t, 0.0) for t in a)


def test_tokenize_lowercases_and_splits_punctuation():
    assert tokenize("U.S. Stocks rose 2% on Don't-Stop news") == [
        "u", "s", "stocks", "rose", "2", "on", "don", "t", "stop", "news"
    ]


def test_tokenize_drops_non_ascii_letters():
    assert tokenize("Café über 3D") == ["caf", "ber", "3d"]


def test_idf_matches_smooth_formula():
    texts = ["apple banana", "apple cherry", "apple banana banana"]

    encoder = LSAEncoder(dim=2, min_df=1).fit(texts)

    expected = {
        "apple": math.log(4 / 4) + 1,
        "banana": math.log(4 / 3) + 1,
        "cherry": math.log(4 / 2) + 1,
    }
    for term, value in expected.items():
        assert encoder.idf[encoder.vocabulary[term]] == pytest.approx(value)


@pytest.mark.parametrize("sublinear", [True, False])
def test_full_rank_lsa_keeps_tfidf_cosines(sublinear):
    # Four texts, two identical, so the TF-IDF rank is 3 = n_docs - 1 and the LSA
    # projection loses nothing: cosines between training texts must be unchanged.
    texts = ["red red apple", "green apple pie", "red pie pie pie", "green apple pie"]
    counts = [
        {"red": 2, "apple": 1},
        {"green": 1, "apple": 1, "pie": 1},
        {"red": 1, "pie": 3},
        {"green": 1, "apple": 1, "pie": 1},
    ]
    document_frequency = {"red": 2, "apple": 3, "green": 2, "pie": 3}
    expected_vectors = [hand_tfidf(c, 4, document_frequency, sublinear) for c in counts]

    vectors = LSAEncoder(dim=3, min_df=1, sublinear_tf=sublinear).fit_transform(texts)

    for i in range(4):
        for j in range(4):
            expected = cosine(expected_vectors[i], expected_vectors[j])
            assert float(vectors[i] @ vectors[j]) == pytest.approx(expected, abs=1e-5)


def test_output_rows_have_unit_norm():
    texts = random_word_corpus()

    vectors = LSAEncoder(dim=16).fit_transform(texts)

    assert vectors.dtype == np.float32
    assert vectors.shape == (300, 16)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)


def test_unknown_tokens_give_zero_row():
    encoder = LSAEncoder(dim=8).fit(random_word_corpus())

    vectors = encoder.transform(["zebra quokka", "", "w0 w1"])

    assert np.array_equal(vectors[0], np.zeros(8, dtype=np.float32))
    assert np.array_equal(vectors[1], np.zeros(8, dtype=np.float32))
    assert np.linalg.norm(vectors[2]) == pytest.approx(1.0, rel=1e-5)


def test_transform_matches_fit_transform():
    texts = random_word_corpus()
    encoder = LSAEncoder(dim=12)

    fitted = encoder.fit_transform(texts)
    projected = encoder.transform(texts[:50])

    np.testing.assert_allclose(projected, fitted[:50], atol=1e-6)


def test_transform_of_empty_list_is_empty():
    encoder = LSAEncoder(dim=4).fit(random_word_corpus())

    assert encoder.transform([]).shape == (0, 4)


def test_min_df_drops_rare_tokens():
    texts = ["alpha beta", "alpha gamma", "alpha beta delta"]

    encoder = LSAEncoder(dim=1, min_df=2).fit(texts)

    assert sorted(encoder.vocabulary) == ["alpha", "beta"]


def test_max_features_breaks_ties_alphabetically():
    # Document frequencies: a=3, b=2, c=2, d=2, e=1.
    texts = ["a b c", "a c d", "a b d e"]

    encoder = LSAEncoder(dim=2, min_df=1, max_features=3).fit(texts)

    assert sorted(encoder.vocabulary) == ["a", "b", "c"]


def test_small_corpus_lowers_dim_with_warning(caplog):
    texts = ["one two three", "two three four", "three four five"]

    with caplog.at_level(logging.WARNING, logger="minirec.text.lsa"):
        encoder = LSAEncoder(dim=64, min_df=1)
        vectors = encoder.fit_transform(texts)

    assert encoder.dim == 2
    assert vectors.shape == (3, 2)
    assert "dim lowered from 64 to 2" in caplog.text


def test_components_follow_sign_convention():
    encoder = LSAEncoder(dim=10).fit(random_word_corpus())

    for row in encoder.components:
        assert row[np.argmax(np.abs(row))] > 0


def test_fitting_twice_gives_identical_encoder():
    texts = random_word_corpus()

    first = LSAEncoder(dim=10, solver="propack").fit(texts)
    second = LSAEncoder(dim=10, solver="propack").fit(texts)

    assert np.array_equal(first.components, second.components)


def test_all_solvers_agree_after_sign_fix():
    texts = random_word_corpus()

    components = {
        solver: LSAEncoder(dim=10, solver=solver).fit(texts).components
        for solver in ("dense", "propack", "arpack")
    }

    # The Lanczos solvers run in float32, so compare directions, not digits.
    for solver in ("propack", "arpack"):
        cosines = np.sum(components[solver] * components["dense"], axis=1)
        assert cosines.min() > 0.9999, solver


def test_rank_deficient_corpus_zeroes_extra_dims():
    texts = ["a b", "a b", "c d", "c d"]

    vectors = LSAEncoder(dim=3, min_df=1, solver="dense").fit_transform(texts)

    assert np.all(vectors[:, 2] == 0.0)
    assert vectors[0] @ vectors[2] == pytest.approx(0.0, abs=1e-6)


def test_propack_opt_in_error_falls_back_to_arpack(monkeypatch, caplog):
    real_svds = lsa.svds

    def svds_without_propack(matrix, k, v0, solver):
        if solver == "propack":
            raise ValueError("solver='propack' is opt-in, set SCIPY_USE_PROPACK")
        return real_svds(matrix, k=k, v0=v0, solver=solver)

    monkeypatch.setattr(lsa, "svds", svds_without_propack)
    texts = random_word_corpus()

    with caplog.at_level(logging.WARNING, logger="minirec.text.lsa"):
        fallback = LSAEncoder(dim=6, solver="propack").fit(texts)
    reference = LSAEncoder(dim=6, solver="arpack").fit(texts)

    assert "using ARPACK" in caplog.text
    assert np.array_equal(fallback.components, reference.components)


def test_save_load_round_trip(tmp_path):
    texts = random_word_corpus()
    encoder = LSAEncoder(dim=8, min_df=3, sublinear_tf=False, seed=5).fit(texts)
    path = tmp_path / "lsa.npz"

    encoder.save(path)
    loaded = LSAEncoder.load(path)

    assert loaded.vocabulary == encoder.vocabulary
    assert (loaded.dim, loaded.min_df, loaded.sublinear_tf, loaded.seed) == (8, 3, False, 5)
    np.testing.assert_array_equal(loaded.transform(texts[:20]), encoder.transform(texts[:20]))
    assert [p.name for p in tmp_path.iterdir()] == ["lsa.npz"]


def test_saved_file_loads_without_pickle(tmp_path):
    encoder = LSAEncoder(dim=4).fit(random_word_corpus())
    path = tmp_path / "lsa.npz"
    encoder.save(path)

    with np.load(path, allow_pickle=False) as stored:
        vocabulary = stored["vocabulary"]

    assert vocabulary.dtype.kind == "U"
    assert list(vocabulary) == sorted(encoder.vocabulary, key=encoder.vocabulary.get)


def test_load_rejects_file_missing_fields(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, idf=np.ones(3))

    with pytest.raises(ValueError, match=r"other\.npz.*missing field"):
        LSAEncoder.load(path)


def test_fit_rejects_single_text():
    with pytest.raises(ValueError, match="at least 2 texts"):
        LSAEncoder().fit(["only one"])


def test_fit_rejects_non_string_text():
    with pytest.raises(TypeError, match="position 1 is float"):
        LSAEncoder().fit(["a b", float("nan"), "b c"])


def test_fit_rejects_too_few_frequent_tokens():
    with pytest.raises(ValueError, match="lower min_df"):
        LSAEncoder(min_df=2).fit(["a b", "c d", "e f"])


def test_transform_before_fit_raises():
    with pytest.raises(RuntimeError, match="not fitted"):
        LSAEncoder().transform(["text"])
