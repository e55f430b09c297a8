"""EmbeddingCache on disk, and resuming OpenAIEncoder runs from it, including after SIGKILL."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from minirec.text.cache import CacheMismatchError, EmbeddingCache, text_digest
from minirec.text.openai_encoder import OpenAIEncoder
from mock_openai_server import mock_vector, openai_server  # noqa: F401 (fixture)

MODEL = "text-embedding-3-small"
DIM = 4


def vectors_for(texts):
    return np.stack([mock_vector(text, DIM) for text in texts])


def test_cache_roundtrip_after_flush(tmp_path):
    path = tmp_path / "cache.npz"
    cache = EmbeddingCache(path, MODEL, DIM)
    cache.put_many(["a", "b"], vectors_for(["a", "b"]))
    cache.flush()

    reloaded = EmbeddingCache(path, MODEL, DIM)
    vectors, missing = reloaded.get_many(["b", "unknown", "a"])
    assert missing == [1]
    np.testing.assert_array_equal(vectors[0], mock_vector("b", DIM))
    np.testing.assert_array_equal(vectors[2], mock_vector("a", DIM))
    assert np.isnan(vectors[1]).all()


def test_unflushed_vectors_found_in_memory(tmp_path):
    cache = EmbeddingCache(tmp_path / "cache.npz", MODEL, DIM)
    assert cache.put_many(["a"], vectors_for(["a"])) == 1
    assert cache.put_many(["a", "b"], vectors_for(["a", "b"])) == 1  # "a" is already cached
    assert cache.pending_count == 2
    assert not (tmp_path / "cache.npz").exists()

    _, missing = cache.get_many(["a", "b", "c"])
    assert missing == [2]


def test_cache_file_without_pickles_or_texts(tmp_path):
    path = tmp_path / "cache.npz"
    cache = EmbeddingCache(path, MODEL, DIM)
    cache.put_many(["secret headline"], vectors_for(["secret headline"]))
    cache.flush()

    with np.load(path, allow_pickle=False) as stored:
        assert list(stored["keys"]) == [text_digest("secret headline")]
        assert stored["vectors"].dtype == np.float32
        assert str(stored["model"]) == MODEL
        assert int(stored["dimensions"]) == DIM
    assert b"secret headline" not in path.read_bytes()


@pytest.mark.parametrize("model, dimensions", [("text-embedding-3-large", DIM), (MODEL, DIM * 2)])
def test_cache_for_other_model_rejected(tmp_path, model, dimensions):
    path = tmp_path / "cache.npz"
    EmbeddingCache(path, MODEL, DIM).flush()
    with pytest.raises(CacheMismatchError, match="separate cache file"):
        EmbeddingCache(path, model, dimensions)


def test_corrupt_cache_file_named_in_error(tmp_path):
    path = tmp_path / "cache.npz"
    path.write_bytes(b"not an npz archive")
    with pytest.raises(ValueError, match="cache.npz is not a valid embedding cache.*Delete it"):
        EmbeddingCache(path, MODEL, DIM)


def test_failed_flush_keeps_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "cache.npz"
    cache = EmbeddingCache(path, MODEL, DIM)
    cache.put_many(["kept"], vectors_for(["kept"]))
    cache.flush()
    before = path.read_bytes()

    def write_half_then_fail(handle, **arrays):
        handle.write(b"PK partial archive")
        raise OSError("No space left on device")

    monkeypatch.setattr(np, "savez", write_half_then_fail)
    cache.put_many(["lost"], vectors_for(["lost"]))
    with pytest.raises(OSError, match="No space"):
        cache.flush()

    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache.npz"]  # no temporary file left


def test_put_rejects_nan_and_wrong_shape(tmp_path):
    cache = EmbeddingCache(tmp_path / "cache.npz", MODEL, DIM)
    with pytest.raises(ValueError, match="NaN"):
        cache.put_many(["a"], np.full((1, DIM), np.nan))
    with pytest.raises(ValueError, match=f"shape \\(1, {DIM}\\)"):
        cache.put_many(["a"], np.zeros((1, DIM + 1)))


def test_encoder_rejects_cache_of_other_dimensions(tmp_path):
    cache = EmbeddingCache(tmp_path / "cache.npz", MODEL, DIM)
    with pytest.raises(ValueError, match="dimensions"):
        OpenAIEncoder(model=MODEL, dimensions=DIM * 2, cache=cache)


def test_rerun_requests_only_missing_texts(openai_server, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "placeholder")
    path = tmp_path / "cache.npz"
    first = [f"first {i}" for i in range(5)]
    second = first + ["new 1", "new 2"]

    def run(texts):
        cache = EmbeddingCache(path, MODEL, DIM)
        encoder = OpenAIEncoder(model=MODEL, dimensions=DIM, base_url=openai_server.base_url, cache=cache)
        return encoder.encode(texts), encoder.last_stats

    run(first)
    vectors, stats = run(second)

    assert openai_server.all_inputs() == first + ["new 1", "new 2"]
    assert stats.cached == 5
    assert stats.requested == 2
    np.testing.assert_allclose(vectors, vectors_for(second), rtol=1e-6)


RUN_ENCODER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from minirec.text.cache import EmbeddingCache
    from minirec.text.openai_encoder import OpenAIEncoder

    texts_path, cache_path, base_url, out_path = sys.argv[1:]
    texts = open(texts_path, encoding="utf-8").read().splitlines()
    cache = EmbeddingCache(cache_path, "text-embedding-3-small", 4)
    encoder = OpenAIEncoder(
        dimensions=4, base_url=base_url, batch_size=2, checkpoint_every=1, cache=cache
    )
    np.save(out_path, encoder.encode(texts))
    """
)


