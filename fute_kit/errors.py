"""Error types. Every user-facing failure names the thing at fault and how to fix it."""

from __future__ import annotations


class FuteError(Exception):
    """Base class of every error fute_kit raises on purpose."""


class UnknownComponentError(FuteError, KeyError):
    """A component name that no loaded plugin registers (a ``KeyError``, as lookups are)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DuplicateComponentError(FuteError):
    """Two plugins register the same name (or alias) for one kind of component."""


class OptionsError(FuteError, ValueError):
    """Options of a component are missing, unknown or of the wrong type.

    ``problems`` lists each one as ``(key, message)`` so callers can report them all at once.
    """

    def __init__(self, owner: str, problems: list[tuple[str, str]]) -> None:
        self.owner = owner
        self.problems = problems
        lines = "\n".join(f"  - {key}: {message}" for key, message in problems)
        super().__init__(f"{owner}: invalid options\n{lines}")


class ConfigError(FuteError):
    """A study configuration with problems; ``problems`` holds every one found."""

    def __init__(self, problems: list[str], path: str | None = None) -> None:
        self.problems = problems
        where = f" in {path}" if path else ""
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{len(problems)} problem(s){where}:\n{lines}")


class SpaceMismatchError(FuteError, ValueError):
    """Embeddings from different spaces were compared."""


class DataError(FuteError, ValueError):
    """Input data that cannot be used (empty, missing column, wrong label shape...)."""
