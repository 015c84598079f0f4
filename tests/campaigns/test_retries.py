"""Messages deferred at send time (4xx for a recipient) are tried again with backoff.

Against the real SMTP server of tests/servers/smtp.py; time is moved with time-machine
(Django's timezone.now() follows it, and every due-time comparison uses Python's clock).
"""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.utils import timezone

from campaigns import services
from campaigns.models import Campaign, SentMessage
from campaigns.tasks import retry_deferred_task, send_campaign_task
from contacts.models import Contact, Subscription, Suppression

from .conftest import make_campaign, make_list, pipeline_ready, subscribe

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

needs_pipeline = pytest.mark.skipif(
    not pipeline_ready(), reason="waiting for bounces.intake.refusals.record_send_refusal (PIPELINE helper)"
)

GREYLISTED = "451 4.7.1 <busy@example.com>: Recipient address rejected: Greylisted, try again later"
FULL = "452 4.2.2 <busy@example.com>: Mailbox full, try again later"


def later(**delta) -> time_machine.travel:
    """Travel to now + delta (the clock keeps ticking from there)."""
    return time_machine.travel(timezone.now() + dt.timedelta(**delta), tick=True)


def delivered_to(server, address: str) -> int:
    return sum(1 for env in server.received if address in env.rcpt_tos)


def bounces_of(row: SentMessage):
    from bounces.models import Bounce

    return Bounce.objects.filter(sent_message_id=row.pk)


@pytest.fixture
def delays(settings):
    settings.CAMPAIGN_DEFER_RETRY_DELAYS = [15 * 60, 60 * 60, 4 * 60 * 60]
    return settings.CAMPAIGN_DEFER_RETRY_DELAYS


def deferred_campaign(server, *, reply: str = GREYLISTED) -> tuple[Campaign, SentMessage]:
    mailing_list = make_list()
    subscribe(mailing_list, "ok@example.com", "busy@example.com")
    server.refuse("busy@example.com", reply)
    campaign = make_campaign(mailing_list)
    report = services.send_campaign(campaign_id=campaign.pk)
    assert (report.sent, report.deferred) == (1, 1)
    return campaign, SentMessage.objects.get(campaign=campaign, email="busy@example.com")


def test_a_deferred_message_records_its_attempt_and_when_it_is_tried_again(smtp_server, delays):
    before = timezone.now()
    campaign, row = deferred_campaign(smtp_server)

    assert row.status == SentMessage.Status.DEFERRED
    assert row.attempts == 1
    assert row.last_reply == GREYLISTED
    assert row.last_attempt_at >= before
    assert dt.timedelta(minutes=15) <= row.next_attempt_at - before < dt.timedelta(minutes=16)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENT
    assert (campaign.sent_count, campaign.deferred_count) == (1, 1)


@needs_pipeline
def test_a_deferral_is_not_a_bounce_while_retries_are_pending(smtp_server, delays):
    _, row = deferred_campaign(smtp_server)

    assert not bounces_of(row).exists()
    assert Contact.objects.get(email="busy@example.com").soft_bounce_count == 0


def test_nothing_is_retried_before_it_is_due(smtp_server, delays):
    deferred_campaign(smtp_server)
    smtp_server.refuse("busy@example.com", "")  # would accept now

    with later(minutes=14):
        report = services.retry_deferred()

    assert report.retried == 0
    assert delivered_to(smtp_server, "busy@example.com") == 0


def test_refused_with_451_first_then_accepted_on_the_retry(smtp_server, delays):
    campaign, row = deferred_campaign(smtp_server)
    smtp_server.refuse("busy@example.com", "")  # the greylist lets it through now

    with later(minutes=16):
        report = services.retry_deferred()

    assert (report.retried, report.sent, report.deferred, report.gave_up) == (1, 1, 0, 0)
    row.refresh_from_db()
    assert row.status == SentMessage.Status.SENT
    assert row.attempts == 2 and row.next_attempt_at is None
    assert row.last_reply == GREYLISTED  # the last refusal stays visible
    assert delivered_to(smtp_server, "busy@example.com") == 1
    env = next(env for env in smtp_server.received if "busy@example.com" in env.rcpt_tos)
    assert env.mail_from == f"bounces+{row.token}@return.example.net"  # same token, same message
    assert env.message["Message-ID"] == f"<{row.message_id}>"
    campaign.refresh_from_db()
    assert (campaign.sent_count, campaign.refused_count, campaign.deferred_count) == (2, 0, 0)


