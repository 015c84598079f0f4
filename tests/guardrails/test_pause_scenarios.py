"""Rate guardrails as the operator meets them: campaigns sent through the real SMTP server on
loopback, refusals and complaints recorded by the real pipeline (send-time refusals, a Maildir
of ARF reports), pages and buttons through the test client."""

from __future__ import annotations

import pytest
from django.urls import reverse

from campaigns import services
from campaigns.models import Campaign, CampaignGuardrail, GuardrailCount, SentMessage

from .conftest import arf_for, campaign_to, staff

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

USER_UNKNOWN = "550 5.1.1 <{}>: Recipient address rejected: User unknown in virtual mailbox table"


@pytest.fixture(autouse=True)
def _eager_and_alerts(settings):
    from bouncemgr.celery import app

    settings.CAMPAIGN_SEND_BATCH_SIZE = 50
    settings.BOUNCEMGR_ALERT_EMAILS = ["ops@example.com"]
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = eager


def alerts(kind: str) -> list:
    from bounces.incidents.models import Alert

    return list(Alert.objects.filter(kind=kind).order_by("id"))


def news(smtp_server) -> list:
    """What the campaigns sent (the server also gets the alert mails, to ops@example.com)."""
    return [e for e in smtp_server.received if "ops@example.com" not in e.rcpt_tos]


def to_ops(smtp_server) -> list:
    return [e for e in smtp_server.received if "ops@example.com" in e.rcpt_tos]


def refuse(smtp_server, addresses: list[str]) -> None:
    for address in addresses:
        smtp_server.refuse(address, USER_UNKNOWN.format(address))


def test_a_campaign_crossing_ten_percent_hard_bounces_after_100_sends_pauses_says_why_and_resumes(
        smtp_server, client, django_capture_on_commit_callbacks):
    addresses = [f"reader{i:03}@d{i % 4}.example.org" for i in range(300)]
    refuse(smtp_server, addresses[:12])  # 12 of the first 100: 12 %
    campaign = campaign_to(addresses)

    with django_capture_on_commit_callbacks(execute=True):
        report = services.send_campaign(campaign_id=campaign.pk)

    campaign.refresh_from_db()
    assert report.stopped == Campaign.Status.PAUSED
    assert campaign.status == Campaign.Status.PAUSED
    assert len(news(smtp_server)) == 88  # 100 tried, 12 refused; nothing after the 100th
    guard = CampaignGuardrail.objects.get(campaign=campaign)
    assert "bounce rate (hard + blocked) 12.00 % (12 of 100 sent) for the campaign, threshold 10 %" in \
        guard.pause_reason
    [paused] = alerts("campaign.paused")
    assert "12.00 %" in paused.title and paused.link == reverse("campaigns:results", args=[campaign.pk])
    [alert_mail] = to_ops(smtp_server)  # the alert, mailed through the real SMTP server
    assert "paused" in alert_mail.message["Subject"] and "12.00 %" in alert_mail.message["Subject"]

    # sends no more until resumed: another run of the sending task does nothing
    assert services.send_campaign(campaign_id=campaign.pk).stopped == "not queued"
    assert len(news(smtp_server)) == 88
    assert SentMessage.objects.filter(campaign=campaign, status=SentMessage.Status.QUEUED).count() == 0
    assert not SentMessage.objects.filter(campaign=campaign, email__in=addresses[100:]).exists()

    # the page and the campaign list say why
    viewer = staff("campaigns.view_campaign")
    client.force_login(viewer)
    page = client.get(reverse("campaigns:results", args=[campaign.pk])).content.decode()
    assert "Paused by the guardrail" in page and "12.00 % (12 of 100 sent) for the campaign" in page
    assert 'id="guardrail-resume"' not in page  # a view-only user gets no button...
    response = client.post(reverse("campaigns:resume", args=[campaign.pk]))
    assert response.status_code == 403  # ...and cannot post it either
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED
    listing = client.get(reverse("admin:campaigns_campaign_changelist")).content.decode()
    assert "12.00 % (12 of 100 sent) for the campaign" in listing
    dashboard = client.get(reverse("console:dashboard")).content.decode()  # paused campaigns at a glance
    assert "12.00 % (12 of 100 sent) for the campaign" in dashboard

    # the operator resumes: sending goes on from where it stopped, and the rates count afresh
    operator = staff("campaigns.view_campaign", "campaigns.send_campaign")
    client.force_login(operator)
    assert 'id="guardrail-resume"' in client.get(reverse("campaigns:results", args=[campaign.pk])).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("campaigns:resume", args=[campaign.pk]))
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENT
    assert len(news(smtp_server)) == 288
    guard.refresh_from_db()
    assert guard.pause_reason == "" and guard.resumed_by == operator.username
    row = GuardrailCount.objects.get(campaign=campaign, scope=GuardrailCount.Scope.CAMPAIGN)
    assert (row.sent, row.bounced, row.base_sent, row.base_bounced) == (300, 12, 100, 12)


