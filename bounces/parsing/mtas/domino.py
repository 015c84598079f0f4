"""IBM Domino: "Your message ... was not delivered to: addr because: reason"."""

from __future__ import annotations

import re

from ..common import Rec, norm_address
from ..message import Mail
from ._text import cut_returned, diag_rec, region

NAME = "domino"
_START = re.compile(r"was not delivered to:\s*\n", re.I)
_BECAUSE = re.compile(r"^\s*because:\s*$", re.I | re.M)


def match(mail: Mail) -> bool:
    """Domino's fixed wording."""
    lc = mail.lc_head
    return "was not delivered to:" in lc and "because:" in lc


def parse(mail: Mail, dsn: list[Rec]) -> list[Rec]:
    """Recipients between the two phrases; the "because:" paragraph is the diagnostic."""
    body = cut_returned(mail.body)
    text = region(body, _START, _BECAUSE)
    reason = region(body, _BECAUSE)
    lines = []
    for line in reason.split("\n"):
        if not line.strip():
            if lines:
                break
            continue
        lines.append(line.strip())
    recs = []
    for line in text.split("\n"):
        a = norm_address(line.strip()) if "@" in line else None
        if a:
            rec = diag_rec(a, " ".join(lines))
            rec.action = "failed"
            recs.append(rec)
    return recs
