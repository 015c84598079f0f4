"""Reads of the api app: may an address be mailed, and why not."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator

from campaigns.selectors import BOUNCE_UNSUBSCRIBE_REASONS, suppressed_among
from contacts.models import Contact, Subscription, Suppression

_email_ok = EmailValidator()

_STATUS_REASONS = {
    Contact.Status.UNSUBSCRIBED: ("contact_unsubscribed", "The contact unsubscribed."),
    Contact.Status.BLACKLISTED: ("contact_blacklisted", "The contact is blacklisted."),
    Contact.Status.UNCONFIRMED: ("contact_unconfirmed", "The contact is unconfirmed (e.g. after bounces)."),
}


@dataclass
class MailCheck:
    """The answer of `check_address`."""

    email: str
    allowed: bool = True
    reasons: list[dict[str, str]] = field(default_factory=list)
    contact: dict[str, Any] | None = None
    suppression: dict[str, Any] | None = None

    def refuse(self, code: str, message: str) -> None:
        self.allowed = False
        self.reasons.append({"code": code, "message": message})


def check_address(*, email: str, list_id: int | None = None) -> MailCheck:
    """Whether `email` may be mailed, by the rules the campaign sender applies
    (campaigns.selectors.skip_reason), every reason that applies listed.

    The sender never mails an address suppressed (in force) by an address entry or by a
    domain entry for its domain or a parent domain, nor a contact that is blacklisted,
    hard-bounced, unsubscribed or unconfirmed; for a campaign, the contact must be
    subscribed to its list. An address no contact has is judged by the suppression list
    alone. Two indexed queries (three with `list_id`).
    """
    address = (email or "").strip().lower()
    result = MailCheck(email=address)
    try:
        _email_ok(address)
    except ValidationError:
        result.refuse("invalid_address", "This is not a valid email address.")
        return result
    hit = suppressed_among([address]).get(address)
    if hit is not None:
        result.suppression = {
            "kind": hit.kind, "value": hit.value, "reason": hit.reason, "bounce_kind": hit.bounce_kind or None,
            "created_at": hit.created_at.isoformat(),
            "expires_at": hit.expires_at.isoformat() if hit.expires_at else None,
        }
        if hit.kind == Suppression.Kind.DOMAIN:
            result.refuse("suppressed_domain", f"The domain {hit.value} is suppressed ({hit.get_reason_display()}).")
        else:
            result.refuse("suppressed_address", f"The address is suppressed ({hit.get_reason_display()}).")
    contact = (
        Contact.objects.by_email(address)
        .only("id", "email", "status", "has_bounced", "hard_bounce_count", "soft_bounce_count", "last_bounce_at")
        .first()
    )
    if contact is not None:
        result.contact = {
            "id": contact.pk, "status": contact.status, "has_bounced": contact.has_bounced,
            "hard_bounce_count": contact.hard_bounce_count, "soft_bounce_count": contact.soft_bounce_count,
            "last_bounce_at": contact.last_bounce_at.isoformat() if contact.last_bounce_at else None,
        }
        if contact.status in _STATUS_REASONS:
            result.refuse(*_STATUS_REASONS[contact.status])
        if contact.has_bounced:
            result.refuse("contact_hard_bounced", "The contact hard-bounced (until an operator resets it).")
    if list_id is not None:
        status = None
        reason = ""
        if contact is not None:
            status, reason = Subscription.objects.filter(contact_id=contact.pk, mailing_list_id=list_id).values_list(
                "status", "unsubscribe_reason").first() or (None, "")
        if status == Subscription.Status.UNSUBSCRIBED and reason in BOUNCE_UNSUBSCRIBE_REASONS:
            result.refuse("unsubscribed_by_bounce", "A bounce unsubscribed the address from this list.")
        elif status != Subscription.Status.SUBSCRIBED:
            result.refuse("not_subscribed", "The address is not subscribed to this list.")
    return result
