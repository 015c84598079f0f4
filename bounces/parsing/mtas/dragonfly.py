"""DragonFly Mail Agent (dma): "There was an error delivering your mail to <addr>."."""

from __future__ import annotations

import re

from ..common import Rec, find_command
from ..message import Mail
from ._text import cut_returned, diag_rec, merge_dsn

NAME = "dragonfly"
_RCPT = re.compile(r"There was an error delivering your mail to\s+<([^<>\s]+)>\.?", re.I)  # \s: re-wrapped
_REMOTE = re.compile(r"^(\S+) \[[\d.:a-fA-F]+\] did not like our", re.M)


def match(mail: Mail) -> bool:
    """dma's signature in the body or in Received."""
    lc = mail.lc_head
    return "dragonfly mail agent" in lc or "there was an error delivering your mail to" in lc


def parse(mail: Mail, dsn: list[Rec]) -> list[Rec]:
    """One recipient per "There was an error delivering your mail to <addr>" paragraph."""
    text = cut_returned(mail.body)
    text = text.split("Message headers follow", 1)[0]
    ms = list(_RCPT.finditer(text))
    recs: list[Rec] = []
    for i, m in enumerate(ms):
        end = ms[i + 1].start() if i + 1 < len(ms) else len(text)
        diag = text[m.end() : end].strip()
        rec = diag_rec(m.group(1), diag)
        rec.command = find_command(diag)
        r = _REMOTE.search(diag)
        if r:
            rec.remote_mta = r.group(1)
        recs.append(rec)
    return merge_dsn(recs, dsn)
