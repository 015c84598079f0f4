"""Format invariance: does the engine give the same answer when a notice is transported and
rendered differently?

Held-back mail comes from the same MTA families as our corpora, but it travelled through
other relays, gateways and mailbox servers on its way: re-encoded bodies, other line ends,
re-wrapped lines, banners and footers, a DSN part dropped or relabelled, the returned copy
cut. This module takes every labelled corpus message, applies one such transformation at a
time and compares the engine's answer (each recipient with its hard/soft, permanent and
reason; for ordinary mail: no bounced recipient) with the answer for the original.

    .venv/bin/python tests/parsing/invariance.py              # full sweep, table per class
    .venv/bin/python tests/parsing/invariance.py --show 5     # and up to 5 changed files each
    .venv/bin/python tests/parsing/invariance.py --only dsn-removed --corpus flufl -v

`tests/parsing/test_invariance.py` runs a deterministic subset in `make test` and checks
that every change is one listed in `EXPECTED` (a transformation that destroyed the
information the answer rests on). The transformations work on a small MIME tree of our own
(`Part`) that gives back the input byte for byte when nothing is changed, so a change in
the answer is the transformation's doing, not a serialiser's.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import quopri
import random
import re
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a script: the repository on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bounces.parsing import Category, Kind, parse_bounce  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
CORPORA = {
    "shared": REPO.parent / "shared" / "bounce-corpus" / "eml",
    "flufl": REPO.parent / "shared" / "bounce-corpus-flufl" / "eml",
    "notbounce": REPO / "tests" / "samples_notbounce" / "eml",
}
_BOUNCED_KINDS = (Kind.FAILURE, Kind.DELAY, Kind.UNKNOWN)

# ---------------------------------------------------------------------------------------
# A MIME tree that gives back its input byte for byte (LF line ends)
# ---------------------------------------------------------------------------------------

_PARAM = re.compile(rb'([A-Za-z][\w*-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]+))')


@dataclass
class Part:
    """One MIME entity: header fields (raw, folded as they came), and either a body or
    children between boundary lines. message/rfc822 bodies are kept as bytes (leaves)."""

    fields: list[bytes]
    body: bytes | None
    children: list[Part] = field(default_factory=list)
    delimiters: list[bytes] = field(default_factory=list)  # the line before each child
    preamble: list[bytes] = field(default_factory=list)
    close: bytes | None = None
    epilogue: list[bytes] = field(default_factory=list)
    multipart: bool = False

    # header access --------------------------------------------------------------------
    def get(self, name: str) -> bytes | None:
        key = name.lower().encode()
        for f in self.fields:
            n, _, v = f.partition(b":")
            if n.strip().lower() == key:
                return re.sub(rb"\n[ \t]+", b" ", v).strip()
        return None

    def set(self, name: str, value: str) -> None:
        key = name.lower().encode()
        new = f"{name}: {value}".encode()
        for i, f in enumerate(self.fields):
            if f.partition(b":")[0].strip().lower() == key:
                self.fields[i] = new
                return
        self.fields.append(new)

    def remove(self, name: str) -> None:
        key = name.lower().encode()
        self.fields = [f for f in self.fields if f.partition(b":")[0].strip().lower() != key]

    @property
    def ctype(self) -> str:
        value = self.get("content-type")
        if not value:
            return "text/plain"
        return value.split(b";")[0].strip().lower().decode("ascii", "replace")

    def param(self, name: str) -> str | None:
        value = self.get("content-type") or b""
        for m in _PARAM.finditer(value.partition(b";")[2]):
            if m.group(1).lower() == name.encode():
                raw = m.group(2) if m.group(2) is not None else m.group(3)
                return raw.decode("latin-1")
        return None

    @property
    def cte(self) -> str:
        return (self.get("content-transfer-encoding") or b"").strip().lower().decode("ascii", "replace")

    # body access ----------------------------------------------------------------------
    def decoded(self) -> bytes:
        body = self.body or b""
        if self.cte == "base64":
            cleaned = re.sub(rb"[^A-Za-z0-9+/]", b"", body)
            cleaned = cleaned[: len(cleaned) // 4 * 4]
            try:
                return binascii.a2b_base64(cleaned)
            except binascii.Error:
                return body
        if self.cte == "quoted-printable":
            return quopri.decodestring(body)
        return body

    def encode(self, data: bytes, cte: str | None = None) -> None:
        """Store ``data`` (decoded bytes) in the transfer encoding ``cte`` (default: the
        part's own)."""
        cte = self.cte if cte is None else cte
        if cte == "base64":
            self.body = base64.encodebytes(data)
        elif cte == "quoted-printable":
            self.body = quopri.encodestring(data)
        else:
            self.body = data
        if cte in ("", "7bit", "8bit", "binary"):
            if cte or self.get("content-transfer-encoding") is not None:
                self.set("Content-Transfer-Encoding", "7bit" if data.isascii() else "8bit")
        else:
            self.set("Content-Transfer-Encoding", cte)

    def walk(self) -> Iterable[Part]:
        yield self
        for child in self.children:
            yield from child.walk()

    def to_bytes(self) -> bytes:
        head = b"\n".join(self.fields)
        if not self.multipart:
            if self.body is None:
                return head
            return head + b"\n\n" + self.body if self.fields else b"\n" + self.body
        lines = list(self.preamble)
        for delim, child in zip(self.delimiters, self.children, strict=True):
            lines.append(delim)
            lines.append(child.to_bytes())
        if self.close is not None:
            lines.append(self.close)
            lines.extend(self.epilogue)
        body = b"\n".join(lines)
        return head + b"\n\n" + body if self.fields else b"\n" + body


def parse(data: bytes, depth: int = 0) -> Part:
    """Split ``data`` (LF line ends) into a `Part` tree."""
    if data.startswith(b"\n"):
        head, body = b"", data[1:]
    else:
        i = data.find(b"\n\n")
        head, body = (data, None) if i < 0 else (data[:i], data[i + 2 :])
    fields: list[bytes] = []
    for line in head.split(b"\n") if head else []:
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += b"\n" + line
        else:
            fields.append(line)
    part = Part(fields=fields, body=body)
    boundary = part.param("boundary")
    if body is None or not part.ctype.startswith("multipart/") or not boundary or depth > 8:
        return part
    delim = b"--" + boundary.encode("latin-1")
    lines = body.split(b"\n")
    chunks: list[list[bytes]] = []
    current = part.preamble
    for n, line in enumerate(lines):
        stripped = line.rstrip()
        if stripped == delim + b"--":
            part.close = line
            part.epilogue = lines[n + 1 :]
            break
        if stripped == delim:
            part.delimiters.append(line)
            current = []
            chunks.append(current)
            continue
        current.append(line)
    if not chunks:
        part.preamble = []
        return part
    part.multipart = True
    part.body = None
    part.children = [parse(b"\n".join(chunk), depth + 1) for chunk in chunks]
    return part


def _parent_of(root: Part, target: Part) -> Part | None:
    for p in root.walk():
        if any(c is target for c in p.children):
            return p
    return None


def _drop(root: Part, target: Part) -> None:
    parent = _parent_of(root, target)
    if parent is None:
        return
    i = next(n for n, c in enumerate(parent.children) if c is target)
    del parent.children[i]
    del parent.delimiters[i]


# ---------------------------------------------------------------------------------------
# Transformations: raw LF bytes -> transformed bytes, or None when they do not apply
# ---------------------------------------------------------------------------------------

_TEXT = ("text/plain", "text/html")
_DSN = ("message/delivery-status", "message/global-delivery-status")
_RETURNED = ("message/rfc822", "text/rfc822-headers", "message/global", "message/global-headers")


def _text_parts(root: Part) -> list[Part]:
    return [p for p in root.walk() if not p.multipart and p.ctype in _TEXT and p.body is not None]


def _dsn_parts(root: Part) -> list[Part]:
    return [p for p in root.walk() if not p.multipart and p.ctype in _DSN and p.body is not None]


def _returned_parts(root: Part) -> list[Part]:
    return [p for p in root.walk() if not p.multipart and p.ctype in _RETURNED and p.body is not None]


def _reencode(parts: Callable[[Part], list[Part]], cte: str) -> Callable[[bytes, random.Random], bytes | None]:
    def apply(raw: bytes, rng: random.Random) -> bytes | None:
        root = parse(raw)
        targets = [p for p in parts(root) if p.cte != cte]
        if not targets:
            return None
        for p in targets:
            p.encode(p.decoded(), cte)
        return root.to_bytes()

    return apply


def _to_8bit(raw: bytes, rng: random.Random) -> bytes | None:
    """A server that decodes transfer encodings (8BITMIME all the way)."""
    root = parse(raw)
    targets = [p for p in _text_parts(root) + _dsn_parts(root) if p.cte in ("base64", "quoted-printable")]
    if not targets:
        return None
    for p in targets:
        p.encode(p.decoded(), "8bit")
    return root.to_bytes()


def _to_7bit(raw: bytes, rng: random.Random) -> bytes | None:
    """A relay without 8BITMIME downgrades 8-bit text parts to quoted-printable."""
    root = parse(raw)
    targets = [p for p in _text_parts(root) + _dsn_parts(root) if p.cte not in ("base64", "quoted-printable")
               and not p.decoded().isascii()]
    if not targets:
        return None
    for p in targets:
        p.encode(p.decoded(), "quoted-printable")
    return root.to_bytes()


_LATIN1 = {"iso-8859-1", "latin-1", "latin1", "us-ascii", "ascii", "iso8859-1", "windows-1252"}


def _relabel(raw: bytes, rng: random.Random) -> bytes | None:
    """utf-8 text re-encoded as ISO-8859-1 and the other way round, where no character is
    lost (a gateway that converts charsets)."""
    root = parse(raw)
    done = False
    for p in _text_parts(root):
        cs = (p.param("charset") or "us-ascii").lower()
        data = p.decoded()
        try:
            if cs in ("utf-8", "utf8"):
                text = data.decode("utf-8")
                new, label = text.encode("iso-8859-1"), "iso-8859-1"
            elif cs in _LATIN1:
                text = data.decode("cp1252" if cs == "windows-1252" else "latin-1")
                new, label = text.encode("utf-8"), "utf-8"
            else:
                continue
        except (UnicodeDecodeError, UnicodeEncodeError):
            continue
        value = (p.get("content-type") or b"text/plain").decode("latin-1")
        if re.search(r"charset\s*=", value, re.I):
            value = re.sub(r'charset\s*=\s*("[^"]*"|[^;\s]+)', f'charset="{label}"', value, flags=re.I)
        else:
            value += f'; charset="{label}"'
        p.set("Content-Type", value)
        p.encode(new)
        done = True
    return root.to_bytes() if done else None


def _map_text(fn: Callable[[bytes], bytes], *, dsn: bool = False, text: bool = True,
              first_only: bool = False) -> Callable[[bytes, random.Random], bytes | None]:
    def apply(raw: bytes, rng: random.Random) -> bytes | None:
        root = parse(raw)
        targets = (_text_parts(root) if text else []) + (_dsn_parts(root) if dsn else [])
        if first_only:
            targets = targets[:1]
        changed = False
        for p in targets:
            data = p.decoded()
            new = fn(data)
            if new != data:
                p.encode(new)
                changed = True
        return root.to_bytes() if changed else None

    return apply


def _wrap_lines(width: int) -> Callable[[bytes], bytes]:
    """Hard-wrap long lines at the last space before ``width`` (a client or a gateway that
    re-flows text): a diagnostic or an address list continues on the next line."""

    def fn(data: bytes) -> bytes:
        out: list[bytes] = []
        for line in data.split(b"\n"):
            while len(line) > width:
                cut = line.rfind(b" ", 1, width)
                if cut <= 0:
                    break
                out.append(line[:cut])
                line = line[cut + 1 :]
            out.append(line)
        return b"\n".join(out)

    return fn


def _fold_fields(width: int, tab: bool) -> Callable[[bytes], bytes]:
    """Fold DSN fields longer than ``width`` before white space (RFC 5322 folding), the
    continuation starting with that space or a tab."""

    def fn(data: bytes) -> bytes:
        out: list[bytes] = []
        for line in data.split(b"\n"):
            pieces: list[bytes] = []
            while len(line) > width:
                cut = line.rfind(b" ", 20, width)
                if cut <= 0:
                    cut = line.find(b" ", width)
                if cut <= 0:
                    break
                pieces.append(line[:cut])
                line = (b"\t" if tab else b" ") + line[cut + 1 :]
            pieces.append(line)
            out.append(b"\n".join(pieces))
        return b"\n".join(out)

    return fn


def _trailing_ws(data: bytes) -> bytes:
    return b"\n".join(ln + (b" \t" if n % 2 else b"  ") if ln else ln for n, ln in enumerate(data.split(b"\n")))


def _tabs(data: bytes) -> bytes:
    """Indentation as tabs where it is 8 columns (and 4 columns as a tab where nothing is
    indented by less: an editor's or `unexpand`'s doing), and a tab after a field's colon."""
    out = []
    small = re.search(rb"(?m)^ {1,3}\S", data) is not None
    step = 8 if small else 4
    for ln in data.split(b"\n"):
        m = re.match(rb"^( +)(\S.*)$", ln)
        if m and len(m.group(1)) >= step:
            n = len(m.group(1))
            ln = b"\t" * (n // step) + b" " * (n % step) + m.group(2)
        ln = re.sub(rb"^([A-Za-z][\w-]{1,40}):[ ]+", rb"\1:\t", ln)
        out.append(ln)
    return b"\n".join(out)


def _dsn_fields(fn: Callable[[list[bytes]], list[bytes]]) -> Callable[[bytes], bytes]:
    """Apply ``fn`` to each block of DSN fields (fields with their continuation lines)."""

    def apply(data: bytes) -> bytes:
        blocks = re.split(rb"\n[ \t]*\n", data)
        out = []
        for block in blocks:
            fields: list[bytes] = []
            for line in block.split(b"\n"):
                if line[:1] in (b" ", b"\t") and fields:
                    fields[-1] += b"\n" + line
                else:
                    fields.append(line)
            out.append(b"\n".join(fn(fields)))
        return b"\n\n".join(out)

    return apply


def _reorder(fields: list[bytes]) -> list[bytes]:
    real = [f for f in fields if f.strip()]
    return list(reversed(real)) + [f for f in fields if not f.strip()]


def _name_case(upper: bool) -> Callable[[list[bytes]], list[bytes]]:
    def fn(fields: list[bytes]) -> list[bytes]:
        out = []
        for f in fields:
            name, sep, rest = f.partition(b":")
            if sep and re.fullmatch(rb"[A-Za-z][\w-]*", name):
                name = name.upper() if upper else name.lower()
            out.append(name + sep + rest)
        return out

    return fn


def _dsn_removed(raw: bytes, rng: random.Random) -> bytes | None:
    """The MTA sends a text-only notice: no delivery-status part, no report type."""
    root = parse(raw)
    targets = _dsn_parts(root)
    if not targets:
        return None
    for p in targets:
        _drop(root, p)
    for p in root.walk():
        if p.ctype == "multipart/report":
            value = (p.get("content-type") or b"").decode("latin-1")
            value = re.sub(r"multipart/report", "multipart/mixed", value, flags=re.I)
            value = re.sub(r';\s*report-type\s*=\s*("[^"]*"|[^;\s]+)', "", value, flags=re.I)
            p.set("Content-Type", value)
    return root.to_bytes()


def _dsn_as_text(raw: bytes, rng: random.Random) -> bytes | None:
    """The delivery-status fields come as a text/plain attachment."""
    root = parse(raw)
    targets = _dsn_parts(root)
    if not targets:
        return None
    for p in targets:
        p.set("Content-Type", 'text/plain; charset="us-ascii"')
        p.set("Content-Disposition", 'attachment; filename="details.txt"')
    return root.to_bytes()


def _returned_removed(raw: bytes, rng: random.Random) -> bytes | None:
    root = parse(raw)
    targets = _returned_parts(root)
    if not targets:
        return None
    for p in targets:
        _drop(root, p)
    return root.to_bytes()


def _returned_cut(raw: bytes, rng: random.Random) -> bytes | None:
    """The returned copy cut at a random point (a size limit, a broken relay)."""
    root = parse(raw)
    targets = _returned_parts(root)
    if not targets:
        return None
    for p in targets:
        data = p.decoded()
        if len(data) > 2:
            p.encode(data[: rng.randrange(1, len(data))])
    return root.to_bytes()


def _returned_headers_only(raw: bytes, rng: random.Random) -> bytes | None:
    root = parse(raw)
    targets = [p for p in _returned_parts(root) if p.ctype in ("message/rfc822", "message/global")]
    if not targets:
        return None
    for p in targets:
        data = p.decoded().lstrip(b"\n")
        i = data.find(b"\n\n")
        p.set("Content-Type", "text/rfc822-headers")
        p.remove("Content-Transfer-Encoding")
        p.encode(data if i < 0 else data[: i + 1], "")
    return root.to_bytes()


_RECEIVED = (
    b"Received: from mx-in-3.relay.example.net (mx-in-3.relay.example.net [192.0.2.33])\n"
    b"\tby imap.mail.example.org (Postfix) with ESMTPS id 4Q2k1X0d3Kz9v\n"
    b"\tfor <bounces@mail.example.org>; Mon, 7 Dec 2026 01:02:03 +0000 (UTC)",
    b"Received: from filter.relay.example.net (localhost [127.0.0.1])\n"
    b"\tby mx-in-3.relay.example.net (Postfix) with ESMTP id 7F2A81C0042\n"
    b"\tfor <bounces@mail.example.org>; Mon, 7 Dec 2026 01:02:02 +0000 (UTC)",
    b"ARC-Seal: i=1; a=rsa-sha256; t=1796605322; cv=none; d=relay.example.net; s=arc-2026;\n"
    b"\tb=QmFzZTY0IGlzIG5vdCBhIHNpZ25hdHVyZSBidXQgaXQgbG9va3MgbGlrZSBvbmUgZm9yIHRlc3Rz",
    b"ARC-Message-Signature: i=1; a=rsa-sha256; c=relaxed/relaxed; d=relay.example.net;\n"
    b"\ts=arc-2026; h=from:to:subject:date:message-id; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;\n"
    b"\tb=dGhpcyBpcyBhIHRlc3Qgb2YgYSBsb25nIGhlYWRlciB0aGF0IGNhcnJpZXMgYmFzZTY0",
    b"ARC-Authentication-Results: i=1; relay.example.net; dkim=none; spf=pass\n"
    b"\tsmtp.mailfrom=relay.example.net; dmarc=none",
    b"Authentication-Results: mx-in-3.relay.example.net; spf=none smtp.mailfrom=<>;\n"
    b"\tdkim=pass header.d=relay.example.net",
    b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=relay.example.net;\n"
    b"\ts=mail2026; t=1796605321; h=from:to:subject:date;\n"
    b"\tbh=frcCV1k9oG9oKj3dpUqdJg1PxRT2RSN/XKdLCPjaYaY=;\n"
    b"\tb=YW5vdGhlciBmYWtlIHNpZ25hdHVyZSB0aGF0IGlzIGxvbmcgZW5vdWdoIHRvIGZvbGQgdHdpY2U=",
    b"X-MS-Exchange-Organization-SCL: 1",
    b"X-Spam-Status: No, score=-0.1 required=5.0 tests=BAYES_00,DKIM_SIGNED autolearn=ham",
    b"X-Virus-Scanned: clamav-milter 1.0.3 at mx-in-3.relay.example.net",
)


_RESENT = (
    b"Resent-From: it-ops@corp.example",
    b"Resent-To: bounces@mail.example.org",
    b"Resent-Date: Mon, 7 Dec 2026 01:02:04 +0000",
    b"Resent-Message-ID: <resent-1@corp.example>",
    b"X-Forwarded-To: bounces@mail.example.org",
    b"X-Forwarded-For: it-ops@corp.example bounces@mail.example.org",
)


def _resent(raw: bytes, rng: random.Random) -> bytes | None:
    """Redirected unchanged by a mailbox rule or Sieve `redirect` (Resent-*, X-Forwarded-*)."""
    root = parse(raw)
    start = 1 if root.fields and root.fields[0].startswith(b"From ") else 0
    root.fields[start:start] = list(_RESENT)
    return root.to_bytes()


def _received(raw: bytes, rng: random.Random) -> bytes | None:
    """A longer path: Received chain, ARC set, DKIM signature, filter stamps on top."""
    root = parse(raw)
    start = 1 if root.fields and root.fields[0].startswith(b"From ") else 0
    root.fields[start:start] = list(_RECEIVED)
    return root.to_bytes()


_BANNER = b"This email has been scanned by the Example AntiVirus service. No threats were found.\n"
_FOOTER = (
    b"\n_______________________________________________\n"
    b"it-ops mailing list -- it-ops@lists.example.org\n"
    b"To unsubscribe send an email to it-ops-leave@lists.example.org\n"
)
_DISCLAIMER = (
    b"\n--\nCONFIDENTIALITY NOTICE: This e-mail and any attachments are intended only for the\n"
    b"person or entity to which it is addressed. If you are not the intended recipient, you\n"
    b"must not read, copy or distribute it; please notify the sender at compliance@corp.example\n"
    b"and delete it. E-mail cannot be guaranteed to be delivered secure or error-free.\n"
)


def _insert(text: bytes, top: bool) -> Callable[[bytes], bytes]:
    def fn(data: bytes) -> bytes:
        html = b"<html" in data[:2000].lower() or b"<body" in data[:4000].lower()
        if html:
            para = b"<p>" + text.strip().replace(b"\n", b"<br>") + b"</p>"
            if top:
                m = re.search(rb"<body[^>]*>", data, re.I)
                return data[: m.end()] + para + data[m.end() :] if m else para + data
            m = re.search(rb"</body>", data, re.I)
            return data[: m.start()] + para + data[m.start() :] if m else data + para
        if top:
            return text + b"\n" + data
        return data.rstrip(b"\n") + b"\n" + text

    return fn


def _forward(person: bool) -> Callable[[bytes, random.Random], bytes | None]:
    """The whole notice attached as message/rfc822 to a new message: by a person ("Fwd:")
    or by a gateway that keeps the subject and says it forwarded automatically."""

    def apply(raw: bytes, rng: random.Random) -> bytes | None:
        root = parse(raw)
        subject = (root.get("subject") or b"").decode("latin-1")
        if person:
            head = (f"From: Pat Example <pat@corp.example>\nTo: it-ops@corp.example\nSubject: Fwd: {subject}\n"
                    "X-Mailer: Example Mail 4.2\n")
            note = b"FYI, this came back. Can you have a look?\n\nPat\n"
        else:
            head = ("From: Mail Gateway <gateway@relay.example.net>\nTo: bounces@mail.example.org\n"
                    f"Subject: {subject}\nAuto-Submitted: auto-forwarded\n")
            note = b"The attached message was forwarded automatically by the mail gateway.\n"
        b = "fwd-" + hashlib.sha1(raw).hexdigest()[:12]
        head += (f"Date: Mon, 7 Dec 2026 01:02:03 +0000\nMessage-ID: <{b}@relay.example.net>\n"
                 f'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="{b}"\n')
        inner = raw[raw.index(b"\n") + 1 :] if raw.startswith(b"From ") else raw
        return (head.encode() + f"\n--{b}\nContent-Type: text/plain; charset=us-ascii\n\n".encode() + note
                + f"\n--{b}\nContent-Type: message/rfc822\nContent-Disposition: attachment\n\n".encode()
                + inner.rstrip(b"\n") + f"\n--{b}--\n".encode())

    return apply


def _eol(kind: str) -> Callable[[bytes, random.Random], bytes | None]:
    def apply(raw: bytes, rng: random.Random) -> bytes | None:
        if kind == "crlf":
            return raw.replace(b"\n", b"\r\n")
        lines = raw.split(b"\n")
        return b"".join(ln + (b"\r\n" if n % 2 else b"\n") for n, ln in enumerate(lines[:-1])) + lines[-1]

    return apply


def _subject(kind: str) -> Callable[[bytes, random.Random], bytes | None]:
    """A gateway's tag in front of the subject, or the subject as an RFC 2047 encoded word."""

    def apply(raw: bytes, rng: random.Random) -> bytes | None:
        root = parse(raw)
        value = root.get("subject")
        if value is None:
            return None
        if kind == "tag":
            root.set("Subject", "[EXTERNAL] " + value.decode("latin-1"))
        else:
            if b"=?" in value:
                return None
            text = value.decode("utf-8", "replace")
            root.set("Subject", "=?utf-8?B?" + base64.b64encode(text.encode("utf-8")).decode("ascii") + "?=")
        return root.to_bytes()

    return apply


def _html_only(raw: bytes, rng: random.Random) -> bytes | None:
    """The notice's text rendered as HTML (a gateway or client that rewrites plain text):
    the first text/plain part, as UTF-8, when it is the only body text."""
    root = parse(raw)
    texts = _text_parts(root)
    if not texts or texts[0].ctype != "text/plain" or any(p.ctype == "text/html" for p in texts):
        return None
    p = texts[0]
    try:
        text = p.decoded().decode(_codec(p.param("charset")))
    except (UnicodeDecodeError, LookupError):
        return None
    body = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    html = "<html><body><p>" + body.replace("\n\n", "</p>\n<p>").replace("\n", "<br>\n") + "</p></body></html>\n"
    p.set("Content-Type", 'text/html; charset="utf-8"')
    p.encode(html.encode("utf-8"))
    return root.to_bytes()


def _codec(charset: str | None) -> str:
    cs = (charset or "us-ascii").strip().lower()
    return "latin-1" if cs in ("us-ascii", "ascii", "") else cs


def _header_case(raw: bytes, rng: random.Random) -> bytes | None:
    """Header field names in lower case (some gateways and mail stores write them so)."""
    root = parse(raw)
    for p in root.walk():
        p.fields = [
            (f[: f.index(b":")].lower() + f[f.index(b":") :]) if b":" in f and not f.startswith(b"From ") else f
            for f in p.fields
        ]
    return root.to_bytes()


def _identity(raw: bytes, rng: random.Random) -> bytes | None:
    return parse(raw).to_bytes()


@dataclass(frozen=True)
class Transform:
    name: str
    group: str
    apply: Callable[[bytes, random.Random], bytes | None]
    doc: str


TRANSFORMS: tuple[Transform, ...] = (
    Transform("identity", "control", _identity, "split and rebuilt by this tool (must be byte-identical)"),
    Transform("qp-text", "encoding", _reencode(_text_parts, "quoted-printable"), "text parts as quoted-printable"),
    Transform("b64-text", "encoding", _reencode(_text_parts, "base64"), "text parts as base64"),
    Transform("b64-dsn", "encoding", _reencode(_dsn_parts, "base64"), "delivery-status part as base64"),
    Transform("qp-dsn", "encoding", _reencode(_dsn_parts, "quoted-printable"), "delivery-status part as QP"),
    Transform("8bit", "encoding", _to_8bit, "base64/QP parts decoded to 8bit"),
    Transform("7bit", "encoding", _to_7bit, "8-bit parts downgraded to quoted-printable"),
    Transform("charset", "encoding", _relabel, "utf-8 <-> iso-8859-1 where lossless"),
    Transform("crlf", "layout", _eol("crlf"), "CRLF line ends"),
    Transform("mixed-eol", "layout", _eol("mixed"), "LF and CRLF alternating"),
    Transform("wrap76", "layout", _map_text(_wrap_lines(76)), "text lines hard-wrapped at 76"),
    Transform("wrap78", "layout", _map_text(_wrap_lines(78)), "text lines hard-wrapped at 78"),
    Transform("fold-dsn", "layout", _map_text(_fold_fields(40, False), dsn=True, text=False),
              "DSN fields folded at 40 columns (space)"),
    Transform("fold-dsn-tab", "layout", _map_text(_fold_fields(60, True), dsn=True, text=False),
              "DSN fields folded at 60 columns (tab)"),
    Transform("trailing-ws", "layout", _map_text(_trailing_ws, dsn=True), "trailing white space on every line"),
    Transform("tabs", "layout", _map_text(_tabs, dsn=True), "indentation and field separators as tabs"),
    Transform("dsn-removed", "dsn", _dsn_removed, "no delivery-status part (text-only notice)"),
    Transform("dsn-as-text", "dsn", _dsn_as_text, "delivery-status fields as a text/plain attachment"),
    Transform("dsn-reordered", "dsn", _map_text(_dsn_fields(_reorder), dsn=True, text=False),
              "DSN fields in reverse order within each block"),
    Transform("dsn-upper", "dsn", _map_text(_dsn_fields(_name_case(True)), dsn=True, text=False),
              "DSN field names in upper case"),
    Transform("dsn-lower", "dsn", _map_text(_dsn_fields(_name_case(False)), dsn=True, text=False),
              "DSN field names in lower case"),
    Transform("returned-removed", "returned", _returned_removed, "no returned copy"),
    Transform("returned-cut", "returned", _returned_cut, "returned copy cut at a random point"),
    Transform("returned-headers", "returned", _returned_headers_only, "returned copy as text/rfc822-headers"),
    Transform("received", "wrapper", _received, "Received chain, ARC, DKIM, filter stamps added"),
    Transform("banner-top", "wrapper", _map_text(_insert(_BANNER, True), first_only=True),
              "antivirus banner at the top of the text"),
    Transform("banner-bottom", "wrapper", _map_text(_insert(_BANNER, False), first_only=True),
              "antivirus banner at the bottom of the text"),
    Transform("list-footer", "wrapper", _map_text(_insert(_FOOTER, False), first_only=True),
              "a list's footer (with addresses) after the text"),
    Transform("disclaimer", "wrapper", _map_text(_insert(_DISCLAIMER, False), first_only=True),
              "a legal disclaimer (with an address) after the text"),
    Transform("resent", "wrapper", _resent, "redirected unchanged (Resent-*, X-Forwarded-* headers)"),
    Transform("subject-tag", "wrapper", _subject("tag"), "a gateway's [EXTERNAL] tag before the subject"),
    Transform("subject-2047", "encoding", _subject("2047"), "the subject as an RFC 2047 base64 word"),
    Transform("html-only", "layout", _html_only, "plain text parts rendered as HTML"),
    Transform("header-case", "layout", _header_case, "header field names in lower case"),
    Transform("forward-gateway", "wrapper", _forward(person=False),
              "attached to a gateway's automatic forward (subject kept)"),
    Transform("forward-person", "wrapper", _forward(person=True),
              "attached to a person's Fwd: (expected: not a bounce)"),
)
BY_NAME = {t.name: t for t in TRANSFORMS}

# ---------------------------------------------------------------------------------------
# Answers and the sweep
# ---------------------------------------------------------------------------------------

Answer = tuple[bool, frozenset[tuple[str, bool | None, bool | None, str | None]]]


def answer(raw: bytes) -> Answer:
    """What the operator acts on: was anything bounced, and per bounced recipient its
    hard/soft, permanent and reason."""
    result = parse_bounce(raw)
    recs = frozenset(
        (r.recipient.lower(), r.hard, r.permanent, r.reason)
        for r in result.recipients
        if r.recipient and r.reason not in ("vacation", "delivered") and r.category != Category.NOT_BOUNCE
    )
    return (result.kind in _BOUNCED_KINDS or bool(recs), recs)


def normalise(raw: bytes) -> bytes:
    """The transformations start from LF line ends (IMAP's CRLF and LF read the same:
    tests/parsing/test_line_endings.py)."""
    return raw.replace(b"\r\n", b"\n")


def rng_for(name: str, transform: str) -> random.Random:
    return random.Random(int.from_bytes(hashlib.sha256(f"{name}/{transform}".encode()).digest()[:8], "big"))


def expected_answer(transform: str, original: Answer) -> Answer:
    """The right answer after ``transform``: a person's forward is no bounce report
    (recognise.person_sent); everything else must leave the answer as it was."""
    if transform == "forward-person":
        return (False, frozenset())
    return original


@dataclass
class Change:
    corpus: str
    file: str
    transform: str
    before: Answer
    after: Answer
    why: str | None = None  # set when the change is expected: the information is gone


def sweep(corpus: str, paths: Iterable[Path], transforms: Iterable[Transform]) -> tuple[dict[str, int], list[Change]]:
    """Apply each transform to each file; count where it applies, collect changed answers.

    For ordinary mail (the `notbounce` corpus) the only invariant is "nothing bounced"."""
    applied: dict[str, int] = {}
    changes: list[Change] = []
    transforms = list(transforms)
    for path in paths:
        raw = normalise(path.read_bytes())
        before = answer(raw)
        if corpus == "notbounce" and before[0]:
            before = (False, frozenset())  # judged by test_negative_set.py
        for t in transforms:
            new = t.apply(raw, rng_for(path.name, t.name))
            if new is None:
                continue
            applied[t.name] = applied.get(t.name, 0) + 1
            if t.name == "identity":
                if new != raw:
                    changes.append(Change(corpus, path.name, t.name, before, (False, frozenset())))
                continue
            after = answer(new)
            want = expected_answer(t.name, before)
            if corpus == "notbounce":
                if after[0] or after[1]:
                    changes.append(Change(corpus, path.name, t.name, before, after))
            elif after != want:
                why = EXPECTED.get((corpus, path.name, t.name)) or destroyed(t.name, raw, new)
                changes.append(Change(corpus, path.name, t.name, want, after, why))
    return applied, changes


# Changes that are the transformation's doing, not the engine's: the information the answer
# rests on is gone. (corpus, file, transform) -> why, reviewed one by one (docs/engine.md,
# *Format invariance*). Removing the DSN part or the returned copy is judged by `destroyed`.
_STATUS_ONLY = "the DSN's status (5.1.1, 5.2.2 ...) decided the reason; the text's wording alone gives another"
_WEAK = "known weakness: "
_REVIEWED: dict[str, tuple[tuple[str, str, str], ...]] = {
    _STATUS_ONLY: (
        ("shared", "lhost-messagingserver-04.eml", "dsn-removed"),
        ("shared", "lhost-messagingserver-09.eml", "dsn-removed"),
        ("shared", "lhost-postfix-14.eml", "dsn-removed"),
        ("shared", "lhost-sendmail-13.eml", "dsn-removed"),
        ("shared", "lhost-sendmail-43.eml", "dsn-removed"),
        ("shared", "rhost-aol-02.eml", "dsn-removed"),
        ("shared", "rhost-aol-04.eml", "dsn-removed"),
        ("shared", "rhost-aol-06.eml", "dsn-removed"),
        ("shared", "rhost-messagelabs-02.eml", "dsn-removed"),
        ("shared", "rhost-microsoft-03.eml", "dsn-removed"),
        ("shared", "rhost-nttdocomo-03.eml", "dsn-removed"),
        ("flufl", "dsn_11.txt", "dsn-removed"),
        ("flufl", "dsn_12.txt", "dsn-removed"),
        ("flufl", "dsn_13.txt", "dsn-removed"),
        ("flufl", "dsn_14.txt", "dsn-removed"),
    ),
    "the DSN's 5.x.x status made the mailbox-full failure permanent; the text says it as a temporary one": (
        ("shared", "lhost-exim-60.eml", "dsn-removed"),
    ),
    "the text lists the alias's target and the address we mailed ('expanded from'); the DSN only the latter": (
        ("shared", "lhost-sendmail-03.eml", "dsn-removed"),
    ),
    "the original is unreadable (a DSN nested in the returned copy); without the outer DSN part it is read as"
    " a failure that names nobody": (
        ("shared", "rfc3464-28.eml", "dsn-removed"),
    ),
    _WEAK + "a double bounce: without its own DSN the notice's returned copy (itself a bounce with a DSN)"
    " is read instead of its text": (
        ("shared", "lhost-sendmail-41.eml", "dsn-removed"),
    ),
    _WEAK + "Office 365's text-only NDR: the recipient is read from the returned headers, not the sentence": (
        ("shared", "lhost-office365-13.eml", "dsn-removed"),
    ),
    _WEAK + "Messaging Server's text ('Recipient address:' / 'Original address:') and the original's quoted"
    " To: line give more addresses than the DSN": (
        ("flufl", "dsn_01.txt", "dsn-removed"),
        ("flufl", "dsn_04.txt", "dsn-removed"),
    ),
    _WEAK + "DSN fields in a text/plain attachment are read only for a record with an address; this"
    " Final-Recipient is a mailbox file path, so its Status 5.0.0 is lost": (
        ("shared", "lhost-exim-60.eml", "dsn-as-text"),
    ),
    "both recipients' fields stand in one block without a blank line between them: reversed, each"
    " Diagnostic-Code stands under the other recipient's Final-Recipient": (
        ("shared", "rhost-aol-03.eml", "dsn-reordered"),
    ),
    _WEAK + "a diagnostic re-wrapped onto an unindented line: OpenSMTPD's, Gmail's and two plain"
    " layouts read only its first line": tuple(
        ("shared", f, w) for f in ("lhost-opensmtpd-13.eml", "rfc3464-65.eml") for w in ("wrap76", "wrap78")
    ) + (("flufl", "simple_30.txt", "wrap76"), ("flufl", "simple_41.txt", "wrap76"),
         ("flufl", "simple_41.txt", "wrap78")),
    "no reason either way: 'undefined' (nothing said) becomes 'onhold' (a sentence without a cause)": (
        ("flufl", "caiwireless_01.txt", "banner-bottom"),
        ("flufl", "simple_10.txt", "banner-bottom"),
    ),
}
EXPECTED: dict[tuple[str, str, str], str] = {key: why for why, keys in _REVIEWED.items() for key in keys}

_WORD = re.compile(r"[a-z0-9][a-z0-9.@-]{3,}")


def _visible_text(raw: bytes) -> str:
    """What a reader of the transformed notice still has: its text parts (not the returned
    copy), decoded, lower-cased, white space folded."""
    root = parse(raw)
    texts = [p.decoded().decode("utf-8", "replace") for p in _text_parts(root) + _dsn_parts(root)]
    return " ".join(" ".join(texts).lower().split())


def destroyed(transform: str, original: bytes, new: bytes) -> str | None:
    """Why the answer could not survive ``transform`` (None: it should have).

    Without the DSN part: a recipient the text never names, or a diagnostic of which the
    text keeps less than 80 % of the words (the text says "delivery failed" where the DSN
    said "550 5.7.1 blocked by policy"; a 4.x.x status the text does not repeat). Without
    the returned copy: a recipient named only in it (ARF reports that name the complainer
    only in the original's To, notices that name nobody)."""
    if transform not in ("dsn-removed", "returned-removed", "returned-cut", "returned-headers"):
        return None
    text = _visible_text(new)
    whole = new.decode("utf-8", "replace").lower()
    for r in parse_bounce(original).recipients:
        addr = (r.recipient or "").lower()
        if transform != "dsn-removed":
            if addr and addr not in whole:
                return "the recipient was named only in the returned copy"
            continue
        if addr and addr not in text:
            return "the recipient was named only in the DSN part"
        words = _WORD.findall((r.diagnostic or "").lower())
        if words and sum(w in text for w in words) < 0.8 * len(words):
            return "the text does not repeat the DSN's diagnostic"
        if r.status and r.status.startswith("4") and not re.search(r"\b4\d\d\b|\b4\.\d", text):
            return "the temporary status (4.x.x) was only in the DSN part"
    return None


def corpus_files(corpus: str) -> list[Path]:
    return sorted(p for p in CORPORA[corpus].iterdir() if p.suffix in (".eml", ".txt"))


def _fmt(a: Answer) -> str:
    return ("bounced " if a[0] else "") + ", ".join(
        f"{r} hard={h} perm={p} {why}" for r, h, p, why in sorted(a[1], key=str)) or "nothing"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", action="append", choices=sorted(CORPORA), help="default: all three")
    ap.add_argument("--only", action="append", help="transform name (repeatable)")
    ap.add_argument("--show", type=int, default=0, help="list up to N changed files per transform")
    ap.add_argument("-v", "--verbose", action="store_true", help="show the answers before and after")
    args = ap.parse_args(argv)
    transforms = [BY_NAME[n] for n in args.only] if args.only else list(TRANSFORMS)
    t0 = time.process_time()
    total_unexpected = 0
    for corpus in args.corpus or ["shared", "flufl", "notbounce"]:
        paths = corpus_files(corpus)
        applied, changes = sweep(corpus, paths, transforms)
        print(f"\n{corpus}: {len(paths)} files")
        print(f"  {'transform':18} {'group':9} {'applies':>7} {'changed':>7} {'expected':>8}  what")
        for t in transforms:
            mine = [c for c in changes if c.transform == t.name]
            exp = [c for c in mine if c.why]
            total_unexpected += len(mine) - len(exp)
            print(f"  {t.name:18} {t.group:9} {applied.get(t.name, 0):7} {len(mine):7} {len(exp):8}  {t.doc}")
            for c in mine[: args.show]:
                print(f"      {c.file}: {c.why or 'UNEXPECTED'}")
                if args.verbose:
                    print(f"          want: {_fmt(c.before)}\n          got:  {_fmt(c.after)}")
    print(f"\nunexpected changes: {total_unexpected}   ({time.process_time() - t0:.1f} s CPU)")
    return 1 if total_unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
