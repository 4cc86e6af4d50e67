"""Faults at the HTTP layer: a fault-injecting proxy before the real server, and a mock transport under the
``openai`` client (``httpx2.MockTransport``) for status codes and answer shapes.

Each fault gives a clear ``FuteError`` naming the endpoint; no answer already received is lost.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2
import numpy as np
import pytest

from fute_kit.components import RunContext
from fute_kit.errors import FuteError
from fute_kit.examples import Examples
from fute_kit_openai import client as client_module
from fute_kit_openai.cache import ResponseCache
from fute_kit_openai.errors import (
    AuthenticationError,
    BadRequestError,
    EndpointConnectionError,
    EndpointTimeoutError,
    MalformedResponseError,
    NoLogprobsError,
    RateLimitedError,
    ServerError,
    UnknownModelError,
)
from fute_kit_openai.local_server import free_port
from fute_kit_openai.source import OpenAIModel

FAST = {"retry_backoff": 0.01, "retry_backoff_max": 0.05, "timeout": 5.0}


def model_at(base_url: str, cache_dir: Path, sentiment: dict[str, Any], **options: Any) -> OpenAIModel:
    settings = {"model": "smollm2-135m-instruct", "cache_path": str(cache_dir / "r.sqlite"), **FAST, **options}
    return OpenAIModel(base_url=base_url, prompt=sentiment["prompt"], labels=sentiment["labels"], **settings)


def context(cache_dir: Path) -> RunContext:
    return RunContext(cache_dir=cache_dir, show_progress=False)


# -- through a proxy in front of the real server ---------------------------------------------------
@pytest.mark.server
def test_transient_faults_are_retried(fault_proxy: Any, sentiment: dict[str, Any], cache_dir: Path) -> None:
    fault_proxy.faults = ["429", "500", "drop", "timeout:1.5"]
    model = model_at(fault_proxy.base_url, cache_dir, sentiment, concurrency=1, timeout=0.7)
    ctx = context(cache_dir)
    predictions = model.predict(Examples(texts=["Great!", "Awful."]), ctx)
    assert np.asarray(predictions.labels).shape == (2, 2)
    accounting = ctx.details["accounting"]
    assert accounting["retries"] == 4 and accounting["requests"] == 6 and accounting["answers"] == 2
    assert fault_proxy.forwarded == 2


@pytest.mark.server
def test_retry_after_is_honoured(
    fault_proxy: Any, sentiment: dict[str, Any], cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    waits: list[float] = []
    real_sleep = client_module.asyncio.sleep

    async def record(seconds: float) -> None:
        waits.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr(client_module.asyncio, "sleep", record)
    fault_proxy.faults = ["429:7", "429"]
    model = model_at(
        fault_proxy.base_url, cache_dir, sentiment, concurrency=1, retry_backoff=0.5, retry_backoff_max=5.0
    )
    model.predict(Examples(texts=["Great!"]), context(cache_dir))
    assert waits[0] == 7.0  # the server's Retry-After, not the back-off
    assert 0.25 <= waits[1] <= 1.0  # second retry without Retry-After: back-off 2 x 0.5 s with jitter


@pytest.mark.server
def test_malformed_json_is_not_retried(fault_proxy: Any, sentiment: dict[str, Any], cache_dir: Path) -> None:
    fault_proxy.faults = ["malformed"]
    model = model_at(fault_proxy.base_url, cache_dir, sentiment)
    with pytest.raises(MalformedResponseError) as info:
        model.predict(Examples(texts=["Great!"]), context(cache_dir))
    message = str(info.value)
    assert fault_proxy.base_url in message and "not JSON" in message and "base_url" in message
    assert fault_proxy.received == 1


@pytest.mark.server
@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("429", RateLimitedError),
        ("500", ServerError),
        ("timeout:1.2", EndpointTimeoutError),
        ("drop", EndpointConnectionError),
    ],
)
def test_failure_keeps_answers_and_rerun_asks_only_for_the_rest(
    fault_proxy: Any, sentiment: dict[str, Any], cache_dir: Path, fault: str, error: type[Exception]
) -> None:
    texts = Examples(texts=["Great!", "Awful.", "Fine.", "Bad.", "Superb."])
    retries = 2
    fault_proxy.faults = ["ok", "ok", *[fault] * (retries + 1)]
    model = model_at(fault_proxy.base_url, cache_dir, sentiment, concurrency=1, max_retries=retries, timeout=0.6)
    failed = context(cache_dir)
    with pytest.raises(error) as info:
        model.predict(texts, failed)
    assert fault_proxy.base_url in str(info.value) and "rerunning asks only for the missing" in str(info.value)
    assert failed.details["accounting"]["answers"] == 2  # accounting is recorded even when the run fails
    with ResponseCache(cache_dir / "r.sqlite") as cache:
        assert cache.info()["rows"] == 2

    rerun = context(cache_dir)
    predictions = model.predict(texts, rerun)
    assert rerun.details["accounting"]["cache_hits"] == 2 and rerun.details["accounting"]["requests"] == 3
    assert len(predictions) == 5


def test_refused_connection(sentiment: dict[str, Any], cache_dir: Path) -> None:
    base_url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    ctx = context(cache_dir)
    with pytest.raises(EndpointConnectionError, match="refused") as info:
        model_at(base_url, cache_dir, sentiment, max_retries=2).predict(Examples(texts=["x"]), ctx)
    assert base_url in str(info.value) and "server runs" in str(info.value)
    assert ctx.details["accounting"]["requests"] == 3 and ctx.details["accounting"]["retries"] == 2


# -- status codes and shapes, through a mock transport under the openai client ----------------------------
API = "https://api.fute-test.invalid/v1"


def chat_answer(with_logprobs: bool = True) -> dict[str, Any]:
    top = [{"token": "positive", "logprob": -0.2}, {"token": "negative", "logprob": -1.8}]
    logprobs = {"content": [{"token": "positive", "logprob": -0.2, "top_logprobs": top}]} if with_logprobs else None
    return {
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "positive"}, "logprobs": logprobs}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 1},
    }


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("FUTE_TEST_KEY", "sk-test")
    return "FUTE_TEST_KEY"


@pytest.mark.parametrize(
    ("status", "body", "error", "words"),
    [
        (404, {"error": {"message": "The model `nope` does not exist", "code": "model_not_found"}}, UnknownModelError,
         ["'nope'", "/models"]),
        (401, {"error": {"message": "Incorrect API key provided: sk-test"}}, AuthenticationError, ["FUTE_TEST_KEY"]),
        (429, {"error": {"message": "You exceeded your quota", "code": "insufficient_quota"}}, RateLimitedError,
         ["quota", "credit"]),
        (400, {"error": {"message": "top_logprobs must be <= 20"}}, BadRequestError, ["top_logprobs"]),
    ],
)  # fmt: skip
def test_status_errors_are_clear_and_not_retried(
    api_key: str,
    sentiment: dict[str, Any],
    cache_dir: Path,
    mock_api: Any,
    status: int,
    body: dict,
    error: type,
    words: list[str],
) -> None:
    calls = mock_api(API).respond("POST", "/chat/completions", status, json=body)
    source = model_at(API, cache_dir, sentiment, api_key_env=api_key, model="nope")
    with pytest.raises(error) as info:
        source.predict(Examples(texts=["x"]), context(cache_dir))
    assert len(calls) == 1  # neither we nor the openai client retried
    assert isinstance(info.value, FuteError) and API in str(info.value)
    for word in words:
        assert word in str(info.value)
    assert "sk-test" not in str(info.value)  # a server echoing the key does not put it in our messages
    assert calls[0].headers["authorization"] == "Bearer sk-test"


def test_no_logprobs_suggests_another_mode(
    api_key: str, sentiment: dict[str, Any], cache_dir: Path, mock_api: Any
) -> None:
    mock_api(API).respond("POST", "/chat/completions", 200, json=chat_answer(with_logprobs=False))
    model = model_at(API, cache_dir, sentiment, api_key_env=api_key)
    with pytest.raises(NoLogprobsError, match="mode = 'sample'"):
        model.predict(Examples(texts=["x", "y"]), context(cache_dir))
    parse = model_at(API, cache_dir, sentiment, api_key_env=api_key, mode="parse")
    labels = parse.predict(Examples(texts=["x"]), context(cache_dir)).labels
    np.testing.assert_array_equal(np.asarray(labels), [[1.0, 0.0]])


def test_cost_estimate_and_rate_limit(api_key: str, sentiment: dict[str, Any], cache_dir: Path, mock_api: Any) -> None:
    calls = mock_api(API).respond("POST", "/chat/completions", 200, json=chat_answer())
    model = model_at(
        API, cache_dir, sentiment, api_key_env=api_key, requests_per_minute=6000.0, tokens_per_minute=1e6,
        price_per_million_input=2.0, price_per_million_output=10.0,
    )  # fmt: skip
    ctx = context(cache_dir)
    labels = np.asarray(model.predict(Examples(texts=["a", "b", "c"]), ctx).labels)
    assert len(calls) == 3
    np.testing.assert_allclose(labels[0], np.exp([-0.2, -1.8]) / np.exp([-0.2, -1.8]).sum())
    accounting = ctx.details["accounting"]
    assert accounting["prompt_tokens"] == 30 and accounting["completion_tokens"] == 3
    assert accounting["estimated_cost"] == pytest.approx(30 * 2.0 / 1e6 + 3 * 10.0 / 1e6)


@pytest.mark.parametrize(
    ("exc", "error", "words"),
    [
        (httpx2.ConnectTimeout("slow"), EndpointTimeoutError, "timed out"),
        (httpx2.ReadTimeout("slow"), EndpointTimeoutError, "timed out"),
        (httpx2.ConnectError("refused"), EndpointConnectionError, "refused"),
        (httpx2.RemoteProtocolError("closed"), EndpointConnectionError, "dropped"),
    ],
)
def test_transport_errors_are_retried_then_surface(
    api_key: str, sentiment: dict[str, Any], cache_dir: Path, mock_api: Any, exc: Exception, error: type, words: str
) -> None:
    def fail(request: httpx2.Request) -> httpx2.Response:
        raise exc

    calls = mock_api(API).route("POST", "/chat/completions", fail)
    model = model_at(API, cache_dir, sentiment, api_key_env=api_key, max_retries=1)
    ctx = context(cache_dir)
    with pytest.raises(error, match=words):
        model.predict(Examples(texts=["a"]), ctx)
    assert len(calls) == 2 and ctx.details["accounting"]["retries"] == 1  # our one retry, none of the client's


def test_retry_after_ms_and_wire_body(
    api_key: str, sentiment: dict[str, Any], cache_dir: Path, mock_api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    waits: list[float] = []
    real_sleep = client_module.asyncio.sleep

    async def record(seconds: float) -> None:
        waits.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr(client_module.asyncio, "sleep", record)
    answers = iter(
        [
            httpx2.Response(429, headers={"retry-after-ms": "1500"}, json={"error": {"message": "slow down"}}),
            httpx2.Response(503, headers={"retry-after": "2"}, json={"error": {"message": "overloaded"}}),
            httpx2.Response(200, json=chat_answer()),
        ]
    )
    calls = mock_api(API).route("POST", "/chat/completions", lambda request: next(answers))
    model = model_at(API, cache_dir, sentiment, api_key_env=api_key, extra_body={"seed": 3, "min_p": 0.1})
    ctx = context(cache_dir)
    model.predict(Examples(texts=["a"]), ctx)
    assert waits == [1.5, 2.0] and ctx.details["accounting"]["retries"] == 2
    import json

    # The request on the wire is exactly the cached body: options unknown to the client pass through.
    sent = json.loads(calls[-1].content)
    assert sent == model.request_bodies(Examples(texts=["a"]))[0][0] and sent["min_p"] == 0.1


def test_without_cache_every_run_asks_again(
    api_key: str, sentiment: dict[str, Any], cache_dir: Path, mock_api: Any
) -> None:
    calls = mock_api(API).respond("POST", "/chat/completions", 200, json=chat_answer())
    model = model_at(API, cache_dir, sentiment, api_key_env=api_key, cache=False)
    for _ in range(2):
        model.predict(Examples(texts=["a", "a", "b"]), context(cache_dir))  # duplicates are asked once
    assert len(calls) == 4
    assert not (cache_dir / "r.sqlite").exists()
