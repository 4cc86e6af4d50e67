"""The ``inline`` dataset source: texts and labels written directly in the configuration."""

from __future__ import annotations

from typing import Any

import attrs

from fute_kit.components import RunContext
from fute_kit.errors import DataError
from fute_kit.examples import Examples
from fute_kit.hookspecs import hookimpl
from fute_kit.options import option


@attrs.frozen
class InlineDataset:
    """Texts (and optional labels) given in the configuration itself: small examples and tests."""

    name = "inline"

    texts: list[str] = option(help="the input texts")
    labels: list[str] | None = option(None, help="one label per text (omit for unlabelled text)")
    text_pairs: list[str] | None = option(None, help="second texts, for pair tasks")

    def load(self, context: RunContext) -> Examples:
        if self.labels is None:
            return Examples(texts=self.texts, text_pairs=self.text_pairs)
        if len(self.labels) != len(self.texts):
            raise DataError(f"inline dataset: {len(self.texts)} texts but {len(self.labels)} labels")
        return Examples.from_hard_labels(self.texts, self.labels, text_pairs=self.text_pairs)


@hookimpl
def register_dataset_sources(register: Any) -> None:
    register(InlineDataset)
