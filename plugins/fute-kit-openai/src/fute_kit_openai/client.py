"""Asynchronous requests to an OpenAI-compatible endpoint: bounded concurrency, retries, rate limits.

Requests go through the official ``openai`` client with its own retries switched off
(``max_retries=0``): every retry is ours, so it is counted, backs off with jitter, honours
``Retry-After`` and stops at once after a fatal error. Answers are read as raw JSON
(``with_raw_response``): llama.cpp's completions log-probabilities come in a shape the client's
typed models do not parse, and the response cache stores the JSON as sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import attrs

from fute_kit_openai.errors import (
    RESUME_HINT,
    AuthenticationError,
    BadRequestError,
    EndpointConnectionError,
    EndpointError,
    EndpointTimeoutError,
    MalformedResponseError,
    RateLimitedError,
    ServerError,
    UnknownModelError,
)

log = logging.getLogger("fute_kit.openai")

RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504, 520, 522, 524, 529})
MAX_RETRY_AFTER = 600.0
SECRET_LIKE = re.compile(r"\bsk-[A-Za-z0-9_*\-.]{3,}")


@attrs.define
class Accounting:
    """What a run cost: requests sent (every attempt), answers received, cache hits, retries, tokens."""

    requests: int = 0
    answers: int = 0
    cache_hits: int = 0
    retries: int = 0
    batch_requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add_usage(self, response: Mapping[str, Any]) -> None:
        usage = response.get("usage") or {}
        self.prompt_tokens += int(usage.get("prompt_tokens") or 0)
        self.completion_tokens += int(usage.get("completion_tokens") or 0)

    def as_dict(self, price_in: float | None = None, price_out: float | None = None) -> dict[str, Any]:
        data: dict[str, Any] = attrs.asdict(self)
        lookups = self.answers + self.cache_hits
        data["hit_rate"] = round(self.cache_hits / lookups, 4) if lookups else None
        if price_in is not None or price_out is not None:
            data["estimated_cost"] = round(
                self.prompt_tokens * (price_in or 0.0) / 1e6 + self.completion_tokens * (price_out or 0.0) / 1e6, 6
            )
        return data


@attrs.frozen
class RetryPolicy:
    max_retries: int = 6
    timeout: float = 60.0
    backoff: float = 1.0
    backoff_max: float = 60.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before retry ``attempt`` (1-based): the server's Retry-After, else full jitter."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), MAX_RETRY_AFTER)
        ceiling = min(self.backoff_max, self.backoff * 2 ** (attempt - 1))
        # Full jitter keeps many clients that failed together from retrying together.
        return random.uniform(ceiling / 2, ceiling)


class TokenBucket:
    """A simple token bucket: ``per_minute`` tokens a minute, holding at most ten seconds' worth."""

    def __init__(self, per_minute: float) -> None:
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate * 10.0)
        self.tokens = self.capacity
        self.updated = time.monotonic()
        self._lock = asyncio.Lock()

    async def acquire(self, amount: float = 1.0) -> None:
        amount = min(amount, self.capacity)  # a request larger than the bucket waits for a full bucket
        async with self._lock:
            while True:
                now = time.monotonic()
                self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
                self.updated = now
                if self.tokens >= amount:
                    self.tokens -= amount
                    return
                await asyncio.sleep((amount - self.tokens) / self.rate)


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """``retry-after-ms`` (OpenAI) or ``Retry-After`` in seconds or as an HTTP date."""
    value = headers.get("retry-after-ms")
    if value:
        with contextlib.suppress(ValueError):
            return float(value) / 1000.0
    value = headers.get("retry-after")
    if not value:
        return None
    with contextlib.suppress(ValueError):
        return float(value)
    with contextlib.suppress(TypeError, ValueError):
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    return None


def estimate_tokens(body: Mapping[str, Any]) -> float:
    """A rough token count of a request for ``tokens_per_minute`` (four characters a token)."""
    text = json.dumps(body.get("messages") or body.get("prompt") or "", ensure_ascii=False)
    return len(text) / 4.0 + float(body.get("max_tokens") or 16)


def _error_text(response: Any) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:300]
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or error)[:300]
    if isinstance(error, str):
        return error[:300]
    return json.dumps(data)[:300]


def _error_code(response: Any) -> str:
    with contextlib.suppress(ValueError, AttributeError):
        error = response.json().get("error")
        if isinstance(error, dict):
            return str(error.get("code") or error.get("type") or "")
    return ""


