"""KDDI (au one / dion) notices: "Could not be delivered to: <addr>" and the cause below."""

from __future__ import annotations

import re

from ..common import Rec, norm_address
from ..message import Mail
from ._text import cut_returned, diag_rec, merge_dsn

NAME = "kddi"
_RCPT = re.compile(r"Could not be delivered to:\s*<?([^<>\s]+@[^<>\s]+)>?\s*\n(.*)", re.I)


def match(mail: Mail) -> bool:
    """KDDI's sender domains with its fixed English wording."""
    frm = mail.lc_from
    return ("dion.ne.jp" in frm or "kddi" in frm or "auone" in frm or "au.com" in frm) and (
        "could not be delivered to" in mail.lc_head
    )


def parse(mail: Mail, dsn: list[Rec]) -> list[Rec]:
    """One recipient per "Could not be delivered to:" line, the following line as cause."""
    recs = []
    for m in _RCPT.finditer(cut_returned(mail.body)):
        a = norm_address(m.group(1))
        if a:
            rec = diag_rec(a, m.group(2).strip())
            rec.action = "failed"
            recs.append(rec)
    return merge_dsn(recs, dsn)
