"""The ``openai`` model source: an LLM behind any OpenAI-compatible endpoint plus a prompt is one model."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlparse

import attrs
import numpy as np

from fute_kit.plugin import CALIBRATION_HELP, Calibration, DataError, Examples, RunContext, option
from fute_kit_openai.prompts import (
    LabelMatcher,
    answer_position,
    build_prompt,
    chat_messages,
    completion_prompt,
    few_shot_problems,
    label_problems,
    template_kind,
)

T = TypeVar("T")
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
ENV_REFERENCE = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
DEFAULT_MAX_TOKENS = {"logprobs": 3, "parse": 10, "sample": 10}


def expand_env(value: str, key: str = "base_url") -> str:
    """``${NAME}`` or ``${NAME:-default}`` replaced by the environment variable."""

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        found = os.environ.get(name)
        if found:
            return found
        if default is not None:
            return default
        raise DataError(f"{key}: environment variable {name} is not set; set it or write ${{{name}:-default}}")

    return ENV_REFERENCE.sub(replace, value)


def is_local(url: str) -> bool:
    return (urlparse(url).hostname or "") in LOCAL_HOSTS


def run_coroutine(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine from synchronous code, also where an event loop already runs (a notebook)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


def _validate(instance: OpenAIModel) -> None:
    problems: list[str] = []
    base = instance.base_url
    if not ENV_REFERENCE.search(base) and urlparse(base).scheme not in ("http", "https"):
        problems.append(f"base_url: {base!r} is not an http(s) URL (for example http://127.0.0.1:8080/v1)")
    if not instance.model.strip():
        problems.append("model: empty; give the model name the endpoint serves")
    kind = None
    try:
        kind = template_kind(instance.prompt)
    except ValueError as exc:
        problems.append(str(exc))
    problems += label_problems(instance.labels)
    if kind is not None:
        problems += few_shot_problems(instance.few_shot, instance.labels, kind)
    if not ENV_NAME.fullmatch(instance.api_key_env):
        problems.append(f"api_key_env: {instance.api_key_env!r} is not an environment variable name")
    for key, value, low in (
        ("top_logprobs", instance.top_logprobs, 1),
        ("samples", instance.samples, 1),
        ("concurrency", instance.concurrency, 1),
        ("max_retries", instance.max_retries, 0),
        ("batch_max_requests", instance.batch_max_requests, 1),
    ):
        if value < low:
            problems.append(f"{key}: must be at least {low}, got {value}")
    if instance.max_tokens is not None and instance.max_tokens < 1:
        problems.append(f"max_tokens: must be at least 1, got {instance.max_tokens}")
    for key in ("timeout", "retry_backoff", "retry_backoff_max", "batch_poll_interval"):
        if getattr(instance, key) <= 0:
            problems.append(f"{key}: must be positive, got {getattr(instance, key)}")
    for key in ("requests_per_minute", "tokens_per_minute", "price_per_million_input", "price_per_million_output"):
        value = getattr(instance, key)
        if value is not None and (value < 0 or (key.endswith("minute") and value == 0)):
            problems.append(f"{key}: must be positive, got {value}")
    if problems:
        from fute_kit.plugin import OptionsError

        # Every problem at once, each under its key (the study config reports them by entry and key).
        raise OptionsError("model source 'openai'", [tuple(p.split(": ", 1)) for p in problems])  # type: ignore[misc]


@attrs.frozen
class OpenAIModel:
    """An LLM behind an OpenAI-compatible endpoint, turned into a classifier by a prompt and label words."""

    name = "openai"

    model: str = option(help="model name as the endpoint knows it (e.g. gpt-4o-mini, or the local server's alias)")
    prompt: str = option(help="template with {text}, or {text_a} and {text_b} for pairs")
    labels: dict[str, list[str]] = option(help='label words per class, e.g. {positive = ["positive", "good"], ...}')
    base_url: str = option(
        "http://127.0.0.1:8080/v1",
        help="OpenAI-compatible API root; ${VAR} or ${VAR:-default} read the environment",
    )
    system: str | None = option(None, help="optional system message (chat) or preamble (completions)")
    few_shot: list[dict[str, str]] = option(
        attrs.Factory(list), help="examples shown before the input: [{text = ..., label = ...}, ...]"
    )
    endpoint: Literal["chat", "completions"] = option("chat", help="/chat/completions or /completions")
    mode: Literal["logprobs", "sample", "parse"] = option(
        "logprobs",
        help="logprobs: first answer token's top log-probabilities; sample: label frequencies of `samples` "
        "answers at temperature 1; parse: one greedy answer parsed to a label",
    )
    top_logprobs: int = option(20, help="log-probabilities per position to ask for (mode logprobs; OpenAI allows 20)")
    samples: int = option(10, help="answers per input (mode sample)")
    max_tokens: int | None = option(None, help="tokens to generate (default 3 for logprobs, 10 otherwise)")
    extra_body: dict[str, Any] = option(attrs.Factory(dict), help="extra request fields, e.g. {seed = 1}")
    api_key_env: str = option("OPENAI_API_KEY", help="environment variable holding the API key (never stored)")
    concurrency: int = option(4, help="requests in flight at once")
    max_retries: int = option(6, help="retries of a request on 429, 5xx, time-outs and connection failures")
    timeout: float = option(60.0, help="seconds per request")
    retry_backoff: float = option(1.0, help="first retry delay in seconds (doubles each retry, with jitter)")
    retry_backoff_max: float = option(60.0, help="longest retry delay unless the server's Retry-After says more")
    requests_per_minute: float | None = option(None, help="client-side request rate limit (token bucket)")
    tokens_per_minute: float | None = option(None, help="client-side token rate limit (estimated, token bucket)")
    cache: bool = option(True, help="keep every answer in the response cache (a rerun makes no request)")
    cache_path: str | None = option(None, help="response cache file (default <cache_dir>/openai/responses.sqlite)")
    price_per_million_input: float | None = option(None, help="price per million prompt tokens, for cost estimates")
    price_per_million_output: float | None = option(None, help="price per million completion tokens")
    batch: bool = option(False, help="use the endpoint's Batch API (OpenAI) for the uncached requests")
    batch_poll_interval: float = option(30.0, help="seconds between Batch API status checks")
    batch_max_requests: int = option(50000, help="requests per batch (OpenAI allows 50,000)")
    calibrate: Calibration = option("none", help=CALIBRATION_HELP)

    def __attrs_post_init__(self) -> None:
        _validate(self)

    # -- resolved settings --------------------------------------------------------------------
    @property
    def input_kind(self) -> Literal["single", "pairs"]:
        return template_kind(self.prompt)

    def resolved_base_url(self) -> str:
        url = expand_env(self.base_url).rstrip("/")
        if urlparse(url).scheme not in ("http", "https"):
            raise DataError(f"openai model {self.model!r}: base_url {url!r} is not an http(s) URL")
        return url

    def endpoint_url(self) -> str:
        path = "/chat/completions" if self.endpoint == "chat" else "/completions"
        return self.resolved_base_url() + path

    def api_key(self, url: str) -> str | None:
        """The key from the environment; a local server needs none. Never logged or stored."""
        from fute_kit_openai.errors import MissingAPIKeyError

        key = os.environ.get(self.api_key_env, "").strip()
        if key:
            return key
        if is_local(url):
            return None
        raise MissingAPIKeyError(
            url,
            f"no API key: the environment variable {self.api_key_env} is empty or unset",
            f"export {self.api_key_env}=... (or set api_key_env to the variable that holds the key)",
        )

    def cache_file(self, context: RunContext) -> Path:
        if self.cache_path:
            return Path(os.path.expanduser(self.cache_path))
        return Path(context.cache_dir) / "openai" / "responses.sqlite"

    # -- requests ----------------------------------------------------------------------------
    def request_bodies(self, inputs: Examples) -> list[list[dict[str, Any]]]:
        """For each input, the request bodies to send (one, or ``samples`` in mode sample)."""
        max_tokens = self.max_tokens or DEFAULT_MAX_TOKENS[self.mode]
        params: dict[str, Any] = {"model": self.model, "max_tokens": max_tokens}
        if self.mode == "logprobs":
            params["temperature"] = 0.0
            if self.endpoint == "chat":
                params.update(logprobs=True, top_logprobs=self.top_logprobs)
            else:
                params["logprobs"] = self.top_logprobs
        elif self.mode == "parse":
            params["temperature"] = 0.0
        else:
            params["temperature"] = 1.0
        params.update(self.extra_body)
        bodies = []
        pairs = inputs.text_pairs
        for i, text in enumerate(inputs.texts):
            second = pairs[i] if pairs is not None else None
            common = {"system": self.system, "few_shot": self.few_shot, "labels": self.labels}
            if self.endpoint == "chat":
                content: dict[str, Any] = {"messages": chat_messages(build_prompt(self.prompt, text, second, **common))}
            else:
                content = {"prompt": completion_prompt(build_prompt(self.prompt, text, second, **common))}
            if self.mode == "sample":
                # One request per sample, each with its own seed: answers differ, yet each is cacheable.
                bodies.append([{**params, **content, "seed": s} for s in range(self.samples)])
            else:
                bodies.append([{**params, **content}])
        return bodies

    def check_answer(self, url: str) -> Callable[[dict[str, Any]], None]:
        from fute_kit_openai.errors import RESUME_HINT, MalformedResponseError, NoLogprobsError
        from fute_kit_openai.responses import answer_text, positions

        def check(answer: dict[str, Any]) -> None:
            if answer_text(answer) is None:
                raise MalformedResponseError(
                    url, "the answer has no choices[0] with a message or text", f"check the endpoint; {RESUME_HINT}"
                )
            if self.mode == "logprobs" and not positions(answer):
                raise NoLogprobsError(
                    url,
                    "the answer carries no token log-probabilities",
                    "this endpoint does not return them: set mode = 'sample' or mode = 'parse'",
                )

        return check

    # -- soft labels ----------------------------------------------------------------------------
    def soft_labels(self, answers: list[list[dict[str, Any]]]) -> tuple[np.ndarray, int, int]:
        """Soft labels per input, and the number of answers that matched no label word (of how many)."""
        from fute_kit_openai.responses import answer_text, positions

        matcher = LabelMatcher(self.labels)
        k = len(matcher.classes)
        uniform = np.full(k, 1.0 / k)
        labels = np.empty((len(answers), k), dtype=np.float64)
        unmatched = total = 0
        for i, group in enumerate(answers):
            if self.mode == "logprobs":
                total += 1
                found = positions(group[0]) or []
                at = answer_position(found)
                scores = matcher.scores_from_top_logprobs(found[at][1]) if at is not None else None
                if scores is None:
                    unmatched += 1
                    scores = uniform
                labels[i] = scores
                continue
            counts = np.zeros(k)
            for answer in group:
                total += 1
                cls = matcher.parse_answer(answer_text(answer) or "")
                if cls is None:
                    unmatched += 1
                else:
                    counts[cls] += 1
            labels[i] = counts / counts.sum() if counts.sum() else uniform
        return labels, unmatched, total

    def predict(self, inputs: Examples, context: RunContext) -> Examples:
        from fute_kit_openai.runner import label_inputs

        return label_inputs(self, inputs, context)

    # -- SPELL: the prompt's own likelihood ---------------------------------------------------------
    def prompt_log_likelihood(self, inputs: Examples, context: RunContext) -> np.ndarray:
        """Mean log-probability of each filled prompt's tokens (SPELL, Gonen et al. 2022), the first token aside.

        The prompt is the plain-text one of ``endpoint = 'completions'`` (system, few-shot, filled template), sent
        to ``/completions`` with ``echo`` and ``logprobs`` (OpenAI's format: ``choices[0].logprobs.token_logprobs``,
        the prompt's ``usage.prompt_tokens`` tokens first). One probe request first: an endpoint that returns no
        log-probabilities of the prompt's tokens raises ``NotImplementedError`` saying so. llama.cpp's server (the
        local server, xllamacpp) is one: it accepts ``echo`` but returns the generated token's log-probability only.
        """
        from fute_kit_openai.client import Accounting, Endpoint, RetryPolicy

        if (self.input_kind == "pairs") != inputs.is_pairs:
            raise DataError(f"openai model {self.model!r}: the prompt's placeholders do not fit the inputs' kind")
        url = self.resolved_base_url() + "/completions"
        params = {"model": self.model, "echo": True, "logprobs": 1, "max_tokens": 1, "temperature": 0.0}
        common = {"system": self.system, "few_shot": self.few_shot, "labels": self.labels}
        pairs = inputs.text_pairs
        bodies = [
            {
                **params,
                "prompt": completion_prompt(build_prompt(self.prompt, text, pairs[i] if pairs else None, **common)),
            }
            for i, text in enumerate(inputs.texts)
        ]
        endpoint = Endpoint(
            url,
            base_url=self.resolved_base_url(),
            api_key=self.api_key(url),
            api_key_env=self.api_key_env,
            model=self.model,
            policy=RetryPolicy(self.max_retries, self.timeout, self.retry_backoff, self.retry_backoff_max),
            concurrency=self.concurrency,
            accounting=Accounting(),
            requests_per_minute=self.requests_per_minute,
            tokens_per_minute=self.tokens_per_minute,
        )
        answers: dict[str, dict[str, Any]] = {}

        def keep(key: str, body: Any, answer: dict[str, Any]) -> None:
            answers[key] = answer

        run_coroutine(lambda: endpoint.run_all([("0", bodies[0])], keep))
        _prompt_token_logprobs(answers["0"], url)  # the probe: fails at once where prompts are not scored
        run_coroutine(lambda: endpoint.run_all([(str(i), b) for i, b in enumerate(bodies) if i], keep))
        return np.array([np.mean(_prompt_token_logprobs(answers[str(i)], url)) for i in range(len(bodies))])


def _prompt_token_logprobs(answer: dict[str, Any], url: str) -> list[float]:
    """The log-probabilities of an echoed prompt's tokens after the first, or NotImplementedError saying why not."""
    choices = answer.get("choices") or [{}]
    values = (choices[0].get("logprobs") or {}).get("token_logprobs")
    prompt_tokens = (answer.get("usage") or {}).get("prompt_tokens")
    if not isinstance(values, list) or not prompt_tokens or len(values) < prompt_tokens or prompt_tokens < 2:
        raise NotImplementedError(
            f"{url} returned no log-probabilities of the prompt's tokens for echo=true (the llama.cpp server behind "
            "the local server gives the generated token's only); score prompts with hf-prompted, or an endpoint "
            "that echoes prompt log-probabilities"
        )
    return [float(v) for v in values[1:prompt_tokens]]
