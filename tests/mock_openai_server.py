"""A local OpenAI-compatible embeddings server for tests, with scriptable faults.

``MockOpenAIServer`` responds to ``POST /v1/embeddings`` on 127.0.0.1 with deterministic
vectors (``mock_vector``) and records every request it receives. Faults queued with
``answer_next``, ``fail_next``, ``delay_next`` or ``drop_next`` apply to the next requests in order, and
``reject_text`` makes every request containing that text fail with HTTP 400.
"""

import base64
import hashlib
import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

DEFAULT_DIMENSIONS = 1536


def mock_vector(text: str, dimensions: int) -> np.ndarray:
    """Return the unit float32 vector the mock server sends for ``text``."""
    seed = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")
    vector = np.random.default_rng(seed).standard_normal(dimensions).astype(np.float32)
    return vector / np.linalg.norm(vector)


@dataclass
class RecordedRequest:
    """One request as the server received it."""

    inputs: list[str]
    model: str
    dimensions: int | None
    encoding_format: str | None
    authorization: str
    received_at: float
    answered: bool = False


@dataclass
class _Fault:
    kind: str  # "status", "delay" or "drop"
    status: int = 500
    headers: dict = field(default_factory=dict)
    seconds: float = 0.0


class MockOpenAIServer:
    """OpenAI-compatible embeddings server on 127.0.0.1 and an ephemeral port.

    Attributes
    ----------
    requests : list of RecordedRequest
        Every request received, including those that got a fault.
    response_delay : float
        Seconds to wait before every successful response.
    reverse_order : bool
        Send ``data`` items in reverse order (their ``index`` fields stay correct).
    wrong_dimensions : int or None
        Send vectors of this length regardless of the requested dimensions.
    answered_event_after : int or None
        Set ``answered_event`` once this many requests were answered successfully.
    """

    def __init__(self):
        self.requests: list[RecordedRequest] = []
        self.response_delay = 0.0
        self.reverse_order = False
        self.wrong_dimensions: int | None = None
        self.answered_event_after: int | None = None
        self.answered_event = threading.Event()
        self._faults: deque[_Fault] = deque()
        self._rejected_texts: set[str] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        # A short poll interval makes stop() return quickly; the default waits up to 0.5 s.
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,), daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    @property
    def answered(self) -> int:
        with self._lock:
            return sum(request.answered for request in self.requests)

    def all_inputs(self) -> list[str]:
        """Return the inputs of every request received, in order, duplicates kept."""
        with self._lock:
            return [text for request in self.requests for text in request.inputs]

    def fail_next(self, status: int, headers: dict | None = None, times: int = 1) -> None:
        """Respond to the next ``times`` requests with HTTP ``status`` and ``headers``."""
        for _ in range(times):
            self._faults.append(_Fault("status", status=status, headers=headers or {}))

    def answer_next(self, times: int = 1) -> None:
        """Respond normally to the next ``times`` requests, so that later faults hit later requests."""
        for _ in range(times):
            self._faults.append(_Fault("delay", seconds=0.0))

    def delay_next(self, seconds: float) -> None:
        """Wait ``seconds`` before responding to the next request."""
        self._faults.append(_Fault("delay", seconds=seconds))

    def drop_next(self) -> None:
        """Close the connection of the next request without sending a response."""
        self._faults.append(_Fault("drop"))

    def reject_text(self, text: str) -> None:
        """Respond with HTTP 400 to every request whose inputs contain ``text``."""
        self._rejected_texts.add(text)

    def start(self) -> "MockOpenAIServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def _handler_class(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format, *args):
                pass

            def do_POST(self):
                server._handle(self)

        return Handler

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        body = handler.rfile.read(int(handler.headers.get("Content-Length", 0)))
        if handler.path.rstrip("/") != "/v1/embeddings":
            self._send_json(handler, 404, {"error": {"message": f"unknown path {handler.path}"}})
            return
        payload = json.loads(body)
        inputs = payload["input"] if isinstance(payload["input"], list) else [payload["input"]]
        record = RecordedRequest(
            inputs=list(inputs),
            model=payload.get("model"),
            dimensions=payload.get("dimensions"),
            encoding_format=payload.get("encoding_format"),
            authorization=handler.headers.get("Authorization", ""),
            received_at=time.monotonic(),
        )
        with self._lock:
            self.requests.append(record)
            fault = self._faults.popleft() if self._faults else None

        if fault is not None and fault.kind == "drop":
            handler.close_connection = True
            handler.connection.shutdown(socket.SHUT_RDWR)
            return
        if fault is not None and fault.kind == "status":
            error = {"message": f"injected HTTP {fault.status}", "type": "server_error", "param": None, "code": None}
            self._send_json(handler, fault.status, {"error": error}, fault.headers)
            return
        rejected = [text for text in inputs if text in self._rejected_texts]
        if rejected:
            error = {
                "message": f"input {rejected[0]!r} is invalid",
                "type": "invalid_request_error", "param": "input", "code": None,
            }
            self._send_json(handler, 400, {"error": error})
            return
        delay = self.response_delay + (fault.seconds if fault is not None else 0.0)
        if delay and self._stopping.wait(delay):
            return

        dimensions = self.wrong_dimensions or payload.get("dimensions") or DEFAULT_DIMENSIONS
        data = []
        for index, text in enumerate(inputs):
            vector = mock_vector(text, dimensions)
            if payload.get("encoding_format") == "base64":
                embedding = base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
            else:
                embedding = vector.tolist()
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        if self.reverse_order:
            data.reverse()
        tokens = sum(len(text.split()) for text in inputs)
        answer = {
            "object": "list",
            "data": data,
            "model": payload.get("model"),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        try:
            self._send_json(handler, 200, answer)
        except (BrokenPipeError, ConnectionResetError):
            return  # the client gave up, for example after its timeout
        with self._lock:
            record.answered = True
            answered = sum(request.answered for request in self.requests)
        if self.answered_event_after is not None and answered >= self.answered_event_after:
            self.answered_event.set()

    @staticmethod
    def _send_json(handler: BaseHTTPRequestHandler, status: int, payload: dict, headers: dict | None = None) -> None:
        body = json.dumps(payload).encode("utf-8")
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)
        handler.wfile.flush()


@pytest.fixture
def openai_server():
    """Start a ``MockOpenAIServer`` for one test and stop it afterwards."""
    server = MockOpenAIServer().start()
    try:
        yield server
    finally:
        server.stop()
