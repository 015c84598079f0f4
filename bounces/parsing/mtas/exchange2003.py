"""Microsoft Exchange 2000/2003 (and Internet Mail Service 5.5): "did not reach the following
recipient(s):" then "addr on DATE" with indented diagnostics and MSEXCH:IMS codes."""

from __future__ import annotations

import re

from ..common import Rec, norm_address
from ..message import Mail
from ._text import diag_rec, merge_dsn, region

NAME = "exchange2003"
_START = re.compile(r"(?:did not reach the following recipient\(s\)|The following recipient\(s\) could not be reached):\s*\n", re.I)
# "addr on DATE", or an X.400 O/R address whose SMTP part names it (RFC 2156 mapping,
# Exchange 5.5: "c=US;a= ;p=ORG;o=SITE;dda:SMTP=a@b; on DATE")
_RCPT = re.compile(r"^\s*(?:[^@\n]*?\bdda:SMTP=)?([^\s;]+@[^\s;]+?);?(?:\s+on\s+.*)?$", re.I)
# MSEXCH:IMS error numbers that name the cause (Exchange 5.5/2000/2003).
_IMS = {
    "000C05A6": "The recipient name is not recognized, user unknown",
    "000C0595": "The recipient name is not recognized, user unknown",
    "000B099C": "host unknown",
    "000B09AA": "host unknown",
    "000B09B6": "mailbox full",
    "000C0524": "message too big",
}


def match(mail: Mail) -> bool:
    """Exchange 2003's fixed phrase or its MSEXCH diagnostic codes."""
    lc = mail.lc_head
    return "did not reach the following recipient" in lc or "msexch:" in lc or (
        "following recipient(s) could not be reached" in lc
    )


def parse(mail: Mail, dsn: list[Rec]) -> list[Rec]:
    """Recipients after the fixed phrase, each with the indented lines below it."""
    text = region(mail.body, _START)
    recs: list[Rec] = []
    cur: list[str] | None = None
    addr = None
    for line in text.split("\n"):
        m = _RCPT.match(line)
        if m and norm_address(m.group(1)):
            if addr:
                recs.append(_rec(addr, cur or []))
            addr, cur = norm_address(m.group(1)), []
            continue
        if addr is None:
            continue
        if not line.strip():
            break
        if cur is not None:
            cur.append(line.strip())
    if addr:
        recs.append(_rec(addr, cur or []))
    return merge_dsn(recs, dsn)


def _rec(addr: str | None, lines: list[str]) -> Rec:
    diag = " ".join(ln for ln in lines if not ln.startswith("The MTS-ID"))
    code = re.search(r"\(([0-9A-F]{8})\)", diag)
    if code and code.group(1) in _IMS:
        diag = f"{diag} ({_IMS[code.group(1)]})"
    rec = diag_rec(addr, diag)
    rec.action = "failed"
    return rec
