"""m-FILTER (Digital Arts): Japanese notice, recipients, then "-------server message",
"-------SMTP command" and "-------original message" sections."""

from __future__ import annotations

import re

from ..common import Rec, norm_address
from ..message import Mail
from ._text import diag_rec

NAME = "mfilter"
_SECTION = re.compile(r"^-{5,}\s*([A-Za-z][A-Za-z ]*?)\s*$", re.M)
_COMMANDS = {"RCPT TO": "RCPT", "RCPT": "RCPT", "MAIL FROM": "MAIL", "MAIL": "MAIL", "DATA": "DATA",
             "HELO": "HELO", "EHLO": "EHLO", "CONNECT": "CONN"}


def match(mail: Mail) -> bool:
    """m-FILTER names itself, and its section markers are unusual."""
    lc = mail.lc_head
    return "m-filter" in lc or ("-------server message" in lc and "-------smtp command" in lc)


def parse(mail: Mail, dsn: list[Rec]) -> list[Rec]:
    """Address lines before the first section; the sections give reply and command."""
    body = mail.body
    sections: dict[str, str] = {}
    marks = list(_SECTION.finditer(body))
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(body)
        sections[m.group(1).lower()] = body[m.end() : end].strip()
    head = body[: marks[0].start()] if marks else body
    reply = " ".join(sections.get("server message", "").split())
    command = _COMMANDS.get(sections.get("smtp command", "").strip().upper().split("\n")[0].strip())
    recs = []
    for line in head.split("\n"):
        s = line.strip()
        a = norm_address(s) if "@" in s and " " not in s else None
        if a:
            rec = diag_rec(a, reply)
            rec.command = command
            rec.action = "failed"
            recs.append(rec)
    return recs
