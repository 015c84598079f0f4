"""What both MIME paths share: the `Mail` record, text decoding, line-end normalising.

Imported by `message` (the fast path) and `message_stdlib` (the fallback), never the other
way round: this module imports neither, so the two paths form no import cycle.

Everything that the parsers leave undecoded (RFC 2047 words, charsets, transfer encodings)
is decoded here, defensively, with replacement characters rather than exceptions.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from functools import lru_cache

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


@lru_cache(maxsize=256)
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
    if data.isascii():
        # 7-bit text: ASCII unless a stateful 7-bit encoding is declared or its escapes show
        # (ISO-2022-JP without a label is frequent in Japanese bounces)
        if name and name.startswith(("iso2022", "utf-7", "hz")):
            try:
                return data.decode(name)
            except Exception:
                return data.decode("ascii")
        if b"\x1b$B" in data or b"\x1b$@" in data:
            try:
                return data.decode("iso2022_jp")
            except Exception:
                pass
        return data.decode("ascii")
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
    if not value.isascii() and has_surrogates(value):
        value = decode_bytes(value.encode("utf-8", "surrogateescape"))
    if "=?" not in value:
        return value
    from email.header import decode_header  # only messages with encoded words pay for it

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


def has_surrogates(s: str) -> bool:
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

    import html

    if "<br" in text or "<BR" in text:
        # a <br> ends the line; the source's own line break after it is only white space
        # (a plain notice rendered as HTML by a gateway: "line<br>\nline", not a blank line)
        text = _BR_NEWLINE.sub(r"\1", text)
    return html.unescape(_TAG.sub(repl, text))


_BR_NEWLINE = re.compile(r"(<br\s*/?>)[ \t]*\n", re.I)


@dataclass(slots=True)
class Mail:
    """A parsed message as the detectors see it."""

    msg: object  # the parsed tree (fastmime.Part, or email.message.Message on the fallback path)
    headers: dict[str, str]  # lower-case name -> first value, raw (see header())
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
    _lc_from: str | None = None
    _lc_body: str | None = None
    _lc_returned: list[str] | None = None
    memo: dict[str, object] = field(default_factory=dict)  # per-message results of recognition

    @property
    def lc_head(self) -> str:
        """The first 8000 characters of the body, lower-cased: for cheap marker tests."""
        if self._lc_head is None:
            self._lc_head = self.body[:8000].lower()
        return self._lc_head

    @property
    def lc_body(self) -> str:
        """The whole body, lower-cased (computed once: several searches need it)."""
        if self._lc_body is None:
            self._lc_body = self.body.lower()
        return self._lc_body

    @property
    def lc_returned(self) -> list[str]:
        """The ``returned`` texts, lower-cased, in the same order."""
        if self._lc_returned is None or len(self._lc_returned) != len(self.returned):
            self._lc_returned = [t.lower() for t in self.returned]
        return self._lc_returned

    @property
    def lc_from(self) -> str:
        """The decoded From header, lower-cased."""
        if self._lc_from is None:
            self._lc_from = self.from_.lower()
        return self._lc_from

    def header(self, name: str) -> str:
        """First value of header ``name`` (decoded), or ""."""
        raw = self.headers.get(name.lower())
        return decode_header_value(raw) if raw else ""

    def header_all(self, name: str) -> list[str]:
        """All values of header ``name`` (decoded)."""
        return [decode_header_value(v) for v in self.all_headers.get(name.lower(), ())]


DS_HINT = re.compile(r"^(Final-Recipient|Original-Recipient|Action|Status)\s*:", re.I | re.M)
HEADERS_START = re.compile(r"\s*(?:Received|Return-Path|X-[\w-]+|Message-ID|From|Date|DKIM-Signature|Delivered-To)\s*:\s*\S.*\n(?:[ \t].*\n)*[\w-]+\s*:", re.I)
_HDR_HINT = re.compile(r"^(Received|Message-ID|From|To|Subject|Date|Return-Path)\s*:", re.I | re.M)


_CR_RUN_LF = re.compile(rb"\r+\n")


def normalise(raw: object) -> bytes:
    if not isinstance(raw, (bytes, bytearray)):
        raw = str(raw).encode("utf-8", "surrogateescape")
    data = bytes(raw)
    if b"\r" in data:
        # CRLF (as IMAP and POP3 deliver), CR-only (old Mac gateways), and CR CR LF, which
        # broken gateways produce by adding CRs to lines that already had one: all one break.
        data = _CR_RUN_LF.sub(b"\n", data).replace(b"\r", b"\n")
    # mbox "From " line in front of the headers would otherwise be taken as body
    if data.startswith(b"From "):
        nl = data.find(b"\n")
        data = data[nl + 1 :] if nl >= 0 else b""
    return data


def new_mail(root: object, pairs: list[tuple[str, str]], ctype: str, report_type: str) -> Mail:
    headers: dict[str, str] = {}  # raw first values; decoded on demand by Mail.header()
    all_headers: dict[str, list[str]] = {}
    for k, v in pairs:
        lk = k.lower()
        if lk not in headers:
            headers[lk] = v
            all_headers[lk] = [v]
        else:
            all_headers[lk].append(v)
    return Mail(
        msg=root,  # type: ignore[arg-type]
        headers=headers,
        subject=" ".join(decode_header_value(headers.get("subject", "")).split()),
        from_=decode_header_value(headers.get("from", "")),
        content_type=ctype,
        body="",
        all_headers=all_headers,
        report_type=report_type,
    )


def finish_body(mail: Mail, plains: list[str], htmls: list[str]) -> Mail:
    body = "\n".join(plains) if plains else "\n".join(html_to_text(h) for h in htmls)
    if plains and htmls and len(body.strip()) < 20:
        body += "\n" + "\n".join(html_to_text(h) for h in htmls)
    mail.body = body[:MAX_TEXT]
    return mail


