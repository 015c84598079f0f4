"""Issue 11 item 6: a send the receiving server accepted, with no bounce within the window,
lifts a soft / blocked suppression; driven through the pipeline from stored raw messages."""

from __future__ import annotations

from datetime import timedelta
from email.utils import format_datetime

import pytest
from django.utils import timezone

from bounces.pipeline.actions import ACCEPTED_SEND_QUIET, lift_after_accepted_sends
from contacts.models import ContactEvent, LiftedSuppression, Suppression

from .conftest import dsn, send
from .test_actions import SOFT, deliver, settings

pytestmark = pytest.mark.django_db


def _late_bounce(campaign, email: str, *, days_ago: int, **kw):
    """A message sent `days_ago` days ago whose bounce (dated then) is processed only now."""
    when = timezone.now() - timedelta(days=days_ago)
    sent = send(campaign, email, when=when)
    deliver(dsn(email, token=sent.token, date=format_datetime(when + timedelta(minutes=5)), **kw))
    return sent


def test_a_later_accepted_send_with_no_bounce_lifts_a_soft_suppression(campaign):
    settings(soft_threshold=1)  # one soft bounce reaches the threshold: hard actions, soft reason
    first = _late_bounce(campaign, "full@example.net", days_ago=10, **SOFT)
    row = Suppression.objects.get(value="full@example.net")
    assert row.reason == Suppression.Reason.SOFT_BOUNCE

    # A send accepted after the bounce's time, not yet quiet long enough: nothing changes.
    later = send(campaign, "full@example.net", contact=first.contact, when=timezone.now() - timedelta(days=1))
    assert lift_after_accepted_sends() == 0
    assert Suppression.objects.filter(pk=row.pk).exists()

    # Once the window has passed with no bounce for the address, the suppression lifts.
    later.sent_at = timezone.now() - ACCEPTED_SEND_QUIET - timedelta(hours=1)
    later.save(update_fields=["sent_at"])
    assert lift_after_accepted_sends() == 1
    assert not Suppression.objects.filter(value="full@example.net").exists()
    lifted = LiftedSuppression.objects.get(value="full@example.net")
    assert lifted.lift_reason == LiftedSuppression.LiftReason.DELIVERED
    event = ContactEvent.objects.get(contact=first.contact, kind=ContactEvent.Kind.UNSUPPRESS)
    assert event.detail["lift_reason"] == "accepted_send" and event.detail["sent_message_id"] == later.pk
    assert lift_after_accepted_sends() == 0  # once only


def test_a_send_that_bounced_within_the_window_or_came_before_the_bounce_lifts_nothing(campaign):
    settings(soft_threshold=1)
    first = _late_bounce(campaign, "busy@example.net", days_ago=10, **SOFT)
    # sent before the bounce that caused the suppression: no evidence
    send(campaign, "busy@example.net", contact=first.contact, when=timezone.now() - timedelta(days=11))
    # accepted after the bounce, but bounced again (soft) a day later
    again = send(campaign, "busy@example.net", contact=first.contact, when=timezone.now() - timedelta(days=8))
    deliver(dsn("busy@example.net", token=again.token,
                date=format_datetime(timezone.now() - timedelta(days=7)), **SOFT))
    again.refresh_from_db()
    again.status = "sent"  # even if its status were still "sent", the bounce counts
    again.save(update_fields=["status"])
    assert lift_after_accepted_sends() == 0
    assert Suppression.objects.filter(value="busy@example.net").exists()


def test_hard_suppressions_are_never_lifted_by_an_accepted_send(campaign):
    first = _late_bounce(campaign, "gone@example.net", days_ago=10)  # user unknown: hard
    assert Suppression.objects.get(value="gone@example.net").reason == Suppression.Reason.HARD_BOUNCE
    send(campaign, "gone@example.net", contact=first.contact, when=timezone.now() - timedelta(days=5))
    assert lift_after_accepted_sends() == 0
    assert Suppression.objects.filter(value="gone@example.net").exists()


def test_the_hourly_task_is_scheduled():
    from bouncemgr.celery import app

    entries = {e["task"] for e in app.conf.beat_schedule.values()}
    assert "bounces.lift_after_accepted_sends" in entries
