"""The Batch API mode against a mock of OpenAI's files and batches endpoints (llama.cpp has none).

The mock sits under the ``openai`` client (``httpx2.MockTransport``): uploads, batch creation, polling and
downloads go through the client's ``files`` and ``batches`` resources.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx2
import numpy as np
import pytest

from fute_kit.components import RunContext
from fute_kit.examples import Examples
from fute_kit_openai.errors import BatchError, EndpointConnectionError
from fute_kit_openai.source import OpenAIModel

API = "https://api.fute-test.invalid/v1"


def answer(word: str) -> dict[str, Any]:
    other = "negative" if word == "positive" else "positive"
    top = [{"token": word, "logprob": -0.1}, {"token": other, "logprob": -2.5}]
    logprobs = {"content": [{"token": word, "logprob": -0.1, "top_logprobs": top}]}
    return {
        "choices": [{"message": {"content": word}, "logprobs": logprobs}],
        "usage": {"prompt_tokens": 20, "completion_tokens": 1},
    }


class FakeBatchAPI:
    """Files and batches endpoints: stores the uploaded JSONL and answers it when the batch completes."""

    def __init__(self, mock: Any, statuses: list[str], fail_ids: int = 0) -> None:
        self.lines: list[dict[str, Any]] = []
        self.statuses = statuses
        self.fail_ids = fail_ids
        self.upload = mock.route("POST", "/files", self._upload)
        self.create = mock.route("POST", "/batches", self._create)
        self.poll = mock.route("GET", "/batches/batch_1", self._poll)
        self.content = mock.route("GET", "/files/file-out/content", self._content)
        self.online = mock.respond("POST", "/chat/completions", 200, json=answer("negative"))

    def _upload(self, request: httpx2.Request) -> httpx2.Response:
        body = request.content.decode()
        assert 'name="purpose"' in body and "batch" in body
        self.lines = [json.loads(line) for line in body.splitlines() if line.startswith('{"custom_id"')]
        return httpx2.Response(200, json={"id": "file-in", "purpose": "batch"})

    def _create(self, request: httpx2.Request) -> httpx2.Response:
        payload = json.loads(request.content)
        assert payload == {"input_file_id": "file-in", "endpoint": "/v1/chat/completions", "completion_window": "24h"}
        return httpx2.Response(200, json={"id": "batch_1", "status": "validating"})

    def _poll(self, request: httpx2.Request) -> httpx2.Response:
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        if status == "unreachable":
            raise httpx2.ConnectError("connection refused")
        data: dict[str, Any] = {"id": "batch_1", "status": status, "request_counts": {"total": len(self.lines)}}
        if status == "completed":
            data["output_file_id"] = "file-out"
        if status == "failed":
            data["errors"] = {"data": [{"message": "invalid model"}]}
        return httpx2.Response(200, json=data)

    def _content(self, request: httpx2.Request) -> httpx2.Response:
        out = []
        for i, line in enumerate(self.lines):
            assert line["method"] == "POST" and line["url"] == "/v1/chat/completions" and line["body"]["logprobs"]
            if i < self.fail_ids:
                out.append({"custom_id": line["custom_id"], "response": {"status_code": 500, "body": {}}})
            else:
                out.append(
                    {"custom_id": line["custom_id"], "response": {"status_code": 200, "body": answer("positive")}}
                )
        return httpx2.Response(200, text="\n".join(json.dumps(o) for o in out) + "\n")


def batch_model(cache_dir: Path, **options: Any) -> OpenAIModel:
    return OpenAIModel(
        model="gpt-test",
        base_url=API,
        prompt="Review: {text}\nPositive or negative?",
        labels={"positive": ["positive"], "negative": ["negative"]},
        batch=True,
        batch_poll_interval=0.01,
        retry_backoff=0.01,
        retry_backoff_max=0.02,
        cache_path=str(cache_dir / "r.sqlite"),
        **options,
    )


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-batch-test")


def run(model: OpenAIModel, texts: list[str], cache_dir: Path) -> tuple[Examples, dict[str, Any]]:
    context = RunContext(cache_dir=cache_dir, show_progress=False)
    return model.predict(Examples(texts=texts), context), context.details


def test_batch_flow_with_a_failed_request_sent_online(tmp_path: Path, mock_api: Any) -> None:
    texts = ["a", "b", "c"]
    api = FakeBatchAPI(mock_api(API), ["in_progress", "finalizing", "completed"], fail_ids=1)
    predictions, details = run(batch_model(tmp_path), texts, tmp_path)
    assert len(api.upload) == 1 and len(api.create) == 1 and len(api.poll) == 3 and len(api.content) == 1
    assert api.upload[0].headers["authorization"] == "Bearer sk-batch-test"
    assert len(api.lines) == 3 and len(api.online) == 1  # the failed one, online
    labels = np.asarray(predictions.labels)
    assert (labels.argmax(axis=1) == 0).sum() == 2 and (labels.argmax(axis=1) == 1).sum() == 1
    accounting = details["accounting"]
    assert accounting["batch_requests"] == 3 and accounting["requests"] == 1 and accounting["answers"] == 3
    assert accounting["prompt_tokens"] == 60

    api = FakeBatchAPI(mock_api(API), ["completed"])
    _, details = run(batch_model(tmp_path), texts, tmp_path)
    assert len(api.upload) == 0 and details["accounting"]["requests"] == 0
    assert details["accounting"]["cache_hits"] == 3


def test_batch_resumes_after_a_restart(tmp_path: Path, mock_api: Any) -> None:
    texts = ["a", "b"]
    api = FakeBatchAPI(mock_api(API), ["in_progress", "unreachable"])
    with pytest.raises(EndpointConnectionError):
        run(batch_model(tmp_path, max_retries=1), texts, tmp_path)  # the process "dies" while polling
    assert len(api.create) == 1 and len(api.poll) == 3  # polled, then unreachable: tried twice
    lines = api.lines

    api = FakeBatchAPI(mock_api(API), ["completed"])
    api.lines = lines  # the server still holds the uploaded requests
    predictions, details = run(batch_model(tmp_path), texts, tmp_path)
    assert len(api.upload) == 0 and len(api.create) == 0  # the stored batch id was polled
    assert len(api.online) == 0 and details["accounting"]["answers"] == 2
    assert np.asarray(predictions.labels).argmax(axis=1).tolist() == [0, 0]


def test_failed_batch_is_a_clear_error(tmp_path: Path, mock_api: Any) -> None:
    FakeBatchAPI(mock_api(API), ["failed"])
    with pytest.raises(BatchError, match="invalid model") as info:
        run(batch_model(tmp_path), ["a"], tmp_path)
    assert "batch_1" in str(info.value) and API in str(info.value)
