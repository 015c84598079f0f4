"""Turn raw bytes into a `Mail`: decoded headers plus the texts the detectors read.

The stdlib parser with the compat32 policy is used on purpose: it is about six times faster
than ``policy.default`` over a bounce corpus and never raises on broken MIME; everything that
compat32 leaves undecoded (RFC 2047 words, charsets, transfer encodings) is decoded here,
defensively, with replacement characters rather than exceptions.
"""

from __future__ import annotations

import codecs
import html
import re
from dataclasses import dataclass, field
from email import message_from_bytes
from email.header import decode_header
from email.message import Message

from . import fastmime

# Bodies above this size are cut: a bounce's useful part is at its start, and regexes over
# megabytes of attached original message only cost time.
MAX_TEXT = 256 * 1024

_CHARSET_ALIASES = {
    "ks_c_5601-1987": "cp949",
    "x-sjis": "shift_jis",
    "shift-jis": "shift_jis",
    "x-unknown": "latin-1",
    "unknown-8bit": "latin-1",
    "us-ascii": "latin-1",  # 8-bit bytes mislabelled as ascii are common; latin-1 never fails
    "ascii": "latin-1",
    "iso-8859-8-i": "iso-8859-8",
    "x-user-defined": "latin-1",
    "gb2312": "gb18030",
    "gbk": "gb18030",
}


_JAPANESE = ("euc_jp", "cp932")
_WESTERN = ("cp1252",)
_ALTERNATIVES = {
    "iso2022_jp": _JAPANESE,
    "euc_jp": ("cp932",),
    "shift_jis": ("cp932", "euc_jp"),
    "cp932": ("euc_jp",),
    "gb18030": ("big5", "cp949"),
    "big5": ("gb18030",),
    "cp949": ("gb18030",),
    "euc_kr": ("cp949",),
    "koi8-r": ("cp1251",),
    "cp1251": ("koi8-r",),
}


def _codec(charset: str | None) -> str | None:
    if not charset:
        return None
    cs = charset.strip().strip('"').lower()
    cs = _CHARSET_ALIASES.get(cs, cs)
    try:
        return codecs.lookup(cs).name
    except LookupError:
        return None


def decode_bytes(data: bytes, charset: str | None = None) -> str:
    """Decode ``data`` with its declared charset, falling back to UTF-8 then Latin-1."""
    name = _codec(charset)
    if name and name not in ("utf-8", "latin-1", "iso8859-1"):
        try:
            return data.decode(name)
        except (UnicodeDecodeError, LookupError):
            pass
        except Exception:  # some codecs raise odd errors on garbage
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        # mislabelled text is common (EUC-JP sent as ISO-2022-JP, cp1252 as ascii): try the
        # usual encodings of the same script strictly before settling for replacement chars
        for alt in _ALTERNATIVES.get(name or "", _WESTERN):
            try:
                return data.decode(alt)
            except (UnicodeDecodeError, LookupError):
                continue
        if name and name not in ("utf-8",):
            try:
                return data.decode(name, "replace")
            except Exception:
                pass
        # ISO-2022-JP without a label is frequent in Japanese bounces
        if b"\x1b$B" in data or b"\x1b(B" in data:
            try:
                return data.decode("iso2022_jp", "replace")
            except Exception:
                pass
        return data.decode("latin-1")


_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?")


def decode_header_value(value: object) -> str:
    """Decode an RFC 2047 header value into text; never raises."""
    if value is None:
        return ""
    if not isinstance(value, str):
        # compat32 may hand back a Header object for 8-bit header bytes
        try:
            value = str(value)
        except Exception:
            return ""
    if not value.isascii() and _has_surrogates(value):
        value = decode_bytes(value.encode("utf-8", "surrogateescape"))
    if "=?" not in value:
        return value
    try:
        parts = decode_header(value)
    except Exception:
        return value
    out = []
    for chunk, cs in parts:
        if isinstance(chunk, bytes):
            out.append(decode_bytes(chunk, cs))
        else:
            out.append(chunk)
    return "".join(out)


