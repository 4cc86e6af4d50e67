"""Where a surrogate name points, checked before any job starts and without loading anything.

A surrogate is an alias (``minilm``, ``smollm2``), a local folder or a hub id (``owner/name``). A misspelled alias
or a folder that is not there would otherwise fail inside every job, after the data of the first ones trained for
minutes. Methods built on these surrogates expose :func:`surrogate_problem` as their ``check_surrogate``.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

from fute_kit_hf.assets import ALIASES, alias_problem

PATH_STARTS = (".", "/", "~")


def _known_names() -> list[str]:
    names = list(ALIASES)
    try:  # named local models (fute llm fetch NAME), where the core has them
        from fute_kit.plugin import LOCAL_MODELS as MODELS  # type: ignore[import-not-found, unused-ignore]

        names += list(MODELS)
    except ImportError:
        pass
    return names


def _hub_cache() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or os.path.join(os.path.expanduser("~/.cache"), "huggingface")
    return Path(home) / "hub"


def _folder_problem(name: str, folder: Path) -> str | None:
    if not folder.exists():
        return f"folder {name!r} does not exist: check the path (relative to the working folder)"
    if not folder.is_dir():
        return f"{name!r} is a file, not a model folder: name the folder that holds config.json"
    if not (folder / "config.json").is_file():
        return f"folder {name!r} has no config.json: name the folder that holds the model's config.json and weights"
    return None


def surrogate_problem(name: str) -> str | None:
    """Why ``name`` cannot be a surrogate (an unknown alias, a missing folder), or None when it may be one.

    A hub id (``owner/name``) is not looked up here: the hub is only reached when the model loads.
    """
    known = _known_names()
    if name in known:
        return alias_problem(name)  # an alias whose package is absent, offline: said before any job starts
    folder = Path(name).expanduser()
    if name.startswith(PATH_STARTS) or folder.exists():
        return _folder_problem(name, folder)
    if "/" in name or (_hub_cache() / f"models--{name}").is_dir():
        return None
    close = difflib.get_close_matches(name, known, n=2, cutoff=0.6)
    hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
    short = sorted(n for n in known if n.islower() and "/" not in n)
    return (
        f"unknown surrogate alias {name!r}: {hint}Use an alias ({', '.join(short)}), a local folder "
        "(./path/to/model) or a hub id as owner/name"
    )
