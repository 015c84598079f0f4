"""Fixtures of the intake tests: a campaign with sent messages, the SMTP receiver on a
loopback port (in a thread of the test process), corpus DSNs rewritten for our contacts."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from bounces.intake.receiver import close_thread_connection, store_received
from bounces.intake.smtpd import GroupWriter, ReceiverConfig, serve
from tests.servers.common import free_loopback_port

CORPUS = Path("/work/shared/bounce-corpus/eml")
if not CORPUS.is_dir():  # CI: a copy of shared/ beside the clone
    CORPUS = Path(__file__).resolve().parents[3] / "shared" / "bounce-corpus" / "eml"
RETURN_DOMAIN = "bounces.example.org"
_seq = itertools.count(1)


@pytest.fixture
def eager(monkeypatch):
    """Tasks sent by name (bouncemgr.queue) run at once. Both the project's app and Celery's
    current app: another test may have made its own Celery app the current one."""
    from celery import current_app

    from bouncemgr.celery import app

    for conf in (app.conf, current_app.conf):
        monkeypatch.setattr(conf, "task_always_eager", True)


@pytest.fixture
def campaign(db):
    from campaigns.models import Campaign
    from contacts.models import MailingList

    mlist = MailingList.objects.create(name=f"intake list {next(_seq)}")
    return Campaign.objects.create(name="Spring news", subject="News", from_email="news@example.org",
                                   mailing_list=mlist)


def send(campaign, email: str):
    """A subscribed contact and the SentMessage we 'sent' to it an hour ago."""
    from campaigns.models import SentMessage
    from contacts.models import Contact, Subscription

    contact, _ = Contact.objects.get_or_create(email=email)
    Subscription.objects.get_or_create(contact=contact, mailing_list=campaign.mailing_list)
    return SentMessage.objects.create(
        campaign=campaign, contact=contact, email=email,
        message_id=f"msg{next(_seq)}.{timezone.now().timestamp()}@news.example.org",
        status=SentMessage.Status.SENT, sent_at=timezone.now() - timedelta(hours=1),
    )


def dsn(recipient: str, *, token: str | None = None, status: str = "5.1.1",
        diagnostic: str = "550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown in virtual mailbox table",
        message_id: str | None = None) -> bytes:
    """An RFC 3464 DSN for `recipient`, as Postfix writes it, sent to our VERP address."""
    to = f"bounces+{token}@{RETURN_DOMAIN}" if token else f"news@{RETURN_DOMAIN}"
    n = next(_seq)
    diag = diagnostic.format(rcpt=recipient)
    mid = f"Message-ID: <{message_id}>\n" if message_id else ""
    text = f"""From: MAILER-DAEMON@mx.example.net (Mail Delivery System)
To: {to}
Subject: Undelivered Mail Returned to Sender
Date: Mon, 2 Mar 2026 10:00:00 +0000
Message-ID: <bounce{n}.{timezone.now().timestamp()}@mx.example.net>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B{n}"

--B{n}
Content-Type: text/plain

<{recipient}>: host mx.example.net said: {diag}

--B{n}
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822; {recipient}
Action: failed
Status: {status}
Remote-MTA: dns; mx.example.net
Diagnostic-Code: smtp; {diag}

--B{n}
Content-Type: text/rfc822-headers

Return-Path: <{to}>
From: news@example.org
To: {recipient}
Subject: News
{mid}
--B{n}--
"""
    return text.replace("\n", "\r\n").encode()


def corpus_files(limit: int | None = None) -> list[Path]:
    if not CORPUS.is_dir():
        pytest.skip(f"bounce corpus not found at {CORPUS}")
    return sorted(CORPUS.glob("*.eml"))[:limit]


@dataclass
class Receiver:
    host: str
    port: int
    writer: GroupWriter
    stored_ids: list[str]


@contextmanager
def running_receiver(store, *, config: ReceiverConfig, after_commit=None) -> Iterator[tuple[int, GroupWriter]]:
    """The SMTP receiver (the code of run_bounce_smtpd) in threads of the test, on a loopback
    port, storing through `store`; yields (port, writer) and stops both afterwards."""
    port = free_loopback_port()
    writer = GroupWriter(store=store, after_commit=after_commit, on_exit=close_thread_connection)
    writer.start()
    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder: dict = {}

    def run() -> None:
        asyncio.set_event_loop(loop)
        holder["server"] = loop.run_until_complete(serve(config, writer, "127.0.0.1", port))
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(10)
    try:
        yield port, writer
    finally:
        async def close() -> None:
            holder["server"].close()
            await holder["server"].wait_closed()

        asyncio.run_coroutine_threadsafe(close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        writer.stop()


@pytest.fixture
def receiver(transactional_db) -> Iterator[Receiver]:
    """The SMTP receiver (same code as run_bounce_smtpd) in a thread, on a loopback port."""
    committed: list[str] = []
    config = ReceiverConfig(domains=frozenset({RETURN_DOMAIN}), max_size=200_000, max_connections=3)
    with running_receiver(store_received, config=config, after_commit=committed.extend) as (port, writer):
        yield Receiver("127.0.0.1", port, writer, committed)