def _has_surrogates(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


_TAG = re.compile(r"<(script|style)\b.*?</\1\s*>|<br\s*/?>|</?(p|div|tr|li|h\d|table)\b[^>]*>|<[^>]+>", re.I | re.S)


def html_to_text(text: str) -> str:
    """Crude but fast HTML to text: line breaks for block tags, tags dropped, entities decoded."""

    def repl(m: re.Match[str]) -> str:
        if m.group(1):
            return ""
        tag = m.group(0).lower()
        if tag.startswith(("<br", "<p", "</p", "<div", "</div", "<tr", "</tr", "<li", "<h", "</h", "<table", "</table")):
            return "\n"
        return ""

    return html.unescape(_TAG.sub(repl, text))


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
    if not value.isascii() and _has_surrogates(value):
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


@dataclass(slots=True)
class Mail:
    """A parsed message as the detectors see it."""

    msg: object  # the parsed tree (fastmime.Part, or email.message.Message on the fallback path)
    headers: dict[str, str]  # lower-case name -> first value, decoded
    subject: str
    from_: str
    content_type: str
    body: str  # human-readable text parts, in order (html turned to text if there is no plain)
    ds_texts: list[str] = field(default_factory=list)  # message/delivery-status parts
    feedback_texts: list[str] = field(default_factory=list)  # message/feedback-report parts
    returned: list[str] = field(default_factory=list)  # attached original messages / headers
    report_type: str = ""
    all_headers: dict[str, list[str]] = field(default_factory=dict)  # lower name -> raw values
    _lc_head: str | None = None

    @property
    def lc_head(self) -> str:
        """The first 8000 characters of the body, lower-cased: for cheap marker tests."""
        if self._lc_head is None:
            self._lc_head = self.body[:8000].lower()
        return self._lc_head

    def header(self, name: str) -> str:
        """First value of header ``name`` (decoded), or ""."""
        return self.headers.get(name.lower(), "")

    def header_all(self, name: str) -> list[str]:
        """All values of header ``name`` (decoded)."""
        return [decode_header_value(v) for v in self.all_headers.get(name.lower(), ())]


_DS_HINT = re.compile(r"^(Final-Recipient|Original-Recipient|Action|Status)\s*:", re.I | re.M)
_HEADERS_START = re.compile(r"\s*(?:Received|Return-Path|X-[\w-]+|Message-ID|From|Date|DKIM-Signature|Delivered-To)\s*:\s*\S.*\n(?:[ \t].*\n)*[\w-]+\s*:", re.I)
_HDR_HINT = re.compile(r"^(Received|Message-ID|From|To|Subject|Date|Return-Path)\s*:", re.I | re.M)


def _normalise(raw: object) -> bytes:
    if not isinstance(raw, (bytes, bytearray)):
        raw = str(raw).encode("utf-8", "surrogateescape")
    data = bytes(raw)
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    # mbox "From " line in front of the headers would otherwise be taken as body
    if data.startswith(b"From "):
        nl = data.find(b"\n")
        data = data[nl + 1 :] if nl >= 0 else b""
    return data


def load(raw: bytes) -> Mail:
    """Parse ``raw`` into a `Mail` with the fast splitter (stdlib compat32 if that fails)."""
    data = _normalise(raw)
    try:
        return _load_fast(data)
    except Exception:
        return load_stdlib(data)


def _new_mail(root: object, pairs: list[tuple[str, str]], ctype: str, report_type: str) -> Mail:
    headers: dict[str, str] = {}
    all_headers: dict[str, list[str]] = {}
    for k, v in pairs:
        lk = k.lower()
        if lk not in headers:
            headers[lk] = decode_header_value(v)
            all_headers[lk] = [v]
        else:
            all_headers[lk].append(v)
    return Mail(
        msg=root,  # type: ignore[arg-type]
        headers=headers,
        subject=" ".join(headers.get("subject", "").split()),
        from_=headers.get("from", ""),
        content_type=ctype,
        body="",
        all_headers=all_headers,
        report_type=report_type,
    )


def _finish_body(mail: Mail, plains: list[str], htmls: list[str]) -> Mail:
    body = "\n".join(plains) if plains else "\n".join(html_to_text(h) for h in htmls)
    if plains and htmls and len(body.strip()) < 20:
        body += "\n" + "\n".join(html_to_text(h) for h in htmls)
    mail.body = body[:MAX_TEXT]
    return mail


def _load_fast(data: bytes) -> Mail:
    root = fastmime.parse(data)
    report_type = root.params.get("report-type", "").lower() if root.ctype == "multipart/report" else ""
    mail = _new_mail(root, root.headers, root.ctype, report_type)
    plains: list[str] = []
    htmls: list[str] = []
    _collect_fast(root, mail, plains, htmls, 0)
    return _finish_body(mail, plains, htmls)


def _fast_text(part: fastmime.Part) -> str:
    payload = part.decoded()
    text = decode_bytes(payload[: MAX_TEXT * 2], part.charset)
    return text.replace("\r", "")


def _fast_message_text(msg: fastmime.Part) -> str:
    """Headers plus the first text of an attached message."""
    lines = [f"{k}: {decode_header_value(v)}" for k, v in msg.headers]
    body = ""
    stack = [msg]
    while stack:
        p = stack.pop(0)
        if p.children:
            stack[:0] = p.children
        elif p.ctype.startswith("text/"):
            body = _fast_text(p)
            break
    return "\n".join(lines) + "\n\n" + body[:MAX_TEXT]


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
    if part.message is not None:
        mail.returned.append(_fast_message_text(part.message))
        return
    if ctype in ("text/rfc822-headers", "message/global-headers", "text/rfc822-header"):
        mail.returned.append(_fast_text(part))
        return
    if ctype == "text/html":
        htmls.append(_fast_text(part))
        return
    if ctype.startswith("text/") or ctype == "application/octet-stream" and depth == 0:
        text = _fast_text(part)
        if plains and _HEADERS_START.match(text):
            # a later text part that is a header block: the original message's headers
            # attached as a plain file (MailMarshal, X6, Notes ...)
            mail.returned.append(text)
            return
        plains.append(text)


def load_stdlib(data: bytes) -> Mail:
    """The same `Mail` built with the stdlib parser (compat32): the fallback path."""
    data = _normalise(data)
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
    mail = _new_mail(msg, list(msg._headers), ctype, report_type)
    plains: list[str] = []
    htmls: list[str] = []
    _collect(msg, mail, plains, htmls, 0)
    return _finish_body(mail, plains, htmls)


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
            if not _DS_HINT.search(text):
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
    if ctype.startswith("text/") or ctype == "application/octet-stream" and depth == 0:
        text = part_text(part)
        if plains and _HEADERS_START.match(text):
            # a later text part that is a header block: the original message's headers
            # attached as a plain file (MailMarshal, X6, Notes ...)
            mail.returned.append(text)
            return
        plains.append(text)
        return
    if ctype.startswith("message/") and isinstance(payload, list):
        for sub in payload:
            if isinstance(sub, Message):
                _collect(sub, mail, plains, htmls, depth + 1)
