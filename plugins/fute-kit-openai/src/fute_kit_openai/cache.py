"""A persistent cache of endpoint answers: SQLite (WAL), one row per request, committed on arrival.

The key hashes the endpoint URL and the full request body (model, messages or prompt, parameters),
never the API key. Paid answers survive a crash or Ctrl-C: each is committed as soon as it arrives.
Runs are recorded too, so ``fute cache info`` can report the hit rate of past runs.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    model TEXT NOT NULL,
    request TEXT NOT NULL,
    response TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started REAL NOT NULL,
    finished REAL NOT NULL,
    url TEXT NOT NULL,
    model TEXT NOT NULL,
    lookups INTEGER NOT NULL,
    hits INTEGER NOT NULL,
    accounting TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS batches (
    request_set TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    batch_id TEXT NOT NULL,
    input_file_id TEXT NOT NULL,
    n_requests INTEGER NOT NULL,
    status TEXT NOT NULL,
    created REAL NOT NULL
);
"""


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def request_key(url: str, body: Mapping[str, Any]) -> str:
    """Cache key of one request: the endpoint URL and the whole body (never the API key)."""
    return hashlib.sha256(canonical({"url": url, "body": body}).encode("utf-8")).hexdigest()


def request_set_key(url: str, keys: Iterable[str]) -> str:
    digest = hashlib.sha256(url.encode("utf-8"))
    for key in sorted(keys):
        digest.update(key.encode("ascii"))
    return digest.hexdigest()


class ResponseCache:
    """Answers by request key. Safe for several processes (WAL, busy time-out)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=60.0, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: a committed answer survives a crash of the process (not of the machine's power).
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ResponseCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- answers ------------------------------------------------------------------------
    def get_many(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        keys = list(dict.fromkeys(keys))
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(f"SELECT key, response FROM responses WHERE key IN ({marks})", chunk)
            found.update({key: json.loads(text) for key, text in rows})
        return found

    def put(self, key: str, url: str, body: Mapping[str, Any], response: Mapping[str, Any]) -> None:
        usage = response.get("usage") or {}
        self._db.execute(
            "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                key,
                url,
                str(body.get("model", "")),
                canonical(body),
                canonical(response),
                int(usage.get("prompt_tokens") or 0),
                int(usage.get("completion_tokens") or 0),
                time.time(),
            ),
        )  # autocommit: the answer is on disk before the next one is awaited

    # -- runs ---------------------------------------------------------------------------
    def record_run(self, started: float, url: str, model: str, lookups: int, hits: int, accounting: Mapping) -> None:
        self._db.execute(
            "INSERT INTO runs (started, finished, url, model, lookups, hits, accounting) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (started, time.time(), url, model, lookups, hits, canonical(accounting)),
        )

    # -- batches ------------------------------------------------------------------------
    def get_batch(self, request_set: str) -> dict[str, Any] | None:
        row = self._db.execute(
            "SELECT batch_id, input_file_id, n_requests, status FROM batches WHERE request_set = ?", (request_set,)
        ).fetchone()
        if row is None:
            return None
        return {"batch_id": row[0], "input_file_id": row[1], "n_requests": row[2], "status": row[3]}

    def put_batch(self, request_set: str, url: str, batch_id: str, input_file_id: str, n: int, status: str) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO batches VALUES (?, ?, ?, ?, ?, ?, ?)",
            (request_set, url, batch_id, input_file_id, n, status, time.time()),
        )

    def set_batch_status(self, request_set: str, status: str) -> None:
        self._db.execute("UPDATE batches SET status = ? WHERE request_set = ?", (status, request_set))

    # -- maintenance --------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        rows, prompt, completion = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0) FROM responses"
        ).fetchone()
        runs, lookups, hits = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(lookups), 0), COALESCE(SUM(hits), 0) FROM runs"
        ).fetchone()
        models = self._db.execute("SELECT model, COUNT(*) FROM responses GROUP BY model ORDER BY 2 DESC").fetchall()
        batches = self._db.execute("SELECT COUNT(*) FROM batches").fetchone()[0]
        size = sum(p.stat().st_size for p in self.path.parent.glob(self.path.name + "*") if p.is_file())
        return {
            "path": str(self.path),
            "bytes": size,
            "rows": rows,
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "models": dict(models),
            "runs": runs,
            "lookups": lookups,
            "hits": hits,
            "hit_rate": (hits / lookups) if lookups else None,
            "batches": batches,
        }

    def clear(self) -> int:
        count = self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
        self._db.execute("DELETE FROM responses")
        self._db.execute("DELETE FROM runs")
        self._db.execute("DELETE FROM batches")
        self._db.execute("VACUUM")
        return int(count)
