"""Validate option dictionaries (from TOML or the command line) against a component's attrs class.

Each component is an attrs class whose fields are its options. Validation reports every problem
at once: unknown keys (with close matches), missing required keys and values of the wrong type.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from fute_kit.errors import OptionsError


def option_fields(cls: type) -> list[attrs.Attribute]:
    """The public option fields of a component class (fields starting with ``_`` are private)."""
    attrs.resolve_types(cls)
    return [f for f in attrs.fields(cls) if not f.name.startswith("_") and f.init]


def _type_name(tp: Any) -> str:
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _matches(value: Any, tp: Any) -> bool:
    if tp is Any or tp is object:
        return True
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in args)
    if origin is typing.Literal:
        return value in args
    if tp is type(None):
        return value is None
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin in (list, tuple, typing.Sequence) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False
        inner = args[0] if args else Any
        return all(_matches(v, inner) for v in value)
    if origin in (dict, typing.Mapping, Mapping) or tp in (dict,):
        if not isinstance(value, Mapping):
            return False
        if len(args) == 2:
            return all(_matches(k, args[0]) and _matches(v, args[1]) for k, v in value.items())
        return True
    if isinstance(tp, type):
        return isinstance(value, tp)
    return True  # an annotation we cannot check: trust the class's own validators


def validate_options(cls: type, options: Mapping[str, Any], owner: str) -> Any:
    """Build ``cls(**options)``, or raise OptionsError listing every problem found."""
    fields = {f.name: f for f in option_fields(cls)}
    problems: list[tuple[str, str]] = []
    for key in options:
        if key not in fields:
            problems.append((key, unknown_key_message(key, fields)))
    for name, field in fields.items():
        if name not in options:
            if field.default is attrs.NOTHING:
                problems.append((name, f"missing required key ({_type_name(field.type)})"))
            continue
        value = options[name]
        if field.type is not None and not _matches(value, field.type):
            problems.append((name, f"expected {_type_name(field.type)}, got {value!r} ({type(value).__name__})"))
    if problems:
        raise OptionsError(owner, problems)
    return _build_checked(cls, options, owner)


def unknown_key_message(key: str, allowed: Iterable[str]) -> str:
    """``unknown key (did you mean X?); allowed keys: ...``: for options and for a configuration's sections."""
    allowed = sorted(allowed)
    close = difflib.get_close_matches(key, allowed, n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return f"unknown key{hint}; allowed keys: {', '.join(allowed) or 'none'}"


def _build_checked(cls: type, options: Mapping[str, Any], owner: str) -> Any:
    """``cls(**options)``, with every failing validator reported under its own option's name.

    attrs stops at the first failing validator, so each given option's validator runs on its own first
    (a validator that needs the instance, or a converted value, is left to the construction that follows);
    checks across options (``__attrs_post_init__``) come last.
    """
    problems: list[tuple[str, str]] = []
    for field in option_fields(cls):
        if field.validator is None or field.converter is not None or field.name not in options:
            continue
        try:
            field.validator(None, field, options[field.name])
        except (ValueError, TypeError) as exc:
            problems.append((field.name, str(exc)))
        except Exception:  # a validator that reads the instance: left to the construction below
            continue
    if problems:
        raise OptionsError(owner, problems)
    try:
        return cls(**dict(options))
    except OptionsError:
        raise
    except (ValueError, TypeError) as exc:  # a converter, or a check across options
        raise OptionsError(owner, [(_key_named_in(str(exc), options), str(exc))]) from exc


def _key_named_in(message: str, options: Mapping[str, Any]) -> str:
    """The option a message is about: the first given key it names, else ``options``."""
    found = [(m.start(), key) for key in options if (m := re.search(rf"\b{re.escape(key)}\b", message))]
    return min(found)[1] if found else "options"


def describe_options(cls: type) -> list[dict[str, Any]]:
    """Name, type, default and help of each option, for docs and ``fute plugins``."""
    rows = []
    for f in option_fields(cls):
        default = f.default
        if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
            default = default.factory() if not default.takes_self else None
        rows.append(
            {
                "name": f.name,
                "type": _type_name(f.type),
                "required": f.default is attrs.NOTHING,
                "default": None if default is attrs.NOTHING else default,
                "help": f.metadata.get("help", ""),
            }
        )
    return rows


def option(default: Any = attrs.NOTHING, *, help: str = "", **kwargs: Any) -> Any:
    """An attrs field with a one-line help text, shown by ``fute plugins`` and the docs."""
    return attrs.field(default=default, metadata={"help": help}, **kwargs)


def options_of(component: Any) -> dict[str, Any]:
    """The public options of a component instance (private fields, such as caches, left out)."""
    return {f.name: getattr(component, f.name) for f in option_fields(type(component))}
