"""Bounce parsing engine: bytes in, `ParseResult` out. Pure Python, no Django.

    from bounces.parsing import parse_bounce
    result = parse_bounce(raw_bytes)

The names below are loaded on first use (PEP 562): code that needs only a helper module
(``bounces.parsing.message``, ``.types`` ...) does not pay for importing the whole engine,
its ~25 format modules and its pattern tables (about 25 ms at every Django start-up).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .engine import parse_bounce
    from .types import Category, Kind, ParseOptions, ParseResult, RecipientResult

__all__ = ["Category", "Kind", "ParseOptions", "ParseResult", "RecipientResult", "parse_bounce"]

_HOME = {
    "parse_bounce": ".engine",
    "Category": ".types",
    "Kind": ".types",
    "ParseOptions": ".types",
    "ParseResult": ".types",
    "RecipientResult": ".types",
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(home, __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
