"""Builders for synthetic delivery notices (tests/parsing/test_generalisation.py).

The notices are written from the documented formats (RFC 3464 / RFC 3462 for the report,
RFC 2045 for the encodings, RFC 5322 for folding, the MTAs' documented layouts), not copied
from any collected bounce: every address, host and sentence here is made up for the test.
"""

from __future__ import annotations

import base64
import quopri

US = "news@mail.example.com"
VERP = "bounces+a1b2c3d4e5f6a7b8@return.example.com"
TOKEN = "a1b2c3d4e5f6a7b8"
DAEMON = "Mail Delivery System <MAILER-DAEMON@mx.example.net>"
DATE = "Tue, 01 Dec 2026 08:00:00 +0000"


def original(rcpt: str, subject: str = "December news") -> str:
    """The header block of the message we sent (the returned copy)."""
    return (
        f"From: Newsletter <{US}>\nTo: {rcpt}\nSubject: {subject}\n"
        "Message-ID: <n-2026-12@mail.example.com>\n"
        f"X-Bouncemgr-Token: {TOKEN}\nDate: Mon, 30 Nov 2026 10:00:00 +0000\n"
    )


def headers(
    subject: str,
    *,
    frm: str = DAEMON,
    to: str = VERP,
    ctype: str | None = None,
    extra: str = "",
    return_path: str = "<>",
) -> str:
    h = (
        f"Return-Path: {return_path}\nFrom: {frm}\nTo: {to}\nSubject: {subject}\nDate: {DATE}\n"
        "Message-ID: <ndr-1@mx.example.net>\nMIME-Version: 1.0\n" + extra
    )
    if ctype:
        h += f"Content-Type: {ctype}\n"
    return h


def encode(text: str, cte: str | None) -> str:
    if cte == "base64":
        return base64.encodebytes(text.encode()).decode()
    if cte == "quoted-printable":
        return quopri.encodestring(text.encode()).decode()
    return text


def part(ctype: str, text: str, cte: str | None = None, extra: str = "") -> str:
    head = f"Content-Type: {ctype}\n" + extra
    if cte:
        head += f"Content-Transfer-Encoding: {cte}\n"
    return head + "\n" + encode(text, cte)


def multipart(ctype: str, parts: list[str], boundary: str = "=_b0und4ry_=") -> tuple[str, str]:
    """(Content-Type value, body) of a multipart made of the given parts."""
    body = "This is a MIME-encapsulated message.\n\n"
    body += "".join(f"--{boundary}\n{p}\n" for p in parts) + f"--{boundary}--\n"
    return f'{ctype}; boundary="{boundary}"', body


def report(
    human: str,
    ds: str | None,
    returned: str,
    *,
    ds_cte: str | None = None,
    human_cte: str | None = None,
    ds_ctype: str = "message/delivery-status",
    human_ctype: str = 'text/plain; charset="utf-8"',
    outer: str = "multipart/report; report-type=delivery-status",
    returned_ctype: str = "text/rfc822-headers",
) -> tuple[str, str]:
    parts = [part(human_ctype, human, human_cte)]
    if ds is not None:
        parts.append(part(ds_ctype, ds, ds_cte))
    parts.append(part(returned_ctype, returned))
    return multipart(outer, parts)


def message(subject: str, ctype_body: tuple[str, str], **kw: str) -> bytes:
    ctype, body = ctype_body
    return (headers(subject, ctype=ctype, **kw) + "\n" + body).encode()


def plain(subject: str, body: str, *, charset: str = "utf-8", cte: str | None = None, **kw: str) -> bytes:
    extra = kw.pop("extra", "")
    if cte:
        extra += f"Content-Transfer-Encoding: {cte}\n"
    return (
        headers(subject, ctype=f'text/plain; charset="{charset}"', extra=extra, **kw) + "\n" + encode(body, cte)
    ).encode()


def fold(field: str, width: int, indent: str = " ") -> str:
    """Fold a header-style field at whitespace so that no line exceeds `width` (RFC 5322 2.2.3)."""
    words = field.split(" ")
    lines: list[str] = []
    cur = words[0]
    for w in words[1:]:
        if len(cur) + 1 + len(w) > width and cur.strip():
            lines.append(cur)
            cur = indent + w
        else:
            cur += " " + w
    lines.append(cur)
    return "\n".join(lines)


def hard_wrap(text: str, width: int) -> str:
    """Cut every line at `width` characters wherever it falls (what some gateways do)."""
    out: list[str] = []
    for line in text.split("\n"):
        while len(line) > width:
            out.append(line[:width])
            line = line[width:]
        out.append(line)
    return "\n".join(out)


def ds_fields(
    blocks: list[dict[str, str]],
    *,
    reporting: str = "dns; mx.example.net",
    arrival: str = DATE,
) -> str:
    """A message/delivery-status body: per-message fields, then one block per recipient."""
    text = f"Reporting-MTA: {reporting}\nArrival-Date: {arrival}\n"
    for b in blocks:
        text += "\n" + "".join(f"{k}: {v}\n" for k, v in b.items())
    return text
