"""Lotus Notes / Domino SMTP MTA: "------- Failure Reasons --------" section listing the
cause and the recipients, then "------- Returned Message --------"."""

from __future__ import annotations

import re

from ..common import ADDR_RE, Rec, norm_address
from ..message import Mail
from ._text import diag_rec, region

NAME = "notes"
_START = re.compile(r"^-+\s*Failure Reasons\s*-+\s*$", re.I | re.M)
_END = re.compile(r"^-+\s*Returned Message\s*-+\s*$", re.I | re.M)


def match(mail: Mail) -> bool:
    """The Notes section markers."""
    return "failure reasons" in mail.lc_head and "returned message" in mail.lc_head


def parse(mail: Mail, dsn: list[Rec]) -> list[Rec]:
    """Address lines are recipients; the other lines are the shared cause."""
    text = region(mail.body, _START, _END)
    addrs: list[str] = []
    cause: list[str] = []
    for line in text.split("\n"):
        s = line.strip()
        if not s:
            continue
        if ADDR_RE.fullmatch(s.strip("<>")):
            a = norm_address(s)
            if a:
                addrs.append(a)
        else:
            cause.append(s)
    recs = []
    for a in addrs:
        rec = diag_rec(a, " ".join(cause))
        rec.action = "failed"
        recs.append(rec)
    return recs
