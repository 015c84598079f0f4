"""A small, forgiving MIME splitter: bytes -> tree of `Part`s.

Why not only ``email.message_from_bytes``: even with the compat32 policy the stdlib parser
reads every message line by line in Python (about 7,000 bounces/s here, i.e. most of the
engine's time budget, measured in docs/engine.md). Bounces need much less than a full MIME
model: headers, the content types, the multipart boundaries and the transfer encodings.
This splitter does that with ``bytes.find`` and ``binascii`` (about 4x faster) and never
raises on broken input: a missing boundary leaves the body as one text part, an unknown
transfer encoding leaves the bytes as they are. `message.load` falls back to the stdlib
parser if this module ever raises.
"""

from __future__ import annotations

import binascii
import re

MAX_DEPTH = 12
_PARAM = re.compile(r';\s*([\w.*!#$%&\'+^`|~-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;\s]*)')


class Part:
    """One MIME entity: headers, content type, raw body and children."""

    __slots__ = ("headers", "first", "ctype", "params", "body", "children", "message")

    def __init__(self) -> None:
        self.headers: list[tuple[str, str]] = []  # (name as written, unfolded raw value)
        self.first: dict[str, str] = {}  # lower-case name -> first value
        self.ctype = "text/plain"
        self.params: dict[str, str] = {}
        self.body = b""  # undecoded body bytes
        self.children: list[Part] = []  # parts of a multipart
        self.message: Part | None = None  # the enclosed message of message/rfc822 (see enclosed())

    def get(self, name: str, default: str = "") -> str:
        """First value of header ``name`` (raw, undecoded)."""
        return self.first.get(name.lower(), default)

    @property
    def charset(self) -> str | None:
        """The charset parameter, if any."""
        return self.params.get("charset")

    def decoded(self) -> bytes:
        """The body with its Content-Transfer-Encoding undone (best effort, never raises)."""
        return decode_cte(self.body, self.get("content-transfer-encoding"))


