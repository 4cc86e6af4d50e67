"""Prompt templates, label words and the conversion of answers into class scores.

No tokenizer of a remote model is known, so a returned token matches a label word when, without
its leading whitespace and ignoring case, it is the word or a prefix of it (the word's first
token). A token that could start words of two classes counts for neither.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import attrs
import numpy as np

SINGLE = ("text",)
PAIRS = ("text_a", "text_b")
# Markers some servers leave on decoded tokens (GPT-2 and SentencePiece word starts).
_WORD_START_MARKERS = "\u0120\u2581"


def placeholders(template: str, key: str = "prompt") -> set[str]:
    """Field names of a ``str.format`` template (literal braces are written doubled, as in hf-prompted)."""
    try:
        return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise ValueError(f"{key}: not a valid template ({exc}); write literal braces as {{{{ and }}}}") from exc


def template_kind(template: str, key: str = "prompt") -> Literal["single", "pairs"]:
    """Whether a template takes one text (``{text}``) or a pair (``{text_a}``, ``{text_b}``)."""
    found = placeholders(template, key)
    unknown = sorted(found - {*SINGLE, *PAIRS})
    if unknown:
        raise ValueError(
            f"{key}: unknown placeholder(s) {', '.join('{' + u + '}' for u in unknown)}; "
            "use {text} for single inputs or {text_a} and {text_b} for pairs (literal braces are doubled)"
        )
    if "text" in found and found & set(PAIRS):
        raise ValueError(f"{key}: mixes {{text}} with {{text_a}}/{{text_b}}; use one form")
    if "text" in found:
        return "single"
    if found == set(PAIRS):
        return "pairs"
    raise ValueError(f"{key}: needs {{text}} (single inputs) or both {{text_a}} and {{text_b}} (pairs)")


def render(template: str, text: str, text_b: str | None = None) -> str:
    """Fill a template (``str.format``: the same rendering as the hf-prompted source)."""
    if text_b is None:
        return template.format(text=text)
    return template.format(text_a=text, text_b=text_b)


def normalise(token: str) -> str:
    return token.lstrip().lstrip(_WORD_START_MARKERS).lstrip().casefold()


def label_problems(labels: Mapping[str, Sequence[str]]) -> list[str]:
    """Empty classes or words, and words whose first tokens would collide across classes."""
    problems: list[str] = []
    if len(labels) < 2:
        problems.append(f"labels: needs at least two classes, got {list(labels)}")
    owners: set[tuple[str, str]] = set()
    for cls, words in labels.items():
        if not words:
            problems.append(f"labels: class {cls!r} has no label words")
        for word in words:
            if not normalise(word):
                problems.append(f"labels: class {cls!r} has an empty label word")
                continue
            owners.add((normalise(word), cls))
    for word, cls in sorted(owners):
        for other, other_cls in sorted(owners):
            if cls != other_cls and other.startswith(word):
                # "pos" in one class and "positive" in another start with the same token(s).
                problems.append(
                    f"labels: word {word!r} of class {cls!r} is a prefix of {other!r} of class {other_cls!r}: "
                    "their first tokens would collide; choose distinct words"
                )
    return problems


class LabelMatcher:
    """Maps tokens and answers to classes."""

    def __init__(self, labels: Mapping[str, Sequence[str]]) -> None:
        self.classes: tuple[str, ...] = tuple(labels)
        self.words: list[tuple[str, int]] = [
            (normalise(w), i) for i, cls in enumerate(self.classes) for w in labels[cls] if normalise(w)
        ]
        # Longest words first so "very good" wins over "good" when parsing answers.
        ordered = sorted(self.words, key=lambda item: -len(item[0]))
        self._answer_pattern = re.compile("|".join(rf"(?<!\w){re.escape(w)}(?!\w)" for w, _ in ordered), re.IGNORECASE)
        self._class_of_word = {w: i for w, i in self.words}
        self._token_cache: dict[str, int | None] = {}

    def token_class(self, token: str) -> int | None:
        """The class whose label word this token can start, or None (no class, or several)."""
        if token in self._token_cache:
            return self._token_cache[token]
        norm = normalise(token)
        found: set[int] = set()
        if norm:
            for word, cls in self.words:
                # A one-character token only counts for a one-character word: "p" starts too much.
                if word.startswith(norm) and (len(norm) >= 2 or len(word) == 1):
                    found.add(cls)
        result = found.pop() if len(found) == 1 else None
        self._token_cache[token] = result
        return result

    def scores_from_top_logprobs(self, top: Sequence[tuple[str, float]]) -> np.ndarray | None:
        """Class probabilities from one position's top log-probabilities (max over matching tokens).

        Returns None when no token matches any class. Classes with no matching token get 0 before
        the renormalisation over classes.
        """
        scores = np.zeros(len(self.classes), dtype=np.float64)
        matched = False
        for token, logprob in top:
            cls = self.token_class(token)
            if cls is None:
                continue
            matched = True
            scores[cls] = max(scores[cls], float(np.exp(logprob)))
        if not matched or scores.sum() <= 0:
            return None
        return scores / scores.sum()

    def parse_answer(self, answer: str) -> int | None:
        """The class of the first label word found in a generated answer (whole words, any case)."""
        match = self._answer_pattern.search(answer.casefold())
        if match is None:
            return None
        return self._class_of_word[match.group(0).casefold()]


def answer_position(positions: Sequence[tuple[str, Sequence[tuple[str, float]]]]) -> int | None:
    """The first generated position whose chosen token is not whitespace (the answer's first token)."""
    for i, (token, _) in enumerate(positions):
        if token.strip():
            return i
    return None


def answer_word(labels: Mapping[str, Sequence[str]], label: str) -> str:
    return str(labels[label][0])


@attrs.frozen
class Prompt:
    """A request's prompt in parts, written out as chat messages or as one completion prompt."""

    system: str | None
    shots: tuple[tuple[str, str], ...]  # (a rendered few-shot example, its answer word)
    question: str


def build_prompt(
    template: str,
    text: str,
    text_b: str | None,
    *,
    system: str | None,
    few_shot: Sequence[Mapping[str, Any]],
    labels: Mapping[str, Sequence[str]],
) -> Prompt:
    shots = tuple((render_shot(template, shot), answer_word(labels, shot["label"])) for shot in few_shot)
    return Prompt(system or None, shots, render(template, text, text_b))


def chat_messages(prompt: Prompt) -> list[dict[str, str]]:
    messages: list[dict[str, str]] = []
    if prompt.system:
        messages.append({"role": "system", "content": prompt.system})
    for example, answer in prompt.shots:
        messages.append({"role": "user", "content": example})
        messages.append({"role": "assistant", "content": answer})
    messages.append({"role": "user", "content": prompt.question})
    return messages


def completion_prompt(prompt: Prompt) -> str:
    parts: list[str] = [prompt.system] if prompt.system else []
    for example, answer in prompt.shots:
        separator = "" if example[-1:].isspace() else " "
        parts.append(f"{example}{separator}{answer}")
    parts.append(prompt.question)
    return "\n\n".join(parts)


def render_shot(template: str, shot: Mapping[str, Any]) -> str:
    if "text_a" in shot:
        return render(template, str(shot["text_a"]), str(shot.get("text_b", "")))
    return render(template, str(shot["text"]))


def few_shot_problems(
    few_shot: Sequence[Mapping[str, Any]], labels: Mapping[str, Sequence[str]], kind: str
) -> list[str]:
    problems = []
    needed = ("text_a", "text_b") if kind == "pairs" else ("text",)
    for i, shot in enumerate(few_shot):
        where = f"few_shot[{i}]"
        if not isinstance(shot, Mapping):
            problems.append(f"{where}: expected a table {{text = ..., label = ...}}")
            continue
        missing = [k for k in (*needed, "label") if k not in shot]
        if missing:
            problems.append(f"{where}: missing {', '.join(missing)} (the prompt takes {' and '.join(needed)})")
        elif shot["label"] not in labels:
            problems.append(f"{where}: label {shot['label']!r} is not one of the classes {list(labels)}")
    return problems
