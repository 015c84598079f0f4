"""Fixtures of the pipeline tests: a real Dovecot, a mailbox pointing at it, sent mail."""

from __future__ import annotations

import itertools
import shutil
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from tests.servers.common import unavailable

_seq = itertools.count(1)


@pytest.fixture(scope="session")
def pipeline_dovecot() -> Iterator[object]:
    """One plain-text Dovecot for the pipeline tests (tests/servers/dovecot.py).

    Its directory is not under pytest's basetemp: another pytest session on the machine
    resets /tmp/pytest-of-<user> to mode 0700, which locks Dovecot's mail user out.
    """
    from tests.servers.dovecot import DovecotServer, dovecot_available

    reason = dovecot_available()
    if reason:
        unavailable(reason)
    root = Path(tempfile.mkdtemp(prefix="bm-pipeline-dovecot-"))
    server = DovecotServer.start(root, tls=False)
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def mail_user(pipeline_dovecot):
    """A fresh account (empty INBOX) on the test Dovecot."""
    return pipeline_dovecot.add_user()


@pytest.fixture
def mailbox(db, pipeline_dovecot, mail_user):
    """A Mailbox row pointing at `mail_user` over plain IMAP on loopback."""
    from bounces.models import Mailbox

    return Mailbox.objects.create(
        name=f"test-{mail_user.name}", protocol=Mailbox.Protocol.IMAP, host="127.0.0.1",
        port=pipeline_dovecot.imap_port, security=Mailbox.Security.NONE, username=mail_user.name,
        password=mail_user.password, batch_size=50,
    )


@pytest.fixture
def campaign(db):
    from campaigns.models import Campaign
    from contacts.models import MailingList

    mlist = MailingList.objects.create(name=f"list {next(_seq)}")
    return Campaign.objects.create(name="Spring news", subject="News", from_email="news@example.org",
                                   mailing_list=mlist)


def send(campaign, email: str, *, when=None, contact=None):
    """A contact (subscribed to the campaign's list) and the SentMessage we 'sent' to it."""
    from campaigns.models import SentMessage
    from contacts.models import Contact, Subscription

    if contact is None:
        contact, _ = Contact.objects.get_or_create(email=email)
        Subscription.objects.get_or_create(contact=contact, mailing_list=campaign.mailing_list)
    if SentMessage.objects.filter(campaign=campaign, contact=contact).exists():
        # one message per contact per campaign: a later message belongs to a new campaign
        campaign = type(campaign).objects.create(
            name=f"{campaign.name} #{next(_seq)}", subject=campaign.subject, from_email=campaign.from_email,
            mailing_list=campaign.mailing_list,
        )
    return SentMessage.objects.create(
        campaign=campaign, contact=contact, email=email,
        message_id=f"msg{next(_seq)}.{timezone.now().timestamp()}@news.example.org",
        status=SentMessage.Status.SENT, sent_at=when or timezone.now() - timedelta(hours=1),
    )


def dsn(recipient: str, *, token: str | None = None, message_id: str | None = None,
        status: str = "5.1.1", diagnostic: str = "550 5.1.1 <{rcpt}>: Recipient address rejected: "
        "User unknown in virtual mailbox table", action: str = "failed", date: str | None = None) -> bytes:
    """An RFC 3464 delivery status notification for `recipient`, as Postfix writes it, dated
    `date` (an RFC 5322 date; default: now, the bounce's time comes from the notice)."""
    from email.utils import format_datetime

    date = date or format_datetime(timezone.now())
    to = f"bounces+{token}@bounces.example.org" if token else "news@example.org"
    n = next(_seq)
    headers = f"Message-ID: <{message_id}>\n" if message_id else ""
    text = f"""Return-Path: <>
Delivered-To: {to}
From: MAILER-DAEMON@mx.example.net (Mail Delivery System)
To: {to}
Subject: Undelivered Mail Returned to Sender
Date: {date}
Message-ID: <bounce{n}@mx.example.net>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="BOUNDARY{n}"

--BOUNDARY{n}
Content-Type: text/plain

This is the mail system at host mx.example.net.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

<{recipient}>: host mx.example.net said: {diagnostic.format(rcpt=recipient)}

--BOUNDARY{n}
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net
Arrival-Date: {date}

Final-Recipient: rfc822; {recipient}
Original-Recipient: rfc822;{recipient}
Action: {action}
Status: {status}
Remote-MTA: dns; mx.example.net
Diagnostic-Code: smtp; {diagnostic.format(rcpt=recipient)}

--BOUNDARY{n}
Content-Type: text/rfc822-headers

Return-Path: <{to}>
From: news@example.org
To: {recipient}
Subject: News
{headers}
--BOUNDARY{n}--
"""
    return text.replace("\n", "\r\n").encode()


def arf(recipient: str, *, token: str | None = None, feedback_type: str = "abuse") -> bytes:
    """An ARF report about our message to `recipient`: a complaint (`abuse`), or another
    Feedback-Type (RFC 5965 / 6591: `auth-failure`, `not-spam`, ...)."""
    to = f"bounces+{token}@bounces.example.org" if token else "abuse@example.org"
    n = next(_seq)
    text = f"""From: feedback@fbl.example.net
To: {to}
Subject: Complaint about message
Message-ID: <arf{n}@fbl.example.net>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="ARF{n}"

--ARF{n}
Content-Type: text/plain

This is an email abuse report.

--ARF{n}
Content-Type: message/feedback-report

Feedback-Type: {feedback_type}
User-Agent: fbl/1.0
Version: 1
Original-Rcpt-To: {recipient}

--ARF{n}
Content-Type: message/rfc822

Return-Path: <{to}>
From: news@example.org
To: {recipient}
Subject: News

hello
--ARF{n}--
"""
    return text.replace("\n", "\r\n").encode()


def vacation(sender: str, *, token: str | None = None) -> bytes:
    to = f"bounces+{token}@bounces.example.org" if token else "news@example.org"
    n = next(_seq)
    return (f"From: {sender}\r\nTo: {to}\r\nSubject: Out of office\r\nAuto-Submitted: auto-replied\r\n"
            f"Message-ID: <ooo{n}@example.net>\r\n\r\nI am away until Monday.\r\n").encode()
