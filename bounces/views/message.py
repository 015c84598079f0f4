"""What the bounce detail page shows of a stored message, bounded whatever the message.

Bytes in, a frozen description out (pure: no Django, no queries). A bounce is hostile input: only the first
PARSE_BYTES of the message are parsed (a report's own parts come first), at most MAX_PARTS
leaf parts are listed, readable text is cut at TEXT_SHOWN characters per part and
TEXT_BUDGET in all, at most MAX_RECIPIENTS delivery-status blocks and MAX_HEADERS returned
headers are kept. Nothing is rendered as HTML: the template escapes every string.
"""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass, field
from email.message import Message

PARSE_BYTES = 2 * 1024 * 1024
MAX_PARTS = 200
MAX_RECIPIENTS = 200
MAX_HEADERS = 200
HEADER_VALUE_SHOWN = 2000
TEXT_SHOWN = 64 * 1024
TEXT_BUDGET = 512 * 1024
READABLE_TYPES = {
    "text/plain", "message/delivery-status", "message/feedback-report", "text/rfc822-headers",
    "message/global-delivery-status", "message/global-headers",
}
DSN_TYPES = {"message/delivery-status", "message/global-delivery-status"}
HEADER_TYPES = {"text/rfc822-headers", "message/global-headers"}
RETURNED_TYPES = {"message/rfc822", "message/global"}
RECIPIENT_FIELDS = (
    "Final-Recipient", "Original-Recipient", "Action", "Status", "Remote-MTA", "Diagnostic-Code",
    "Last-Attempt-Date", "Will-Retry-Until",
)


@dataclass(frozen=True)
class PartInfo:
    """One leaf MIME part, described without opening it."""

    index: int
    content_type: str
    filename: str
    size: int
    disposition: str
    is_attachment: bool
    text: str  # decoded text for readable types (the template escapes it), else ""
    truncated: bool


@dataclass(frozen=True)
class MessageView:
    parts: list[PartInfo] = field(default_factory=list)
    parts_total: int = 0  # leaf parts seen (parts lists at most MAX_PARTS)
    parts_capped: bool = False  # more parts than listed (or the parse stopped at PARSE_BYTES)
    reporting: list[tuple[str, str]] = field(default_factory=list)  # per-message DSN fields
    recipients: list[dict[str, str]] = field(default_factory=list)  # per-recipient DSN fields
    recipients_capped: bool = False
    human_readable: str = ""
    human_truncated: bool = False
    returned_headers: list[tuple[str, str]] = field(default_factory=list)
    headers_capped: bool = False
    parsed_bytes: int = 0
    size: int = 0
    shown_elsewhere: frozenset[int] = frozenset()  # parts shown as the table/text/headers above


def _decode(part: Message) -> bytes:
    try:
        payload = part.get_payload(decode=True)
    except Exception:  # noqa: BLE001 - a broken part must not break the page
        return b""
    return payload if isinstance(payload, bytes) else b""


def _text(part: Message, payload: bytes, limit: int) -> tuple[str, bool]:
    charset = part.get_content_charset() or "utf-8"
    chunk = payload[: limit * 4]
    try:
        text = chunk.decode(charset, "replace")
    except (LookupError, ValueError):
        text = chunk.decode("utf-8", "replace")
    return text[:limit], len(payload) > limit or len(text) > limit


def _header_value(value: object) -> str:
    return str(value)[:HEADER_VALUE_SHOWN]


def _dsn_blocks(part: Message, payload: bytes) -> list[Message]:
    """The field blocks of a delivery-status part (the first is per-message)."""
    body = part.get_payload()
    if isinstance(body, list) and all(isinstance(b, Message) for b in body):
        return body  # compat32 parses message/delivery-status into header blocks
    text = payload[:PARSE_BYTES].decode("utf-8", "replace").replace("\r\n", "\n")
    return [email.message_from_string(block.strip() + "\n\n") for block in text.split("\n\n") if block.strip()]


