"""Turn raw bytes into a `Mail`: decoded headers plus the texts the detectors read.

The fast splitter (``fastmime``) does the work; if it ever raises, ``message_stdlib`` (the
stdlib parser, compat32) builds the same `Mail`. What both paths share lives in ``mailtext``,
which is re-exported here for the callers that import it from this module.
"""

from __future__ import annotations

from . import fastmime
from .mailtext import (
    HEADERS_START,
    MAX_TEXT,
    Mail,
    decode_bytes,
    decode_header_value,
    finish_body,
    html_to_text,
    new_mail,
    normalise,
)

__all__ = ["MAX_TEXT", "Mail", "decode_bytes", "decode_header_value", "html_to_text", "load"]

def load(raw: bytes) -> Mail:
    """Parse ``raw`` into a `Mail` with the fast splitter (stdlib compat32 if that fails)."""
    data = normalise(raw)
    try:
        return _load_fast(data)
    except Exception:
        from .message_stdlib import load_stdlib

        return load_stdlib(data)


def _load_fast(data: bytes) -> Mail:
    root = fastmime.parse(data)
    report_type = root.params.get("report-type", "").lower() if root.ctype == "multipart/report" else ""
    mail = new_mail(root, root.headers, root.ctype, report_type)
    plains: list[str] = []
    htmls: list[str] = []
    _collect_fast(root, mail, plains, htmls, 0)
    return finish_body(mail, plains, htmls)


def _fast_text(part: fastmime.Part) -> str:
    payload = part.decoded()
    text = decode_bytes(payload[: MAX_TEXT * 2], part.charset)
    return text.replace("\r", "")


def _enclosed_text(part: fastmime.Part) -> str:
    """Text of an attached original message: its raw header block and the start of its body.

    Not parsed: the engine only looks for header lines (Message-ID, To, our tracking
    header, VERP addresses) in it, and the original's own MIME structure does not matter.
    """
    inner = part.decoded().lstrip(b"\n")
    return decode_bytes(inner[: MAX_TEXT // 4], part.charset).replace("\r", "")


def _collect_fast(part: fastmime.Part, mail: Mail, plains: list[str], htmls: list[str], depth: int) -> None:
    ctype = part.ctype
    if part.children:
        for sub in part.children:
            _collect_fast(sub, mail, plains, htmls, depth + 1)
        return
    if ctype in ("message/delivery-status", "message/global-delivery-status"):
        mail.ds_texts.append(_fast_text(part))
        return
    if ctype == "message/feedback-report":
        mail.feedback_texts.append(_fast_text(part))
        return
    if ctype in ("message/rfc822", "message/global", "message/partial"):
        mail.returned.append(_enclosed_text(part))
        return
    if ctype in ("text/rfc822-headers", "message/global-headers", "text/rfc822-header"):
        mail.returned.append(_fast_text(part))
        return
    if ctype == "text/html":
        htmls.append(_fast_text(part))
        return
    if ctype.startswith("text/") or ctype == "application/json" or ctype == "application/octet-stream" and depth == 0:
        text = _fast_text(part)
        if (plains or htmls) and HEADERS_START.match(text):
            # a later text part (after a plain or an HTML one) that is a header block: the original message's headers
            # attached as a plain file (MailMarshal, X6, Notes ...)
            mail.returned.append(text)
            return
        plains.append(text)


