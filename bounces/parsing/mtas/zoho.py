"""Zoho Mail: "addr Invalid Address, ERROR_CODE :550, ERROR_CODE :5.1.1 ..." lines, and
delay notices "[Status: Error, Address: <addr>, ResponseCode 421, , Host not reachable.]"."""

from __future__ import annotations

import re

from ..common import Rec, norm_address
from ..message import Mail
from ._text import diag_rec, merge_dsn

NAME = "zoho"
_FAILED = re.compile(r"^\s*<?([^\s<>]+@[^\s<>,]+)>?\s+(.*ERROR_CODE\s*:.*)$", re.M)
_DELAYED = re.compile(r"^\s*\[Status:\s*\w+,\s*Address:\s*<?([^\s<>,]+@[^\s<>,]+)>?,\s*ResponseCode\s*(\d{3})?[ ,]*(.*?)\]?\s*$", re.M)


def match(mail: Mail) -> bool:
    """Zoho's mailer-daemon or its ERROR_CODE wording."""
    return "zoho" in mail.lc_from or "error_code :" in mail.lc_head


def parse(mail: Mail, dsn: list[Rec]) -> list[Rec]:
    """Failed lines carry the reply; delay lines carry the code and a cause."""
    recs: list[Rec] = []
    for m in _FAILED.finditer(mail.body):
        text = re.sub(r"ERROR_CODE\s*:\s*", "", m.group(2))
        rec = diag_rec(norm_address(m.group(1)), text.replace(",", " "))
        rec.action = "failed"
        recs.append(rec)
    for m in _DELAYED.finditer(mail.body):
        rec = diag_rec(norm_address(m.group(1)), f"{m.group(2) or ''} {m.group(3)}".strip())
        rec.action = "delayed"
        recs.append(rec)
    return merge_dsn([r for r in recs if r.recipient], dsn)
