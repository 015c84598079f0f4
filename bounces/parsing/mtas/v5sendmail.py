"""Sendmail 5 (and other pre-DSN sendmails): transcript only, no delivery-status part.

"While talking to HOST:" blocks hold the SMTP exchange; lines "554 <addr>... 550 reason"
name each failed recipient.
"""

from __future__ import annotations

import re

from ..common import Rec, find_command, norm_address
from ..message import Mail
from ._text import diag_rec, region

NAME = "v5sendmail"
_TRANSCRIPT = re.compile(r"-{3,} ?Transcript of session follows ?-{3,}\s*\n", re.I)
_END = re.compile(r"\n\s*-{3,} ?(?:Unsent message follows|Original message|Message header)", re.I)
_RCPT_LINE = re.compile(r"^(\d{3}) <?([^<>\s]+@[^<>\s]+?)>?\.\.\.\s*(.*)$")
_TALK = re.compile(r"^While talking to ([\w.-]+):", re.I)


def match(mail: Mail) -> bool:
    """A sendmail transcript without any DSN part."""
    lc = mail.lc_head
    return not mail.ds_texts and "transcript of session follows" in lc and "unsent message follows" in lc


def parse(mail: Mail, dsn: list[Rec]) -> list[Rec]:
    """Each "NNN <addr>... text" line, with the remote host's reply from its talk block."""
    text = region(mail.body, _TRANSCRIPT, _END)
    host_replies: dict[str, list[str]] = {}
    host_cmd: dict[str, str] = {}
    rcpt_replies: dict[str, list[str]] = {}
    host = None
    rcpt = None
    recs: list[Rec] = []
    seen: set[str] = set()
    for line in text.split("\n"):
        s = line.strip()
        t = _TALK.match(s)
        if t:
            host = t.group(1).lower()
            host_replies.setdefault(host, [])
            rcpt = None
            continue
        if s.startswith(">>>"):
            m = re.match(r">>>\s*RCPT\s+To:\s*<?([^<>\s]+@[^<>\s]+)>?", s, re.I)
            rcpt = (norm_address(m.group(1)) or "").lower() if m else None
            if host:
                host_cmd[host] = find_command(s) or ""
            continue
        if s.startswith("<<<"):
            if rcpt:
                rcpt_replies.setdefault(rcpt, []).append(s[3:].strip())
            elif host:
                host_replies[host].append(s[3:].strip())
            continue
        m = _RCPT_LINE.match(s)
        if not m:
            continue
        a = norm_address(m.group(2))
        if not a or a.lower() in seen:
            continue
        seen.add(a.lower())
        msg = m.group(3).strip()
        domain = a.rsplit("@", 1)[1]
        hosts = [h for h in host_replies if h == domain or h.endswith("." + domain)]
        replies = rcpt_replies.get(a.lower()) or (host_replies[hosts[0]] if hosts else [])
        command = "RCPT" if a.lower() in rcpt_replies else (host_cmd.get(hosts[0]) or None) if hosts else None
        if replies:
            diag = " ".join(replies) + " " + msg
        elif re.match(r"^\d{3}\b", msg):
            diag = msg
        else:
            diag = f"{m.group(1)} {msg}"
        rec = diag_rec(a, diag)
        rec.action = "failed"
        rec.command = command
        recs.append(rec)
    return recs
