"""A directory store of task embeddings: one safetensors file plus a JSON sidecar each.

Layout: ``ROOT/<space id>/space.json`` and ``ROOT/<space id>/<kind>/<subject>--<key>.{safetensors,json}``.
The key hashes space, kind, subject and data fingerprint, so a rerun on the same data finds its
embedding and a change of data makes a new one. The array is written first, the sidecar last and
both atomically: an embedding without its sidecar does not exist for the store.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from fute_kit.atomic import atomic_write_bytes, atomic_write_text
from fute_kit.embedding import Provenance, Space, TaskEmbedding, canonical_json


def slug(text: str) -> str:
    """A file-name-safe version of a subject name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:60] or "x"


def embedding_key(space: Space, kind: str, subject: str, fingerprint: str) -> str:
    payload = canonical_json({"space": space.id, "kind": kind, "subject": subject, "data": fingerprint})
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


@attrs.frozen
class StoredEntry:
    """One stored embedding as listed by ``fute store ls``."""

    path: Path
    space_id: str
    kind: str
    subject: str
    shape: tuple[int, ...]
    created: str
    fingerprint: str


class EmbeddingStore:
    """Embeddings on disk, content-addressed, written atomically."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _base(self, space: Space, kind: str, subject: str, fingerprint: str) -> Path:
        key = embedding_key(space, kind, subject, fingerprint)
        return self.root / space.id / kind / f"{slug(subject)}--{key}"

    def contains(self, space: Space, kind: str, subject: str, fingerprint: str) -> bool:
        base = self._base(space, kind, subject, fingerprint)
        return base.with_suffix(".json").exists() and base.with_suffix(".safetensors").exists()

    def get(self, space: Space, kind: str, subject: str, fingerprint: str) -> TaskEmbedding | None:
        base = self._base(space, kind, subject, fingerprint)
        if not base.with_suffix(".json").exists():
            return None
        return self.read(base.with_suffix(".json"))

    def put(self, embedding: TaskEmbedding) -> Path:
        from safetensors.numpy import save

        fingerprint = embedding.provenance.data_fingerprint
        base = self._base(embedding.space, embedding.kind, embedding.subject, fingerprint)
        space_file = self.root / embedding.space.id / "space.json"
        if not space_file.exists():
            atomic_write_text(space_file, json.dumps(embedding.space.to_dict(), indent=2))
        atomic_write_bytes(base.with_suffix(".safetensors"), save({"embedding": np.ascontiguousarray(embedding.array)}))
        sidecar = {
            "kind": embedding.kind,
            "subject": embedding.subject,
            "space": embedding.space.to_dict(),
            "shape": list(embedding.array.shape),
            "provenance": embedding.provenance.to_dict(),
        }
        atomic_write_text(base.with_suffix(".json"), json.dumps(sidecar, indent=2, default=_json_default))
        return base.with_suffix(".json")

    def read(self, sidecar_path: str | Path) -> TaskEmbedding:
        from safetensors.numpy import load_file

        sidecar_path = Path(sidecar_path)
        meta = json.loads(sidecar_path.read_text())
        array = load_file(str(sidecar_path.with_suffix(".safetensors")))["embedding"]
        return TaskEmbedding(
            array=array,
            kind=meta["kind"],
            subject=meta["subject"],
            space=Space.from_dict(meta["space"]),
            provenance=Provenance.from_dict(meta["provenance"]),
        )

    def _sidecars(self, space_id: str | None = None) -> Iterator[Path]:
        if not self.root.exists():
            return
        pattern = f"{space_id or '*'}/*/*.json"
        for path in sorted(self.root.glob(pattern)):
            if path.with_suffix(".safetensors").exists():
                yield path

    def entries(self, space_id: str | None = None) -> list[StoredEntry]:
        rows = []
        for path in self._sidecars(space_id):
            meta = json.loads(path.read_text())
            rows.append(
                StoredEntry(
                    path=path,
                    space_id=meta["space"]["id"],
                    kind=meta["kind"],
                    subject=meta["subject"],
                    shape=tuple(meta["shape"]),
                    created=meta["provenance"].get("created", ""),
                    fingerprint=meta["provenance"].get("data_fingerprint", ""),
                )
            )
        return rows

    def spaces(self) -> list[Space]:
        if not self.root.exists():
            return []
        return [Space.from_dict(json.loads(p.read_text())) for p in sorted(self.root.glob("*/space.json"))]

    def load_all(self, space_id: str | None = None) -> list[TaskEmbedding]:
        """Every stored embedding (of one space), newest last per subject."""
        return [self.read(path) for path in self._sidecars(space_id)]


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return str(value)
