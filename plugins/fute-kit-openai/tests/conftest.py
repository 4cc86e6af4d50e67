"""Fixtures of the openai plugin's tests: a real local llama.cpp server, a fault-injecting proxy in front of
it, and a mock of the API plugged into the ``openai`` client's HTTP transport (``httpx2.MockTransport``)."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_UPDATE_CHECK", "1")
os.environ.setdefault("FUTE_KIT_NO_PROGRESS", "1")

ALLOW_SKIP_SERVER = "FUTE_KIT_ALLOW_SKIP_SERVER"  # "1": skip the real-server tests when the server cannot start
SENTIMENT_PROMPT = "Is the sentiment of this movie review positive or negative? Answer with one word.\nReview: {text}"
SENTIMENT_LABELS = {"positive": ["positive"], "negative": ["negative"]}
POSITIVE = [
    "A wonderful, moving film.",
    "The acting was superb and the story beautiful.",
    "An absolute masterpiece, I loved it.",
    "Funny, warm and brilliantly made.",
]
NEGATIVE = [
    "Dull, boring and far too long.",
    "I hated every minute of it.",
    "A terrible mess with awful dialogue.",
    "The worst film I have seen this year.",
]


@pytest.fixture
def sentiment() -> dict[str, Any]:
    """A small sentiment task for SmolLM2: the prompt, label words and clear positive/negative texts."""
    return {"prompt": SENTIMENT_PROMPT, "labels": SENTIMENT_LABELS, "positive": POSITIVE, "negative": NEGATIVE}


@pytest.fixture(scope="session")
def llama_server() -> Iterator[Any]:
    """SmolLM2-135M-Instruct served by xllamacpp on a free port of 127.0.0.1 for the whole session."""
    from fute_kit_openai.local_server import LocalServerError, start_local_server

    try:
        server = start_local_server(threads=1, parallel=4)
    except LocalServerError as exc:
        problem = str(exc)
    else:
        problem = ""
    if problem:
        # CI installs xllamacpp and the model (make test), so a server that does not start is a failure, with its
        # log; a developer without them opts out explicitly (CONTRIBUTING.md, "Skips").
        if os.environ.get(ALLOW_SKIP_SERVER) == "1":
            pytest.skip(f"local server unavailable ({ALLOW_SKIP_SERVER}=1): {problem}")
        pytest.fail(
            f"the local llama.cpp server did not start: {problem}\n(or set {ALLOW_SKIP_SERVER}=1)", pytrace=False
        )
    with server:
        yield server


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


class FaultProxy:
    """An HTTP proxy in front of the real server that answers with queued faults before forwarding.

    Faults: "429", "429:<seconds>" (with Retry-After), "500", "timeout:<seconds>" (silent that long),
    "malformed" (200 with an HTML body), "drop" (closes the connection without an answer), "ok" (forward).
    """

    def __init__(self, target: str) -> None:
        self.target = target.rstrip("/")
        self.faults: list[str] = []
        self.forwarded = 0
        self.received = 0
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                return

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with proxy._lock:
                    proxy.received += 1
                    fault = proxy.faults.pop(0) if proxy.faults else "ok"
                name, _, arg = fault.partition(":")
                if name == "drop":
                    self.close_connection = True
                    return
                if name == "timeout":  # answers nothing until the client has given up
                    time.sleep(float(arg or 2))
                    self.close_connection = True
                    return
                if name in ("429", "500"):
                    payload = b'{"error": {"message": "injected", "type": "injected"}}'
                    self.send_response(int(name))
                    if arg:
                        self.send_header("Retry-After", arg)
                    self._send(payload)
                    return
                if name == "malformed":
                    self.send_response(200)
                    self._send(b"<html>not json</html>", "text/html")
                    return
                import urllib.error
                import urllib.request

                request = urllib.request.Request(
                    proxy.target + self.path.removeprefix("/v1"),
                    data=body,
                    headers={"Content-Type": "application/json"},
                    method="POST",
                )
                direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no proxy from the env
                try:
                    with direct.open(request, timeout=60) as upstream:
                        status, content = upstream.status, upstream.read()
                except urllib.error.HTTPError as error:  # an error status: passed on as it is
                    status, content = error.code, error.read()
                with proxy._lock:
                    proxy.forwarded += 1
                self.send_response(status)
                self._send(content)

            def _send(self, payload: bytes, kind: str = "application/json") -> None:
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up
                    self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fault_proxy(llama_server: Any) -> Iterator[FaultProxy]:
    proxy = FaultProxy(llama_server.base_url)
    try:
        yield proxy
    finally:
        proxy.close()


Handler = Callable[[Any], Any]  # httpx2.Request -> httpx2.Response (or raises an httpx2 transport error)


class MockAPI:
    """Routes (method, path under the API root) to handlers, recording each request; unknown routes fail.

    Plugged in as the HTTP client of the ``openai`` client (``client.http_client_factory``), so requests go
    through the real ``openai`` client, with its request building, multipart uploads and error types.
    """

    def __init__(self, base_url: str) -> None:
        import httpx2

        self.root = httpx2.URL(base_url).path.rstrip("/")
        self.routes: dict[tuple[str, str], Handler] = {}
        self.calls: dict[tuple[str, str], list[Any]] = {}

    def route(self, method: str, path: str, handler: Handler) -> list[Any]:
        """Install ``handler`` for ``method path``; returns the list the requests to it are recorded in."""
        self.routes[(method, path)] = handler
        return self.calls.setdefault((method, path), [])

    def respond(self, method: str, path: str, status: int, json: Any = None, text: str | None = None) -> list[Any]:
        import httpx2

        def handler(request: Any) -> Any:
            return httpx2.Response(status, json=json) if text is None else httpx2.Response(status, text=text)

        return self.route(method, path, handler)

    def handle(self, request: Any) -> Any:
        key = (request.method, request.url.path.removeprefix(self.root))
        assert key in self.routes, f"unexpected request {key}"
        self.calls[key].append(request)
        return self.routes[key](request)

    def client(self) -> Any:
        import httpx2

        return httpx2.AsyncClient(transport=httpx2.MockTransport(self.handle))


@pytest.fixture
def mock_api(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], MockAPI]:
    """``mock_api(base_url)``: a fresh ``MockAPI`` that every ``openai`` request of the test goes to."""
    from fute_kit_openai import client

    def install(base_url: str) -> MockAPI:
        api = MockAPI(base_url)
        monkeypatch.setattr(client, "http_client_factory", api.client)
        return api

    return install
