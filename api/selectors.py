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


_CHECK_SQL: dict[tuple[str, int], str] = {}


def _check_sql(n_domains: int) -> str:
    """The one query of `check_address` for an address with `n_domains` domain levels."""
    key = (connection.vendor, n_domains)
    sql = _CHECK_SQL.get(key)
    if sql is None:
        contacts = connection.ops.quote_name(Contact._meta.db_table)
        suppressions = connection.ops.quote_name(Suppression._meta.db_table)
        marks = ", ".join(["%s"] * n_domains) or "NULL"
        # One row: the contact (by the contact_email_ci_unique index) beside the suppression
        # in force that decides (by the (kind, value) unique index): the address's own entry
        # first, else the nearest domain entry, i.e. the longest of the address's domain and
        # its parents. LEFT JOINs to a one-row table, so the row exists when neither does.
        sql = _CHECK_SQL[key] = (
            "SELECT c.id, c.status, c.has_bounced, c.hard_bounce_count, c.soft_bounce_count, c.last_bounce_at, "
            "s.kind, s.value, s.reason, s.bounce_kind, s.created_at, s.expires_at "
            "FROM (SELECT 1 AS one) AS o "
            "LEFT JOIN (SELECT id, status, has_bounced, hard_bounce_count, soft_bounce_count, last_bounce_at "
            f"FROM {contacts} WHERE email <> '' AND LOWER(email) = %s LIMIT 1) AS c ON 1 = 1 "
            "LEFT JOIN (SELECT kind, value, reason, bounce_kind, created_at, expires_at "
            f"FROM {suppressions} WHERE ((kind = %s AND value = %s) OR (kind = %s AND value IN ({marks}))) "
            "AND (expires_at IS NULL OR expires_at > %s) "
            "ORDER BY CASE WHEN kind = %s THEN 0 ELSE 1 END, LENGTH(value) DESC LIMIT 1) AS s ON 1 = 1")
    return sql


def _contact_and_suppression(address: str, now: dt.datetime) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The contact with this address (any case), and the suppression in force that covers it:
    its own entry, else the entry of its domain or the nearest parent domain (as
    campaigns.selectors.suppressed_among decides). One raw query: the API's hot path."""
    domains = _domain_and_parents(domain_of(address))
    params = [address, Suppression.Kind.ADDRESS, address, Suppression.Kind.DOMAIN, *domains,
              Suppression._meta.get_field("expires_at").get_db_prep_value(now, connection),
              Suppression.Kind.ADDRESS]
    with connection.cursor() as cursor:
        cursor.execute(_check_sql(len(domains)), params)
        row = cursor.fetchone()
    contact = suppression = None
    if row[0] is not None:
        last = _aware(row[5])
        contact = {"id": row[0], "status": row[1], "has_bounced": bool(row[2]), "hard_bounce_count": row[3],
                   "soft_bounce_count": row[4], "last_bounce_at": last.isoformat() if last else None}
    if row[6] is not None:
        kind, value, reason, bounce_kind, created_at, expires_at = row[6:]
        expires = _aware(expires_at)
        suppression = {"kind": kind, "value": value, "reason": reason, "bounce_kind": bounce_kind or None,
                       "created_at": _aware(created_at).isoformat(),
                       "expires_at": expires.isoformat() if expires else None}
    return contact, suppression


def check_address(*, email: str, list_id: int | None = None) -> MailCheck:
    """Whether `email` may be mailed, by the rules the campaign sender applies
    (campaigns.selectors.skip_reason), every reason that applies listed.

    The sender never mails an address suppressed (in force) by an address entry or by a
    domain entry for its domain or a parent domain, nor a contact that is blacklisted,
    hard-bounced, unsubscribed or unconfirmed; for a campaign, the contact must be
    subscribed to its list. An address no contact has is judged by the suppression list
    alone. One query on two indexes (two with `list_id`).
    """
    address = (email or "").strip().lower()
    result = MailCheck(email=address)
    try:
        _email_ok(address)
    except ValidationError:
        result.refuse("invalid_address", "This is not a valid email address.")
        return result
    contact, hit = _contact_and_suppression(address, timezone.now())
    if hit is not None:
        result.suppression = hit
        label = Suppression.Reason(hit["reason"]).label if hit["reason"] in Suppression.Reason.values else hit["reason"]
        if hit["kind"] == Suppression.Kind.DOMAIN:
            result.refuse("suppressed_domain", f"The domain {hit['value']} is suppressed ({label}).")
        else:
            result.refuse("suppressed_address", f"The address is suppressed ({label}).")
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
