"""Text embeddings from the OpenAI embeddings API, batched, retried and resumable.

The encoder works in two steps. ``plan`` prepares the texts without any network access:
it truncates over-long texts, sets empty texts aside, looks texts up in the cache,
de-duplicates the rest, packs them into requests and estimates tokens and cost.
``encode`` logs that plan and then sends the requests one after another, adding the vectors
of each response to the cache, so an interrupted run resumes where it stopped.

Limits of the embeddings API, from the ``embeddings.create`` docstring of the
``openai`` Python client 3.63: at most 2048 inputs per request, at most 8192 tokens per
input and at most 300,000 tokens summed over one request.
"""

import email.utils
import logging
import math
import os
import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Mapping, Sequence

import numpy as np

from minirec.text.cache import EmbeddingCache
from minirec.text.tokens import estimate_tokens, token_upper_bound, truncate_to_token_bound

logger = logging.getLogger(__name__)

API_KEY_VARIABLE = "OPENAI_API_KEY"
MAX_INPUTS_PER_REQUEST = 2048
MAX_TOKENS_PER_REQUEST = 300_000

# OpenAI list prices in USD per million input tokens. Prices change, so the cost that
# ``plan`` reports is an estimate.
PRICE_PER_MILLION_TOKENS = {
    "text-embedding-3-small": 0.02,
    "text-embedding-3-large": 0.13,
    "text-embedding-ada-002": 0.10,
}

# text-embedding-ada-002 rejects the ``dimensions`` parameter and always returns 1536 values.
FIXED_DIMENSIONS = {"text-embedding-ada-002": 1536}


class EmbeddingRequestError(RuntimeError):
    """Raised when a batch of texts could not be embedded.

    The message names the failed request and its first text, and states how many texts are
    done and how many remain.
    """


class _BatchFailed(Exception):
    """Raised inside ``encode`` when a request fails for good. The message names the request."""


@dataclass
class EmbeddingStats:
    """Counts of one ``plan`` or ``encode`` call.

    Attributes
    ----------
    texts, empty, truncated : int
        Input texts, those empty after stripping whitespace (never sent), and those cut
        to ``max_input_tokens``.
    cached : int
        Non-empty texts found in the cache.
    duplicates : int
        Texts not cached that repeat an earlier text of the same call, which is requested once.
    to_request, requests_planned : int
        Distinct texts to request, and the number of requests they are packed into.
    estimated_tokens, estimated_cost_usd : int, float or None
        Estimates for the texts to request, at UTF-8 bytes / 4 per text. The cost is None
        for a model without a known price.
    requested, requests_sent, retries : int
        Set by ``encode``: texts embedded by the server, HTTP requests sent including
        retries, and retries.
    billed_tokens : int
        Sum of the ``usage.total_tokens`` that the server returned, 0 when it returns none.
    seconds : float
        Duration of ``encode``.
    """

    texts: int = 0
    empty: int = 0
    truncated: int = 0
    cached: int = 0
    duplicates: int = 0
    to_request: int = 0
    requests_planned: int = 0
    estimated_tokens: int = 0
    estimated_cost_usd: float | None = None
    requested: int = 0
    requests_sent: int = 0
    retries: int = 0
    billed_tokens: int = 0
    seconds: float = 0.0