@needs_pipeline
def test_a_message_accepted_on_retry_leaves_no_bounce(smtp_server, delays):
    _, row = deferred_campaign(smtp_server)
    smtp_server.refuse("busy@example.com", "")

    with later(minutes=16):
        services.retry_deferred()

    assert not bounces_of(row).exists()
    assert Contact.objects.get(email="busy@example.com").soft_bounce_count == 0


@needs_pipeline
def test_refused_every_time_it_is_given_up_after_the_last_attempt_and_counted_once(smtp_server, delays):
    from bounces.models import Bounce

    campaign, row = deferred_campaign(smtp_server, reply=FULL)
    waits = [16, 61, 241]  # minutes after each attempt: past 15 min, 1 h, 4 h
    with later(minutes=waits[0]):
        first = services.retry_deferred()
        row.refresh_from_db()
        assert (first.retried, first.deferred, first.gave_up) == (1, 1, 0)
        assert row.attempts == 2
        assert dt.timedelta(minutes=59) < row.next_attempt_at - timezone.now() <= dt.timedelta(hours=1)
        with later(minutes=waits[1]):
            second = services.retry_deferred()
            row.refresh_from_db()
            assert (second.retried, row.attempts) == (1, 3)
            assert dt.timedelta(hours=3, minutes=59) < row.next_attempt_at - timezone.now() <= dt.timedelta(hours=4)
            assert not bounces_of(row).exists()
            with later(minutes=waits[2]):
                last = services.retry_deferred()
                with later(days=3):
                    after = services.retry_deferred()

    assert (last.retried, last.deferred, last.gave_up) == (1, 1, 1)
    assert after.retried == 0 and after.next_due == ""
    row.refresh_from_db()
    assert row.attempts == 4 and row.next_attempt_at is None
    assert row.status in {SentMessage.Status.DEFERRED, SentMessage.Status.SOFT_BOUNCED}
    assert row.last_reply == FULL
    bounces = list(bounces_of(row))
    assert len(bounces) == 1
    assert bounces[0].kind == Bounce.Kind.SOFT and bounces[0].reply_code == "452"
    assert Contact.objects.get(email="busy@example.com").soft_bounce_count == 1
    assert delivered_to(smtp_server, "busy@example.com") == 0
    campaign.refresh_from_db()
    assert (campaign.sent_count, campaign.deferred_count) == (1, 1)


def test_the_number_of_attempts_follows_the_configured_delays(smtp_server, settings):
    settings.CAMPAIGN_DEFER_RETRY_DELAYS = [dt.timedelta(minutes=1)]
    _, row = deferred_campaign(smtp_server)
    assert row.next_attempt_at is not None

    with later(minutes=2):
        report = services.retry_deferred()

    assert (report.retried, report.gave_up) == (1, 1)
    row.refresh_from_db()
    assert row.attempts == 2 and row.next_attempt_at is None


def test_without_retry_delays_a_deferral_is_final_at_once(smtp_server, settings):
    settings.CAMPAIGN_DEFER_RETRY_DELAYS = []
    _, row = deferred_campaign(smtp_server)

    assert row.attempts == 1 and row.next_attempt_at is None
    with later(days=1):
        assert services.retry_deferred().retried == 0


