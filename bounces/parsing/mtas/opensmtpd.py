"""OpenSMTPD: "This is the MAILER-DAEMON, please DO NOT REPLY" and lines "addr: reason"."""

from __future__ import annotations

import re

from ..common import Rec, find_command, norm_address
from ..message import Mail
from ._text import diag_rec, merge_dsn, region

NAME = "opensmtpd"
_MARK = re.compile(r"This is the MAILER-DAEMON, please DO NOT REPLY to this e-?mail", re.I)
_START = re.compile(r"(?:following\s+list of recipients|following recipients)\s*:\s*\n", re.I)
_END = re.compile(r"\n\s*(?:Below is a copy of the original message|Please note that this is only a temporary)", re.I)
_EXPIRED = re.compile(r"^\s*Envelope expired\b", re.I)
_LINE = re.compile(r"^\s*<?([^\s<>]+@[^\s<>:]+)>?\s*:\s*(.*)$")


def match(mail: Mail) -> bool:
    """OpenSMTPD's fixed introduction."""
    return "this is the mailer-daemon, please do not reply" in mail.lc_head


def parse(mail: Mail, dsn: list[Rec]) -> list[Rec]:
    """One line per recipient: "addr: diagnostic"."""
    text = region(mail.body, _START, _END)
    delayed = "delayed" in mail.subject.lower() or "temporary failure report" in mail.body
    recs: list[Rec] = []
    cur: Rec | None = None
    for line in text.split("\n"):
        m = _LINE.match(line)
        if m and norm_address(m.group(1)):
            cur = diag_rec(norm_address(m.group(1)), m.group(2))
            cur.command = find_command(m.group(2))
            if delayed:
                cur.action = "delayed"
            recs.append(cur)
        elif cur is not None and line.startswith(" ") and line.strip():
            cur.diagnostic += " " + line.strip()
    recs = merge_dsn(recs, dsn)
    for r in recs:
        if _EXPIRED.search(r.diagnostic):
            # OpenSMTPD reports an expired envelope with "Action: delayed" / "Status: 4.4.7",
            # yet the message has been removed from the queue: it is a final failure
            r.action, r.status = "failed", None
    return recs
