"""au by KDDI (EZweb) mobile mail: Japanese notice, then an English cause sentence, then
the recipients as "<addr>" (optionally ": reply"). The English sentence is the diagnostic."""

from __future__ import annotations

import re

from ..common import Rec, clean_smtp_reply, find_command, norm_address
from ..message import Mail
from ._text import cut_returned, diag_rec, merge_dsn

NAME = "ezweb"
_LINE = re.compile(r"^\s*<([^<>\s]+@[^<>\s]+)>\s*:?\s*(.*)$")
# English cause sentences EZweb prints above the recipient list
_CAUSE = re.compile(
    r"^(The user\(s\) account is disabled\.|The user\(s\) account is temporarily over quota\."
    r"|The user\(s\) account is temporarily limited\.|Your message was not delivered within .*"
    r"|Remote host is not responding\.|The following recipients did not receive this message:"
    r"|Each of the following recipients was rejected by a remote mail server\.|.*(?:refused|rejected|timed? ?out|unknown).*)$",
    re.I,
)


def match(mail: Mail) -> bool:
    """EZweb's postmaster or Received hosts."""
    frm = mail.lc_from
    return "ezweb.ne.jp" in frm or ("au.com" in frm and "postmaster" in frm) or (
        "the user(s) account is disabled" in mail.lc_head
    )


def parse(mail: Mail, dsn: list[Rec]) -> list[Rec]:
    """Recipients in angle brackets; the English cause lines plus the reply as diagnostic."""
    body = cut_returned(mail.body)
    causes: list[str] = []
    recs: list[Rec] = []
    for line in body.split("\n"):
        s = line.strip()
        if not s:
            continue
        m = _LINE.match(s)
        if m and norm_address(m.group(1)):
            diag = " ".join([*causes, m.group(2)]).strip()
            rec = diag_rec(norm_address(m.group(1)), diag)
            rec.command = find_command(m.group(2))
            recs.append(rec)
            continue
        if s.isascii() and _CAUSE.match(s) and not s.lower().startswith("the following recipients"):
            causes.append(s)
    if not recs:
        return []
    for r in recs:
        r.diagnostic = clean_smtp_reply(r.diagnostic)
    return merge_dsn(recs, dsn)
