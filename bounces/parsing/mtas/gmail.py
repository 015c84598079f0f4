"""Gmail's own (non-DSN) bounces: "Delivery to the following recipient failed permanently"."""

from __future__ import annotations

import re

from .. import recognise
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


# The current layout: a "** Address not found **" / "** Delivery incomplete **" title, one
# sentence naming the recipient, then "The response from the remote server was:" and the reply.
_TITLE = re.compile(r"^\*\* ?([^*\n]{3,60}?) ?\*\*\s*$", re.M)
_NAMED = re.compile(
    r"(?:delivered to|delivering your message to|deliver your message to|reach)\s+<?([^\s<>@]+@[\w.-]+\w)", re.I
)


def match(mail: Mail) -> bool:
    """Google's mailer-daemon with its fixed wording."""
    head = mail.lc_head
    if "delivery to the following recipient" in head and _START.search(mail.body[:2000]):
        # Google sends them as "Mail Delivery Subsystem <mailer-daemon@...>" with an empty
        # return path; a newsletter or a person quoting the wording is not one
        return recognise.daemon_sender(mail) or bool(mail.ds_texts)
    return "** " in head and ("the response from the remote server was" in head or "the response was:" in head) and bool(
        _TITLE.search(mail.body[:600])
    )


def parse(mail: Mail, dsn: list[Rec]) -> list[Rec]:
    """Indented recipients, then the technical details as the diagnostic."""
    body = cut_returned(mail.body)
    m = _START.search(body)
    if not m:
        return _titled(body, dsn)
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


def _titled(body: str, dsn: list[Rec]) -> list[Rec]:
    """The titled layout: the recipient is named in the sentence under the title."""
    t = _TITLE.search(body[:600])
    if not t:
        return []
    r = _RETURNED.search(body)
    intro = body[t.end() : r.start() if r else len(body)]
    n = _NAMED.search(intro)
    if not n:
        return []
    addr = norm_address(n.group(1))
    if not addr:
        return []
    server = r.group(1).strip().split("\n\n")[0] if r else ""
    rec = diag_rec(addr, server or intro.strip())
    rec.status = find_status(server) or rec.status
    rec.replycode = find_replycode(server) or rec.replycode
    rec.command = find_command(server)
    temporary = "incomplete" in t.group(1).lower() or "temporary problem" in intro.lower()
    rec.action = "delayed" if temporary else "failed"
    return merge_dsn([rec], dsn)
