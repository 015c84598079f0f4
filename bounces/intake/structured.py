"""Structured notices: bounces that arrive as records, not as mail (pure; no Django).

An ESP webhook event, a PowerMTA accounting record, a Postfix / Exim log line and a
send-time SMTP refusal all say the same few things about one recipient: what happened
(failure, delay, complaint, ...), the status code, the reply, the diagnostic text, the
remote host, and how to find what we sent (our token, the original Message-ID). A
`StructuredNotice` holds exactly that. It is stored as canonical JSON in place of a raw
message (the source's own record rides along untouched, in `original`), and at processing
time `to_parse_result` turns it into the engine's `ParseResult` with the engine's own
`classify`, so a structured notice is decided, matched and acted on by the same code as a
DSN with the same content.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..parsing.classify import classify
from ..parsing.rfc3464 import _diag as _dsn_diagnostic
from ..parsing.types import Category, Kind, ParseResult, RecipientResult

#: The first bytes of a stored structured notice (the raw-message viewer and the intake
#: tell it from mail by this prefix; no mail starts with "{").
PAYLOAD_PREFIX = b'{"bouncemgr_notice":'

#: What a notice can say happened (anymail's vocabulary where it has one).
EVENTS = ("failure", "delay", "complaint", "autoreply", "unsubscribe", "rejected")

MAX_TEXT = 4000


@dataclass(frozen=True, slots=True)
class StructuredNotice:
    """One recipient's outcome as a record says it (see module doc).

    `event`: failure / delay / complaint / autoreply / unsubscribe / rejected.
    `permanent`: what the source says about permanence when the text does not tell (an
    ESP's "Permanent" bounce type, PowerMTA's record type); None when it says nothing.
    `reason_hint`: a reason the source knows structurally (e.g. an ESP's rejection reason),
    used only when there is no status and no diagnostic text to classify.
    """

    source: str  # "esp:Amazon SES", "pmta", "postfix", "exim", "refusal"
    event: str
    recipient: str
    status: str | None = None
    reply_code: str | None = None
    diagnostic: str = ""
    remote_mta: str | None = None
    message_id: str | None = None
    token: str | None = None
    permanent: bool | None = None
    reason_hint: str | None = None
    feedback_type: str | None = None
    occurred_at: str | None = None  # ISO 8601, as the source said it
    original: Any = field(default=None, compare=False)  # the source's own record, kept as is

    def to_payload(self) -> bytes:
        """Canonical JSON bytes (stored as the raw message; `from_payload` reads them back)."""
        body = asdict(self)
        return (b'{"bouncemgr_notice":' + json.dumps(body, sort_keys=True, ensure_ascii=False,
                                                     default=str).encode("utf-8") + b"}")

    @classmethod
    def from_payload(cls, raw: bytes) -> StructuredNotice:
        data = json.loads(raw.decode("utf-8"))["bouncemgr_notice"]
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in names})


def is_structured(raw: bytes) -> bool:
    """Whether stored bytes are a structured notice rather than mail."""
    return raw[: len(PAYLOAD_PREFIX)] == PAYLOAD_PREFIX


def clean_address(value: str | None) -> str:
    """An address as the engine reports it: no brackets, lower case (domain and local part)."""
    if not value:
        return ""
    value = value.strip().strip("<>").strip()
    if value.lower().startswith("rfc822;"):
        value = value[7:].strip()
    return value.lower()[:254]


def strip_diagnostic_type(text: str | None) -> str:
    """Diagnostic text as the engine reads a DSN's Diagnostic-Code ("smtp; 550 ..." ->
    "550 ...", RFC 3464 section 2.3.6): the same function, so both paths see the same text."""
    text = " ".join((text or "").split())
    return _dsn_diagnostic(text)[:MAX_TEXT] if text else ""


def strip_mta_type(value: str | None) -> str | None:
    """A remote MTA without its DSN type ("dns; mx.example.com" -> "mx.example.com")."""
    if not value:
        return None
    head, sep, rest = value.partition(";")
    return (rest if sep and head.strip().lower() == "dns" else value).strip()[:255] or None


def notice_time(value: str | None) -> datetime | None:
    """When the source says it happened: ISO 8601, PowerMTA's "2026-12-06 10:00:02+0000" or
    a Unix time; aware (UTC when no offset is given); None when unreadable or absurd."""
    if not value:
        return None
    text = str(value).strip()[:64]
    when: datetime | None = None
    if re.fullmatch(r"\d{9,11}(\.\d+)?", text):
        when = datetime.fromtimestamp(float(text), tz=UTC)
    else:
        try:
            when = datetime.fromisoformat(re.sub(r"([+-]\d\d)(\d\d)$", r"\1:\2", text.replace("Z", "+00:00")))
        except ValueError:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
    return when if 1990 <= when.year <= 2100 else None


def to_parse_result(notice: StructuredNotice, *, tracking_header: str = "X-Bouncemgr-Token") -> ParseResult:
    """The engine's view of a structured notice, classified by the engine's `classify`.

    failure / rejected → the text decides (hard, soft or blocked), as in a DSN; with no
    text, `permanent` and `reason_hint` do. delay → delay. complaint and unsubscribe →
    complaint (a recipient who asked to stop: the complaint actions, which suppress).
    autoreply → auto-reply.
    """
    recipient = clean_address(notice.recipient) or None
    remote = strip_mta_type(notice.remote_mta)
    diagnostic = strip_diagnostic_type(notice.diagnostic)
    event = notice.event if notice.event in EVENTS else "failure"
    kind = Kind.FAILURE
    if event in ("complaint", "unsubscribe"):
        verdict = classify(status=None, replycode=None, diagnostic="", kind_hint="complaint")
        reason = "feedback" if event == "complaint" else "unsubscribe"
        rr = RecipientResult(recipient=recipient, action=None, status=None, replycode=None,
                             diagnostic=diagnostic, remote_mta=remote, reason=verdict.reason,
                             hard=None, permanent=None, category=Category.COMPLAINT,
                             feedback_type=notice.feedback_type or (None if event == "complaint" else reason))
        kind = Kind.COMPLAINT
    elif event == "autoreply":
        rr = RecipientResult(recipient=recipient, action=None, status=None, replycode=None,
                             diagnostic=diagnostic, remote_mta=remote, reason="vacation",
                             hard=None, permanent=None, category=Category.AUTOREPLY)
        kind = Kind.AUTOREPLY
    else:
        action = "delayed" if event == "delay" else "failed"
        has_text = bool(diagnostic or notice.status or notice.reply_code)
        verdict = classify(
            status=notice.status, replycode=notice.reply_code, diagnostic=diagnostic, action=action,
            kind_hint="delay" if event == "delay" else "failure",
            reason_hint=None if has_text else notice.reason_hint,
            remote_mta=remote, recipient=recipient,
        )
        category, permanent, hard = verdict.category, verdict.permanent, verdict.hard
        reason = verdict.reason
        if event == "delay":
            kind = Kind.DELAY
            category = Category.DELAY
        elif category == Category.UNKNOWN and notice.permanent is not None:
            # Nothing to read in the text: the source's own word on permanence decides.
            permanent = notice.permanent
            category = Category.HARD if notice.permanent else Category.SOFT
            hard = notice.permanent
            reason = reason if reason not in ("undefined", "onhold") else (notice.reason_hint or reason)
        rr = RecipientResult(recipient=recipient, action=action, status=verdict.status or notice.status,
                             replycode=notice.reply_code, diagnostic=diagnostic, remote_mta=remote,
                             reason=reason, hard=hard, permanent=permanent, category=category)
    return ParseResult(kind=kind, recipients=(rr,), message_id=notice.message_id or None,
                       token=(notice.token or "").lower() or None, subject=None, from_address=None,
                       mta=notice.source.split(":", 1)[0][:32], notice_time=notice_time(notice.occurred_at))