@dataclass
class _Prepared:
    """Texts ready to send: ``unique_texts[k]`` goes into rows ``rows_of_unique[k]``."""

    stats: EmbeddingStats
    labels: list[str]
    cached_vectors: np.ndarray | None
    cached_rows: np.ndarray
    unique_texts: list[str] = field(default_factory=list)
    rows_of_unique: list[list[int]] = field(default_factory=list)
    batches: list[list[int]] = field(default_factory=list)


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Return the wait in seconds that ``retry-after-ms`` or ``retry-after`` requests.

    ``retry-after-ms`` (milliseconds, sent by OpenAI) wins over ``retry-after``, which is
    seconds or an HTTP date. Returns None when neither header contains a valid value.
    """
    milliseconds = headers.get("retry-after-ms")
    if milliseconds is not None:
        try:
            value = float(milliseconds)
        except ValueError:
            value = math.nan
        if math.isfinite(value) and value >= 0:
            return value / 1000

    seconds = headers.get("retry-after")
    if seconds is None:
        return None
    try:
        value = float(seconds)
    except ValueError:
        try:
            moment = email.utils.parsedate_to_datetime(seconds)
        except (TypeError, ValueError):
            return None
        if moment.tzinfo is None:  # "-0000" parses as naive, but HTTP dates are GMT
            moment = moment.replace(tzinfo=timezone.utc)
        return max(0.0, (moment - datetime.now(timezone.utc)).total_seconds())
    return value if math.isfinite(value) and value >= 0 else None


class OpenAIEncoder:
    """Embed texts with an OpenAI (or OpenAI-compatible) embeddings endpoint.

    Parameters
    ----------
    model : str
        Embedding model name.
    dimensions : int
        Vector length to request. text-embedding-3 models shorten their vectors to it.
    base_url : str, optional
        API root such as ``http://127.0.0.1:8000/v1``. None uses the ``openai`` client's
        default, which is ``OPENAI_BASE_URL`` when set and api.openai.com otherwise.
    batch_size : int
        Maximum number of texts per request, at most 2048.
    max_batch_tokens : int
        Maximum token upper bound (UTF-8 bytes) summed over one request. The default of
        250,000 keeps every request at least 50,000 tokens under the API's 300,000 limit.
    max_input_tokens : int
        Texts whose token upper bound exceeds this are cut to that many UTF-8 bytes and
        counted as truncated. The API accepts 8192 tokens per input, so the default keeps
        every input under that limit, but it also cuts texts past 8191 bytes whose real
        token count would fit.
    max_tries : int
        Attempts per request. HTTP 408, 429 and 5xx, timeouts and connection errors are
        retried. Other errors fail at once.
    timeout : float
        Seconds the client waits for a response before it counts a timeout.
    cache : EmbeddingCache, optional
        Cache of the same model and dimensions. Without one an interrupted run loses all
        its vectors.
    checkpoint_every : int
        Flush the cache once this many new vectors are pending.
    backoff_base, backoff_cap : float
        Without a ``retry-after`` header, try k waits a random time in
        [0, min(cap, base * 2**(k - 1))] seconds ("full jitter" exponential backoff).
    max_retry_after : float
        Maximum wait in seconds taken from a ``retry-after`` header, so that a faulty header
        cannot stall a run for hours.

    Notes
    -----
    Only the ``OPENAI_API_KEY`` environment variable supplies the API key. Any non-empty
    value works for local servers that ignore it. minirec never logs or stores the key.

    Empty or whitespace-only texts are never sent, because the API rejects empty input.
    They get a zero vector, whose cosine similarity to anything is undefined.

    With a cache, a process killed at any moment has paid for at most
    ``checkpoint_every + batch_size - 1`` vectors that it did not flush, and a rerun
    requests exactly the texts missing from the cache. A run that ends with an exception,
    including KeyboardInterrupt, flushes the cache before the exception propagates.
    """

    def __init__(
        self,
        model: str = "text-embedding-3-small",
        dimensions: int = 1536,
        base_url: str | None = None,
        batch_size: int = 100,
        max_batch_tokens: int = 250_000,
        max_input_tokens: int = 8191,
        max_tries: int = 3,
        timeout: float = 60.0,
        cache: EmbeddingCache | None = None,
        checkpoint_every: int = 5000,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
        max_retry_after: float = 120.0,
    ):
        if not 1 <= batch_size <= MAX_INPUTS_PER_REQUEST:
            raise ValueError(
                f"batch_size must be between 1 and {MAX_INPUTS_PER_REQUEST} "
                f"(the API's maximum inputs per request), got {batch_size}"
            )
        if not 1 <= max_batch_tokens <= MAX_TOKENS_PER_REQUEST:
            raise ValueError(
                f"max_batch_tokens must be between 1 and {MAX_TOKENS_PER_REQUEST:,} "
                f"(the API's maximum tokens per request), got {max_batch_tokens}"
            )
        if not 1 <= max_input_tokens <= max_batch_tokens:
            raise ValueError(
                f"max_input_tokens must be between 1 and max_batch_tokens ({max_batch_tokens}), "
                f"got {max_input_tokens}"
            )
        if dimensions < 1:
            raise ValueError(f"dimensions must be at least 1, got {dimensions}")
        if model in FIXED_DIMENSIONS and dimensions != FIXED_DIMENSIONS[model]:
            raise ValueError(
                f"{model} always returns {FIXED_DIMENSIONS[model]} dimensions, got dimensions={dimensions}"
            )
        if max_tries < 1:
            raise ValueError(f"max_tries must be at least 1, got {max_tries}")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        if checkpoint_every < 1:
            raise ValueError(f"checkpoint_every must be at least 1, got {checkpoint_every}")
        if cache is not None and (cache.model != model or cache.dimensions != dimensions):
            raise ValueError(
                f"the cache {cache.path} is for {cache.model} with {cache.dimensions} dimensions, "
                f"but the encoder uses {model} with {dimensions} dimensions"
            )

        self.model = model
        self.dimensions = int(dimensions)
        self.base_url = base_url
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        self.max_input_tokens = max_input_tokens
        self.max_tries = max_tries
        self.timeout = float(timeout)
        self.cache = cache
        self.checkpoint_every = checkpoint_every
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.max_retry_after = max_retry_after
        self.last_stats: EmbeddingStats | None = None

    # Planning: no network access.

    def plan(self, texts: Sequence[str], ids: Sequence[str] | None = None) -> EmbeddingStats:
        """Count what ``encode(texts)`` would request and estimate its tokens and cost."""
        return self._prepare(texts, ids).stats

    def describe(self, stats: EmbeddingStats) -> str:
        """Return a one-paragraph summary of a plan for logs and the command line."""
        price = PRICE_PER_MILLION_TOKENS.get(self.model)
        if stats.estimated_cost_usd is None:
            cost = f"cost unknown because {self.model} has no known price"
        else:
            cost = f"estimated cost ${stats.estimated_cost_usd:.4f} at ${price} per 1M tokens"
        return (
            f"{stats.texts:,} texts for {self.model} ({self.dimensions} dimensions): "
            f"{stats.cached:,} cached, {stats.empty:,} empty, {stats.truncated:,} truncated, "
            f"{stats.duplicates:,} duplicates; {stats.to_request:,} to request in "
            f"{stats.requests_planned:,} requests, about {stats.estimated_tokens:,} tokens "
            f"(estimate), {cost}"
        )

    def _prepare(self, texts: Sequence[str], ids: Sequence[str] | None) -> _Prepared:
        if ids is not None and len(ids) != len(texts):
            raise ValueError(f"got {len(ids)} ids for {len(texts)} texts; pass one id per text")
        labels = [str(i) for i in ids] if ids is not None else [f"#{i}" for i in range(len(texts))]
        stats = EmbeddingStats(texts=len(texts))

        sendable_rows: list[int] = []
        sendable_texts: list[str] = []
        for row, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"text {labels[row]} is {type(text).__name__}, expected str")
            text, was_cut = truncate_to_token_bound(text, self.max_input_tokens)
            # Checked after the cut, which can leave only whitespace or nothing.
            if not text.strip():
                stats.empty += 1
                continue
            stats.truncated += was_cut
            sendable_rows.append(row)
            sendable_texts.append(text)

        if self.cache is not None and sendable_texts:
            cached_vectors, missing = self.cache.get_many(sendable_texts)
            missing_set = set(missing)
            hit_positions = [k for k in range(len(sendable_texts)) if k not in missing_set]
            cached_rows = np.array([sendable_rows[k] for k in hit_positions], dtype=np.int64)
            cached_vectors = cached_vectors[hit_positions]
        else:
            missing = list(range(len(sendable_texts)))
            cached_rows = np.zeros(0, dtype=np.int64)
            cached_vectors = None
        stats.cached = len(cached_rows)

        prepared = _Prepared(stats, labels, cached_vectors, cached_rows)
        position_of_text: dict[str, int] = {}
        for k in missing:
            text = sendable_texts[k]
            position = position_of_text.get(text)
            if position is None:
                position_of_text[text] = len(prepared.unique_texts)
                prepared.unique_texts.append(text)
                prepared.rows_of_unique.append([sendable_rows[k]])
            else:
                stats.duplicates += 1
                prepared.rows_of_unique[position].append(sendable_rows[k])

        prepared.batches = self._pack(prepared.unique_texts)
        stats.to_request = len(prepared.unique_texts)
        stats.requests_planned = len(prepared.batches)
        stats.estimated_tokens = sum(estimate_tokens(text) for text in prepared.unique_texts)
        price = PRICE_PER_MILLION_TOKENS.get(self.model)
        if price is not None:
            stats.estimated_cost_usd = stats.estimated_tokens * price / 1e6
        return prepared

    def _pack(self, texts: list[str]) -> list[list[int]]:
        """Split positions into batches by count and by summed token upper bound."""
        batches: list[list[int]] = []
        current: list[int] = []
        current_tokens = 0
        for position, text in enumerate(texts):
            tokens = token_upper_bound(text)
            if current and (len(current) == self.batch_size or current_tokens + tokens > self.max_batch_tokens):
                batches.append(current)
                current, current_tokens = [], 0
            current.append(position)
            current_tokens += tokens
        if current:
            batches.append(current)
        return batches

    # Requests.

    def encode(self, texts: Sequence[str], ids: Sequence[str] | None = None) -> np.ndarray:
        """Embed ``texts`` and return a (len(texts), dimensions) float32 matrix.

        ``ids`` name the texts in logs and errors and default to ``#0``, ``#1`` and so on.
        Counts of the call are stored in ``last_stats``.

        Raises
        ------
        EmbeddingRequestError
            If a request fails for good. The cache then contains every vector received.
        RuntimeError
            If ``OPENAI_API_KEY`` is missing and some texts need a request.
        """
        started = time.monotonic()
        prepared = self._prepare(texts, ids)
        stats = prepared.stats
        self.last_stats = stats
        logger.info("Embedding %s", self.describe(stats))

        matrix = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        if prepared.cached_vectors is not None:
            matrix[prepared.cached_rows] = prepared.cached_vectors
        if not prepared.batches:
            stats.seconds = time.monotonic() - started
            return matrix

        client = self._make_client()
        if self.cache is not None:
            # Writing the cache file before the first paid request shows at once
            # when its folder is not writable.
            self.cache.flush()
        last_progress = started
        try:
            for number, batch in enumerate(prepared.batches, start=1):
                inputs = [prepared.unique_texts[k] for k in batch]
                first_row = prepared.rows_of_unique[batch[0]][0]
                label = (
                    f"request {number} of {len(prepared.batches)} "
                    f"({len(inputs)} texts, first id {prepared.labels[first_row]})"
                )
                vectors = self._request_with_retries(client, inputs, label, stats)
                for k, vector in zip(batch, vectors):
                    matrix[prepared.rows_of_unique[k]] = vector
                stats.requested += len(inputs)
                if self.cache is not None:
                    self.cache.put_many(inputs, vectors)
                    if self.cache.pending_count >= self.checkpoint_every:
                        self.cache.flush()
                if time.monotonic() - last_progress > 10:
                    last_progress = time.monotonic()
                    logger.info(
                        "Embedded %d of %d texts to request (%.0f%%) in %.1f s",
                        stats.requested, stats.to_request,
                        100 * stats.requested / stats.to_request, last_progress - started,
                    )
        except _BatchFailed as error:
            self._flush_after_failure()
            raise EmbeddingRequestError(f"{error}. {self._resume_hint(stats)}") from error.__cause__
        except BaseException:
            self._flush_after_failure()
            raise
        if self.cache is not None:
            self.cache.flush()

        stats.seconds = time.monotonic() - started
        logger.info(
            "Embedded %d texts in %d requests (%d retries) in %.1f s; the server counted %d tokens",
            stats.requested, stats.requests_sent, stats.retries, stats.seconds, stats.billed_tokens,
        )
        return matrix

    def _make_client(self):
        # Imported here because importing openai takes over half a second, which plans and
        # fully cached runs do not need.
        import openai

        api_key = os.environ.get(API_KEY_VARIABLE, "").strip()
        if not api_key:
            raise RuntimeError(
                f"The environment variable {API_KEY_VARIABLE} is missing or empty. Set it to "
                "your OpenAI API key, or to any placeholder for a local server that ignores keys."
            )
        # max_retries=0 turns off the client's own retries, so that _request_with_retries
        # is the only retry policy and its counts are exact.
        return openai.OpenAI(api_key=api_key, base_url=self.base_url, max_retries=0, timeout=self.timeout)

    def _request_with_retries(self, client, inputs: list[str], label: str, stats: EmbeddingStats) -> np.ndarray:
        import openai

        for attempt in range(1, self.max_tries + 1):
            requested_wait = None
            stats.requests_sent += 1
            try:
                # encoding_format="float" because some OpenAI-compatible servers lack base64,
                # the client's default.
                kwargs = {"model": self.model, "input": inputs, "encoding_format": "float"}
                if self.model not in FIXED_DIMENSIONS:
                    kwargs["dimensions"] = self.dimensions
                response = client.embeddings.create(**kwargs)
            except openai.APIStatusError as error:
                if not (error.status_code in (408, 429) or error.status_code >= 500):
                    raise _BatchFailed(
                        f"The server rejected {label} with HTTP {error.status_code}: "
                        f"{_server_message(error)}. This error is not retried: fix or remove "
                        "the offending text, or check the model name, dimensions and API key"
                    ) from error
                failure = f"HTTP {error.status_code}: {_server_message(error)}"
                requested_wait = retry_after_seconds(error.response.headers)
            except openai.APITimeoutError:
                failure = f"no response within {self.timeout:g} s"
            except openai.APIConnectionError as error:
                failure = f"connection failed: {error.__cause__ or error}"
            else:
                stats.billed_tokens += int(getattr(response.usage, "total_tokens", 0) or 0)
                return self._vectors_from_response(response, len(inputs), label)

            if attempt == self.max_tries:
                raise _BatchFailed(f"{label} failed after {self.max_tries} tries; last error: {failure}")
            wait = self._backoff(attempt, requested_wait)
            stats.retries += 1
            logger.warning(
                "%s failed on try %d of %d (%s); retrying in %.2f s",
                label, attempt, self.max_tries, failure, wait,
            )
            time.sleep(wait)
        raise AssertionError("unreachable: the loop returns or raises")

    def _backoff(self, attempt: int, requested_wait: float | None) -> float:
        if requested_wait is not None:
            if requested_wait > self.max_retry_after:
                logger.warning(
                    "The server requested a wait of %.0f s; waiting max_retry_after=%.0f s instead",
                    requested_wait, self.max_retry_after,
                )
            return min(requested_wait, self.max_retry_after)
        return random.uniform(0.0, min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1)))

    def _vectors_from_response(self, response, count: int, label: str) -> np.ndarray:
        # Each item's ``index`` is its input position, so sorting by it restores the input
        # order whatever order ``data`` arrives in.
        items = sorted(response.data, key=lambda item: item.index)
        indices = [item.index for item in items]
        if indices != list(range(count)):
            raise _BatchFailed(
                f"The response to {label} contains {len(items)} vectors at indices "
                f"{indices[:5]}{'...' if len(indices) > 5 else ''}, expected indices 0 to {count - 1}"
            )
        lengths = {len(item.embedding) for item in items}
        if lengths != {self.dimensions}:
            raise _BatchFailed(
                f"The response to {label} contains vectors of length {sorted(lengths)}, "
                f"expected {self.dimensions}. Check that the model supports dimensions={self.dimensions}"
            )
        vectors = np.array([item.embedding for item in items], dtype=np.float32)
        if not np.isfinite(vectors).all():
            raise _BatchFailed(f"The response to {label} contains NaN or infinite values")
        return vectors

    def _flush_after_failure(self) -> None:
        if self.cache is None:
            return
        try:
            self.cache.flush()
        except Exception:
            # The original failure matters more, so this one is logged instead of raised.
            logger.exception("Could not save the embedding cache %s after a failed run", self.cache.path)

    def _resume_hint(self, stats: EmbeddingStats) -> str:
        remaining = stats.to_request - stats.requested
        if self.cache is None:
            return (
                f"{stats.requested:,} of {stats.to_request:,} texts to request were embedded and "
                f"{remaining:,} remain, but without a cache a rerun requests all of them again"
            )
        return (
            f"{stats.requested:,} of {stats.to_request:,} texts to request are done and stored in "
            f"{self.cache.path} (with {stats.cached:,} cached before); {remaining:,} remain. "
            "Rerun the same command to resume: cached texts are not requested again"
        )


def _server_message(error) -> str:
    """Return the ``error.message`` of an OpenAI error body, or the exception text."""
    body = error.body
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return body["message"]
    return str(error)
