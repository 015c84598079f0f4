"""Fixtures of the campaigns tests: a real SMTP server on loopback and small factories."""

from __future__ import annotations

import itertools

import pytest

from campaigns.models import Campaign
from contacts.models import Contact, MailingList, Subscription
from tests.servers.smtp import sending_to_test_smtp

_seq = itertools.count(1)


@pytest.fixture
def smtp_server(settings):
    """A recording aiosmtpd on loopback, with Django's SMTP backend pointed at it."""
    with sending_to_test_smtp(settings, BOUNCE_TRACKING_HEADER="X-Bouncemgr-Token") as server:
        yield server


def make_list(name: str | None = None) -> MailingList:
    return MailingList.objects.create(name=name or f"list {next(_seq)}")


def subscribe(mailing_list: MailingList, *emails: str, status: str = Subscription.Status.SUBSCRIBED,
              contact_status: str = Contact.Status.ACTIVE) -> list[Contact]:
    contacts = []
    for address in emails:
        contact = Contact.objects.create(email=address, status=contact_status)
        Subscription.objects.create(contact=contact, mailing_list=mailing_list, status=status)
        contacts.append(contact)
    return contacts


def make_campaign(mailing_list: MailingList | None, **kw) -> Campaign:
    fields = {
        "name": f"campaign {next(_seq)}",
        "subject": "November news",
        "body_text": "Hello from the test.",
        "from_email": "News <news@example.com>",
        "mailing_list": mailing_list,
        "status": Campaign.Status.QUEUED,
    }
    fields.update(kw)
    return Campaign.objects.create(**fields)


def pipeline_ready() -> bool:
    """True once the PIPELINE helper's bounces.intake.refusals.record_send_refusal exists."""
    try:
        from bounces.intake.refusals import record_send_refusal  # noqa: F401
    except ImportError:
        return False
    return True
