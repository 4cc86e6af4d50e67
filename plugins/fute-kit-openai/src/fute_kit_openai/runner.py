"""Labelling U with an ``openai`` model: cache look-up, (batch or online) requests, soft labels, accounting."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from fute_kit.plugin import DataError, Examples, RunContext, calibrate_and_record
from fute_kit_openai.cache import ResponseCache, request_key
from fute_kit_openai.client import Accounting, Endpoint, RetryPolicy

if TYPE_CHECKING:
    from fute_kit_openai.source import OpenAIModel


def _check_inputs(model: OpenAIModel, inputs: Examples) -> None:
    kind = model.input_kind
    if inputs.is_pairs and kind == "single":
        raise DataError(
            f"openai model {model.model!r}: the inputs are pairs but the prompt has {{text}}; "
            "write the template with {text_a} and {text_b}"
        )
    if not inputs.is_pairs and kind == "pairs":
        raise DataError(
            f"openai model {model.model!r}: the prompt has {{text_a}}/{{text_b}} but the inputs are single texts; "
            "write the template with {text}, or use unlabelled text made of pairs"
        )


def label_inputs(model: OpenAIModel, inputs: Examples, context: RunContext) -> Examples:
    """Soft labels of the inputs; every answer is cached as it arrives, accounting is always recorded."""
    _check_inputs(model, inputs)
    url = model.endpoint_url()
    api_key = model.api_key(url)  # before any request: a missing key fails at once
    bodies = model.request_bodies(inputs)
    keys = [[request_key(url, body) for body in group] for group in bodies]
    unique = {
        key: body
        for group_keys, group in zip(keys, bodies, strict=True)
        for key, body in zip(group_keys, group, strict=True)
    }
    answers = _fetch_answers(model, context, url, api_key, unique)
    labels, unmatched, total = model.soft_labels([[answers[key] for key in group] for group in keys])
    _record_unmatched(model, context, unmatched, total)
    probabilities = calibrate_and_record(np.asarray(labels), model.calibrate, context)
    return inputs.with_predictions(probabilities, "soft", tuple(model.labels))


def _endpoint_for(model: OpenAIModel, url: str, api_key: str | None, accounting: Accounting) -> Endpoint:
    return Endpoint(
        url,
        base_url=model.resolved_base_url(),
        api_key=api_key,
        api_key_env=model.api_key_env,
        model=model.model,
        policy=RetryPolicy(model.max_retries, model.timeout, model.retry_backoff, model.retry_backoff_max),
        concurrency=model.concurrency,
        accounting=accounting,
        requests_per_minute=model.requests_per_minute,
        tokens_per_minute=model.tokens_per_minute,
    )


def _fetch_answers(
    model: OpenAIModel, context: RunContext, url: str, api_key: str | None, unique: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """Every request's answer: from the cache, else asked (batch, then online); accounting is recorded."""
    from fute_kit.plugin import progress_bar

    accounting = Accounting()
    cache = ResponseCache(model.cache_file(context) if model.cache else ":memory:")
    started = time.time()
    answers: dict[str, dict[str, Any]] = {}
    try:
        answers.update(cache.get_many(unique))
        accounting.cache_hits = len(answers)
        missing = [(key, body) for key, body in unique.items() if key not in answers]
        endpoint = _endpoint_for(model, url, api_key, accounting)
        check = model.check_answer(url)
        # A bar on a terminal, plain lines at an interval on a file or a pipe.
        bar = progress_bar(len(missing), f"openai {model.model}", context.show_progress and bool(missing))

        def on_answer(key: str, body: Any, answer: dict[str, Any]) -> None:
            cache.put(key, url, body, answer)  # committed now: a paid answer is never lost
            answers[key] = answer
            bar.update()

        try:
            _ask_missing(model, context, endpoint, cache, missing, answers, on_answer, check)
        finally:
            bar.close()
            report = accounting.as_dict(model.price_per_million_input, model.price_per_million_output)
            context.record("accounting", report)
            cache.record_run(started, url, model.model, len(unique), accounting.cache_hits, report)
            context.logger.info("openai %s at %s: %s", model.model, url, describe(report))
    finally:
        cache.close()
    return answers


def _ask_missing(
    model: OpenAIModel,
    context: RunContext,
    endpoint: Endpoint,
    cache: ResponseCache,
    missing: list[tuple[str, Any]],
    answers: dict[str, dict[str, Any]],
    on_answer: Callable[[str, Any, dict[str, Any]], None],
    check: Callable[[dict[str, Any]], None],
) -> None:
    """Send the requests the cache lacks: through the Batch API first if asked, what is left online."""
    from fute_kit_openai.source import run_coroutine

    if missing and model.batch:
        from fute_kit_openai.batch import run_batches

        run_coroutine(lambda: run_batches(endpoint, model, missing, cache, on_answer, check, context.logger))
        missing = [(key, body) for key, body in missing if key not in answers]
        if missing:
            context.logger.info("openai: %d requests left after the batch: sending them online", len(missing))
    if missing:
        run_coroutine(lambda: endpoint.run_all(missing, on_answer, check))


def _record_unmatched(model: OpenAIModel, context: RunContext, unmatched: int, total: int) -> None:
    """Record how many answers matched no label word, and warn when it is more than a fifth."""
    share = unmatched / total if total else 0.0
    context.record(
        "openai",
        {
            "base_url": model.resolved_base_url(),
            "model": model.model,
            "endpoint": model.endpoint,
            "mode": model.mode,
            "answers": total,
            "unmatched": unmatched,
            "unmatched_share": round(share, 4),
            "unmatched_policy": "uniform distribution over the classes",
        },
    )
    if share > 0.2:
        context.logger.warning(
            "openai %s: %.0f%% of the answers matched no label word (given a uniform label): "
            "check the prompt and label words",
            model.model,
            100 * share,
        )


def describe(report: dict[str, Any]) -> str:
    text = (
        f"{report['requests']} requests ({report['retries']} retries), {report['answers']} new answers, "
        f"{report['cache_hits']} cache hits, {report['prompt_tokens']} prompt + "
        f"{report['completion_tokens']} completion tokens"
    )
    if report.get("batch_requests"):
        text += f", {report['batch_requests']} through the Batch API"
    if "estimated_cost" in report:
        text += f", estimated cost {report['estimated_cost']:.4f}"
    return text
