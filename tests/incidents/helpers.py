"""Helpers of the incidents tests: notices dropped into a real maildir and processed by the
real pipeline (bounces.intake.mailbox.process_mailbox), sent messages to match them."""

from __future__ import annotations

import itertools
import mailbox as stdlib_mailbox
from datetime import datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

from django.utils import timezone

from bounces.intake.mailbox import process_mailbox
from bounces.models import Mailbox
from campaigns.models import Campaign, SentMessage
from contacts.models import Contact, MailingList, Subscription
from tests.pipeline.conftest import dsn

_seq = itertools.count(1)

IP_LISTED = "550 5.7.1 Service unavailable; Client host [192.0.2.10] blocked using zen.spamhaus.org"
USER_UNKNOWN = "550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown in virtual mailbox table"


class Maildir:
    """A maildir on disk with its Mailbox row; `run()` processes what was dropped in."""

    def __init__(self, root: Path) -> None:
        self.path = root / f"Maildir{next(_seq)}"
        self.box = stdlib_mailbox.Maildir(str(self.path), create=True)
        self.mailbox = Mailbox.objects.create(name=f"bounces {self.path.name}", protocol="maildir",
                                              path=str(self.path), batch_size=500)

    def drop(self, raw: bytes) -> None:
        self.box.add(raw)

    def run(self):
        run = process_mailbox(mailbox_id=self.mailbox.pk)
        assert run.status == "succeeded", run.error_log
        return run


def make_campaign(*, from_email: str = "News <news@example.org>") -> Campaign:
    mlist = MailingList.objects.create(name=f"list {next(_seq)}")
    return Campaign.objects.create(name=f"campaign {next(_seq)}", subject="News", body_text="Hello.",
                                   from_email=from_email, mailing_list=mlist, status=Campaign.Status.SENT)


def sent_to(campaign: Campaign, email: str, *, when: datetime | None = None) -> SentMessage:
    contact = Contact.objects.create(email=email)
    Subscription.objects.create(contact=contact, mailing_list=campaign.mailing_list)
    n = next(_seq)
    return SentMessage.objects.create(
        campaign=campaign, contact=contact, email=email, message_id=f"m{n}.{timezone.now().timestamp()}@news.example.org",
        status=SentMessage.Status.SENT, sent_at=when or timezone.now() - timedelta(hours=1),
    )


def notice(sent: SentMessage, *, diagnostic: str, status: str, at: datetime) -> bytes:
    return dsn(sent.email, token=sent.token, diagnostic=diagnostic, status=status, date=format_datetime(at))


def spread(n: int, *, minutes: float, end: datetime | None = None) -> list[datetime]:
    """`n` times evenly spread over the `minutes` before `end` (default: now)."""
    end = end or timezone.now()
    return [end - timedelta(minutes=minutes) * (1 - i / max(n, 1)) for i in range(n)]
