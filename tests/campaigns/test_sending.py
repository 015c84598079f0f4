"""Sending campaigns through a real SMTP server on loopback (aiosmtpd)."""

from __future__ import annotations

import pytest

from campaigns import services
from campaigns.models import Campaign, SentMessage
from campaigns.tasks import send_campaign_task
from contacts.models import Contact, Subscription, Suppression

from .conftest import make_campaign, make_list, pipeline_ready, subscribe

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

needs_pipeline = pytest.mark.skipif(
    not pipeline_ready(), reason="waiting for bounces.intake.refusals.record_send_refusal (PIPELINE helper)"
)


def test_each_subscriber_gets_one_message_with_a_verp_sender_and_tracking_header(smtp_server):
    mailing_list = make_list()
    subscribe(mailing_list, "ann@example.com", "Bob@Example.org")
    campaign = make_campaign(mailing_list)

    report = services.send_campaign(campaign_id=campaign.pk)

    assert report.sent == 2
    rows = {row.email: row for row in SentMessage.objects.filter(campaign=campaign)}
    assert set(rows) == {"ann@example.com", "Bob@Example.org"}
    by_rcpt = {env.rcpt_tos[0]: env for env in smtp_server.received}
    assert set(by_rcpt) == {"ann@example.com", "Bob@Example.org"}
    for address, env in by_rcpt.items():
        row = rows[address]
        assert env.mail_from == f"bounces+{row.token}@return.example.net"
        message = env.message
        assert message["From"] == "News <news@example.com>"
        assert message["Message-ID"] == f"<{row.message_id}>"
        assert message["X-Bouncemgr-Token"] == row.token
        assert message["Subject"] == "November news"
        assert "Hello from the test." in message.get_content()
        assert row.status == SentMessage.Status.SENT
        assert row.sent_at is not None
    assert len({row.message_id for row in rows.values()}) == 2


def test_a_finished_campaign_is_marked_sent_with_its_counters(smtp_server):
    mailing_list = make_list()
    subscribe(mailing_list, "a@example.com", "b@example.com", "c@example.com")
    campaign = make_campaign(mailing_list)

    services.send_campaign(campaign_id=campaign.pk)

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENT
    assert campaign.sent_at is not None and campaign.finished_at is not None
    assert (campaign.sent_count, campaign.refused_count, campaign.deferred_count, campaign.skipped_count) == (
        3, 0, 0, 0)


def test_a_list_unsubscribe_header_is_added_when_configured(smtp_server, settings):
    settings.CAMPAIGN_LIST_UNSUBSCRIBE = "mailto:unsubscribe@example.com?subject=unsubscribe-{token}"
    mailing_list = make_list()
    subscribe(mailing_list, "a@example.com")
    campaign = make_campaign(mailing_list)

    services.send_campaign(campaign_id=campaign.pk)

    row = SentMessage.objects.get(campaign=campaign)
    message = smtp_server.received[0].message
    assert message["List-Unsubscribe"].strip() == f"<mailto:unsubscribe@example.com?subject=unsubscribe-{row.token}>"
    assert message["Return-Path"] is None  # the receiving MTA writes it from the envelope


def test_html_campaigns_are_sent_as_multipart_alternative(smtp_server):
    mailing_list = make_list()
    subscribe(mailing_list, "a@example.com")
    campaign = make_campaign(mailing_list, body_html="<p>Hello <b>there</b></p>")

    services.send_campaign(campaign_id=campaign.pk)

    message = smtp_server.received[0].message
    assert message.get_content_type() == "multipart/alternative"
    assert message.get_body(("html",)).get_content().strip() == "<p>Hello <b>there</b></p>"


def test_suppressed_addresses_and_domains_are_not_mailed_but_recorded_as_skipped(smtp_server):
    mailing_list = make_list()
    subscribe(mailing_list, "ok@example.com", "Gone@Example.com", "x@blocked.test", "y@sub.blocked.test")
    Suppression.objects.create(kind=Suppression.Kind.ADDRESS, value="gone@example.com")
    Suppression.objects.create(kind=Suppression.Kind.DOMAIN, value="blocked.test")
    campaign = make_campaign(mailing_list)

    report = services.send_campaign(campaign_id=campaign.pk)

    assert [env.rcpt_tos for env in smtp_server.received] == [("ok@example.com",)]
    assert report.sent == 1 and report.skipped == 3
    statuses = dict(SentMessage.objects.filter(campaign=campaign).values_list("email", "status"))
    assert statuses == {
        "ok@example.com": "sent", "Gone@Example.com": "skipped",
        "x@blocked.test": "skipped", "y@sub.blocked.test": "skipped",
    }
    campaign.refresh_from_db()
    assert campaign.skipped_count == 3


