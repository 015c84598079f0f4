"""The stdlib (compat32) path of `message.load`: used only if the fast splitter raises.

Kept apart so that a normal run never imports ``email.message`` and its parser.
"""

from __future__ import annotations

from email import message_from_bytes
from email.message import Message

from .mailtext import (
    DS_HINT,
    HEADERS_START,
    MAX_TEXT,
    Mail,
    decode_bytes,
    decode_header_value,
    finish_body,
    has_surrogates,
    new_mail,
    normalise,
)


def part_text(part: Message) -> str:
    """The decoded text of a leaf part (transfer encoding and charset)."""
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        payload = None
    if payload is None:
        raw = part.get_payload()
        if isinstance(raw, str):
            payload = raw.encode("utf-8", "surrogateescape")
        else:
            return ""
    if not isinstance(payload, bytes):
        return ""
    try:
        charset = part.get_content_charset()
    except Exception:
        charset = None
    text = decode_bytes(payload[: MAX_TEXT * 2], charset)
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _blocks_text(blocks: list[object]) -> str:
    """Text of a message/delivery-status part that compat32 parsed into header blocks."""
    out = []
    for blk in blocks:
        if not isinstance(blk, Message):
            continue
        # no RFC 2047 decoding here: DSN fields carry addresses such as "=?utf-8?B?...?=@host"
        lines = [f"{k}: {_plain(v)}" for k, v in blk._headers]
        body = blk.get_payload()
        if isinstance(body, str) and body.strip():
            lines.append(body)
        out.append("\n".join(lines))
    return "\n\n".join(out)


def _plain(value: object) -> str:
    """A raw header value as text, 8-bit bytes decoded, encoded words left alone."""
    if not isinstance(value, str):
        try:
            value = str(value)
        except Exception:
            return ""
    if not value.isascii() and has_surrogates(value):
        value = decode_bytes(value.encode("utf-8", "surrogateescape"))
    return value


def _message_text(sub: Message) -> str:
    """Header lines plus the (leaf) body of an attached message, decoded."""
    lines = [f"{k}: {decode_header_value(v)}" for k, v in sub.items()]
    body = ""
    if sub.is_multipart():
        texts = []
        for p in sub.walk():
            if not p.is_multipart() and p.get_content_maintype() == "text":
                texts.append(part_text(p))
        body = "\n".join(texts)
    else:
        body = part_text(sub)
    return "\n".join(lines) + "\n\n" + body[:MAX_TEXT]


def load_stdlib(data: bytes) -> Mail:
    """The same `Mail` built with the stdlib parser (compat32): the fallback path."""
    data = normalise(data)
    msg = message_from_bytes(data)
    try:
        ctype = msg.get_content_type()
    except Exception:
        ctype = "text/plain"
    try:
        report_type = (msg.get_param("report-type") or "") if ctype == "multipart/report" else ""
        report_type = report_type.lower() if isinstance(report_type, str) else ""
    except Exception:
        report_type = ""
    mail = new_mail(msg, list(msg._headers), ctype, report_type)
    plains: list[str] = []
    htmls: list[str] = []
    _collect(msg, mail, plains, htmls, 0)
    return finish_body(mail, plains, htmls)


def _collect(part: Message, mail: Mail, plains: list[str], htmls: list[str], depth: int) -> None:
    if depth > 20:
        return
    try:
        ctype = part.get_content_type()
    except Exception:
        ctype = "text/plain"
    payload = part.get_payload()
    if ctype.startswith("multipart/") and isinstance(payload, str):
        # boundary missing or never used: compat32 leaves the body as one string
        plains.append(part_text(part))
        return
    if part.is_multipart() and ctype.startswith("multipart/"):
        for sub in payload if isinstance(payload, list) else []:
            if isinstance(sub, Message):
                _collect(sub, mail, plains, htmls, depth + 1)
        return
    if ctype in ("message/delivery-status", "message/global-delivery-status"):
        if isinstance(payload, list):
            text = _blocks_text(payload)
            if not DS_HINT.search(text):
                text = part_text(part) if isinstance(payload, str) else text
        else:
            text = part_text(part)
        mail.ds_texts.append(text)
        return
    if ctype == "message/feedback-report":
        if isinstance(payload, list):
            mail.feedback_texts.append(_blocks_text(payload))
        else:
            mail.feedback_texts.append(part_text(part))
        return
    if ctype in ("message/rfc822", "message/global", "message/partial"):
        if isinstance(payload, list) and payload and isinstance(payload[0], Message):
            mail.returned.append(_message_text(payload[0]))
        elif isinstance(payload, str):
            mail.returned.append(part_text(part))
        return
    if ctype in ("text/rfc822-headers", "message/global-headers", "text/rfc822-header"):
        mail.returned.append(part_text(part))
        return
    if ctype == "text/html":
        htmls.append(part_text(part))
        return
    if ctype.startswith("text/") or ctype == "application/json" or ctype == "application/octet-stream" and depth == 0:
        text = part_text(part)
        if (plains or htmls) and HEADERS_START.match(text):
            # a later text part (after a plain or an HTML one) that is a header block: the original message's headers
            # attached as a plain file (MailMarshal, X6, Notes ...)
            mail.returned.append(text)
            return
        plains.append(text)
        return
    if ctype.startswith("message/") and isinstance(payload, list):
        for sub in payload:
            if isinstance(sub, Message):
                _collect(sub, mail, plains, htmls, depth + 1)
