"""Fixtures of the rules tests: stored bounces with real raw messages, contacts, lists."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

# The rules admin replaces the plain one registered by bounces/admin.py; import it before the
# URLconf is built so the admin pages under test are the rules helper's.
import bounces.rules.admin  # noqa: F401

_seq = itertools.count(1)


def dsn(
    *,
    recipient: str = "kim@example.org",
    diagnostic: str = "550 5.1.1 <kim@example.org>: Recipient address rejected: User unknown",
    status: str = "5.1.1",
    subject: str = "Undelivered Mail Returned to Sender",
    from_: str = "MAILER-DAEMON@mx.example.net (Mail Delivery System)",
    to: str = "bounces+abcdefgh12345678@news.example.com",
    cc: str = "",
    extra_headers: str = "",
    human: str = "I'm sorry to have to inform you that your message could not be delivered.",
    returned: str = "Subject: Our newsletter\nFrom: news@example.com\n\nClick here to unsubscribe.",
) -> bytes:
    """A small but real RFC 3464 report."""
    cc_line = f"Cc: {cc}\n" if cc else ""
    text = (
        f"From: {from_}\nTo: {to}\n{cc_line}Subject: {subject}\n{extra_headers}"
        "MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\n\n"
        f"--B\nContent-Type: text/plain; charset=utf-8\n\n{human}\n\n"
        f"--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.net\n\n"
        f"Final-Recipient: rfc822; {recipient}\nAction: failed\nStatus: {status}\n"
        f"Diagnostic-Code: smtp; {diagnostic}\n\n"
        f"--B\nContent-Type: message/rfc822\n\n{returned}\n--B--\n"
    )
    return text.encode("utf-8")


@pytest.fixture
def make_bounce(db: Any) -> Callable[..., Any]:
    """Create a stored Bounce with its RawMessage (raw bytes from `dsn` unless given)."""
    from bounces.models import Bounce, RawMessage

    def make(
        *,
        recipient: str | None = None,
        diagnostic: str = "550 5.1.1 User unknown",
        kind: str = "unknown",
        reason: str = "",
        raw: bytes | None = None,
        contact: Any = None,
        campaign: Any = None,
        matched_rule: Any = None,
        state: str = "applied",
        age_minutes: int = 0,
        **dsn_kwargs: Any,
    ) -> Any:
        n = next(_seq)
        recipient = recipient or (contact.email if contact else f"user{n}@example.org")
        data = raw if raw is not None else dsn(recipient=recipient, diagnostic=diagnostic, **dsn_kwargs)
        raw_message = RawMessage.objects.create(
            dedupe_key=f"test:{n}", sha256=f"{n:064d}", raw=data, size=len(data), state="processed"
        )
        return Bounce.objects.create(
            raw_message=raw_message, recipient=recipient, diagnostic=diagnostic, kind=kind, reason=reason,
            contact=contact, campaign=campaign, matched_rule=matched_rule, state=state,
            bounced_at=timezone.now() - timedelta(minutes=age_minutes),
        )

    return make


@pytest.fixture
def make_contact(db: Any) -> Callable[..., Any]:
    """Create a contact, optionally subscribed to ``mailing_list``."""
    from contacts.models import Contact, Subscription

    def make(email: str, *, status: str = "active", mailing_list: Any = None, **kwargs: Any) -> Any:
        contact = Contact.objects.create(email=email, status=status, **kwargs)
        if mailing_list is not None:
            Subscription.objects.create(contact=contact, mailing_list=mailing_list)
        return contact

    return make


@pytest.fixture
def mailing_list(db: Any) -> Any:
    from contacts.models import MailingList

    return MailingList.objects.create(name="Newsletter")


@pytest.fixture
def make_rule(db: Any) -> Callable[..., Any]:
    """Create a validated rule (default: a contains rule on the diagnostic)."""
    from bounces.rules.models import BounceRule

    def make(pattern: str, **kwargs: Any) -> Any:
        kwargs.setdefault("name", pattern[:50])
        rule = BounceRule(pattern=pattern, **kwargs)
        rule.full_clean()
        rule.save()
        return rule

    return make
