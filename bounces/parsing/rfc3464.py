"""RFC 3464 delivery status notifications: the per-message and per-recipient field blocks.

The fields are read from message/delivery-status parts, and also from plain text that carries
the same fields (mislabelled parts, DSNs forwarded inline, MTAs that print them in the body).
"""

from __future__ import annotations

import re

from .common import (
    Rec,
    clean_smtp_reply,
    find_replycode,
    find_status,
    norm_action,
    norm_address,
    norm_status,
)
from .message import Mail

_RECIPIENT_FIELDS = ("final-recipient", "original-recipient", "x-actual-recipient")
_KNOWN = frozenset(
    {
        "final-recipient",
        "original-recipient",
        "x-actual-recipient",
        "action",
        "status",
        "remote-mta",
        "diagnostic-code",
        "last-attempt-date",
        "will-retry-until",
        "final-log-id",
        "x-display-name",
        "reporting-mta",
        "received-from-mta",
        "arrival-date",
        "dsn-gateway",
        "original-envelope-id",
        "x-postfix-queue-id",
        "x-postfix-sender",
        "x-original-message-id",
        "x-supplementary-info",
        "x-remote-mta",
    }
)


def parse_fields(text: str) -> list[list[tuple[str, str]]]:
    """Split DSN text into blocks of (lower-case name, value); continuation lines folded in.

    A block ends at a blank line, or when a second recipient field starts (some MTAs print
    recipient groups without blank lines between them).
    """
    blocks: list[list[tuple[str, str]]] = []
    cur: list[tuple[str, str]] = []
    seen_recipient = False
    last_known = False
    for line in text.split("\n"):
        if not line.strip():
            if cur:
                blocks.append(cur)
                cur, seen_recipient = [], False
            last_known = False
            continue
        if line[0] in " \t" and cur and last_known:
            name, value = cur[-1]
            cur[-1] = (name, value + " " + line.strip())
            continue
        colon = line.find(":")
        # only the known DSN fields matter, so a set lookup replaces a field regex
        name = line[:colon].strip().lower() if 0 < colon < 40 else ""
        if name not in _KNOWN:
            last_known = False
            continue
        last_known = True
        if name in ("final-recipient", "original-recipient") and seen_recipient and any(
            n == name for n, _ in cur
        ):
            blocks.append(cur)
            cur = []
        if name in ("final-recipient", "original-recipient"):
            seen_recipient = True
        cur.append((name, line[colon + 1 :].strip()))
    if cur:
        blocks.append(cur)
    return blocks


_DIAG_TYPE = re.compile(r"^(smtp|x-unix|x-postfix|x-local|mail|x-smtp|unix|x-exchange|x400|x-notes|x-mta)\s*;\s*", re.I)
_OTHER_TYPE = re.compile(r"^[\w-]{1,10};")
_DNS_TYPE = re.compile(r"^\s*dns\s*;\s*", re.I)


def _diag_type(value: str) -> str | None:
    """The type of a Diagnostic-Code ("smtp; 550 ..." -> "smtp"), lower-case, or None."""
    m = _DIAG_TYPE.match(value.strip())
    return m.group(1).lower() if m else None


def _diag(value: str) -> str:
    """Diagnostic-Code value without its type ("smtp; 550 ..." -> "550 ...")."""
    v = value.strip()
    m = _DIAG_TYPE.match(v)
    if m:
        v = v[m.end() :]
    elif ";" in v[:12] and _OTHER_TYPE.match(v):
        v = v.split(";", 1)[1]
    return clean_smtp_reply(v)


def records_from_text(text: str) -> tuple[dict[str, str], list[Rec]]:
    """Parse DSN fields in ``text`` into (per-message fields, recipient records)."""
    per_message: dict[str, str] = {}
    recs: list[Rec] = []
    for block in parse_fields(text):
        names = {n for n, _ in block}
        if not names & set(_RECIPIENT_FIELDS) and not ({"action", "status"} <= names):
            for n, v in block:
                per_message.setdefault(n, v)
            continue
        fields: dict[str, str] = {}
        for n, v in block:
            if n in ("reporting-mta", "received-from-mta", "arrival-date"):
                per_message.setdefault(n, v)
                continue
            fields.setdefault(n, v)
        rcpt = norm_address(fields.get("final-recipient")) or norm_address(fields.get("original-recipient"))
        if not rcpt:
            rcpt = norm_address(fields.get("x-actual-recipient"))
        rec = Rec(recipient=rcpt)
        orig = norm_address(fields.get("original-recipient"))
        if orig and rcpt and orig.lower() != rcpt.lower():
            # the address as we sent it, before forwarding or aliasing: kept as an alias
            rec.original = orig
        rec.action = norm_action(fields.get("action"))
        rec.status = norm_status(fields.get("status"))
        diag = _diag(fields.get("diagnostic-code", ""))
        rec.diagnostic = diag
        rec.diag_type = _diag_type(fields.get("diagnostic-code", ""))
        rec.replycode = find_replycode(diag)
        dstat = find_status(diag)
        if dstat and (not rec.status or _better(dstat, rec.status)):
            rec.status = dstat
        remote = fields.get("remote-mta") or fields.get("x-remote-mta")
        if remote:
            remote = _DNS_TYPE.sub("", remote).strip().strip("[]") or None
        rec.remote_mta = remote
        recs.append(rec)
    return per_message, recs


def _better(diag_status: str, field_status: str) -> bool:
    """Whether the code in the diagnostic is more specific than the Status field.

    "5.0.0" in the Status field with "5.1.1" in the reply: the reply is the better witness.
    Different classes (a 4.x.x reply under a 5.x.x status) keep the field, which states the
    final outcome.
    """
    if diag_status == field_status:
        return False
    if diag_status[0] != field_status[0]:
        return False
    return field_status.endswith(".0.0") and not diag_status.endswith(".0.0")


def parse(mail: Mail) -> tuple[dict[str, str], list[Rec]]:
    """Recipient records from the message's delivery-status parts (or DSN fields in text)."""
    per_message: dict[str, str] = {}
    recs: list[Rec] = []
    for text in mail.ds_texts:
        pm, rs = records_from_text(text)
        for k, v in pm.items():
            per_message.setdefault(k, v)
        recs.extend(rs)
    if not recs:
        # DSN fields in the text itself (inline or mislabelled), else in an attached message
        # (gateways that wrap the whole DSN in a message/rfc822 part)
        for text, low in zip((mail.body, *mail.returned), (mail.lc_body, *mail.lc_returned), strict=True):
            if "final-recipient" not in low:
                continue
            pm, rs = records_from_text(text)
            rs = [r for r in rs if r.recipient]
            if rs:
                for k, v in pm.items():
                    per_message.setdefault(k, v)
                recs.extend(rs)
                break
    return per_message, [r for r in recs if r.recipient or r.status or r.action]
