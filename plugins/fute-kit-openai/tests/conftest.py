"""Fixtures of the openai plugin's tests: a real local llama.cpp server, a fault-injecting proxy in front of
it, and a mock of the API plugged into the ``openai`` client's HTTP transport (``httpx2.MockTransport``)."""

from __future__ import annotations

import contextlib
import json
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


def forward(target: str, path: str, body: bytes) -> tuple[int, bytes]:
    """POST ``body`` to the real server at ``target`` + ``path`` (without /v1): (status, content)."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        target.rstrip("/") + path.removeprefix("/v1"),
        data=body,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no proxy from the env
    try:
        with direct.open(request, timeout=60) as upstream:
            return upstream.status, upstream.read()
    except urllib.error.HTTPError as error:  # an error status: passed on as it is
        return error.code, error.read()


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler of the test servers: HTTP/1.1, no log lines, answers that survive a client gone."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        return

    def _send(self, payload: bytes, kind: str = "application/json", status: int | None = None) -> None:
        if status is not None:
            self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up
            self.wfile.write(payload)


class LocalHTTPServer:
    """A threaded HTTP server on a free port of 127.0.0.1, serving ``handler`` until closed."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FaultProxy(LocalHTTPServer):
    """An HTTP proxy in front of the real server that answers with queued faults before forwarding.

    Faults: "429", "429:<seconds>" (with Retry-After), "500", "timeout:<seconds>" (silent that long),
    "malformed" (200 with an HTML body), "drop" (closes the connection without an answer), "ok" (forward).
    """

    def __init__(self, target: str) -> None:
        self.target = target.rstrip("/")
        self.faults: list[str] = []
        self.forwarded = 0
        self.received = 0
        self.bodies: list[bytes] = []  # the request bodies forwarded to the server, in order
        self.authorizations: list[str] = []  # the Authorization header of every request received
        self._lock = threading.Lock()
        proxy = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with proxy._lock:
                    proxy.received += 1
                    proxy.authorizations.append(self.headers.get("Authorization", ""))
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
                status, content = forward(proxy.target, self.path, body)
                with proxy._lock:
                    proxy.forwarded += 1
                    proxy.bodies.append(body)
                self.send_response(status)
                self._send(content)

        super().__init__(Handler)


@pytest.fixture
def fault_proxy(llama_server: Any) -> Iterator[FaultProxy]:
    with FaultProxy(llama_server.base_url) as proxy:
        yield proxy


class BatchServer(LocalHTTPServer):
    """OpenAI's files and batches endpoints over HTTP, answering each batched request from the real server.

    llama.cpp has no Batch API. This one keeps a batch ``in_progress`` until ``release`` is set (so a client can
    be killed while it waits), then sends every request of the uploaded JSONL to the real server once. Counts
    uploads, batch creations, polls and online requests, across any number of client processes.
    """

    def __init__(self, target: str) -> None:
        self.target = target
        self.release = threading.Event()
        self.uploads = self.creates = self.polls = self.online = 0
        self.lines: list[dict[str, Any]] = []
        self.output = b""
        self._lock = threading.Lock()
        server = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with server._lock:
                    if self.path == "/v1/files":  # multipart: the JSONL lines are in the body as they are
                        server.uploads += 1
                        server.lines = [
                            json.loads(line) for line in body.decode().splitlines() if '"custom_id"' in line
                        ]
                        self._json({"id": "file-in", "object": "file", "purpose": "batch"})
                    elif self.path == "/v1/batches":
                        server.creates += 1
                        self._json({"id": "batch_1", "object": "batch", "status": "validating"})
                    else:
                        server.online += 1
                        self._json(json.loads(forward(server.target, self.path, body)[1]))

            def do_GET(self) -> None:
                with server._lock:
                    if self.path == "/v1/batches/batch_1":
                        server.polls += 1
                        self._json(server.poll())
                    elif self.path == "/v1/files/file-out/content":
                        self._send(server.output, "application/jsonl", status=200)
                    else:
                        self._send(b"{}", status=404)

            def _json(self, data: Any) -> None:
                self._send(json.dumps(data).encode(), status=200)

        super().__init__(Handler)

    def poll(self) -> dict[str, Any]:
        counts = {"total": len(self.lines), "completed": 0, "failed": 0}
        if not self.release.is_set():
            return {"id": "batch_1", "object": "batch", "status": "in_progress", "request_counts": counts}
        if not self.output:
            records = []
            for line in self.lines:
                status, content = forward(self.target, line["url"], json.dumps(line["body"]).encode())
                response = {"status_code": status, "body": json.loads(content)}
                records.append(json.dumps({"custom_id": line["custom_id"], "response": response}))
            self.output = ("\n".join(records) + "\n").encode()
        counts["completed"] = len(self.lines)
        return {"id": "batch_1", "status": "completed", "output_file_id": "file-out", "request_counts": counts}


@pytest.fixture
def batch_server(llama_server: Any) -> Iterator[BatchServer]:
    with BatchServer(llama_server.base_url) as server:
        yield server


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