def _head(raw: bytes) -> bytes:
    """The bytes worth parsing: at most PARSE_BYTES, and no further than about MAX_PARTS
    boundary lines (the parser's time follows the number of parts, not the bytes)."""
    head = raw[:PARSE_BYTES]
    pos, seen = 0, 0
    while seen <= 2 * MAX_PARTS:
        pos = head.find(b"\n--", pos + 1)
        if pos < 0:
            return head
        seen += 1
    return head[:pos + 1]


def _leaves(message: Message):
    """Leaf parts in order; a delivery-status part or a returned message is one leaf (its
    header blocks or its own parts are not walked)."""
    stack = [message]
    while stack:
        part = stack.pop()
        ctype = part.get_content_type()
        if part.is_multipart() and ctype not in DSN_TYPES and ctype not in RETURNED_TYPES:
            children = part.get_payload()
            stack.extend(reversed(children if isinstance(children, list) else []))
        else:
            yield part


def describe_message(raw: bytes) -> MessageView:
    """Parts, delivery-status table, human-readable text and returned headers of `raw`."""
    head = _head(raw)
    try:
        message = email.message_from_bytes(head, policy=email.policy.compat32)
    except Exception:  # noqa: BLE001 - any message must display, however broken
        return MessageView(size=len(raw), parsed_bytes=len(head), parts_capped=len(raw) > len(head))
    parts: list[PartInfo] = []
    total = 0
    budget = TEXT_BUDGET
    reporting: list[tuple[str, str]] = []
    recipients: list[dict[str, str]] = []
    recipients_capped = False
    human, human_truncated = "", False
    returned: list[tuple[str, str]] = []
    headers_capped = False
    elsewhere: set[int] = set()
    for part in _leaves(message):
        ctype = part.get_content_type()
        if ctype in RETURNED_TYPES:
            inner = part.get_payload()
            if not returned and isinstance(inner, list) and inner and isinstance(inner[0], Message):
                items = inner[0].items()
                returned = [(k, _header_value(v)) for k, v in items[:MAX_HEADERS]]
                headers_capped = len(items) > MAX_HEADERS
            payload = b""
        elif isinstance(part.get_payload(), list):  # delivery-status blocks
            payload = b""
        else:
            payload = _decode(part)
        total += 1
        if total > MAX_PARTS:
            continue  # keep counting, stop describing
        filename = part.get_filename() or ""
        disposition = part.get_content_disposition() or ""
        is_attachment = disposition == "attachment" or bool(filename) or not (
            ctype.startswith("text/") or ctype.startswith("message/")
        )
        text, truncated = "", False
        if ctype in DSN_TYPES and not recipients:
            blocks = _dsn_blocks(part, payload)
            if blocks:
                reporting = [(k, _header_value(v)) for k, v in blocks[0].items()[:50]]
                for block in blocks[1:]:
                    if len(recipients) >= MAX_RECIPIENTS:
                        recipients_capped = True
                        break
                    recipients.append({name.replace("-", "_"): _header_value(block.get(name, ""))
                                       for name in RECIPIENT_FIELDS})
        if ctype in HEADER_TYPES and not returned:
            header_text = payload[: PARSE_BYTES].decode("utf-8", "replace")
            inner = email.message_from_string(header_text.lstrip() + "\n\n")
            items = inner.items()
            returned = [(k, _header_value(v)) for k, v in items[:MAX_HEADERS]]
            headers_capped = len(items) > MAX_HEADERS
            elsewhere.add(total)
        if ctype in READABLE_TYPES and not is_attachment and budget > 0 and payload:
            text, truncated = _text(part, payload, min(TEXT_SHOWN, budget))
            budget -= len(text)
            if ctype == "text/plain" and not human:
                human, human_truncated = text, truncated
                elsewhere.add(total)
        parts.append(PartInfo(total, ctype, filename, len(payload), disposition, is_attachment, text, truncated))
    return MessageView(
        parts=parts, parts_total=total, parts_capped=total > MAX_PARTS or len(raw) > len(head),
        reporting=reporting, recipients=recipients, recipients_capped=recipients_capped,
        human_readable=human, human_truncated=human_truncated, returned_headers=returned,
        headers_capped=headers_capped, parsed_bytes=len(head), size=len(raw),
        shown_elsewhere=frozenset(elsewhere),
    )