@needs_pipeline
def test_a_permanent_refusal_on_retry_becomes_a_hard_bounce_and_moves_the_counters(smtp_server, delays):
    from bounces.models import Bounce

    campaign, row = deferred_campaign(smtp_server)
    smtp_server.refuse("busy@example.com", "550 5.1.1 <busy@example.com>: User unknown")

    with later(minutes=16):
        report = services.retry_deferred()

    assert (report.retried, report.refused) == (1, 1)
    row.refresh_from_db()
    assert row.status in {SentMessage.Status.REFUSED, SentMessage.Status.BOUNCED}
    assert row.next_attempt_at is None
    assert [(b.kind, b.reply_code) for b in bounces_of(row)] == [(Bounce.Kind.HARD, "550")]
    campaign.refresh_from_db()
    assert (campaign.sent_count, campaign.refused_count, campaign.deferred_count) == (1, 1, 0)


def test_two_sweeps_never_deliver_a_retry_twice(smtp_server, delays):
    campaign, row = deferred_campaign(smtp_server)
    smtp_server.refuse("busy@example.com", "")

    with later(minutes=16):
        first = services.retry_deferred(campaign_id=campaign.pk)
        second = services.retry_deferred()
        # a sweep holding a stale copy of the row (it saw it due) cannot claim it either
        assert services._claim(row, retry=True) is False

    assert (first.retried, second.retried) == (1, 0)
    assert delivered_to(smtp_server, "busy@example.com") == 1


def test_a_retry_whose_outcome_is_unknown_after_a_crash_is_not_sent_again(smtp_server, delays):
    _, row = deferred_campaign(smtp_server)
    smtp_server.refuse("busy@example.com", "")
    with later(minutes=16):
        # A sweep claimed it and died before recording the answer.
        assert services._claim(row, retry=True)
        with later(days=1):
            report = services.retry_deferred()

    assert report.retried == 0
    assert SentMessage.objects.get(pk=row.pk).status == SentMessage.Status.SENDING
    assert delivered_to(smtp_server, "busy@example.com") == 0


def test_a_lost_connection_during_a_retry_leaves_the_message_due_without_counting_the_attempt(
        smtp_server, delays):
    _, row = deferred_campaign(smtp_server)
    smtp_server.refuse("busy@example.com", "")
    smtp_server.hang_up_after(1)  # "ok@example.com" was accepted: the next DATA gets no answer

    with later(minutes=16):
        with pytest.raises(services.SendInterrupted):
            services.retry_deferred()
        row.refresh_from_db()
        assert row.status == SentMessage.Status.DEFERRED and row.attempts == 1
        assert row.next_attempt_at <= timezone.now()
        smtp_server.hang_up_after(None)
        assert services.retry_deferred().sent == 1

    assert delivered_to(smtp_server, "busy@example.com") == 1


def test_a_contact_who_unsubscribed_or_was_suppressed_meanwhile_is_not_retried(smtp_server, delays):
    mailing_list = make_list()
    subscribe(mailing_list, "left@example.com", "blocked@example.com")
    for address in ("left@example.com", "blocked@example.com"):
        smtp_server.refuse(address, GREYLISTED)
    campaign = make_campaign(mailing_list)
    services.send_campaign(campaign_id=campaign.pk)
    Subscription.objects.filter(contact__email="left@example.com").update(
        status=Subscription.Status.UNSUBSCRIBED)
    Suppression.objects.create(kind=Suppression.Kind.ADDRESS, value="blocked@example.com")
    for address in ("left@example.com", "blocked@example.com"):
        smtp_server.refuse(address, "")

    with later(minutes=16):
        report = services.retry_deferred()

    assert (report.retried, report.dropped) == (0, 2)
    assert smtp_server.received == []
    assert not SentMessage.objects.filter(campaign=campaign, next_attempt_at__isnull=False).exists()


def test_a_paused_campaign_holds_its_retries_until_it_is_resumed(smtp_server, delays):
    campaign, row = deferred_campaign(smtp_server)
    smtp_server.refuse("busy@example.com", "")
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.PAUSED)

    with later(minutes=16):
        assert services.retry_deferred().retried == 0
        Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SENDING)
        assert services.retry_deferred().sent == 1


