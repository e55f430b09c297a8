"""OpenAIEncoder against a local mock server: batching, truncation, retries, errors, secrets."""

import logging
import time

import numpy as np
import pytest

from minirec.text.cache import EmbeddingCache
from minirec.text.openai_encoder import (
    EmbeddingRequestError,
    OpenAIEncoder,
    retry_after_seconds,
)
from minirec.text.tokens import estimate_tokens, token_upper_bound, truncate_to_token_bound
from mock_openai_server import mock_vector, openai_server  # noqa: F401 (fixture)

DIM = 8
API_KEY = "sk-test-4f1c0e9a-never-log-this-key"


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)


def make_encoder(server, **options):
    """Build an encoder for the mock server with tiny backoff so tests stay fast."""
    settings = dict(
        dimensions=DIM, base_url=server.base_url, backoff_base=0.001, backoff_cap=0.002, timeout=5.0,
    )
    settings.update(options)
    return OpenAIEncoder(**settings)


def expected_matrix(texts):
    return np.stack([mock_vector(text, DIM) for text in texts])


# Token bounds.

def test_token_upper_bound_counts_utf8_bytes():
    assert token_upper_bound("abc") == 3
    assert token_upper_bound("é") == 2  # U+00E9 is two bytes in UTF-8
    assert token_upper_bound("日本") == 6


def test_estimate_tokens_rounds_up_quarter_bytes():
    assert estimate_tokens("") == 0
    assert estimate_tokens("abcd") == 1
    assert estimate_tokens("abcde") == 2


def test_truncation_never_splits_character():
    text, was_cut = truncate_to_token_bound("aé" * 4, 4)  # bytes: a, é(2), a, é(2)...
    assert was_cut
    assert text == "aéa"  # the fourth byte would start the second é, so it is dropped
    assert truncate_to_token_bound("short", 10) == ("short", False)


# Batching and preparation.

def test_batches_split_by_count(openai_server):
    texts = [f"news {i}" for i in range(5)]
    vectors = make_encoder(openai_server, batch_size=2).encode(texts)

    assert [request.inputs for request in openai_server.requests] == [texts[0:2], texts[2:4], texts[4:5]]
    np.testing.assert_allclose(vectors, expected_matrix(texts), rtol=1e-6)


def test_batches_split_by_token_budget(openai_server):
    # Each text is 10 bytes, so a budget of 25 fits two texts per request.
    texts = [f"text {i:05d}" for i in range(5)]
    assert all(token_upper_bound(text) == 10 for text in texts)
    make_encoder(openai_server, batch_size=100, max_batch_tokens=25, max_input_tokens=25).encode(texts)

    assert [len(request.inputs) for request in openai_server.requests] == [2, 2, 1]


def test_request_carries_model_dimensions_float(openai_server):
    make_encoder(openai_server, model="text-embedding-3-large").encode(["one"])
    request = openai_server.requests[0]
    assert request.model == "text-embedding-3-large"
    assert request.dimensions == DIM
    assert request.encoding_format == "float"
    assert request.authorization == f"Bearer {API_KEY}"


def test_long_text_truncated_and_counted(openai_server):
    encoder = make_encoder(openai_server, max_input_tokens=10)
    vectors = encoder.encode(["0123456789abcdef", "short"])

    assert openai_server.requests[0].inputs == ["0123456789", "short"]
    assert encoder.last_stats.truncated == 1
    np.testing.assert_allclose(vectors[0], mock_vector("0123456789", DIM), rtol=1e-6)


def test_empty_text_never_sent(openai_server):
    encoder = make_encoder(openai_server)
    vectors = encoder.encode(["", "  \t", "real text"])

    assert openai_server.all_inputs() == ["real text"]
    assert encoder.last_stats.empty == 2
    assert not vectors[0].any()
    assert not vectors[1].any()
    np.testing.assert_allclose(vectors[2], mock_vector("real text", DIM), rtol=1e-6)


