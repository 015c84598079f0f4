"""The deliverability guard's scenarios (issue 14), through the real pipeline (notices in a
maildir, processed by process_mailbox) and the real sending path (the test SMTP server)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from bounces.models import Alert, Bounce, Incident
from bounces.pipeline.held import preview_apply, resolve_incident
from campaigns.models import SentMessage
from contacts.models import Contact, ContactEvent, Suppression

from .helpers import IP_LISTED, USER_UNKNOWN, Maildir, make_campaign, notice, sent_to, spread

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]  # on SQLite and on PostgreSQL (scripts/test.sh)


def _contacts_state():
    return sorted(Contact.objects.values_list("email", "status", "has_bounced", "hard_bounce_count",
                                              "soft_bounce_count", "updated_at"))


def test_fifty_ip_listed_refusals_from_one_provider_open_one_incident_and_hold_all_fifty(
    tmp_path, django_capture_on_commit_callbacks
):
    campaign = make_campaign()
    sent = [sent_to(campaign, f"user{i}@gmail.com") for i in range(50)]
    maildir = Maildir(tmp_path)
    for row, at in zip(sent, spread(50, minutes=9), strict=True):
        maildir.drop(notice(row, diagnostic=IP_LISTED, status="5.7.1", at=at))
    before = _contacts_state()

    with django_capture_on_commit_callbacks(execute=True):
        maildir.run()

    [incident] = Incident.objects.all()
    assert (incident.scope, incident.key, incident.trigger, incident.cause) == ("provider", "google", "blocked",
                                                                               "blocklist")
    assert incident.held_count == 50
    assert Bounce.objects.filter(state=Bounce.State.HELD, incident=incident).count() == 50
    assert _contacts_state() == before
    assert not ContactEvent.objects.exists() and not Suppression.objects.exists()
    assert set(SentMessage.objects.values_list("status", flat=True)) == {SentMessage.Status.SENT}
    assert Alert.objects.filter(kind=Alert.Kind.INCIDENT_OPENED).count() == 1

    # resolving as ours releases them: recorded, never counted, still no contact touched
    resolve_incident(incident_id=incident.pk, real=False)
    incident.refresh_from_db()
    assert incident.status == Incident.Status.RELEASED
    assert Bounce.objects.filter(state=Bounce.State.RECORDED, counted=False, incident=incident).count() == 50
    assert _contacts_state() == before and not ContactEvent.objects.exists()
    assert _campaign_bounced(campaign) == 0  # nor against the campaign's bounce rate


def _campaign_bounced(campaign) -> int:
    from campaigns.models import GuardrailCount

    return sum(GuardrailCount.objects.filter(campaign=campaign, scope=GuardrailCount.Scope.CAMPAIGN)
               .values_list("bounced", flat=True))


def test_a_burst_of_user_unknowns_above_the_baseline_is_held_and_resolving_as_real_applies_the_policy(
    tmp_path, django_capture_on_commit_callbacks
):
    campaign = make_campaign()
    maildir = Maildir(tmp_path)
    now = timezone.now()
    # yesterday and this morning: one user unknown an hour at yahoo (its baseline)
    for i, at in enumerate(spread(20, minutes=20 * 60, end=now - timedelta(minutes=30))):
        maildir.drop(notice(sent_to(campaign, f"old{i}@yahoo.com", when=at - timedelta(minutes=5)), diagnostic=USER_UNKNOWN, status="5.1.1", at=at))
    maildir.run()
    assert not Incident.objects.exists()
    assert Suppression.objects.count() == 20  # ordinary hard bounces act as usual

    burst = [sent_to(campaign, f"new{i}@yahoo.com") for i in range(60)]
    for row, at in zip(burst, spread(60, minutes=8), strict=True):
        maildir.drop(notice(row, diagnostic=USER_UNKNOWN, status="5.1.1", at=at))
    with django_capture_on_commit_callbacks(execute=True):
        maildir.run()

    [incident] = Incident.objects.all()
    assert (incident.scope, incident.key, incident.trigger) == ("provider", "yahoo", "burst")
    assert incident.held_count == 60
    assert Suppression.objects.count() == 20
    assert not Contact.objects.filter(email__startswith="new", has_bounced=True).exists()
    assert _campaign_bounced(campaign) == 20  # held: not in the campaign's bounce rate yet

    preview = preview_apply(incident=incident)
    assert preview.held == 60 and preview.contacts == 60 and preview.by_kind == {"hard": 60}
    assert Suppression.objects.count() == 20  # a preview writes nothing

    resolve_incident(incident_id=incident.pk, real=True)
    assert Suppression.objects.count() == 80
    assert Contact.objects.filter(email__startswith="new", has_bounced=True).count() == 60
    assert Bounce.objects.filter(incident=incident, state=Bounce.State.APPLIED, counted=True).count() == 60
    assert SentMessage.objects.filter(email__startswith="new", status=SentMessage.Status.BOUNCED).count() == 60
    assert _campaign_bounced(campaign) == 80  # real: the campaign's bounce rate counts them now, once


def test_a_steady_trickle_of_user_unknowns_opens_no_incident(tmp_path):
    campaign = make_campaign()
    maildir = Maildir(tmp_path)
    # three hours of one user unknown every five minutes at one provider (36 in all)
    for i, at in enumerate(spread(36, minutes=180)):
        maildir.drop(notice(sent_to(campaign, f"u{i}@outlook.com", when=at - timedelta(minutes=5)), diagnostic=USER_UNKNOWN, status="5.1.1", at=at))
    maildir.run()
    assert not Incident.objects.exists()
    assert Suppression.objects.count() == 36


def test_sends_to_the_provider_pause_while_the_incident_is_open_and_resume_when_resolved(
    tmp_path, smtp_server, eager, django_capture_on_commit_callbacks
):
    from campaigns.models import Campaign
    from campaigns.services import send_campaign

    bounced = make_campaign()
    maildir = Maildir(tmp_path)
    for i, at in enumerate(spread(30, minutes=5)):
        maildir.drop(notice(sent_to(bounced, f"b{i}@gmail.com"), diagnostic=IP_LISTED, status="5.7.1", at=at))
    with django_capture_on_commit_callbacks(execute=True):
        maildir.run()
    [incident] = Incident.objects.all()
    # the alert reached the test SMTP server
    [alert_mail] = [env for env in smtp_server.received if env.rcpt_tos == ("ops@example.org",)]
    assert "Incident: Blocked (blocklist)" in alert_mail.message["Subject"]

    running = make_campaign()
    running.status = Campaign.Status.QUEUED
    running.save(update_fields=["status"])
    for address in ("ann@gmail.com", "bob@googlemail.com", "cy@example.com", "di@yahoo.com"):
        contact = Contact.objects.create(email=address)
        contact.subscriptions.create(mailing_list=running.mailing_list)
    with django_capture_on_commit_callbacks(execute=True):
        send_campaign(campaign_id=running.pk)
    delivered = {env.rcpt_tos[0] for env in smtp_server.received if env.rcpt_tos != ("ops@example.org",)}
    assert delivered == {"cy@example.com", "di@yahoo.com"}
    paused = SentMessage.objects.filter(campaign=running, status=SentMessage.Status.DEFERRED)
    assert sorted(paused.values_list("email", flat=True)) == ["ann@gmail.com", "bob@googlemail.com"]
    running.refresh_from_db()
    assert running.deferred_count == 2 and running.sent_count == 2

    with django_capture_on_commit_callbacks(execute=True):
        resolve_incident(incident_id=incident.pk, real=False)
    delivered = {env.rcpt_tos[0] for env in smtp_server.received if env.rcpt_tos != ("ops@example.org",)}
    assert delivered == {"cy@example.com", "di@yahoo.com", "ann@gmail.com", "bob@googlemail.com"}
    running.refresh_from_db()
    assert (running.sent_count, running.deferred_count) == (4, 0)
    assert SentMessage.objects.filter(campaign=running, status=SentMessage.Status.SENT).count() == 4
    assert any("Resolved (our problem)" in env.message["Subject"] for env in smtp_server.received)
