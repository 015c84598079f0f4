"""Verizon Wireless MMS gateway (vzwpix/vtext): "Message could not be delivered to mobile."
The recipient is only named in the returned "Original Message:" headers."""

from __future__ import annotations

import re

from ..common import Rec, norm_address
from ..message import Mail
from ._text import diag_rec

NAME = "verizon"
_ORIGINAL = re.compile(r"^\s*Original Message:\s*$", re.I | re.M)
_TO = re.compile(r"^\s*To:\s*(.+)$", re.I | re.M)


def match(mail: Mail) -> bool:
    """Verizon's MMSC sender."""
    frm = mail.lc_from
    return ("vzwpix.com" in frm or "vtext.com" in frm) and "could not be delivered" in mail.lc_head


def parse(mail: Mail, dsn: list[Rec]) -> list[Rec]:
    """The cause is above "Original Message:"; the recipient is its To."""
    m = _ORIGINAL.search(mail.body)
    if not m:
        return []
    cause = " ".join(mail.body[: m.start()].split())
    t = _TO.search(mail.body, m.end())
    a = norm_address(t.group(1)) if t else None
    if not a:
        return []
    rec = diag_rec(a, cause)
    rec.action = "failed"
    return [rec]
