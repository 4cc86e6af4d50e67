"""Reading answers from raw JSON: the generated text and, per generated token, its top log-probabilities.

Chat answers carry ``logprobs.content = [{token, logprob, top_logprobs: [{token, logprob}]}]``.
Completions answers carry OpenAI's legacy shape ``{tokens, token_logprobs, top_logprobs: [{token:
logprob}]}``, except on llama.cpp servers, which send the chat shape there too: both are read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Position = tuple[str, list[tuple[str, float]]]  # (chosen token, [(token, logprob), ...])


def first_choice(response: Mapping[str, Any]) -> Mapping[str, Any] | None:
    choices = response.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], Mapping):
        return None
    return choices[0]


def answer_text(response: Mapping[str, Any]) -> str | None:
    choice = first_choice(response)
    if choice is None:
        return None
    message = choice.get("message")
    if isinstance(message, Mapping):
        content = message.get("content")
        return content if isinstance(content, str) else ""
    text = choice.get("text")
    return text if isinstance(text, str) else None


def positions(response: Mapping[str, Any]) -> list[Position] | None:
    """Top log-probabilities of each generated token, or None when the answer has none."""
    choice = first_choice(response)
    logprobs = choice.get("logprobs") if choice is not None else None
    if not isinstance(logprobs, Mapping):
        return None
    content = logprobs.get("content")
    if isinstance(content, list):
        out: list[Position] = []
        for item in content:
            top = item.get("top_logprobs") or [{"token": item.get("token", ""), "logprob": item.get("logprob", 0.0)}]
            out.append((str(item.get("token", "")), [(str(t["token"]), float(t["logprob"])) for t in top]))
        return out
    tokens = logprobs.get("tokens")
    tops = logprobs.get("top_logprobs")
    if isinstance(tokens, list) and isinstance(tops, list):
        return [
            (str(token), sorted(((str(k), float(v)) for k, v in (top or {}).items()), key=lambda kv: -kv[1]))
            for token, top in zip(tokens, tops, strict=False)
        ]
    return None