def test_only_empty_texts_need_no_key(openai_server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    vectors = make_encoder(openai_server).encode(["", " "])
    assert vectors.shape == (2, DIM)
    assert openai_server.requests == []


def test_duplicate_texts_requested_once(openai_server):
    encoder = make_encoder(openai_server)
    vectors = encoder.encode(["same", "other", "same"])

    assert openai_server.all_inputs() == ["same", "other"]
    assert encoder.last_stats.duplicates == 1
    np.testing.assert_allclose(vectors[2], mock_vector("same", DIM), rtol=1e-6)


def test_response_order_follows_index(openai_server):
    openai_server.reverse_order = True
    texts = ["first", "second", "third"]
    vectors = make_encoder(openai_server).encode(texts)
    np.testing.assert_allclose(vectors, expected_matrix(texts), rtol=1e-6)


def test_wrong_dimension_response_rejected(openai_server):
    openai_server.wrong_dimensions = DIM + 1
    with pytest.raises(EmbeddingRequestError, match=f"length \\[{DIM + 1}\\], expected {DIM}"):
        make_encoder(openai_server).encode(["a"])


def test_batch_size_over_2048_rejected():
    with pytest.raises(ValueError, match="2048"):
        OpenAIEncoder(batch_size=2049)


def test_cost_estimate_for_known_and_unknown_models():
    # 39 copies of one 400-byte text plus another: 2 texts to request, 100 estimated tokens each.
    texts = ["x" * 400] * 39 + ["y" * 400]
    small = OpenAIEncoder(model="text-embedding-3-small", batch_size=16).plan(texts)
    assert small.to_request == 2  # the 39 copies are one text
    assert small.duplicates == 38
    assert small.estimated_tokens == 200
    assert small.estimated_cost_usd == pytest.approx(200 * 0.02 / 1e6)
    assert small.requests_planned == 1

    large = OpenAIEncoder(model="text-embedding-3-large").plan(["z" * 4_000_000])
    assert large.truncated == 1  # cut to 8191 bytes, ceil(8191 / 4) = 2048 estimated tokens
    assert large.estimated_cost_usd == pytest.approx(2048 * 0.13 / 1e6)

    unknown = OpenAIEncoder(model="local-model", dimensions=DIM).plan(["abcd"])
    assert unknown.estimated_cost_usd is None


# Retries and failures.

def test_rate_limit_waits_retry_after(openai_server):
    openai_server.fail_next(429, headers={"retry-after-ms": "300"})
    encoder = make_encoder(openai_server)
    vectors = encoder.encode(["rate limited"])

    first, second = openai_server.requests
    assert second.received_at - first.received_at >= 0.3
    assert encoder.last_stats.retries == 1
    np.testing.assert_allclose(vectors[0], mock_vector("rate limited", DIM), rtol=1e-6)


def test_retry_after_header_parsing():
    assert retry_after_seconds({"retry-after-ms": "250"}) == 0.25
    assert retry_after_seconds({"retry-after": "3"}) == 3.0
    assert retry_after_seconds({"retry-after-ms": "oops", "retry-after": "2"}) == 2.0
    assert retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0  # in the past
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None


def test_server_errors_exhaust_tries(openai_server, tmp_path):
    openai_server.answer_next()
    openai_server.fail_next(500, times=3)
    cache = EmbeddingCache(tmp_path / "cache.npz", "text-embedding-3-small", DIM)
    encoder = make_encoder(openai_server, batch_size=2, max_tries=3, cache=cache)

    with pytest.raises(EmbeddingRequestError) as caught:
        encoder.encode(["a", "b", "c", "d"], ids=["N1", "N2", "N3", "N4"])

    message = str(caught.value)
    assert "request 2 of 2" in message
    assert "first id N3" in message
    assert "failed after 3 tries" in message
    assert "2 of 4 texts to request are done" in message
    assert "2 remain" in message
    assert "Rerun" in message
    assert len(openai_server.requests) == 4
    assert len(EmbeddingCache(tmp_path / "cache.npz", "text-embedding-3-small", DIM)) == 2


def test_bad_request_not_retried(openai_server):
    openai_server.reject_text("broken")
    with pytest.raises(EmbeddingRequestError) as caught:
        make_encoder(openai_server, batch_size=2).encode(["fine", "ok", "broken", "x"], ids=["N1", "N2", "N3", "N4"])

    message = str(caught.value)
    assert "HTTP 400" in message
    assert "first id N3" in message
    assert "'broken' is invalid" in message
    assert "not retried" in message
    assert len(openai_server.requests) == 2


def test_timeout_is_retried(openai_server):
    openai_server.delay_next(3.0)
    encoder = make_encoder(openai_server, timeout=0.3)
    started = time.monotonic()
    vectors = encoder.encode(["slow"])

    assert time.monotonic() - started < 2.5
    assert len(openai_server.requests) == 2
    assert encoder.last_stats.retries == 1
    np.testing.assert_allclose(vectors[0], mock_vector("slow", DIM), rtol=1e-6)


def test_dropped_connection_is_retried(openai_server):
    openai_server.drop_next()
    encoder = make_encoder(openai_server)
    vectors = encoder.encode(["dropped"])

    assert [request.inputs for request in openai_server.requests] == [["dropped"], ["dropped"]]
    assert encoder.last_stats.retries == 1
    np.testing.assert_allclose(vectors[0], mock_vector("dropped", DIM), rtol=1e-6)


def test_missing_api_key_names_variable(openai_server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(RuntimeError, match="OPENAI_API_KEY"):
        make_encoder(openai_server).encode(["needs a request"])
    assert openai_server.requests == []


def test_api_key_never_logged_or_cached(openai_server, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    openai_server.fail_next(429, headers={"retry-after-ms": "1"})
    openai_server.drop_next()
    openai_server.reject_text("bad")
    cache_path = tmp_path / "cache.npz"
    encoder = make_encoder(openai_server, cache=EmbeddingCache(cache_path, "text-embedding-3-small", DIM))

    with pytest.raises(EmbeddingRequestError) as caught:
        encoder.encode(["good", "bad"], ids=["N1", "N2"])

    assert "retrying" in caplog.text  # the retries were logged...
    assert API_KEY not in caplog.text  # ...without the key
    assert API_KEY not in str(caught.value)
    assert API_KEY.encode() not in cache_path.read_bytes()
