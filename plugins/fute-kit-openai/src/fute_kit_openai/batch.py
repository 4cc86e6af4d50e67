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
    """One chunk: resume or create its batch, wait for it to finish, store its answers."""
    bodies = dict(items)
    request_set = request_set_key(endpoint.url, bodies)
    batch_id = await _resume_or_create_batch(endpoint, client, items, cache, request_set, logger)
    batch = await _wait_for_batch(endpoint, client, model, cache, request_set, batch_id, logger)
    status = str(batch.get("status"))
    _raise_if_unfinished(endpoint, batch, batch_id, status)
    stored = failed = 0
    if batch.get("output_file_id"):
        stored, failed = await _store_batch_output(
            endpoint, client, str(batch["output_file_id"]), bodies, on_answer, check, batch_id, logger
        )
    logger.info(
        "openai batch %s %s: %d answers stored, %d failed, %d missing",
        batch_id,
        status,
        stored,
        failed,
        len(items) - stored - failed,
    )


async def _resume_or_create_batch(
    endpoint: Endpoint,
    client: Any,
    items: list[tuple[str, Mapping[str, Any]]],
    cache: ResponseCache,
    request_set: str,
    logger: logging.Logger,
) -> str:
    """The id of this request set's batch: the one the cache knows (unless it failed), else a new one."""
    known = cache.get_batch(request_set)
    if known is not None and known["status"] not in ("failed",):
        batch_id = str(known["batch_id"])
        logger.info("openai batch %s: resuming (%d requests, last status %s)", batch_id, len(items), known["status"])
        return batch_id
    file_id, created = await _upload_and_create_batch(endpoint, client, items)
    batch_id = str(created["id"])
    # Committed before waiting: a restarted process finds this batch and does not pay twice.
    cache.put_batch(request_set, endpoint.url, batch_id, file_id, len(items), str(created["status"]))
    endpoint.accounting.batch_requests += len(items)
    logger.info("openai batch %s created for %d requests", batch_id, len(items))
    return batch_id


async def _upload_and_create_batch(
    endpoint: Endpoint, client: Any, items: list[tuple[str, Mapping[str, Any]]]
) -> tuple[str, dict[str, Any]]:
    """Upload the requests as a JSONL file and create a batch over it: (the file's id, the batch)."""
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
    return str(uploaded["id"]), created


async def _wait_for_batch(
    endpoint: Endpoint,
    client: Any,
    model: OpenAIModel,
    cache: ResponseCache,
    request_set: str,
    batch_id: str,
    logger: logging.Logger,
) -> dict[str, Any]:
    """Poll the batch until it leaves the pending states; each status seen is saved to the cache."""
    while True:
        batch = _as_dict(
            await endpoint.send(
                lambda: client.batches.retrieve(batch_id), f"{endpoint.base_url}/batches/{batch_id}", count=False
            )
        )
        status = str(batch.get("status"))
        cache.set_batch_status(request_set, status)
        if status not in PENDING:
            return batch
        counts = batch.get("request_counts") or {}
        logger.info(
            "openai batch %s: %s (%s of %s done)",
            batch_id,
            status,
            counts.get("completed", "?"),
            counts.get("total", "?"),
        )
        await asyncio.sleep(model.batch_poll_interval)


def _raise_if_unfinished(endpoint: Endpoint, batch: dict[str, Any], batch_id: str, status: str) -> None:
    """A batch that ended without output to read (failed) is an error naming its first problems."""
    if status in FINISHED:
        return
    errors = (batch.get("errors") or {}).get("data") or []
    detail = "; ".join(str(e.get("message", e)) for e in errors[:3]) or "no detail given"
    raise BatchError(
        endpoint.url,
        f"batch {batch_id} {status}: {detail}",
        "fix the requests (see the errors) and rerun: a failed batch is not reused; " + RESUME_HINT,
    )


async def _store_batch_output(
    endpoint: Endpoint,
    client: Any,
    output_id: str,
    bodies: Mapping[str, Mapping[str, Any]],
    on_answer: Callable[[str, Mapping[str, Any], dict[str, Any]], None],
    check: Callable[[dict[str, Any]], None],
    batch_id: str,
    logger: logging.Logger,
) -> tuple[int, int]:
    """Read the batch's output file and hand each usable answer to ``on_answer``: (stored, failed)."""
    content = await endpoint.send(
        lambda: client.files.content(output_id), f"{endpoint.base_url}/files/{output_id}/content", count=False
    )
    stored = failed = 0
    for line in content.text.splitlines():
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
    return stored, failed
