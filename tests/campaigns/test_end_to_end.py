"""The issue's "done when": import contacts, send to a local SMTP server, process the bounces
it produces, see the counts on the campaign's page."""

from __future__ import annotations

import hashlib
import io

import pytest
from django.urls import reverse

from bounces.models import Bounce, RawMessage
from campaigns import services
from campaigns.models import Campaign, SentMessage
from contacts.importing import import_contacts
from contacts.models import Contact, MailingList

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def _pipeline_ready() -> bool:
    try:
        from bounces.intake.refusals import record_send_refusal  # noqa: F401
        from bounces.intake.stored import process_stored_messages  # noqa: F401
    except ImportError:
        return False
    return True


def dsn_for(envelope, recipient: str, *, status: str, diagnostic: str) -> bytes:
    """A Postfix-style RFC 3464 report, sent to the message's VERP address, quoting its headers."""
    headers = envelope.data.split(b"\r\n\r\n", 1)[0].decode()
    return (
        f"From: MAILER-DAEMON@mx.example.org (Mail Delivery System)\r\n"
        f"To: {envelope.mail_from}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B0"\r\n\r\n'
        "--B0\r\nContent-Type: text/plain\r\n\r\nI'm sorry to have to inform you that your message could not\r\n"
        "be delivered to one or more recipients.\r\n\r\n"
        "--B0\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.org\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: {status}\r\n"
        f"Diagnostic-Code: smtp; {diagnostic}\r\n\r\n"
        f"--B0\r\nContent-Type: text/rfc822-headers\r\n\r\n{headers}\r\n"
        "--B0--\r\n"
    ).encode()


@pytest.mark.skipif(not _pipeline_ready(), reason="waiting for the PIPELINE helper's bounces.pipeline")
def test_import_send_process_bounces_and_see_the_counts(smtp_server, admin_client):
    from bounces.intake.stored import process_stored_messages

    mailing_list = MailingList.objects.create(name="news")
    report = import_contacts(
        stream=io.StringIO("email,name\nann@example.org,Ann\nbob@example.org,Bob\n"
                           "carol@example.org,Carol\ngone@example.org,Gone\nnot-an-address,X\n"),
        mailing_list=mailing_list,
    )
    assert report.counts["created"] == 4 and report.rejected == 1
    smtp_server.refuse("gone@example.org", "550 5.1.1 <gone@example.org>: Recipient address rejected: User unknown")
    campaign = Campaign.objects.create(
        name="November", subject="News", body_text="Hello", from_email="News <news@example.com>",
        mailing_list=mailing_list, status=Campaign.Status.DRAFT,
    )
    services.queue_campaign(campaign=campaign)  # the task is started on commit (not in this test)
    sent = services.send_campaign(campaign_id=campaign.pk)
    assert (sent.sent, sent.refused) == (3, 1)

    # bob's mailbox does not exist: the remote MX sends a DSN to the VERP address.
    bob = next(env for env in smtp_server.received if env.rcpt_tos == ("bob@example.org",))
    raw = dsn_for(bob, "bob@example.org", status="5.1.1",
                  diagnostic="550 5.1.1 <bob@example.org>: Recipient address rejected: User unknown")
    RawMessage.objects.create(source=RawMessage.Source.UPLOAD, dedupe_key="e2e-1",
                              sha256=hashlib.sha256(raw).hexdigest(), raw=raw, size=len(raw))
    process_stored_messages()

    bob_bounce = Bounce.objects.get(recipient__iexact="bob@example.org")
    assert bob_bounce.kind == Bounce.Kind.HARD
    assert bob_bounce.match_method in {Bounce.MatchMethod.TOKEN, Bounce.MatchMethod.HEADER}
    assert bob_bounce.sent_message == SentMessage.objects.get(email="bob@example.org")
    assert bob_bounce.campaign_id == campaign.pk
    assert Contact.objects.get(pk=bob_bounce.contact_id).hard_bounce_count == 1

    response = admin_client.get(reverse("campaigns:results", args=[campaign.pk]))
    r = response.context["results"]
    assert r.attempted == 4
    assert r.hard == 2  # gone (refused at send time) + bob (DSN)
    assert r.bounced_recipients == 2 and r.delivered == 2
    assert r.bounce_rate_percent == "50.0%"
    assert 'data-count="hard">2<' in response.content.decode()
