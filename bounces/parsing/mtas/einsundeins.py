"""1&1 / IONOS (kundenserver): Exim-like wording but the list and the reason are not indented:
"The following address failed:" addr, then "For the following reason:" text."""

from __future__ import annotations

import re

from ..common import Rec, norm_address
from ..message import Mail
from ._text import diag_rec, region

NAME = "einsundeins"
_START = re.compile(r"The following addresses? failed:\s*\n", re.I)
_REASON = re.compile(r"For the following reasons?:\s*\n", re.I)
_END = re.compile(r"\n\s*---", re.I)


def match(mail: Mail) -> bool:
    """1&1's hosts or its fixed unindented layout."""
    lc = mail.lc_head
    return "for the following reason:" in lc and ("following address failed:" in lc or "following addresses failed:" in lc)


def parse(mail: Mail, dsn: list[Rec]) -> list[Rec]:
    """Recipient lines until the reason; the reason paragraph is the diagnostic."""
    addrs = region(mail.body, _START, _REASON)
    reason = " ".join(region(mail.body, _REASON, _END).split())
    recs = []
    for line in addrs.split("\n"):
        a = norm_address(line.strip()) if "@" in line else None
        if a:
            rec = diag_rec(a, reason)
            rec.action = "failed"
            recs.append(rec)
    return recs
