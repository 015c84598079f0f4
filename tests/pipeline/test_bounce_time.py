"""A bounce's time comes from the notice (issue 11): address matching assigns it only to a
message sent before it, and soft counting uses it."""

from __future__ import annotations

from datetime import timedelta
from email.utils import format_datetime

import pytest
from django.utils import timezone

from bounces.intake.stored import process_stored_messages
from bounces.models import Bounce, BounceSettings, RawMessage
from contacts.models import Contact

from .conftest import dsn, send

pytestmark = pytest.mark.django_db


def deliver(*messages: bytes) -> None:
    for raw in messages:
        RawMessage.objects.create(dedupe_key=f"t:{RawMessage.objects.count()}:{hash(raw)}", sha256="0" * 64,
                                  raw=raw, size=len(raw))
    process_stored_messages()


def test_a_bounce_dated_before_the_campaign_counts_against_no_campaign(campaign):
    sent = send(campaign, "old@example.net", when=timezone.now() - timedelta(hours=2))
    years_ago = timezone.now() - timedelta(days=3 * 365)

    deliver(dsn("old@example.net", date=format_datetime(years_ago)))  # matched by address only

    bounce = Bounce.objects.get()
    assert bounce.contact_id == sent.contact_id and bounce.campaign_id is None
    assert abs(bounce.bounced_at - years_ago) < timedelta(seconds=1)


def test_an_address_match_takes_the_latest_message_sent_before_the_bounce(campaign):
    first = send(campaign, "two@example.net", when=timezone.now() - timedelta(days=10))
    later = send(campaign, "two@example.net", when=timezone.now() - timedelta(hours=1), contact=first.contact)
    assert later.campaign_id != first.campaign_id

    deliver(dsn("two@example.net", date=format_datetime(timezone.now() - timedelta(days=5))))

    assert Bounce.objects.get().campaign_id == first.campaign_id


def test_a_notice_from_the_future_is_not_believed(campaign):
    send(campaign, "future@example.net")
    before = timezone.now()

    deliver(dsn("future@example.net", date=format_datetime(timezone.now() + timedelta(days=400))))

    assert before <= Bounce.objects.get().bounced_at <= timezone.now()


def test_the_soft_window_counts_by_bounce_time_not_processing_time(campaign):
    row = BounceSettings.load()
    row.soft_policy, row.soft_threshold, row.soft_window_days = "window", 2, 7
    row.save()
    contact = None
    # two soft bounces 30 days apart, both processed now: not within 7 days of each other
    for days in (40, 10):
        sent = send(campaign, "win@example.net", when=timezone.now() - timedelta(days=days + 1), contact=contact)
        contact = sent.contact
        deliver(dsn("win@example.net", token=sent.token, status="4.2.2", diagnostic="452 4.2.2 Mailbox full",
                    date=format_datetime(timezone.now() - timedelta(days=days))))
    assert not Contact.objects.get(pk=contact.pk).has_bounced
    sent = send(campaign, "win@example.net", when=timezone.now() - timedelta(days=9), contact=contact)
    deliver(dsn("win@example.net", token=sent.token, status="4.2.2", diagnostic="452 4.2.2 Mailbox full",
                date=format_datetime(timezone.now() - timedelta(days=8))))
    assert Contact.objects.get(pk=contact.pk).has_bounced  # 10 and 8 days ago: two within 7 days