def test_a_batch_of_suppressed_contacts_only_does_not_end_the_send(smtp_server):
    mailing_list = make_list()
    subscribe(mailing_list, "a@blocked.test", "b@blocked.test", "c@blocked.test", "ok@example.com")
    Suppression.objects.create(kind=Suppression.Kind.DOMAIN, value="blocked.test")
    campaign = make_campaign(mailing_list)

    report = services.send_campaign(campaign_id=campaign.pk, batch_size=2)

    assert [env.rcpt_tos for env in smtp_server.received] == [("ok@example.com",)]
    assert (report.sent, report.skipped) == (1, 3)


def test_only_active_subscribed_contacts_of_the_list_are_mailed(smtp_server):
    mailing_list = make_list()
    other = make_list()
    subscribe(mailing_list, "in@example.com")
    subscribe(mailing_list, "left@example.com", status=Subscription.Status.UNSUBSCRIBED)
    subscribe(mailing_list, "unconfirmed@example.com", status=Subscription.Status.UNCONFIRMED)
    subscribe(mailing_list, "banned@example.com", contact_status=Contact.Status.BLACKLISTED)
    subscribe(other, "elsewhere@example.com")
    campaign = make_campaign(mailing_list)

    services.send_campaign(campaign_id=campaign.pk)

    assert [env.rcpt_tos for env in smtp_server.received] == [("in@example.com",)]
    # the blacklisted subscriber is listed as skipped, with why; the others are not the list's
    assert dict(SentMessage.objects.filter(campaign=campaign).values_list("email", "skip_reason")) == {
        "in@example.com": "", "banned@example.com": SentMessage.SkipReason.BLACKLISTED}


def test_one_smtp_connection_is_used_per_batch(smtp_server):
    mailing_list = make_list()
    subscribe(mailing_list, *[f"r{i}@example.com" for i in range(7)])
    campaign = make_campaign(mailing_list)

    report = services.send_campaign(campaign_id=campaign.pk, batch_size=3)

    assert report.sent == 7 and report.batches == 3
    assert smtp_server.sessions == 3


def test_sending_a_campaign_twice_mails_nobody_twice(smtp_server):
    mailing_list = make_list()
    subscribe(mailing_list, "a@example.com", "b@example.com")
    campaign = make_campaign(mailing_list)
    services.send_campaign(campaign_id=campaign.pk)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SENDING)
    subscribe(mailing_list, "late@example.com")

    report = services.send_campaign(campaign_id=campaign.pk)

    assert report.sent == 1
    rcpts = sorted(env.rcpt_tos[0] for env in smtp_server.received)
    assert rcpts == ["a@example.com", "b@example.com", "late@example.com"]


def test_an_interrupted_send_resumes_where_it_stopped(smtp_server):
    mailing_list = make_list()
    subscribe(mailing_list, *[f"r{i}@example.com" for i in range(6)])
    campaign = make_campaign(mailing_list)
    smtp_server.hang_up_after(2)

    with pytest.raises(services.SendInterrupted):
        services.send_campaign(campaign_id=campaign.pk, batch_size=4)

    assert len(smtp_server.received) == 2
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENDING and "connection" in campaign.last_error.lower()
    assert SentMessage.objects.filter(campaign=campaign, status="sent").count() == 2
    assert SentMessage.objects.filter(campaign=campaign, status="sending").count() == 0

    smtp_server.hang_up_after(None)
    report = services.send_campaign(campaign_id=campaign.pk, batch_size=4)

    assert report.sent == 4
    rcpts = sorted(env.rcpt_tos[0] for env in smtp_server.received)
    assert rcpts == [f"r{i}@example.com" for i in range(6)]
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENT and campaign.sent_count == 6


