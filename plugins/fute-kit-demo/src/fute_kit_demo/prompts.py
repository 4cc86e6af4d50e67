"""The demo's LLM prompts: three per genre, each with its own wording and label words.

Prompt selection needs candidates that really differ, so the wordings range from explicit
instructions to a bare cue; their accuracy on each builtin dataset is measured by the demo.
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

# genre dataset -> prompt name -> model-source options (prompt, labels, system)
PROMPTS: dict[str, dict[str, dict[str, Any]]] = {
    "rt-sentiment": {
        "sentiment-review": {
            "prompt": "Movie review: {text}\nIs this review positive or negative? Answer with one word.",
            "labels": SENTIMENT,
        },
        "sentiment-liked": {
            "prompt": "{text}\nDid the critic like the film? Answer yes or no.",
            "labels": {"negative": ["no"], "positive": ["yes"]},
        },
        "sentiment-bare": {"prompt": "{text}\nSentiment:", "labels": SENTIMENT},
    },
    "bbc-topic": {
        "topic-section": {
            "prompt": "News article: {text}\nWhich section does it belong to: business, entertainment, "
            "politics, sport or tech? Answer with one word.",
            "labels": TOPIC,
        },
        "topic-about": {
            "prompt": "What is this text about? Choose business, entertainment, politics, sport or tech.\n{text}",
            "labels": TOPIC,
        },
        "topic-bare": {"prompt": "{text}\nTopic:", "labels": TOPIC},
    },
    "rt-subjectivity": {
        "subjectivity-opinion": {
            "prompt": "{text}\nIs this sentence an opinion or a plot description? Answer opinion or plot.",
            "labels": {"objective": ["plot"], "subjective": ["opinion"]},
        },
        "subjectivity-objective": {
            "prompt": "Is the following text subjective or objective? Answer with one word.\n{text}",
            "labels": {"objective": ["objective"], "subjective": ["subjective"]},
        },
        "subjectivity-fact": {
            "prompt": "{text}\nDoes this state a fact or an opinion? Answer fact or opinion.",
            "labels": {"objective": ["fact"], "subjective": ["opinion"]},
        },
    },
}


def genre_of(prompt_name: str) -> str:
    """The builtin dataset a prompt was written for."""
    for dataset, prompts in PROMPTS.items():
        if prompt_name in prompts:
            return dataset
    raise KeyError(prompt_name)
