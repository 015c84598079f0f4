"""Bounce parsing engine: bytes in, `ParseResult` out. Pure Python, no Django.

    from bounces.parsing import parse_bounce
    result = parse_bounce(raw_bytes)
"""

from .engine import parse_bounce
from .types import Category, Kind, ParseOptions, ParseResult, RecipientResult

__all__ = ["Category", "Kind", "ParseOptions", "ParseResult", "RecipientResult", "parse_bounce"]