def test_kill_then_resume_pays_once(openai_server, tmp_path):
    """SIGKILL a run after some responses; the rerun re-requests at most the unflushed batch.

    With checkpoint_every=1 the cache is flushed after every batch, before the next request
    is sent. The documented bound of checkpoint_every + batch_size - 1 = 2 unflushed texts
    is then exactly the batch answered or in flight at the moment of the kill.
    """
    texts = [f"headline {i:02d}" for i in range(20)]  # 10 requests of 2 texts
    texts_path = tmp_path / "texts.txt"
    texts_path.write_text("\n".join(texts), encoding="utf-8")
    cache_path = tmp_path / "cache.npz"
    out_path = tmp_path / "vectors.npy"
    command = [
        sys.executable, "-c", RUN_ENCODER, str(texts_path), str(cache_path), openai_server.base_url, str(out_path),
    ]
    environment = {**os.environ, "OPENAI_API_KEY": "placeholder"}

    openai_server.response_delay = 0.02
    openai_server.answered_event_after = 3
    first_run = subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert openai_server.answered_event.wait(timeout=30), "the first run never got 3 answers"
    finally:
        first_run.kill()  # SIGKILL: no finally blocks, no flush on exit
        first_run.wait()
    first_requests = list(openai_server.requests)
    assert not out_path.exists(), "the first run finished before it was killed"

    _, missing = EmbeddingCache(cache_path, MODEL, DIM).get_many(texts)
    flushed = {text for i, text in enumerate(texts) if i not in set(missing)}

    second_run = subprocess.run(command, env=environment, capture_output=True, timeout=60)
    assert second_run.returncode == 0, second_run.stderr.decode()
    second_requests = openai_server.requests[len(first_requests):]

    first_inputs = [text for request in first_requests for text in request.inputs]
    second_inputs = [text for request in second_requests for text in request.inputs]
    paid_twice = set(first_inputs) & set(second_inputs)

    assert len(first_inputs) == len(set(first_inputs))
    assert len(second_inputs) == len(set(second_inputs))
    assert set(first_inputs) | set(second_inputs) == set(texts)
    assert not flushed & set(second_inputs)
    assert set(first_inputs) - set(first_requests[-1].inputs) <= flushed
    assert paid_twice <= set(first_requests[-1].inputs)
    assert len(paid_twice) <= 2
    np.testing.assert_allclose(np.load(out_path), vectors_for(texts), rtol=1e-6)