def decode_cte(body: bytes, cte: str) -> bytes:
    """Undo base64 / quoted-printable; anything else is returned unchanged."""
    cte = cte.strip().lower()
    if not cte or cte in ("7bit", "8bit", "binary"):
        return body
    try:
        if cte == "base64":
            try:
                return binascii.a2b_base64(body)
            except binascii.Error:
                # bad padding or a truncated last quantum: decode what is whole
                clean = re.sub(rb"[^A-Za-z0-9+/]", b"", body)
                clean = clean[: len(clean) // 4 * 4]
                return binascii.a2b_base64(clean)
        if cte in ("quoted-printable", "quoted_printable", "qp"):
            return binascii.a2b_qp(body)
    except (binascii.Error, ValueError):
        return body
    return body


_UNFOLD = re.compile(r"\n(?![ \t])")


def _split_headers(raw: bytes) -> tuple[list[tuple[str, str]], bytes]:
    """Header fields and the body. A line that is neither a field nor a continuation ends
    the header block (the body then starts there, as the stdlib parser does)."""
    if raw.startswith(b"\n"):
        return [], raw[1:]
    end = raw.find(b"\n\n")
    block = raw if end < 0 else raw[:end]
    rest = b"" if end < 0 else raw[end + 2 :]
    headers: list[tuple[str, str]] = []
    text = block.decode("utf-8", "surrogateescape")
    # one field per chunk: a newline not followed by blank space starts the next field
    fields = _UNFOLD.split(text) if ("\n " in text or "\n\t" in text) else text.split("\n")
    append = headers.append
    for i, field in enumerate(fields):
        name, colon, value = field.partition(":")
        if name[-1:] in (" ", "\t"):
            name = name.rstrip(" \t")
        # (isprintable() is False for "\n" and "\t": a name is printable ASCII without spaces)
        if not colon or not name or not name.isascii() or not name.isprintable() or " " in name:
            if i == 0 and field[:1] in (" ", "\t"):
                continue  # stray leading continuation line
            remainder = "\n".join(fields[i:]).encode("utf-8", "surrogateescape")
            return headers, remainder + (b"\n\n" + rest if end >= 0 else b"")
        append((name, value.lstrip(" \t")))
    return headers, rest


def _content_type(value: str) -> tuple[str, dict[str, str]]:
    head, _, rest = value.partition(";")
    ctype = head.strip().lower()
    if "/" not in ctype or " " in ctype:
        ctype = "text/plain"
    params: dict[str, str] = {}
    if rest:
        for m in _PARAM.finditer(";" + rest):
            key = m.group(1).lower()
            val = m.group(2)
            if val.startswith('"'):
                val = val[1:-1].replace('\\"', '"').replace("\\\\", "\\")
            if "*" in key:  # RFC 2231: name*0=, name*=charset''value
                base = key.split("*", 1)[0]
                if key.endswith("*") and "''" in val:
                    val = val.split("''", 1)[1]
                params[base] = params.get(base, "") + val
            else:
                params.setdefault(key, val)
    return ctype, params


_AFTER_DELIM = (b"", b"\n", b"-", b" ", b"\t", b"\r")


def _find_delim(body: bytes, delim: bytes, start: int) -> int:
    """Index of the next boundary line at or after ``start`` (-1 if none). A boundary that is
    only the prefix of a longer token (a nested boundary) does not count."""
    n = len(delim)
    if start == 0 and body.startswith(delim) and body[n : n + 1] in _AFTER_DELIM:
        return 0
    i = start
    while True:
        j = body.find(b"\n" + delim, i)
        if j < 0:
            return -1
        if body[j + 1 + n : j + 2 + n] in _AFTER_DELIM:
            return j + 1
        i = j + 1  # always move on: a rejected candidate must not be found again


def _split_multipart(body: bytes, boundary: bytes) -> list[bytes] | None:
    """Bodies of the parts between boundary lines; None if the boundary never occurs."""
    delim = b"--" + boundary
    n = len(delim)
    pos = _find_delim(body, delim, 0)
    if pos < 0:
        return None
    parts: list[bytes] = []
    while True:
        after = pos + n
        if body[after : after + 2] == b"--":
            break  # closing delimiter
        eol = body.find(b"\n", after)
        if eol < 0:
            break
        start = eol + 1
        nxt = _find_delim(body, delim, eol)
        if nxt < 0:
            parts.append(body[start:])  # unterminated last part
            break
        parts.append(body[start : nxt - 1] if nxt - 1 > start else b"")
        pos = nxt
    return parts


def parse(raw: bytes, depth: int = 0, default_type: str = "text/plain") -> Part:
    """Parse ``raw`` (LF line ends) into a `Part` tree."""
    part = Part()
    headers, body = _split_headers(raw)
    part.headers = headers
    first = part.first
    for name, value in headers:
        first.setdefault(name.lower(), value)
    ct = first.get("content-type")
    if ct:
        part.ctype, part.params = _content_type(ct)
    else:
        part.ctype = default_type
    part.body = body
    if depth >= MAX_DEPTH:
        return part
    if part.ctype.startswith("multipart/"):
        boundary = part.params.get("boundary")
        chunks = _split_multipart(body, boundary.encode("utf-8", "surrogateescape")) if boundary else None
        if chunks is None:
            # no usable boundary: read the body as text. A multipart entity may only be
            # 7bit/8bit/binary (RFC 2045 6.4), so a transfer encoding on it is noise.
            part.ctype = "text/plain"
            part.first["content-transfer-encoding"] = ""
            return part
        child_default = "message/rfc822" if part.ctype == "multipart/digest" else "text/plain"
        part.children = [parse(c, depth + 1, child_default) for c in chunks]
    return part


def enclosed(part: Part) -> Part | None:
    """The message inside a message/rfc822 part, parsed on demand (bounces rarely need more
    than its raw header text, so the engine does not parse it by default)."""
    if part.message is None and part.ctype in ("message/rfc822", "message/global", "message/partial"):
        inner = part.decoded()
        part.message = parse(inner.lstrip(b"\n"), 1)
    return part.message
