"""Recover what ties a bounce to what we sent: the original Message-ID and our token."""

from __future__ import annotations

import re
from functools import lru_cache

from .message import Mail
from .types import ParseOptions

_MSGID_LINE = re.compile(r"^(?:>\s*)?Message-ID\s*:\s*(<[^<>\s]+>|[^\s<>]+@[^\s<>]+)", re.I | re.M)
_ENVELOPE_HEADERS = ("return-path", "delivered-to", "x-original-to", "to", "envelope-to", "x-envelope-to")


@lru_cache(maxsize=16)
def _patterns(prefix: str, header: str) -> tuple[re.Pattern[str], re.Pattern[str]]:
    verp = re.compile(re.escape(prefix) + r"[+=\-]([a-z0-9]{16})(?:[=+][^@\s]*)?@", re.I)
    hdr = re.compile(r"^(?:>\s*)?" + re.escape(header) + r"\s*:\s*([a-z0-9]{16})\b", re.I | re.M)
    return verp, hdr


def find_token(mail: Mail, options: ParseOptions) -> str | None:
    """Our token from the envelope headers, the tracking header or a VERP address in the text."""
    verp, hdr = _patterns(options.verp_local_prefix, options.tracking_header)
    for name in _ENVELOPE_HEADERS:
        for value in mail.header_all(name):
            m = verp.search(value)
            if m:
                return m.group(1).lower()
    for text in (*mail.returned, mail.body):
        m = hdr.search(text)
        if m:
            return m.group(1).lower()
        m = verp.search(text)
        if m:
            return m.group(1).lower()
    for text in mail.ds_texts:
        m = verp.search(text)
        if m:
            return m.group(1).lower()
    return None


def find_message_id(mail: Mail) -> str | None:
    """Message-ID of the original message: from returned headers, else quoted in the body."""
    for text in mail.returned:
        m = _MSGID_LINE.search(text)
        if m:
            return _clean(m.group(1))
    # headers quoted in the body: the bounce's own Message-ID is a header, never in the body
    m = _MSGID_LINE.search(mail.body)
    if m:
        return _clean(m.group(1))
    for text in mail.ds_texts:
        m = re.search(r"^X-Original-Message-ID\s*:\s*(\S+)", text, re.I | re.M)
        if m:
            return _clean(m.group(1))
    return None


def _clean(value: str) -> str:
    v = value.strip().strip("<>").strip()
    return f"<{v}>" if v else value
