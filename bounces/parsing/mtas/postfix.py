"""Postfix: "This is the mail system at host X" / "This is the Postfix program", and the
human-readable part "<addr>: host H[ip] said: 550 ... (in reply to RCPT TO command)"."""

from __future__ import annotations

import re

from ..common import Rec, clean_smtp_reply, find_command, norm_address
from ..message import Mail
from ._text import diag_rec, merge_dsn, prefer_text_diagnostic

NAME = "postfix"
_NEEDLES = (
    "this is the mail system at host",
    "postfix program",
    "could not be delivered to one or more recipients. it's attached below",
    "i'm sorry to have to inform you that your message could not",
)
_HEAD = re.compile(r"^<([^<>\s]+@[^<>\s]+)>(?:\s*\(expanded from <[^>]*>\))?\s*:\s*(.*)$")
_REMOTE = re.compile(r"\bhost ([\w.-]+)\[[\d.:a-fA-F]+\](?: said| refused)")
_DELAYED = re.compile(r"Delayed Mail|delivery temporarily suspended|THIS IS A WARNING ONLY", re.I)


# The recipient lines come from Postfix's delivery agents and are never translated, whereas
# sites do translate the introduction (bounce_template_file): "<a@b>: host mx[ip] said: ..."
# with "(in reply to RCPT TO command)" identifies the layout in any language.
_AGENT_LINE = re.compile(
    r"^<[^<>\s]+@[^<>\s]+>(?: \(expanded from <[^>]*>\))?: host [\w.-]+\[[\d.:a-fA-F]+\] said: [245]\d\d",
    re.M,
)


def match(mail: Mail) -> bool:
    """Postfix's introduction, or a Postfix-style recipient line with a Postfix Received."""
    lc = mail.lc_head
    if any(s in lc for s in _NEEDLES):
        return True
    if any("X-Postfix" in t for t in mail.ds_texts):
        return True
    return "(in reply to " in lc and "] said: " in lc and _AGENT_LINE.search(mail.body[:8000]) is not None


def text_blocks(body: str) -> dict[str, str]:
    """Recipient -> diagnostic from the "<addr>: ..." lines (continuations indented)."""
    out: dict[str, str] = {}
    cur: str | None = None
    parts: list[str] = []
    for line in body.split("\n"):
        m = _HEAD.match(line)
        if m and norm_address(m.group(1)):
            if cur:
                out.setdefault(cur, " ".join(parts))
            cur, parts = (norm_address(m.group(1)) or "").lower(), [m.group(2).strip()]
            continue
        if cur is None:
            continue
        if line.strip():
            # continuation lines are indented, but a wrapped "<addr>... text" is not
            parts.append(line.strip())
            continue
        out.setdefault(cur, " ".join(parts))
        cur, parts = None, []
    if cur:
        out.setdefault(cur, " ".join(parts))
    return out


def parse(mail: Mail, dsn: list[Rec]) -> list[Rec]:
    """DSN records refined with the text part; text alone when there is no DSN."""
    texts = text_blocks(mail.body)
    delayed = bool(_DELAYED.search(mail.subject + "\n" + mail.body[:1500]))
    if dsn:
        recs = prefer_text_diagnostic(dsn, texts)
        for r in recs:
            t = texts.get((r.recipient or "").lower())
            if t and (not r.diagnostic or _thin(r.diagnostic)):
                r.diagnostic = clean_smtp_reply(t)
            r.command = find_command(t or r.diagnostic)
            if not r.remote_mta and t:
                m = _REMOTE.search(t)
                r.remote_mta = m.group(1) if m else None
        return recs
    recs = []
    for addr, t in texts.items():
        rec = diag_rec(addr, t)
        rec.command = find_command(t)
        m = _REMOTE.search(t)
        rec.remote_mta = m.group(1) if m else None
        rec.action = "delayed" if delayed else "failed"
        recs.append(rec)
    return merge_dsn(recs, dsn)


def _thin(diag: str) -> bool:
    return len(diag) < 12 or diag.strip().isdigit()
