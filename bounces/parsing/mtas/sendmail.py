"""Sendmail (8.x): DSN plus "----- Transcript of session follows -----" with the SMTP
exchange (">>> RCPT To:<addr>" / "<<< 550 5.1.1 ...") and "NNN <addr>... reason" lines."""

from __future__ import annotations

import re

from ..common import Rec, clean_smtp_reply, find_command, find_replycode, find_status, norm_address
from ..message import Mail
from ._text import diag_rec, merge_dsn, region

NAME = "sendmail"
_MARK = re.compile(
    r"-{3,} ?Transcript of session follows ?-{3,}|-{3,} ?The following addresses had permanent fatal errors"
    r"|The original message was received at ",
    re.I,
)
_TRANSCRIPT = re.compile(r"-{3,} ?Transcript of session follows ?-{3,}\s*\n", re.I)
_TRANSCRIPT_END = re.compile(r"\n\s*-{3,} ?(?:Original message|Unsent message|Message header|Below)|\n\s*--\S", re.I)
_RCPT_LINE = re.compile(r"^(\d{3})[ -]<?([^<>\s]+@[^<>\s]+?)>?\.\.\.\s*(.*)$")
_CODE_START = re.compile(r"^[245]\d\d[ -]")
_REASON_LINE = re.compile(r"^\(reason:\s*(.*?)\)?$", re.I)
_FATAL = re.compile(r"-{3,} ?The following addresses had permanent fatal errors ?-{3,}\s*\n(.*?)(?:\n\s*\n|\n\s*-{3,})", re.I | re.S)


def match(mail: Mail) -> bool:
    """Sendmail's fixed section markers."""
    lc = mail.lc_head
    return "transcript of session follows" in lc or "had permanent fatal errors" in lc or (
        "the original message was received at " in lc
    )


def transcript_diagnostics(text: str) -> tuple[dict[str, str], str]:
    """Per-recipient diagnostics from a transcript's text, and its loose text."""
    per: dict[str, str] = {}
    last_cmd_rcpt: str | None = None
    responses: list[str] = []
    loose: list[str] = []
    after_reply = False
    for line in text.split("\n"):
        s = line.strip()
        if not s:
            after_reply = False
            continue
        if after_reply and not s.startswith((">>>", "<<<", "...")) and not _CODE_START.match(s):
            # the rest of a "<<< 554 ..." reply that a relay re-wrapped onto its own line
            responses[-1] += " " + s
            if last_cmd_rcpt:
                per[last_cmd_rcpt] = " ".join(responses)
            else:
                per["__last__"] = " ".join(responses)
            continue
        after_reply = s.startswith("<<<")
        if s.startswith(">>>"):
            m = re.search(r"RCPT To:\s*<?([^<>\s]+@[^<>\s]+)>?", s, re.I)
            last_cmd_rcpt = (norm_address(m.group(1)) or "").lower() if m else None
            responses = []
            if not m:
                last_cmd_rcpt = None
                per.setdefault("__cmd__", s)
            continue
        if s.startswith("<<<"):
            responses.append(s[3:].strip())
            if last_cmd_rcpt:
                per[last_cmd_rcpt] = " ".join(responses)
            else:
                per["__last__"] = " ".join(responses)
            continue
        m = _RCPT_LINE.match(s)
        if m:
            a = (norm_address(m.group(2)) or "").lower()
            if a and a not in per:
                per[a] = per.get("__last__") or f"{m.group(1)} {m.group(3)}"
            continue
        loose.append(s)
    return per, " ".join(loose)


def _completes(transcript: str, diagnostic: str) -> bool:
    """The transcript holds the same reply as the DSN's Diagnostic-Code, and more of it (a
    Diagnostic-Code cut after the first line of a multi-line "550-" reply)."""
    full = clean_smtp_reply(transcript)
    return len(full) > len(diagnostic) + 8 and full[:40] == diagnostic[:40]


def parse(mail: Mail, dsn: list[Rec]) -> list[Rec]:
    """DSN records, with transcript replies where the DSN's diagnostic is thin."""
    transcript = region(mail.body, _TRANSCRIPT, _TRANSCRIPT_END) if "transcript of session" in mail.lc_head else ""
    per, loose = transcript_diagnostics(transcript)
    if dsn:
        for r in dsn:
            key = (r.recipient or "").lower()
            t = per.get(key) or (per.get("__last__") if len(dsn) == 1 else None)
            if not t and len(dsn) == 1 and loose:
                t = loose
            if t and (not r.diagnostic or len(r.diagnostic) < 12 or r.diagnostic.strip().isdigit()
                      or (find_replycode(t) and not find_replycode(r.diagnostic)) or _completes(t, r.diagnostic)):
                t = clean_smtp_reply(t)
                r.diagnostic = t
                r.replycode = find_replycode(t) or r.replycode
                st = find_status(t)
                if st and (not r.status or (r.status.endswith(".0.0") and not st.endswith(".0.0"))):
                    r.status = st
            r.command = find_command(("\n".join(per.values()) if len(dsn) == 1 else "") or r.diagnostic) or (
                find_command(transcript) if transcript else None
            )
        return dsn
    recs = []
    fatal = _FATAL.search(mail.body)
    if fatal:
        listed: list[tuple[str, str]] = []  # (address, its "(reason: ...)" line)
        for line in fatal.group(1).split("\n"):
            s = line.strip()
            m = _REASON_LINE.match(s)
            if m and listed:
                listed[-1] = (listed[-1][0], m.group(1))
                continue
            why = listed[-1][1] if listed else ""
            if why and why.count("(") > why.count(")") and not s.startswith("<") and not norm_address(s):
                # "(reason: 554 ... (Ask your postmaster" re-wrapped: its rest on this line
                listed[-1] = (listed[-1][0], f"{why} {s.removesuffix(')')}")
                continue
            a = norm_address(s) if "@" in s else None
            if a:
                listed.append((a, ""))
        for a, why in listed:
            own = per.get(a.lower(), "")
            t = own or why or per.get("__last__", "") or loose
            rec = diag_rec(a, t)
            rec.command = "RCPT" if own and a.lower() in per else find_command(transcript)
            recs.append(rec)
    for key, t in per.items():
        if key.startswith("__") or any((r.recipient or "").lower() == key for r in recs):
            continue
        recs.append(diag_rec(key, t))
    return merge_dsn(recs, dsn)