# Tests plug a mock transport in here: a function returning a fresh HTTP client for the ``openai`` client
# (the client it runs on: ``httpx2.AsyncClient`` for openai 3.x), called once per run; None for its default.
http_client_factory: Callable[[], Any] | None = None

# Local servers need no key, but the client insists on one: this placeholder is sent instead.
NO_KEY = "no-key"


def _is_refused(exc: BaseException) -> bool:
    """Whether the transport error under an ``openai.APIConnectionError`` is a refused connection."""
    seen: BaseException | None = exc
    for _ in range(8):  # the chain is short; a bound guards against cycles
        if seen is None:
            return False
        if any(cls.__name__ == "ConnectError" for cls in type(seen).__mro__):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class Endpoint:
    """Sends requests to one URL with the configured limits; raises ``EndpointError`` subclasses."""

    def __init__(
        self,
        url: str,
        *,
        base_url: str,
        api_key: str | None,
        api_key_env: str,
        model: str,
        policy: RetryPolicy,
        concurrency: int,
        accounting: Accounting,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
    ) -> None:
        self.url = url
        self.base_url = base_url
        self.model = model
        self.policy = policy
        self.concurrency = concurrency
        self.accounting = accounting
        self.api_key_env = api_key_env
        self._secret = api_key
        self._rpm = TokenBucket(requests_per_minute) if requests_per_minute else None
        self._tpm = TokenBucket(tokens_per_minute) if tokens_per_minute else None
        self._stopping = False

    def __repr__(self) -> str:  # never shows the key
        return f"Endpoint({self.url!r}, model={self.model!r})"

    def client(self) -> Any:
        """An ``openai.AsyncOpenAI`` without retries of its own (use as ``async with``)."""
        import openai

        return openai.AsyncOpenAI(
            base_url=self.base_url,
            api_key=self._secret or NO_KEY,
            max_retries=0,
            timeout=self.policy.timeout,
            http_client=http_client_factory() if http_client_factory is not None else None,
        )

    # -- one request with retries ----------------------------------------------------------
    async def send(
        self,
        call: Callable[[], Awaitable[Any]],
        url: str,
        *,
        body: Mapping[str, Any] | None = None,
        count: bool = True,
    ) -> Any:
        """``await call()`` with retries on 429, 5xx, time-outs and refused or dropped connections.

        ``call`` makes one request through the ``openai`` client; ``url`` names the endpoint in errors,
        ``body`` (a request body) feeds the token limit. Returns what ``call`` returns.
        """
        import openai

        attempt = 0
        while True:
            if count:
                if self._rpm is not None:
                    await self._rpm.acquire()
                if self._tpm is not None and body is not None:
                    await self._tpm.acquire(estimate_tokens(body))
                self.accounting.requests += 1
            retry_after: float | None = None
            try:
                return await call()
            except openai.APITimeoutError:  # before APIConnectionError, its base class
                failure = "timeout"
            except openai.APIConnectionError as exc:
                failure = "refused" if _is_refused(exc) else "dropped"
            except openai.APIStatusError as exc:
                response = exc.response
                if response.status_code not in RETRY_STATUS or _error_code(response) == "insufficient_quota":
                    raise self._status_error(response, url) from None
                failure = str(response.status_code)
                retry_after = retry_after_seconds(response.headers)
            if attempt >= self.policy.max_retries or self._stopping:
                raise self._exhausted(failure, url, attempt)
            attempt += 1
            self.accounting.retries += 1
            wait = self.policy.delay(attempt, retry_after)
            log.debug("%s: %s, retry %d/%d in %.2fs", url, failure, attempt, self.policy.max_retries, wait)
            await asyncio.sleep(wait)

    async def complete(self, client: Any, body: Mapping[str, Any]) -> dict[str, Any]:
        """One chat or completions request (with retries); the answer as raw JSON."""
        fields = dict(body)
        # Everything but the required fields travels in extra_body, so the wire body is exactly ``body``
        # (the cache key) and options this client version does not know (llama.cpp's, a gateway's) pass.
        if self.url.endswith("/chat/completions"):
            create = client.chat.completions.with_raw_response.create
            required = {"model": fields.pop("model"), "messages": fields.pop("messages")}
        else:
            create = client.completions.with_raw_response.create
            required = {"model": fields.pop("model"), "prompt": fields.pop("prompt")}
        raw = await self.send(lambda: create(**required, extra_body=fields), self.url, body=body)
        return self._decode(raw.http_response, self.url)

    def _decode(self, response: Any, url: str) -> dict[str, Any]:
        try:
            data = response.json()
        except ValueError:
            snippet = response.text[:120].replace("\n", " ")
            raise MalformedResponseError(
                url,
                f"the answer is not JSON (it starts with {snippet!r})",
                "check that base_url points at an OpenAI-compatible API (it usually ends with /v1); " + RESUME_HINT,
            ) from None
        if not isinstance(data, dict):
            raise MalformedResponseError(url, "the answer is JSON but not an object", "check base_url; " + RESUME_HINT)
        return data

    def redact(self, text: str) -> str:
        """Remove the key from a server's message (OpenAI echoes part of a refused key)."""
        if self._secret:
            text = text.replace(self._secret, "***")
        return SECRET_LIKE.sub("sk-***", text)

    def _status_error(self, response: Any, url: str) -> EndpointError:
        status = response.status_code
        message = self.redact(_error_text(response))
        if status in (401, 403):
            return AuthenticationError(
                url,
                f"the API key was refused ({status}: {message})",
                f"put a valid key in the environment variable {self.api_key_env} (or set api_key_env)",
            )
        if status == 404:
            if "model" in message.lower():
                return UnknownModelError(
                    url,
                    f"the endpoint does not serve model {self.model!r} (404: {message})",
                    "set `model` to one the endpoint lists at GET <base_url>/models",
                )
            return UnknownModelError(
                url, f"not found (404: {message})", "check base_url (OpenAI-compatible servers usually end with /v1)"
            )
        if status == 429:
            return RateLimitedError(url, f"quota exhausted (429: {message})", "add credit or use another key")
        if status in (400, 413, 422):
            return BadRequestError(
                url,
                f"the request was rejected ({status}: {message})",
                "check the options this endpoint accepts (endpoint, mode, top_logprobs, max_tokens, extra_body) "
                "and that the prompt fits the model's context",
            )
        return EndpointError(url, f"unexpected answer {status}: {message}", "check base_url and the endpoint's status")

    def _exhausted(self, failure: str, url: str, attempts: int) -> EndpointError:
        tried = f"after {attempts} retries" if attempts else "and retries were stopped"
        limits = "lower `concurrency`, set `requests_per_minute`/`tokens_per_minute` or raise `max_retries`"
        if failure == "429":
            return RateLimitedError(url, f"still rate limited (429) {tried}", f"{limits}; {RESUME_HINT}")
        if failure == "timeout":
            return EndpointTimeoutError(
                url, f"requests timed out ({self.policy.timeout:g}s) {tried}", f"raise `timeout`; {RESUME_HINT}"
            )
        if failure in ("refused", "dropped"):
            what = "the connection was refused" if failure == "refused" else "the connection was dropped"
            return EndpointConnectionError(
                url, f"{what} {tried}", f"check that the server runs and base_url is right; {RESUME_HINT}"
            )
        return ServerError(url, f"the server kept failing ({failure}) {tried}", f"try again later; {RESUME_HINT}")

    # -- many requests ---------------------------------------------------------------------
    async def run_all(
        self,
        items: Sequence[tuple[str, Mapping[str, Any]]],
        on_answer: Callable[[str, Mapping[str, Any], dict[str, Any]], None],
        check: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        """Send every (key, body) with at most ``concurrency`` in flight; ``on_answer`` as each arrives.

        After a fatal error no new request starts and no retry is made; the requests in flight finish
        (their answers are paid for and get cached), then the first error is raised.
        """
        iterator = iter(items)
        errors: list[EndpointError] = []

        async def worker(client: Any) -> None:
            for key, body in iterator:
                if self._stopping:
                    return
                try:
                    answer = await self.complete(client, body)
                    if check is not None:
                        check(answer)  # raises an EndpointError for an answer that cannot be used
                except EndpointError as exc:
                    self._stopping = True
                    errors.append(exc)
                    return
                self.accounting.answers += 1
                self.accounting.add_usage(answer)
                on_answer(key, body, answer)

        async with self.client() as client:
            await asyncio.gather(*(worker(client) for _ in range(max(1, min(self.concurrency, len(items))))))
        if errors:
            raise errors[0]
