"""The demo's LLM prompts: two per genre, each with its own wording and label words.

Prompt selection needs candidates that really differ: on 24 test examples of each genre SmolLM2-135M
scored 0.71 vs 0.54 (sentiment), 0.21 vs 0.58 (topic), 0.58 vs 0.42 (subjectivity). The demo measures
their accuracy itself. Two per genre keeps the demo within 10 minutes on 2 CPU cores: labelling one text
costs the 135M-parameter LLM about as much as a training step of the surrogate.
"""

from __future__ import annotations

from typing import Any

SENTIMENT = {"negative": ["negative"], "positive": ["positive"]}
TOPIC = {
    "business": ["business"],
    "entertainment": ["entertainment"],
    "politics": ["politics"],
    "sport": ["sport"],
    "tech": ["tech", "technology"],
}

# genre dataset -> prompt name -> model-source options (prompt, labels, answer_prefix). SmolLM2-135M opens
# most answers with "The ..." unless the start of its answer is written for it (answer_prefix).
PROMPTS: dict[str, dict[str, dict[str, Any]]] = {
    "rt-sentiment": {
        "sentiment-review": {
            "prompt": "Movie review: {text}\nIs this review positive or negative? Answer with one word.",
            "labels": SENTIMENT,
            "answer_prefix": "This review is",
        },
        "sentiment-liked": {
            "prompt": "{text}\nDid the critic like the film? Answer yes or no.",
            "labels": {"negative": ["no"], "positive": ["yes"]},
            "answer_prefix": "The answer is",
        },
    },
    "bbc-topic": {
        "topic-section": {
            "prompt": "News article: {text}\nWhich section does it belong to: business, entertainment, "
            "politics, sport or tech? Answer with one word.",
            "labels": TOPIC,
            "answer_prefix": "The section is",
        },
        "topic-about": {
            "prompt": "What is this text about? Choose business, entertainment, politics, sport or tech.\n{text}",
            "labels": TOPIC,
            "answer_prefix": "This text is about",
        },
    },
    "rt-subjectivity": {
        "subjectivity-objective": {
            "prompt": "Is the following text subjective or objective? Answer with one word.\n{text}",
            "labels": {"objective": ["objective"], "subjective": ["subjective"]},
            "answer_prefix": "The text is",
        },
        "subjectivity-fact": {
            "prompt": "{text}\nDoes this state a fact or an opinion? Answer fact or opinion.",
            "labels": {"objective": ["fact"], "subjective": ["opinion"]},
            "answer_prefix": "Answer:",
        },
    },
}


def genre_of(prompt_name: str) -> str:
    """The builtin dataset a prompt was written for."""
    for dataset, prompts in PROMPTS.items():
        if prompt_name in prompts:
            return dataset
    raise KeyError(prompt_name)