def test_under_100_sent_a_campaign_never_pauses_whatever_its_rate(smtp_server, django_capture_on_commit_callbacks):
    addresses = [f"few{i:02}@example.org" for i in range(99)]
    refuse(smtp_server, addresses[:40])
    campaign = campaign_to(addresses)

    with django_capture_on_commit_callbacks(execute=True):
        services.send_campaign(campaign_id=campaign.pk)

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENT
    assert campaign.refused_count == 40 and campaign.sent_count == 59
    assert not alerts("campaign.paused") and not alerts("guardrail.warning")


def test_five_percent_hard_bounces_alert_once_without_pausing(smtp_server, django_capture_on_commit_callbacks):
    addresses = [f"warn{i:03}@d{i % 5}.example.org" for i in range(200)]
    refuse(smtp_server, addresses[:6])  # 6 of 100: 6 %
    campaign = campaign_to(addresses)

    with django_capture_on_commit_callbacks(execute=True):
        services.send_campaign(campaign_id=campaign.pk)

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENT
    assert campaign.sent_count == 194
    assert not alerts("campaign.paused")
    [warning] = alerts("guardrail.warning")  # one alert, although the campaign stays above 5 % for a while
    assert "6.00 % (6 of 100 sent) for the campaign" in warning.title
    # the alert mail reaches the SMTP server (mail after commit, through the same real server)
    [alert_mail] = to_ops(smtp_server)
    assert "6.00 %" in alert_mail.message["Subject"]


def test_a_receiving_domain_crossing_ten_percent_pauses_the_campaign_and_is_named(
        smtp_server, django_capture_on_commit_callbacks):
    # every third recipient at bad.example; its 90th to 100th messages refused: 11 % there,
    # under 4 % for the campaign as a whole
    addresses = [f"r{i:03}@bad.example" if i % 3 == 0 else f"r{i:03}@good{i % 7}.example.org" for i in range(330)]
    bad = [a for a in addresses if a.endswith("@bad.example")]
    refuse(smtp_server, bad[89:100])
    campaign = campaign_to(addresses)

    with django_capture_on_commit_callbacks(execute=True):
        services.send_campaign(campaign_id=campaign.pk)

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED
    guard = CampaignGuardrail.objects.get(campaign=campaign)
    assert "11.00 % (11 of 100 sent) for the receiving domain bad.example" in guard.pause_reason
    assert guard.pause_detail["scope"] == "receiving" and guard.pause_detail["key"] == "bad.example"
    assert SentMessage.objects.filter(campaign=campaign).exclude(status=SentMessage.Status.QUEUED).count() == 298


def test_complaints_reaching_half_a_percent_through_a_maildir_pause_a_sending_campaign(
        smtp_server, maildir, django_capture_on_commit_callbacks):
    from bounces.intake.mailbox import process_mailbox

    addresses = [f"fan{i:03}@d{i % 3}.example.net" for i in range(400)]
    campaign = campaign_to(addresses)
    smtp_server.hang_up_after(200)  # the connection drops: the campaign is still sending
    with pytest.raises(services.SendInterrupted):
        services.send_campaign(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENDING and campaign.sent_count == 200

    box, row = maildir
    envelope = smtp_server.received[17]
    box.add(arf_for(envelope.data, mail_from=envelope.mail_from, recipient=envelope.rcpt_tos[0]))
    with django_capture_on_commit_callbacks(execute=True):
        run = process_mailbox(mailbox_id=row.pk)
    assert run.complaint == 1

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED
    guard = CampaignGuardrail.objects.get(campaign=campaign)
    assert "complaint rate 0.50 % (1 of 200 sent) for the campaign, threshold 0.5 %" in guard.pause_reason
    smtp_server.hang_up_after(None)
    assert services.send_campaign(campaign_id=campaign.pk).stopped == "not queued"
    assert len(news(smtp_server)) == 200
    # the interrupted batch's other rows wait, queued (nothing lost)
    assert SentMessage.objects.filter(campaign=campaign, status=SentMessage.Status.QUEUED).count() == 50
    assert len(alerts("campaign.paused")) == 1
