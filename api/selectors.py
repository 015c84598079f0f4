"""Reads of the api app: may an address be mailed, and why not."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator
from django.db import connection
from django.utils import timezone
from django.utils.dateparse import parse_datetime

# The sender's own domain matching, so the check agrees with it.
from campaigns.selectors import BOUNCE_UNSUBSCRIBE_REASONS, _domain_and_parents, domain_of
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


def _aware(value: Any) -> dt.datetime | None:
    """A datetime column read by a raw cursor (SQLite returns text)."""
    if value is None or isinstance(value, dt.datetime):
        return value if value is None or timezone.is_aware(value) else timezone.make_aware(value, dt.UTC)
    moment = parse_datetime(str(value))
    return moment if moment is None or timezone.is_aware(moment) else timezone.make_aware(moment, dt.UTC)


def _suppression_of(address: str, now: dt.datetime) -> dict[str, Any] | None:
    """The suppression in force that covers `address`: its own entry, else the entry of its
    domain or the nearest parent domain (as campaigns.selectors.suppressed_among decides).
    One raw query on the (kind, value) unique index: this is the API's hot path."""
    domains = _domain_and_parents(domain_of(address))
    table = connection.ops.quote_name(Suppression._meta.db_table)
    marks = ", ".join(["%s"] * len(domains)) or "NULL"
    sql = (f"SELECT kind, value, reason, bounce_kind, created_at, expires_at FROM {table} "
           f"WHERE ((kind = %s AND value = %s) OR (kind = %s AND value IN ({marks}))) "
           f"AND (expires_at IS NULL OR expires_at > %s)")
    params = [Suppression.Kind.ADDRESS, address, Suppression.Kind.DOMAIN, *domains,
              Suppression._meta.get_field("expires_at").get_db_prep_value(now, connection)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    if not rows:
        return None
    rank = {d: i for i, d in enumerate(domains)}
    kind, value, reason, bounce_kind, created_at, expires_at = min(
        rows, key=lambda r: -1 if r[0] == Suppression.Kind.ADDRESS else rank.get(r[1], len(rank)))
    expires = _aware(expires_at)
    return {"kind": kind, "value": value, "reason": reason, "bounce_kind": bounce_kind or None,
            "created_at": _aware(created_at).isoformat(), "expires_at": expires.isoformat() if expires else None}


def _contact_of(address: str) -> dict[str, Any] | None:
    """The contact with this address (any case), by the contact_email_ci_unique index."""
    table = connection.ops.quote_name(Contact._meta.db_table)
    sql = (f"SELECT id, status, has_bounced, hard_bounce_count, soft_bounce_count, last_bounce_at FROM {table} "
           f"WHERE email <> '' AND LOWER(email) = %s LIMIT 1")
    with connection.cursor() as cursor:
        cursor.execute(sql, [address])
        row = cursor.fetchone()
    if row is None:
        return None
    last = _aware(row[5])
    return {"id": row[0], "status": row[1], "has_bounced": bool(row[2]), "hard_bounce_count": row[3],
            "soft_bounce_count": row[4], "last_bounce_at": last.isoformat() if last else None}


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
    hit = _suppression_of(address, timezone.now())
    if hit is not None:
        result.suppression = hit
        label = Suppression.Reason(hit["reason"]).label if hit["reason"] in Suppression.Reason.values else hit["reason"]
        if hit["kind"] == Suppression.Kind.DOMAIN:
            result.refuse("suppressed_domain", f"The domain {hit['value']} is suppressed ({label}).")
        else:
            result.refuse("suppressed_address", f"The address is suppressed ({label}).")
    contact = _contact_of(address)
    if contact is not None:
        result.contact = contact
        if contact["status"] in _STATUS_REASONS:
            result.refuse(*_STATUS_REASONS[contact["status"]])
        if contact["has_bounced"]:
            result.refuse("contact_hard_bounced", "The contact hard-bounced (until an operator resets it).")
    if list_id is not None:
        status = None
        reason = ""
        if contact is not None:
            status, reason = Subscription.objects.filter(contact_id=contact["id"], mailing_list_id=list_id).values_list(
                "status", "unsubscribe_reason").first() or (None, "")
        if status == Subscription.Status.UNSUBSCRIBED and reason in BOUNCE_UNSUBSCRIBE_REASONS:
            result.refuse("unsubscribed_by_bounce", "A bounce unsubscribed the address from this list.")
        elif status != Subscription.Status.SUBSCRIBED:
            result.refuse("not_subscribed", "The address is not subscribed to this list.")
    return result
