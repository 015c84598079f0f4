"""Recover what ties a bounce to what we sent: the original Message-ID and our token.

The searches run over whole bodies for every message, so they look for a literal first
(``str.find`` on lower-cased text) and only then apply a regex at that spot.
"""

from __future__ import annotations

import re
from functools import lru_cache

from .message import Mail
from .types import ParseOptions

_MSGID_AT = re.compile(r"message-id\s*:\s*(<[^<>\s]+>|[^\s<>]+@[^\s<>]+)")
_ORIG_MSGID_AT = re.compile(r"x-original-message-id\s*:\s*(\S+)")
_ENVELOPE_HEADERS = ("return-path", "delivered-to", "x-original-to", "to", "envelope-to", "x-envelope-to")


@lru_cache(maxsize=16)
def _patterns(prefix: str, header: str) -> tuple[str, re.Pattern[str], str, re.Pattern[str]]:
    p, h = prefix.lower(), header.lower()
    verp = re.compile(re.escape(p) + r"[+=\-]([a-z0-9]{16})(?:[=+][^@\s]*)?@")
    hdr = re.compile(re.escape(h) + r"[ \t]*:[ \t]*([a-z0-9]{16})\b")
    return p, verp, h, hdr


def _find_at(low: str, needle: str, rx: re.Pattern[str], line_start: bool = False) -> str | None:
    i = low.find(needle)
    while i >= 0:
        if not line_start or i == 0 or low[i - 1] in "\n>" or low[i - 1] in " \t" and _quoted(low, i):
            m = rx.match(low, i)
            if m:
                return m.group(1)
        i = low.find(needle, i + 1)
    return None


def _quoted(low: str, i: int) -> bool:
    """Whether position ``i`` starts a header quoted in a body ("> Message-ID:" or indented)."""
    j = low.rfind("\n", 0, i) + 1
    return not low[j:i].strip(" \t>")


def find_token(mail: Mail, options: ParseOptions) -> str | None:
    """Our token from the envelope headers, the tracking header or a VERP address in the text."""
    prefix, verp, header, hdr = _patterns(options.verp_local_prefix, options.tracking_header)
    for name in _ENVELOPE_HEADERS:
        for value in mail.all_headers.get(name, ()):
            low = value.lower()
            if prefix in low:
                tok = _find_at(low, prefix, verp)
                if tok:
                    return tok
    for low in (*mail.lc_returned, mail.lc_body, *(t.lower() for t in mail.ds_texts)):
        tok = _find_at(low, header, hdr, line_start=True) or _find_at(low, prefix, verp)
        if tok:
            return tok
    return None


def find_message_id(mail: Mail) -> str | None:
    """Message-ID of the original message: from returned headers, else quoted in the body."""
    for text, low in zip(mail.returned, mail.lc_returned, strict=True):
        inner = _inner_original(low)
        mid = inner and _find_at(low[inner:], "message-id", _MSGID_AT, line_start=True)
        mid = mid or _find_at(low, "message-id", _MSGID_AT, line_start=True)
        if mid:
            return _clean(_original_case(text, low, mid))
    # headers quoted in the body: the bounce's own Message-ID is a header, never in the body
    mid = _find_at(mail.lc_body, "message-id", _MSGID_AT, line_start=True)
    if mid:
        return _clean(_original_case(mail.body, mail.lc_body, mid))
    for text in mail.ds_texts:
        low = text.lower()
        mid = _find_at(low, "x-original-message-id", _ORIG_MSGID_AT, line_start=True)
        if mid:
            return _clean(_original_case(text, low, mid))
    return None


_FROM_DAEMON = re.compile(r"^from:[^\n]*mailer-daemon", re.M)
_ORIGINAL_PART = re.compile(r"^content-type:[ \t]*(?:message/rfc822|text/rfc822-headers?)", re.M)


def _inner_original(low: str) -> int:
    """Where the original inside a returned copy that is itself a bounce starts, else 0.

    Some relays return the bounce they got (a DSN inside a DSN); its own Message-ID is the
    inner bounce's, and ours is in the copy it encloses (the last one, when nested deeper).
    """
    if "message/rfc822" not in low and "rfc822-header" not in low:
        return 0  # the common case: a plain original, no enclosed message (literal checks only)
    end = low.find("\n\n")
    head = low[:end] if end >= 0 else low
    if "delivery-status" not in head and "x-failed-recipients:" not in head and not (
        "mailer-daemon" in head and _FROM_DAEMON.search(head)
    ):
        return 0
    last = 0
    for m in _ORIGINAL_PART.finditer(low, len(head)):
        last = m.end()
    return last


def _original_case(text: str, low: str, lowered: str) -> str:
    """``lowered`` as it is written in ``text`` (Message-IDs are case-sensitive); ``low`` is
    ``text.lower()``."""
    i = low.find(lowered)
    return text[i : i + len(lowered)] if i >= 0 else lowered


def _clean(value: str) -> str:
    v = value.strip().strip("<>").strip()
    return f"<{v}>" if v else value


# A list manager's VERP return path carries the member's address: Mailman's
# "list-bounces+ruth=example.org@", ezmlm's "list-return-12-ruth=example.org@" (Sympa's
# "bounce+ruth==a==example.org@" is not decoded). Read only from the headers the receiving
# MTA writes and the To of the notice.
_LIST_VERP = re.compile(
    r"(?:-bounces?\+|-return-\d+-)([\w.!#$%&'*/?^`{|}~-]{1,64})=([a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,24})@[\w.-]+\.[a-z]{2,}"
)
_VERP_HEADERS = ("delivered-to", "x-original-to", "envelope-to", "x-envelope-to", "to")


def list_verp_recipient(mail: Mail) -> str | None:
    """The member address encoded in the list VERP address the notice was sent to, if any."""
    for name in _VERP_HEADERS:
        for value in mail.all_headers.get(name, ()):
            if "=" not in value:
                continue
            m = _LIST_VERP.search(value.lower())
            if m:
                return f"{m.group(1)}@{m.group(2)}"
    return None
