"""Rule patterns, pure: compiling and validating an operator's pattern with RE2, its limits,
and Octeth's `text==>Hard` one-liners. Imports no Django and nothing else of bounces."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import re2

# Patterns come from operators and run on hostile mail, so every pattern is compiled with
# google-re2 (linear time, bounded memory). There is no fallback to Python's ``re``: a pattern
# RE2 cannot compile (back-references, look-around) is rejected at save time with the reason.

# Limits. A pattern is a phrase or a short expression, never a document.
MAX_PATTERN_LENGTH = 1000
# RE2 refuses to build a program bigger than this (e.g. `a{1000}{1000}`): compile fails cleanly.
MAX_PATTERN_MEMORY = 2 * 1024 * 1024
# RE2 is linear in the text, but its slow path (the NFA, used when the DFA runs out of memory
# on patterns such as `(?s)(.*a){999}`) costs program size x text length: a program of 10,000
# instructions took 11-14 s on 256 KB. Programs are capped here (the longest "contains"
# pattern, 1000 characters case-insensitive, is ~1,600), and `ruleset.CompiledRule.search`
# searches in windows sized by the program with a time budget per rule and per message.
MAX_PROGRAM_SIZE = 2000

SECTIONS = ("diagnostic", "body", "subject", "from", "to_cc", "headers", "whole")
BOUNCE_TYPES = ("hard", "soft", "complaint", "autoreply", "ignore", "either")

# Default order of new rules (OpenCRM: hard before soft before "both"): a new rule goes to
# the end of its group. Complaints sit with hard (both end mailing); auto-replies and
# "ignore" with soft (neither ends it); "either" comes last.
TYPE_RANK = {"hard": 0, "complaint": 0, "soft": 1, "autoreply": 1, "ignore": 1, "either": 2}


class PatternError(ValueError):
    """A pattern that cannot be used; the message is shown to the operator as is."""


def _re2_error_text(exc: Exception) -> str:
    arg = exc.args[0] if exc.args else exc
    if isinstance(arg, bytes):
        arg = arg.decode("utf-8", "replace")
    return str(arg)


def compile_pattern(pattern: str, *, match_type: str, case_sensitive: bool) -> Any:
    """Compile an operator's pattern with RE2 and return the compiled object (bytes mode).

    ``match_type`` "contains": the text is matched literally, except that any run of
    whitespace in it matches any run of whitespace (line breaks in bodies, folded
    diagnostics). "regex": RE2 syntax. Raises `PatternError` with a message meant for the
    operator: empty, too long, not valid RE2, too big, or matching empty text (which would
    catch every message).
    """
    if not isinstance(pattern, str):
        raise PatternError("The pattern must be text.")
    if not pattern.strip():
        raise PatternError("The pattern is empty.")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise PatternError(
            f"The pattern is {len(pattern)} characters long; the limit is {MAX_PATTERN_LENGTH}."
        )
    if "\x00" in pattern:
        raise PatternError("The pattern contains a NUL character.")
    if match_type == "contains":
        words = pattern.split()
        source = r"\s+".join(re2.escape(w) for w in words)
    elif match_type == "regex":
        source = pattern
    else:
        raise PatternError(f"Unknown match type {match_type!r}.")
    options = re2.Options()
    options.log_errors = False  # errors are reported to the operator, not to stderr
    options.max_mem = MAX_PATTERN_MEMORY
    options.case_sensitive = bool(case_sensitive)
    try:
        compiled = re2.compile(source.encode("utf-8"), options)
    except re2.error as exc:
        detail = _re2_error_text(exc)
        if "too large" in detail or "repetition size" in detail:
            raise PatternError(
                f"The pattern is too big for the safe regular-expression engine ({detail})."
            ) from None
        raise PatternError(f"Not a valid regular expression: {detail}.{_re2_hint(detail)}") from None
    except (TypeError, ValueError, UnicodeError) as exc:
        raise PatternError(f"Not a valid pattern: {exc}.") from None
    # Hard guard: whatever the re2 package does, a Python `re` pattern (exponential
    # backtracking) must never reach the pipeline.
    if isinstance(compiled, re.Pattern) or not type(compiled).__module__.startswith("re2"):
        raise PatternError("The pattern could not be compiled by the safe regular-expression engine.")
    if compiled.programsize > MAX_PROGRAM_SIZE:
        raise PatternError(
            f"The pattern is too complex for the safe regular-expression engine (program size "
            f"{compiled.programsize}; the limit is {MAX_PROGRAM_SIZE}). Nested or large repetitions "
            "such as `(.*a){100}` make every message slow to search: simplify it."
        )
    if _matches_empty(compiled):
        raise PatternError(
            "The pattern can match empty text, so it would match almost every message. "
            "Make it require at least one character (e.g. `+` instead of `*`, no empty alternative)."
        )
    return compiled


# Probe texts for patterns that can match zero characters (`a*`, `\b`, `^`, `x|`): such a
# pattern "matches" messages without matching any text.
_EMPTY_PROBES = (b"", b"a", b" ", b"Ab 1.", b"\n")


def _matches_empty(compiled: Any) -> bool:
    for probe in _EMPTY_PROBES:
        m = compiled.search(probe)
        if m is not None and m.start() == m.end():
            return True
    return False


def _re2_hint(detail: str) -> str:
    if "perl operator" in detail or "(?<" in detail or "(?=" in detail or "(?!" in detail:
        return " Look-ahead and look-behind are not supported (RE2 syntax, linear time)."
    if "escape sequence" in detail and re.search(r"\\[1-9]", detail):
        return " Back-references are not supported (RE2 syntax, linear time)."
    return ""


def validate_pattern(pattern: str, *, match_type: str, case_sensitive: bool) -> None:
    """Raise `PatternError` when ``pattern`` cannot be saved (see `compile_pattern`)."""
    compile_pattern(pattern, match_type=match_type, case_sensitive=case_sensitive)

# --- Octeth one-liners ----------------------------------------------------------------------------

_OCTETH_TYPES = {
    "hard": "hard",
    "soft": "soft",
    "ignore": "ignore",
    "complaint": "complaint",
    "autoreply": "autoreply",
    "auto-reply": "autoreply",
    "either": "either",
}
_OCTETH_LINE = re.compile(r"^(?P<pattern>.*?)\s*==>\s*(?P<type>[A-Za-z-]+)\s*$")


@dataclass(frozen=True, slots=True)
class OctethLine:
    """One parsed `text==>Type` line."""

    line_number: int
    pattern: str
    bounce_type: str


def parse_octeth_line(line: str) -> tuple[str, str]:
    """Parse Octeth's one-line rule form ``TEXT==>Hard`` into (pattern, bounce_type).

    The text is kept as is (it becomes a "contains" pattern); the type is Hard, Soft,
    Ignore (any case; also Complaint, Autoreply, Either). Raises `PatternError` otherwise.
    """
    m = _OCTETH_LINE.match(line.strip())
    if not m:
        raise PatternError("Expected `text==>Hard` (or ==>Soft, ==>Ignore).")
    pattern = m.group("pattern").strip()
    type_word = m.group("type").lower()
    if type_word not in _OCTETH_TYPES:
        raise PatternError(f"Unknown bounce type {m.group('type')!r}: use Hard, Soft or Ignore.")
    if not pattern:
        raise PatternError("The text before ==> is empty.")
    return pattern, _OCTETH_TYPES[type_word]


def parse_octeth_lines(text: str) -> tuple[list[OctethLine], list[tuple[int, str, str]]]:
    """Parse pasted lines; blank lines and lines starting with # are skipped.

    Returns (parsed lines, errors as (line number, line, message)).
    """
    parsed: list[OctethLine] = []
    errors: list[tuple[int, str, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            pattern, bounce_type = parse_octeth_line(line)
            validate_pattern(pattern, match_type="contains", case_sensitive=False)
        except PatternError as exc:
            errors.append((number, line, str(exc)))
            continue
        parsed.append(OctethLine(line_number=number, pattern=pattern, bounce_type=bounce_type))
    return parsed, errors


COMMON_TEXT_MIN = 8


def common_text(texts: list[str], *, max_chars: int = 300) -> str:
    """The longest text all of ``texts`` contain (each read up to ``max_chars``), as a
    "contains" pattern for a rule made from several bounces; the parts that differ (the
    addresses, queue ids) drop out. Falls back to the first text when they share too little."""
    import difflib

    cleaned = [" ".join(t[:max_chars].split()) for t in texts if t and t.strip()]
    if not cleaned:
        return ""
    common = cleaned[0]
    for other in cleaned[1:]:
        match = difflib.SequenceMatcher(None, common, other, autojunk=False).find_longest_match(
            0, len(common), 0, len(other))
        common = common[match.a: match.a + match.size]
        if len(common.strip()) < COMMON_TEXT_MIN:
            return cleaned[0]
    # a shared tail of the addresses ("@example.org>:") is no part of the reason
    common = re.sub(r"^\S*@\S*\s*", "", common.strip())
    return common.strip(" ;:,<>") if len(common.strip(" ;:,<>")) >= COMMON_TEXT_MIN else cleaned[0]
