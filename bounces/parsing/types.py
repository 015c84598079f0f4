"""Result types of the bounce parsing engine (the agreed interface, see docs/engine.md).

Pure data: frozen, slotted dataclasses and string enums. No Django imports.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Kind(StrEnum):
    """What a message is."""

    FAILURE = "failure"  # permanent or unspecified delivery failure (bounce)
    DELAY = "delay"  # delayed / temporary failure, will retry (Action: delayed)
    COMPLAINT = "complaint"  # ARF feedback report
    AUTOREPLY = "autoreply"  # RFC 3834 auto-reply / out of office / vacation
    CHALLENGE = "challenge"  # challenge-response (please confirm you are human)
    DELIVERED = "delivered"  # success DSN (Action: delivered/relayed/expanded)
    NOT_BOUNCE = "not_bounce"  # ordinary mail
    UNKNOWN = "unknown"  # could not be parsed / understood (ParseResult.error says why)


class Category(StrEnum):
    """The product's categories, derived from reason/permanent/action (classify.category_for)."""

    HARD = "hard"
    SOFT = "soft"
    BLOCKED = "blocked"
    COMPLAINT = "complaint"
    AUTOREPLY = "autoreply"
    DELAY = "delay"
    UNKNOWN = "unknown"
    DELIVERED = "delivered"
    NOT_BOUNCE = "not_bounce"


@dataclass(frozen=True, slots=True)
class RecipientResult:
    """One recipient named by a bounce, with what happened to it."""

    recipient: str | None  # address with lower-cased domain, no <>; None when unknown
    action: str | None  # failed / delayed / delivered / relayed / expanded
    status: str | None  # enhanced status code "5.1.1" (Sisimai-style "5.0.911" possible)
    replycode: str | None  # SMTP reply code "550"
    diagnostic: str  # diagnostic text, whitespace-folded, may be ""
    remote_mta: str | None
    reason: str  # Sisimai vocabulary: userunknown, mailboxfull, ..., vacation, feedback, delivered
    hard: bool | None  # the ADDRESS itself is bad; None for feedback/vacation/delivered
    permanent: bool | None  # True for 5.x.x, False for 4.x.x, None if unknown
    category: Category
    feedback_type: str | None = None  # ARF Feedback-Type
    # DSN Original-Recipient (the address as sent, before aliasing or forwarding) when it
    # differs from `recipient` (the Final-Recipient): an alias the matcher also tries
    original_recipient: str | None = None


@dataclass(frozen=True, slots=True)
class ParseResult:
    """Everything the engine learnt from one message."""

    kind: Kind
    recipients: tuple[RecipientResult, ...]
    message_id: str | None  # Message-ID of the ORIGINAL message we sent
    token: str | None  # our tracking token (VERP address or tracking header)
    subject: str | None  # subject of the bounce
    from_address: str | None  # From of the bounce
    mta: str | None  # name of the detector that decoded it ("postfix", "rfc3464", "arf", ...)
    error: str | None = None  # why the result is UNKNOWN, if it is
    # when the notice says delivery was given up or tried last (aware, UTC): DSN
    # Last-Attempt-Date, else Arrival-Date, else the notice's Date, else its newest Received
    notice_time: datetime | None = None


@dataclass(frozen=True, slots=True)
class ParseOptions:
    """Site-specific knobs: how our VERP address and tracking header look."""

    verp_local_prefix: str = "bounces"  # VERP return path bounces+TOKEN@return-domain
    tracking_header: str = "X-Bouncemgr-Token"  # our tracking header carrying TOKEN
    # TOKEN matches [a-z0-9]{16}; matched case-insensitively, returned lower-case.
