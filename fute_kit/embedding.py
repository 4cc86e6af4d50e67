"""The embedding space and the task embedding value."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import attrs
import numpy as np

from fute_kit.errors import SpaceMismatchError

EmbeddingKind = Literal["dataset", "model"]

# Options that say where or how a method runs, not what it computes: left out of a space's identity, so an
# embedding made on a GPU compares with one made on a CPU, and a bfloat16 one with a float32 one (they agree
# within seed noise: docs/benchmarks.md).
RUNTIME_OPTIONS: frozenset[str] = frozenset({"device", "precision"})

# Options added after spaces were published, with the value that computes what the space computed before:
# at that value they are left out of the identity, so stored embeddings stay valid across the upgrade.
ADDED_OPTIONS: dict[str, Any] = {"batch_order": "shuffle", "null_stop_loss": 0.0}


def _identity_options(options: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: v
        for k, v in options.items()
        if k not in RUNTIME_OPTIONS and not (k in ADDED_OPTIONS and v == ADDED_OPTIONS[k])
    }


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: equal values give equal strings (and hashes)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _freeze_options(value: Mapping[str, Any] | None) -> dict[str, Any]:
    # Round-trip through JSON so options compare and hash the same however they were written.
    return json.loads(canonical_json(dict(value or {})))


@attrs.frozen(eq=False)
class Space:
    """Surrogate model + embedding method + the method's options: one embedding space.

    Embeddings are comparable only within one space. Options include the seed, because the
    space fixes everything that is not data (initial head weights, data order, dropout).
    """

    surrogate: str = attrs.field(validator=attrs.validators.min_len(1))
    method: str = attrs.field(validator=attrs.validators.min_len(1))
    options: dict[str, Any] = attrs.field(factory=dict, converter=_freeze_options, hash=False)

    @property
    def id(self) -> str:
        """A short stable identifier: the hash of surrogate, method and options."""
        options = _identity_options(self.options)
        payload = canonical_json({"surrogate": self.surrogate, "method": self.method, "options": options})
        return hashlib.sha256(payload.encode()).hexdigest()[:12]

    def __hash__(self) -> int:
        return hash(self.id)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Space) and self.id == other.id

    def describe(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in sorted(self.options.items()))
        return f"{self.method}({opts}) on {self.surrogate} [{self.id}]"

    def differences(self, other: Space, ignore: Iterable[str] = ()) -> list[str]:
        """What differs between two spaces, ignoring the named options."""
        skip = set(ignore) | RUNTIME_OPTIONS
        diffs = []
        if self.surrogate != other.surrogate:
            diffs.append(f"surrogate {self.surrogate!r} vs {other.surrogate!r}")
        if self.method != other.method:
            diffs.append(f"method {self.method!r} vs {other.method!r}")
        for key in sorted((set(self.options) | set(other.options)) - skip):
            a, b = self.options.get(key, ADDED_OPTIONS.get(key)), other.options.get(key, ADDED_OPTIONS.get(key))
            if a != b:
                diffs.append(f"option {key}: {a!r} vs {b!r}")
        return diffs

    def to_dict(self) -> dict[str, Any]:
        return {"surrogate": self.surrogate, "method": self.method, "options": self.options, "id": self.id}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Space:
        return cls(surrogate=data["surrogate"], method=data["method"], options=data.get("options", {}))


@attrs.frozen
class Provenance:
    """Where an embedding came from: enough to reproduce it and to judge it."""

    data_fingerprint: str
    n_examples: int
    seconds: float = 0.0
    source: dict[str, Any] = attrs.field(factory=dict)
    details: dict[str, Any] = attrs.field(factory=dict)
    versions: dict[str, str] = attrs.field(factory=dict)
    created: str = ""

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Provenance:
        names = {f.name for f in attrs.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def _as_array(value: Any) -> np.ndarray:
    array = np.array(value, dtype=np.float32, copy=True)
    if array.ndim not in (1, 2):
        raise ValueError(f"a task embedding is a vector or a matrix, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError("a task embedding must be finite (got NaN or inf): the method diverged")
    array.setflags(write=False)
    return array


@attrs.frozen(eq=False)
class TaskEmbedding:
    """A dataset task embedding (DTE) or a model task embedding (MTE) in one space."""

    array: np.ndarray = attrs.field(converter=_as_array)
    kind: EmbeddingKind = attrs.field(validator=attrs.validators.in_(("dataset", "model")))
    subject: str = attrs.field(validator=attrs.validators.min_len(1))
    space: Space
    provenance: Provenance

    @property
    def label(self) -> str:
        """``dataset:NAME`` or ``model:NAME``, as in similarity tables."""
        return f"{self.kind}:{self.subject}"

    @property
    def seed(self) -> Any:
        return self.space.options.get("seed")

    def vector(self) -> np.ndarray:
        """The flattened embedding."""
        return self.array.reshape(-1)


def check_same_space(embeddings: Iterable[TaskEmbedding], ignore: Iterable[str] = ()) -> Space:
    """Raise if the embeddings do not share one space (ignoring the named options)."""
    items = list(embeddings)
    if not items:
        raise ValueError("no embeddings to compare")
    first = items[0]
    ignore = tuple(ignore)
    for other in items[1:]:
        diffs = first.space.differences(other.space, ignore)
        if diffs:
            raise SpaceMismatchError(
                f"cannot compare {first.label} and {other.label}: they live in different spaces "
                f"({'; '.join(diffs)}). Recompute both with the same surrogate, method and options."
            )
    return first.space