def test_a_message_whose_outcome_is_unknown_after_a_crash_is_not_sent_again(smtp_server):
    mailing_list = make_list()
    first, second = subscribe(mailing_list, "a@example.com", "b@example.com")
    campaign = make_campaign(mailing_list, status=Campaign.Status.SENDING)
    # A crashed run had handed this message to SMTP and died before recording the answer.
    SentMessage.objects.create(campaign=campaign, contact=first, email=first.email,
                               message_id="crash@x", status=SentMessage.Status.SENDING)

    services.send_campaign(campaign_id=campaign.pk)

    assert [env.rcpt_tos for env in smtp_server.received] == [("b@example.com",)]
    assert SentMessage.objects.get(contact=first).status == SentMessage.Status.SENDING


def test_rows_left_queued_by_a_crash_are_sent_unless_suppressed_since(smtp_server):
    mailing_list = make_list()
    first, second = subscribe(mailing_list, "a@example.com", "b@example.com")
    campaign = make_campaign(mailing_list, status=Campaign.Status.SENDING)
    for contact in (first, second):
        SentMessage.objects.create(campaign=campaign, contact=contact, email=contact.email,
                                   message_id=f"{contact.pk}@x")
    Suppression.objects.create(kind=Suppression.Kind.ADDRESS, value="b@example.com")

    report = services.send_campaign(campaign_id=campaign.pk)

    assert [env.rcpt_tos for env in smtp_server.received] == [("a@example.com",)]
    assert (report.sent, report.skipped) == (1, 1)
    assert SentMessage.objects.get(contact=second).status == SentMessage.Status.SKIPPED


def test_a_paused_campaign_stops_and_a_draft_is_not_sent_by_the_task(smtp_server):
    mailing_list = make_list()
    subscribe(mailing_list, "a@example.com")
    draft = make_campaign(mailing_list, status=Campaign.Status.DRAFT)
    paused = make_campaign(mailing_list, status=Campaign.Status.PAUSED)

    assert services.send_campaign(campaign_id=draft.pk).stopped == "not queued"
    assert services.send_campaign(campaign_id=paused.pk).stopped == "not queued"
    assert smtp_server.received == []


def test_the_celery_task_sends_the_campaign(smtp_server):
    mailing_list = make_list()
    subscribe(mailing_list, "a@example.com")
    campaign = make_campaign(mailing_list)

    result = send_campaign_task.apply(args=[campaign.pk])

    assert result.successful(), result.traceback
    assert result.result["sent"] == 1
    assert len(smtp_server.received) == 1


def test_queueing_a_draft_starts_the_task_after_commit(django_capture_on_commit_callbacks, smtp_server):
    mailing_list = make_list()
    campaign = make_campaign(mailing_list, status=Campaign.Status.DRAFT)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.queue_campaign(campaign=campaign)

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.QUEUED
    assert len(callbacks) == 1


def test_a_sent_campaign_cannot_be_queued_again():
    campaign = make_campaign(make_list(), status=Campaign.Status.SENT)
    with pytest.raises(services.CampaignError):
        services.queue_campaign(campaign=campaign)


def test_a_campaign_without_a_list_cannot_be_queued():
    campaign = make_campaign(None, status=Campaign.Status.DRAFT)
    with pytest.raises(services.CampaignError):
        services.queue_campaign(campaign=campaign)


def test_a_refused_sender_pauses_the_campaign_with_the_reason(smtp_server):
    mailing_list = make_list()
    subscribe(mailing_list, "a@example.com")
    campaign = make_campaign(mailing_list)
    smtp_server.refuse_sender("553 5.7.1 Sender address rejected: not owned by user")

    with pytest.raises(services.SendFailed):
        services.send_campaign(campaign_id=campaign.pk)

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED
    assert "refused the sender" in campaign.last_error
    assert SentMessage.objects.get(campaign=campaign).status == SentMessage.Status.QUEUED


def test_a_temporarily_refused_sender_interrupts_the_send_for_a_retry(smtp_server):
    mailing_list = make_list()
    subscribe(mailing_list, "a@example.com")
    campaign = make_campaign(mailing_list)
    smtp_server.refuse_sender("451 4.3.0 Try again later")

    with pytest.raises(services.SendInterrupted):
        services.send_campaign(campaign_id=campaign.pk)

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENDING
    smtp_server.refuse_sender(None)
    assert services.send_campaign(campaign_id=campaign.pk).sent == 1