def test_the_recount_agrees_with_the_counters_after_retries(smtp_server, delays):
    campaign, _ = deferred_campaign(smtp_server)
    smtp_server.refuse("busy@example.com", "")
    with later(minutes=16):
        services.retry_deferred()
    campaign.refresh_from_db()
    before = (campaign.sent_count, campaign.refused_count, campaign.deferred_count)

    campaign = services.recount_campaign(campaign=campaign)

    assert (campaign.sent_count, campaign.refused_count, campaign.deferred_count) == before == (2, 0, 0)


def test_the_send_task_reports_when_the_first_retry_is_due(smtp_server, delays, monkeypatch):
    mailing_list = make_list()
    subscribe(mailing_list, "busy@example.com")
    smtp_server.refuse("busy@example.com", GREYLISTED)
    campaign = make_campaign(mailing_list)
    # Eager: the follow-up task is not put on a broker (none runs in this test).
    monkeypatch.setattr(send_campaign_task.app.conf, "task_always_eager", True)

    result = send_campaign_task.apply(args=[campaign.pk])

    assert result.successful(), result.traceback
    row = SentMessage.objects.get(campaign=campaign)
    assert result.result["deferred"] == 1
    assert dt.datetime.fromisoformat(result.result["retry_at"]) == row.next_attempt_at


def test_the_retry_task_sends_what_is_due(smtp_server, delays, monkeypatch):
    campaign, _ = deferred_campaign(smtp_server)
    smtp_server.refuse("busy@example.com", "")
    monkeypatch.setattr(retry_deferred_task.app.conf, "task_always_eager", True)

    with later(minutes=16):
        result = retry_deferred_task.apply(args=[campaign.pk])

    assert result.successful(), result.traceback
    assert (result.result["retried"], result.result["sent"], result.result["next_due"]) == (1, 1, "")


def test_the_admin_action_makes_the_pending_retries_due_at_once(admin_client, smtp_server, delays,
                                                                django_capture_on_commit_callbacks):
    from django.urls import reverse

    campaign, row = deferred_campaign(smtp_server)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = admin_client.post(reverse("admin:campaigns_campaign_changelist"),
                                     {"action": "retry_deferred_now", "_selected_action": [campaign.pk]})

    assert response.status_code == 302
    assert len(callbacks) == 1  # the retry task, after the commit
    row.refresh_from_db()
    assert row.next_attempt_at <= timezone.now() and row.attempts == 1
    smtp_server.refuse("busy@example.com", "")
    assert services.retry_deferred(campaign_id=campaign.pk).sent == 1


def test_the_sent_message_admin_lists_pending_retries(admin_client, smtp_server, delays):
    from django.urls import reverse

    deferred_campaign(smtp_server)

    response = admin_client.get(reverse("admin:campaigns_sentmessage_changelist"), {"retry": "pending"})

    assert response.status_code == 200
    assert [m.email for m in response.context["cl"].result_list] == ["busy@example.com"]


def test_the_retry_task_is_queued_with_an_eta_at_the_first_retry_due(smtp_server, delays):
    from campaigns.tasks import schedule_retry

    campaign, row = deferred_campaign(smtp_server)
    app = retry_deferred_task.app
    # A real kombu broker in memory: the message as a worker would receive it.
    with app.connection_for_write("memory://") as connection:
        queued = schedule_retry(campaign.pk, services.next_retry_at(campaign_id=campaign.pk),
                                producer=app.amqp.Producer(connection))
        message = connection.SimpleQueue("celery").get(timeout=1)

    assert queued
    assert message.headers["task"] == "campaigns.retry_deferred"
    assert message.headers["argsrepr"] == f"[{campaign.pk}]"
    assert dt.datetime.fromisoformat(message.headers["eta"]) == row.next_attempt_at


def test_nothing_is_queued_when_no_retry_is_pending():
    from campaigns.tasks import schedule_retry

    assert schedule_retry(1, None) is False
