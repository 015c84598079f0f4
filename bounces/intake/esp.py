"""ESP tracking events (django-anymail's normalised `AnymailTrackingEvent`) as notices (pure).

anymail turns each provider's webhook (Amazon SES over SNS, SendGrid, Mailgun, Postmark,
SparkPost, Brevo, ...) into one event type; the ones that matter here:

=============  ==================================================================
bounced        failure: the MTA response decides hard / soft / blocked, as in a DSN
deferred       delay
rejected       the ESP refused to send: by its reject reason (bounced / invalid →
               hard, spam → complaint, unsubscribed → unsubscribe, else blocked)
complained     complaint (always the complaint actions: suppress)
unsubscribed   unsubscribe (handled as a complaint: the recipient asked to stop)
autoresponded  auto-reply
=============  ==================================================================

Matching evidence, strongest first: our token (in the event's metadata, or in the sent
message's headers that SES and Mailgun echo back), the original RFC 5322 Message-ID when
the provider reports it, anymail's `message_id` (the provider's id, which our sender stores
as the SentMessage's Message-ID when it sends through anymail), then the recipient.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from .structured import StructuredNotice

EVENTS = {
    "bounced": "failure",
    "deferred": "delay",
    "rejected": "rejected",
    "complained": "complaint",
    "unsubscribed": "unsubscribe",
    "autoresponded": "autoreply",
}
_REJECT = {  # anymail RejectReason → (event, permanent, reason hint)
    "bounced": ("failure", True, "userunknown"),
    "invalid": ("failure", True, "userunknown"),
    "timed_out": ("failure", False, "expired"),
    "spam": ("complaint", None, None),
    "unsubscribed": ("unsubscribe", None, None),
    "blocked": ("failure", None, "blocked"),
    "other": ("failure", None, "blocked"),
}
_TOKEN = re.compile(r"^[a-z0-9]{16}$")
_STATUS = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def _token_from(metadata: Any, headers: Mapping[str, str], tracking_header: str) -> str | None:
    candidates: list[Any] = []
    if isinstance(metadata, Mapping):
        for key in ("bouncemgr_token", "token", tracking_header, tracking_header.lower()):
            candidates.append(metadata.get(key))
    candidates.append(headers.get(tracking_header.lower()))
    for value in candidates:
        if isinstance(value, str) and _TOKEN.match(value.strip().lower()):
            return value.strip().lower()
    return None


def _headers_of(esp_event: Any) -> dict[str, str]:
    """Headers of the sent message that the provider echoes (SES `mail.headers`, Mailgun
    `message.headers`), lower-cased names."""
    found: dict[str, str] = {}
    ses = _get(esp_event, "mail", "headers")
    if isinstance(ses, list):
        for h in ses[:200]:
            if isinstance(h, Mapping) and isinstance(h.get("name"), str) and isinstance(h.get("value"), str):
                found.setdefault(h["name"].lower(), h["value"])
    mailgun = _get(esp_event, "event-data", "message", "headers")
    if isinstance(mailgun, Mapping):
        for name, value in list(mailgun.items())[:200]:
            if isinstance(name, str) and isinstance(value, str):
                found.setdefault(name.lower(), value)
    common = _get(esp_event, "mail", "commonHeaders", "messageId")
    if isinstance(common, str):
        found.setdefault("message-id", common)
    return found


def _permanent(esp_name: str, esp_event: Any) -> bool | None:
    """What the provider says about permanence, for when the text says nothing."""
    ses = _get(esp_event, "bounce", "bounceType")
    if isinstance(ses, str):
        return {"Permanent": True, "Transient": False}.get(ses)
    severity = _get(esp_event, "event-data", "severity")
    if isinstance(severity, str):
        return {"permanent": True, "temporary": False}.get(severity.lower())
    if isinstance(esp_event, Mapping):
        pm_type = esp_event.get("Type")
        if isinstance(pm_type, str):  # Postmark
            if pm_type in ("HardBounce", "BadEmailAddress", "ManuallyDeactivated"):
                return True
            if pm_type in ("SoftBounce", "Transient", "DnsError", "Blocked"):
                return False
        sg_type = esp_event.get("type")
        if esp_event.get("event") == "bounce" and isinstance(sg_type, str):  # SendGrid
            return sg_type == "bounce"
    return None


def _status_of(esp_event: Any, text: str) -> str | None:
    for path in (("status",), ("event-data", "delivery-status", "enhanced-code")):
        value = _get(esp_event, *path)
        if isinstance(value, str) and _STATUS.fullmatch(value.strip()):
            return value.strip()
    ses = _get(esp_event, "bounce", "bouncedRecipients")
    if isinstance(ses, list):
        for r in ses:
            if isinstance(r, Mapping) and isinstance(r.get("status"), str) and _STATUS.fullmatch(r["status"]):
                return r["status"]
    m = _STATUS.search(text or "")
    return m.group(1) if m else None


def _reply_code(esp_event: Any) -> str | None:
    code = _get(esp_event, "event-data", "delivery-status", "code")
    if isinstance(code, int) and 200 <= code <= 599:
        return str(code)
    return None


def event_key(esp_name: str, event: Any) -> str | None:
    """Idempotency key: the provider's event id (per recipient, as one SES notification
    names several); None when the provider gives no id (then the payload's hash is used)."""
    event_id = getattr(event, "event_id", None)
    if not event_id:
        return None
    recipient = (getattr(event, "recipient", None) or "").lower()
    return f"{esp_name}:{event_id}:{recipient}"[:255]


def anymail_notice(event: Any, esp_name: str, *, tracking_header: str = "X-Bouncemgr-Token"
                   ) -> StructuredNotice | None:
    """The notice of one anymail tracking event, or None for events that are no bounce
    (sent, delivered, opened, clicked, ...)."""
    event_type = getattr(event, "event_type", None)
    what = EVENTS.get(event_type or "")
    recipient = getattr(event, "recipient", None) or ""
    if what is None or not recipient:
        return None
    esp_event = getattr(event, "esp_event", None)
    esp_event = _plain(esp_event)
    headers = _headers_of(esp_event)
    text = getattr(event, "mta_response", None) or ""
    if not text and what in ("failure", "delay", "rejected"):
        text = getattr(event, "description", None) or ""
    permanent = _permanent(esp_name, esp_event)
    hint = None
    if what == "rejected":
        what, permanent, hint = _REJECT.get(getattr(event, "reject_reason", None) or "other", _REJECT["other"])
    message_id = headers.get("message-id") or getattr(event, "message_id", None)
    timestamp = getattr(event, "timestamp", None)
    return StructuredNotice(
        source=f"esp:{esp_name}"[:40], event=what, recipient=recipient,
        status=_status_of(esp_event, text) if what in ("failure", "delay") else None,
        reply_code=_reply_code(esp_event), diagnostic=text[:4000] if what in ("failure", "delay") else "",
        message_id=(message_id or "").strip().strip("<>") or None,
        token=_token_from(getattr(event, "metadata", None), headers, tracking_header),
        permanent=permanent, reason_hint=hint,
        feedback_type=(getattr(event, "description", None) or None) if what == "complaint" else None,
        occurred_at=timestamp.isoformat() if hasattr(timestamp, "isoformat") else None,
        original={"esp": esp_name, "event_type": event_type, "event_id": getattr(event, "event_id", None),
                  "esp_event": esp_event},
    )


def _plain(value: Any) -> Any:
    """A JSON-safe copy of a provider payload (a QueryDict becomes a dict of lists)."""
    if hasattr(value, "lists"):
        return {k: v for k, v in value.lists()}
    try:
        json.dumps(value, default=str)
    except (TypeError, ValueError):
        return str(value)
    return value