def test_refused_recipients_are_recorded_as_refused_or_deferred(smtp_server):
    mailing_list = make_list()
    subscribe(mailing_list, "ok@example.com", "gone@example.com", "busy@example.com", "spam@example.com")
    smtp_server.refuse("gone@example.com", "550 5.1.1 <gone@example.com>: Recipient address rejected: User unknown")
    smtp_server.refuse("busy@example.com", "452 4.2.2 Mailbox full, try again later")
    smtp_server.refuse_data("spam@example.com", "554 5.7.1 Message rejected as spam")
    campaign = make_campaign(mailing_list)

    report = services.send_campaign(campaign_id=campaign.pk)

    assert (report.sent, report.refused, report.deferred) == (1, 2, 1)
    statuses = dict(SentMessage.objects.filter(campaign=campaign).values_list("email", "status"))
    assert statuses["ok@example.com"] == "sent"
    assert statuses["busy@example.com"] in {"deferred", "soft_bounced"}
    assert statuses["gone@example.com"] in {"refused", "bounced"}
    campaign.refresh_from_db()
    assert (campaign.sent_count, campaign.refused_count, campaign.deferred_count) == (1, 2, 1)
    assert [env.rcpt_tos for env in smtp_server.received] == [("ok@example.com",)]


@needs_pipeline
def test_refusals_become_bounces_with_the_same_classification_and_actions(smtp_server, settings):
    from bounces.models import Bounce

    # Without retries a deferral is final at once (tests/campaigns/test_retries.py: with them).
    settings.CAMPAIGN_DEFER_RETRY_DELAYS = []
    mailing_list = make_list()
    subscribe(mailing_list, "ok@example.com", "gone@example.com", "busy@example.com")
    smtp_server.refuse("gone@example.com", "550 5.1.1 <gone@example.com>: Recipient address rejected: User unknown")
    smtp_server.refuse("busy@example.com", "452 4.2.2 Mailbox full, try again later")
    campaign = make_campaign(mailing_list)

    services.send_campaign(campaign_id=campaign.pk)

    bounces = {b.recipient.lower(): b for b in Bounce.objects.filter(campaign=campaign)}
    assert set(bounces) == {"gone@example.com", "busy@example.com"}
    hard = bounces["gone@example.com"]
    assert hard.kind == Bounce.Kind.HARD
    assert hard.reply_code == "550" and hard.status_code == "5.1.1"
    assert hard.sent_message.email == "gone@example.com"
    assert hard.contact.email in {"", "gone@example.com"}
    assert bounces["busy@example.com"].kind == Bounce.Kind.SOFT
    gone = Contact.objects.get(pk=hard.contact_id)
    assert gone.hard_bounce_count == 1 and gone.has_bounced


def test_dead_and_punished_states_are_never_mailed_and_the_page_says_why(smtp_server, admin_client):
    from contacts.models import Suppression

    mailing_list = make_list()
    fine, hard, moved, bounce_unsub, suppressed = subscribe(
        mailing_list, "fine@example.com", "hard@example.com", "moved@example.com", "unsub@example.com",
        "supp@example.com")
    Contact.objects.filter(pk=hard.pk).update(has_bounced=True)
    Contact.objects.filter(pk=moved.pk).update(email="", bounced_address="moved@example.com", has_bounced=True)
    Subscription.objects.filter(contact=bounce_unsub).update(
        status=Subscription.Status.UNSUBSCRIBED, unsubscribe_reason="hard_bounce")
    Suppression.objects.create(value="supp@example.com", reason=Suppression.Reason.HARD_BOUNCE)
    campaign = make_campaign(mailing_list)

    report = services.send_campaign(campaign_id=campaign.pk)

    assert [env.rcpt_tos for env in smtp_server.received] == [("fine@example.com",)]
    assert report.skipped == 4
    reasons = dict(SentMessage.objects.filter(campaign=campaign, status="skipped").values_list("email", "skip_reason"))
    assert reasons == {"hard@example.com": "hard_bounced", "moved@example.com": "moved_aside",
                       "unsub@example.com": "bounce_unsubscribed", "supp@example.com": "suppressed"}
    page = admin_client.get(f"/campaigns/{campaign.pk}/").content.decode()
    assert "Skipped: never sent, and why" in page
    assert "Hard-bounced" in page and "Address moved aside after a bounce" in page and "moved@example.com" in page
