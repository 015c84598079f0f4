"""JSON from people: bounded nesting before the standard parser sees it.

`json.loads` recurses once per nesting level, so a small file such as `[[[[…]]]]` 100,000
levels deep raises RecursionError (issue 12: the rule import crashed with it). `loads`
measures the depth first, in linear time without recursion, and refuses anything deeper
than `max_depth` with a `JSONTooDeep` (a ValueError, like json's own errors).
"""

from __future__ import annotations

import json
import re
from typing import Any

DEFAULT_MAX_DEPTH = 32
# A JSON string (escapes included): its brackets do not count.
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_BRACKETS = re.compile(rb"[\[\]{}]")


class JSONTooDeep(ValueError):
    """The document nests arrays/objects deeper than allowed."""


def nesting_depth(data: str | bytes, *, stop_at: int | None = None) -> int:
    """The deepest array/object nesting of a JSON text (0 for a scalar).

    Counts brackets outside strings; on malformed text the count is a bound, good enough to
    refuse before parsing (the parser reports the real error). Stops early past `stop_at`.
    """
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    depth = deepest = 0
    for match in _BRACKETS.finditer(_STRING.sub(b'""', raw)):
        if match.group() in (b"[", b"{"):
            depth += 1
            if depth > deepest:
                deepest = depth
                if stop_at is not None and deepest > stop_at:
                    return deepest
        else:
            depth = max(depth - 1, 0)
    return deepest


def loads(data: str | bytes, *, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """`json.loads` for untrusted text: JSONTooDeep past `max_depth` levels, never RecursionError."""
    if nesting_depth(data, stop_at=max_depth) > max_depth:
        raise JSONTooDeep(f"nested more than {max_depth} levels deep")
    try:
        return json.loads(data)
    except RecursionError:  # belt and braces: a smaller stack than expected
        raise JSONTooDeep(f"nested too deep to read (limit {max_depth})") from None
