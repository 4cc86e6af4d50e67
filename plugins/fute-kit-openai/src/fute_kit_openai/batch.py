"""OpenAI's Batch API: upload the requests as JSONL, create a batch, poll it, store the results.

Resumable across process restarts: the batch id is committed to the response cache's database,
keyed by the set of requests, as soon as the batch exists. A rerun with the same requests polls
that batch instead of paying for a new one. Every call goes through the ``openai`` client's ``files``
and ``batches`` resources, with our retries (``Endpoint.send``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from fute_kit_openai.cache import ResponseCache, request_set_key
from fute_kit_openai.client import Endpoint
from fute_kit_openai.errors import RESUME_HINT, BatchError, EndpointError

if TYPE_CHECKING:
    from fute_kit_openai.source import OpenAIModel

PENDING = frozenset({"validating", "in_progress", "finalizing", "cancelling"})
FINISHED = frozenset({"completed", "expired", "cancelled"})  # these may still carry partial output


def batch_endpoint_path(url: str) -> str:
    """The ``endpoint`` field a batch takes (the Batch API accepts only its own fixed paths)."""
    return "/v1/chat/completions" if url.endswith("/chat/completions") else "/v1/completions"


async def run_batches(
    endpoint: Endpoint,
    model: OpenAIModel,
    items: Sequence[tuple[str, Mapping[str, Any]]],
    cache: ResponseCache,
    on_answer: Callable[[str, Mapping[str, Any], dict[str, Any]], None],
    check: Callable[[dict[str, Any]], None],
    logger: logging.Logger,
) -> None:
    """Send ``items`` through the Batch API in chunks; answers go to ``on_answer`` (and so the cache)."""
    async with endpoint.client() as client:
        for start in range(0, len(items), model.batch_max_requests):
            chunk = list(items[start : start + model.batch_max_requests])
            await _run_one(endpoint, client, model, chunk, cache, on_answer, check, logger)


def _as_dict(obj: Any) -> dict[str, Any]:
    """A typed ``openai`` object as plain data (fields the server left out are None)."""
    # exclude_unset: a field the server did not send is absent, not None (``.get(key, default)`` works)
    return obj.model_dump(exclude_unset=True) if hasattr(obj, "model_dump") else dict(obj)


async def _run_one(
    endpoint: Endpoint,
    client: Any,
    model: OpenAIModel,
    items: list[tuple[str, Mapping[str, Any]]],
    cache: ResponseCache,
    on_answer: Callable[[str, Mapping[str, Any], dict[str, Any]], None],
    check: Callable[[dict[str, Any]], None],
    logger: logging.Logger,
) -> None:
    bodies = dict(items)
    request_set = request_set_key(endpoint.url, bodies)
    known = cache.get_batch(request_set)
    if known is not None and known["status"] not in ("failed",):
        batch_id = known["batch_id"]
        logger.info("openai batch %s: resuming (%d requests, last status %s)", batch_id, len(items), known["status"])
    else:
        lines = [
            json.dumps(
                {"custom_id": key, "method": "POST", "url": batch_endpoint_path(endpoint.url), "body": body},
                ensure_ascii=False,
            )
            for key, body in items
        ]
        payload = ("\n".join(lines) + "\n").encode("utf-8")
        base = endpoint.base_url
        upload = ("fute-requests.jsonl", payload, "application/jsonl")
        uploaded = _as_dict(
            await endpoint.send(
                lambda: client.files.create(file=upload, purpose="batch"),
                f"{base}/files",
                count=False,
            )
        )
        created = _as_dict(
            await endpoint.send(
                lambda: client.batches.create(
                    input_file_id=uploaded["id"],
                    endpoint=batch_endpoint_path(endpoint.url),
                    completion_window="24h",
                ),
                f"{base}/batches",
                count=False,
            )
        )
        batch_id = str(created["id"])
        # Committed before waiting: a restarted process finds this batch and does not pay twice.
        cache.put_batch(request_set, endpoint.url, batch_id, str(uploaded["id"]), len(items), str(created["status"]))
        endpoint.accounting.batch_requests += len(items)
        logger.info("openai batch %s created for %d requests", batch_id, len(items))

    while True:
        batch = _as_dict(
            await endpoint.send(
                lambda: client.batches.retrieve(batch_id), f"{endpoint.base_url}/batches/{batch_id}", count=False
            )
        )
        status = str(batch.get("status"))
        cache.set_batch_status(request_set, status)
        if status not in PENDING:
            break
        counts = batch.get("request_counts") or {}
        logger.info(
            "openai batch %s: %s (%s of %s done)",
            batch_id,
            status,
            counts.get("completed", "?"),
            counts.get("total", "?"),
        )
        await asyncio.sleep(model.batch_poll_interval)

    if status not in FINISHED:
        errors = (batch.get("errors") or {}).get("data") or []
        detail = "; ".join(str(e.get("message", e)) for e in errors[:3]) or "no detail given"
        raise BatchError(
            endpoint.url,
            f"batch {batch_id} {status}: {detail}",
            "fix the requests (see the errors) and rerun: a failed batch is not reused; " + RESUME_HINT,
        )
    stored = failed = 0
    if batch.get("output_file_id"):
        output_id = str(batch["output_file_id"])
        content = await endpoint.send(
            lambda: client.files.content(output_id), f"{endpoint.base_url}/files/{output_id}/content", count=False
        )
        text = content.text
        for line in text.splitlines():
            if not line.strip():
                continue
            record = json.loads(line)
            key = record.get("custom_id")
            response = record.get("response") or {}
            answer = response.get("body")
            if key not in bodies or response.get("status_code") != 200 or not isinstance(answer, dict):
                failed += 1
                continue
            try:
                check(answer)
            except EndpointError as exc:
                logger.warning("openai batch %s: unusable answer for %s: %s", batch_id, key[:12], exc.problem)
                failed += 1
                continue
            endpoint.accounting.answers += 1
            endpoint.accounting.add_usage(answer)
            on_answer(key, bodies[key], answer)
            stored += 1
    logger.info(
        "openai batch %s %s: %d answers stored, %d failed, %d missing",
        batch_id,
        status,
        stored,
        failed,
        len(items) - stored - failed,
    )
