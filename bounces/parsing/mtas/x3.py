"""An unnamed MTA ("X3" in Sisimai's set): boxed notice "Delevery to the following
recipients failed permanently:" with "* addr" and "Technical details:"."""

from __future__ import annotations

import re

from ..common import Rec, find_command, norm_address
from ..message import Mail
from ._text import diag_rec, merge_dsn, region

NAME = "x3"
_START = re.compile(r"Del[ie]?very to the following recipients failed permanently:\s*\n", re.I)


def match(mail: Mail) -> bool:
    """The misspelt fixed phrase of this MTA."""
    lc = mail.lc_head
    return "to the following recipients failed permanently" in lc and "technical details" in lc


def parse(mail: Mail, dsn: list[Rec]) -> list[Rec]:
    """Starred recipients; the technical details line is the diagnostic."""
    text = region(mail.body, _START)
    addrs = []
    for line in text.split("\n"):
        m = re.match(r"^\s*\*\s*(\S+@\S+)", line)
        if m and norm_address(m.group(1)):
            addrs.append(norm_address(m.group(1)))
        elif addrs and line.strip().startswith("="):
            break
    tech = region(text, r"Technical details:\s*\n", r"\n\s*=+")
    diag = " ".join(tech.split())
    recs = []
    for a in addrs:
        rec = diag_rec(a, diag)
        rec.command = find_command(diag)
        recs.append(rec)
    return merge_dsn(recs, dsn)
