"""Labelled examples: the one data type that datasets and model predictions share.

A model task embedding is "a dataset task embedding of the model's own predictions on U", so a
model source returns the same type a dataset source does, with soft labels instead of hard ones.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from typing import Literal

import attrs
import numpy as np

from fute_kit.errors import DataError

LabelKind = Literal["hard", "soft", "regression", "none"]
LABEL_KINDS: tuple[str, ...] = ("hard", "soft", "regression", "none")


def _as_texts(value: Sequence[str]) -> tuple[str, ...]:
    return tuple(str(t) for t in value)


def _as_optional_texts(value: Sequence[str] | None) -> tuple[str, ...] | None:
    return None if value is None else _as_texts(value)


def _as_optional_array(value: object) -> np.ndarray | None:
    if value is None:
        return None
    array = np.asarray(value)
    array.setflags(write=False)
    return array


@attrs.frozen(eq=False)
class Examples:
    """Texts (single or pairs) with hard labels, soft labels or regression targets.

    - ``hard``: ``labels`` is an int array of shape (n,), indices into ``label_names``.
    - ``soft``: ``labels`` is a float array of shape (n, k), rows are probability vectors.
    - ``regression``: ``labels`` is a float array of shape (n,).
    - ``none``: unlabelled text (``labels`` is None), such as the corpus U.
    """

    texts: tuple[str, ...] = attrs.field(converter=_as_texts)
    labels: np.ndarray | None = attrs.field(default=None, converter=_as_optional_array)
    label_kind: LabelKind = attrs.field(default="none", validator=attrs.validators.in_(LABEL_KINDS))
    label_names: tuple[str, ...] = attrs.field(default=(), converter=_as_texts)
    text_pairs: tuple[str, ...] | None = attrs.field(default=None, converter=_as_optional_texts)
    name: str = ""

    def __attrs_post_init__(self) -> None:
        n = len(self.texts)
        where = f"examples {self.name!r}" if self.name else "examples"
        if self.text_pairs is not None and len(self.text_pairs) != n:
            raise DataError(f"{where}: {n} texts but {len(self.text_pairs)} second texts of pairs")
        if self.label_kind == "none":
            if self.labels is not None:
                raise DataError(f"{where}: labels given but label_kind is 'none'")
            return
        if self.labels is None:
            raise DataError(f"{where}: label_kind is {self.label_kind!r} but no labels were given")
        if len(self.labels) != n:
            raise DataError(f"{where}: {n} texts but {len(self.labels)} labels")
        if self.label_kind == "hard":
            if self.labels.ndim != 1 or not np.issubdtype(self.labels.dtype, np.integer):
                raise DataError(f"{where}: hard labels must be integers of shape (n,)")
            if not self.label_names:
                raise DataError(f"{where}: hard labels need label_names")
            if n and (self.labels.min() < 0 or self.labels.max() >= len(self.label_names)):
                raise DataError(f"{where}: hard label out of range 0..{len(self.label_names) - 1}")
        elif self.label_kind == "soft":
            if self.labels.ndim != 2:
                raise DataError(f"{where}: soft labels must have shape (n, classes)")
            if self.label_names and self.labels.shape[1] != len(self.label_names):
                raise DataError(
                    f"{where}: soft labels have {self.labels.shape[1]} columns but {len(self.label_names)} label names"
                )
            if n and not np.allclose(self.labels.sum(axis=1), 1.0, atol=1e-3):
                raise DataError(f"{where}: soft label rows must sum to 1 (probability vectors)")
        elif self.label_kind == "regression" and self.labels.ndim != 1:
            raise DataError(f"{where}: regression targets must have shape (n,)")

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_hard_labels(
        cls,
        texts: Sequence[str],
        labels: Sequence[str | int],
        *,
        label_names: Sequence[str] | None = None,
        text_pairs: Sequence[str] | None = None,
        name: str = "",
    ) -> Examples:
        """Build hard-labelled examples from label values (strings or ints), sorted into classes."""
        values = [str(v) for v in labels]
        names = tuple(label_names) if label_names is not None else tuple(sorted(set(values)))
        index = {label: i for i, label in enumerate(names)}
        unknown = sorted(set(values) - set(index))
        if unknown:
            raise DataError(f"examples {name!r}: labels {unknown[:5]} are not among {list(names)}")
        return cls(
            texts=texts,
            labels=np.array([index[v] for v in values], dtype=np.int64),
            label_kind="hard",
            label_names=names,
            text_pairs=text_pairs,
            name=name,
        )

    # -- properties ---------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.texts)

    @property
    def is_pairs(self) -> bool:
        return self.text_pairs is not None

    @property
    def num_classes(self) -> int:
        """Number of classes (1 for regression, 0 for unlabelled)."""
        if self.label_kind == "regression":
            return 1
        if self.label_kind == "soft" and self.labels is not None:
            return int(self.labels.shape[1])
        return len(self.label_names)

    def label_distribution(self) -> np.ndarray:
        """Mean label vector: class frequencies (hard), mean probabilities (soft)."""
        if self.labels is None or self.label_kind == "regression":
            raise DataError("label_distribution needs hard or soft labels")
        if self.label_kind == "hard":
            counts = np.bincount(self.labels, minlength=self.num_classes)
            return counts / max(1, counts.sum())
        return self.labels.mean(axis=0)

    def fingerprint(self) -> str:
        """Content hash of texts, labels and label names: equal data, equal fingerprint."""
        digest = hashlib.sha256()
        header = {"kind": self.label_kind, "names": list(self.label_names), "pairs": self.is_pairs}
        digest.update(json.dumps(header, sort_keys=True).encode())
        for text in self.texts:
            digest.update(text.encode("utf-8") + b"\x00")
        for text in self.text_pairs or ():
            digest.update(text.encode("utf-8") + b"\x01")
        if self.labels is not None:
            labels = self.labels.astype(np.float32 if self.label_kind != "hard" else np.int64)
            digest.update(np.ascontiguousarray(labels).tobytes())
        return digest.hexdigest()[:24]

    def answer_counts(self) -> dict[str, int] | None:
        """How many examples each class wins (argmax of soft labels); None without class labels."""
        if self.labels is None or self.label_kind not in ("hard", "soft") or not len(self):
            return None
        winners = self.labels if self.label_kind == "hard" else self.labels.argmax(axis=1)
        counts = Counter(np.asarray(winners).tolist())
        names = self.label_names or tuple(str(i) for i in range(self.num_classes))
        return {name: counts.get(i, 0) for i, name in enumerate(names)}

    def confidence(self) -> dict[str, float] | None:
        """How sure soft labels are: the mean top probability and the mean entropy over log(classes) (1: uniform).

        None for other label kinds and for a single class.
        """
        if self.labels is None or self.label_kind != "soft" or not len(self) or self.num_classes < 2:
            return None
        probs = np.clip(np.asarray(self.labels, dtype=np.float64), 0.0, 1.0)
        entropy = -np.sum(probs * np.log(np.where(probs > 0, probs, 1.0)), axis=1) / np.log(probs.shape[1])
        return {"mean_top_probability": round(float(probs.max(axis=1).mean()), 4),
                "normalised_entropy": round(float(entropy.mean()), 4)}  # fmt: skip

    def summary(self) -> dict[str, object]:
        info: dict[str, object] = {"n": len(self), "label_kind": self.label_kind, "pairs": self.is_pairs}
        counts = self.answer_counts()
        if counts is not None:
            info["classes" if self.label_kind == "hard" else "answers"] = counts
        if (confidence := self.confidence()) is not None:
            info["confidence"] = confidence
        return info

    # -- transformation -----------------------------------------------------------------
    def select(self, indices: Sequence[int] | np.ndarray) -> Examples:
        idx = np.asarray(indices, dtype=np.int64)
        return attrs.evolve(
            self,
            texts=[self.texts[i] for i in idx],
            text_pairs=None if self.text_pairs is None else [self.text_pairs[i] for i in idx],
            labels=None if self.labels is None else self.labels[idx],
        )

    def sample(self, limit: int | None, seed: int = 0) -> Examples:
        """A reproducible random subset of at most ``limit`` examples (order kept)."""
        if limit is None or limit >= len(self):
            return self
        rng = np.random.default_rng(seed)
        return self.select(np.sort(rng.choice(len(self), size=limit, replace=False)))

    def unlabeled(self) -> Examples:
        return Examples(texts=self.texts, text_pairs=self.text_pairs, name=self.name)

    def with_predictions(self, labels: np.ndarray, label_kind: LabelKind, label_names: Sequence[str] = ()) -> Examples:
        """The same inputs labelled by a model: what a model source returns."""
        return attrs.evolve(self, labels=labels, label_kind=label_kind, label_names=label_names)

    def require_nonempty(self) -> Examples:
        if not len(self):
            raise DataError(f"examples {self.name!r} are empty: check the source's path, split or filter")
        return self


def _constant_labels(predictions: Examples) -> bool:
    """Exactly the same label for every input (a label prior): left to the method, whose embedding is then zero."""
    return predictions.labels is None or bool(np.all(predictions.labels == predictions.labels[:1]))


# A model that gives (nearly) every text of U the same answer tells the method little beyond its label prior.
ONE_ANSWER_SHARE = 0.95


def one_answer_warning(predictions: Examples) -> str | None:
    """A warning when a model's predictions on U are (nearly) one class, None otherwise.

    Exactly constant labels are left to the method (its embedding is then zero). What such models' MTEs were
    nearest in practice: experiments/NOTES.md, "LLM prompts".
    """
    counts = predictions.answer_counts()
    if not counts or _constant_labels(predictions):
        return None
    top, count = max(counts.items(), key=lambda item: item[1])
    share = count / len(predictions)
    if share < ONE_ANSWER_SHARE:
        return None
    return (
        f"the model answers {top!r} for {share:.0%} of the {len(predictions)} texts of U: its MTE says little "
        "beyond its label prior. A prompt the model does not follow looks like this: measure it on labelled data "
        "(fute measure), add few-shot examples or calibrate = 'batch', or use a U on which its answers vary"
    )


# Normalised entropy of soft labels above which the model barely commits to an answer on U. A warning, not an
# error: such labels can still carry the task, so what they say has to be checked. The measurements behind the
# threshold (prompted LLMs against fine-tuned classifiers, and the label-spread test): experiments/NOTES.md,
# "LLM prompts".
UNSURE_ENTROPY = 0.9


def unsure_labels_warning(predictions: Examples) -> str | None:
    """A warning when a model's soft labels on U are nearly uniform, None otherwise."""
    confidence = predictions.confidence()
    if confidence is None or confidence["normalised_entropy"] < UNSURE_ENTROPY or _constant_labels(predictions):
        return None
    return (
        f"the model's soft labels on the {len(predictions)} texts of U are nearly uniform (mean top probability "
        f"{confidence['mean_top_probability']:.2f}, entropy {confidence['normalised_entropy']:.2f} of the maximum): "
        "the model barely commits to an answer on this U. Check it on labelled data (fute measure) before reading "
        "its MTE, and compare it with models of known task on the same U"
    )
