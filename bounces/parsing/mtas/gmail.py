"""Gmail's own (non-DSN) bounces: "Delivery to the following recipient failed permanently"."""

from __future__ import annotations

import re

from ..common import Rec, find_command, find_replycode, find_status, norm_address
from ..message import Mail
from ._text import cut_returned, diag_rec, merge_dsn

NAME = "gmail"
_START = re.compile(
    r"Delivery to the following recipients? (failed permanently|has been delayed|failed)\s*:\s*\n", re.I
)
_TECH = re.compile(r"Technical details of (?:permanent|temporary) failure:\s*(.*)", re.I | re.S)
_RETURNED = re.compile(
    r"(?:The error that the other server returned was|The response from the remote server was"
    r"|The response was)\s*:\s*(.*)",
    re.I | re.S,
)


def match(mail: Mail) -> bool:
    """Google's mailer-daemon with its fixed wording."""
    return "delivery to the following recipient" in mail.lc_head and bool(_START.search(mail.body[:2000]))


def parse(mail: Mail, dsn: list[Rec]) -> list[Rec]:
    """Indented recipients, then the technical details as the diagnostic."""
    body = cut_returned(mail.body)
    m = _START.search(body)
    if not m:
        return []
    delayed = "delayed" in m.group(1).lower()
    rest = body[m.end() :]
    addrs: list[str] = []
    for line in rest.split("\n"):
        if not line.strip():
            if addrs:
                break
            continue
        a = norm_address(line.strip()) if line.startswith((" ", "\t")) else None
        if not a:
            break
        addrs.append(a)
    t = _TECH.search(rest)
    diag = t.group(1).strip() if t else ""
    r = _RETURNED.search(diag)
    server = r.group(1).strip() if r else ""
    recs = []
    for a in addrs:
        rec = diag_rec(a, diag)
        if server:
            rec.status = find_status(server) or rec.status
            rec.replycode = find_replycode(server) or rec.replycode
        rec.command = find_command(diag)
        rec.action = "delayed" if delayed else "failed"
        recs.append(rec)
    return merge_dsn(recs, dsn)
