"""Issue 11, as a new operator meets it with the shipped defaults: a campaign goes out through
the real sending path (SMTP server on loopback), its bounces come back into a real Dovecot,
one pipeline run handles them with the starter rules loaded, and the next campaign goes out.

Every hard-bounced address must be unsubscribed, suppressed and skipped by the next
campaign (listed as skipped, with why); no other contact may be touched.
"""

from __future__ import annotations

import pytest

from bounces.models import Bounce
from campaigns import services as sending
from campaigns.models import Campaign, SentMessage
from contacts.models import Contact, MailingList, Subscription, Suppression
from tests.servers.smtp import sending_to_test_smtp

from .conftest import arf, dsn, vacation

pytestmark = pytest.mark.django_db


@pytest.fixture
def smtp(settings):
    with sending_to_test_smtp(settings, return_domain="bounces.example.org") as server:
        yield server


def _load_starter_rules() -> None:
    from bounces.rules.services import load_starter_rules

    load_starter_rules()


def _campaign(mlist: MailingList, name: str) -> Campaign:
    return Campaign.objects.create(name=name, subject=name, body_text="Hello", from_email="News <news@example.org>",
                                   mailing_list=mlist, status=Campaign.Status.QUEUED)


def _state(contact: Contact) -> tuple:
    contact.refresh_from_db()
    subs = tuple(sorted(Subscription.objects.filter(contact=contact).values_list("status", flat=True)))
    return (contact.email, contact.status, contact.has_bounced, subs,
            Suppression.objects.filter(value=contact.email.lower()).exists())


def test_a_hard_bounce_is_never_mailed_again_and_nobody_else_is_touched(smtp, pipeline_dovecot, mail_user,
                                                                         mailbox):
    from bounces.intake.mailbox import process_mailbox

    _load_starter_rules()
    news, offers = MailingList.objects.create(name="news"), MailingList.objects.create(name="offers")
    people = {}
    for name in ("gone", "moved", "full", "away", "blocked", "late", "complains", "fine"):
        people[name] = Contact.objects.create(email=f"{name}@example.net")
        Subscription.objects.create(contact=people[name], mailing_list=news)
        Subscription.objects.create(contact=people[name], mailing_list=offers)
    before = {name: _state(c) for name, c in people.items()}

    first = _campaign(news, "first")
    assert sending.send_campaign(campaign_id=first.pk).sent == 8
    token = dict(SentMessage.objects.filter(campaign=first).values_list("email", "token"))

    def t(name: str) -> str:
        return token[f"{name}@example.net"]

    pipeline_dovecot.inject_many(mail_user, [
        # user unknown, as Postfix reports it (a starter rule matches "user unknown")
        dsn("gone@example.net", token=t("gone")),
        # Octeth-style wording on a bad mailbox: status 5.1.1 (a starter rule matches too)
        dsn("moved@example.net", token=t("moved"), diagnostic="550 5.1.1 The email account that you tried "
            "to reach does not exist"),
        dsn("full@example.net", token=t("full"), status="4.2.2",
            diagnostic="452 4.2.2 <full@example.net>: Mailbox full, over quota", action="delayed"),
        vacation("away@example.net", token=t("away")),
        dsn("blocked@example.net", token=t("blocked"), status="5.7.1",
            diagnostic="554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org"),
        dsn("late@example.net", token=t("late"), status="4.4.7", action="delayed",
            diagnostic="Delivery temporarily suspended: connection timed out"),
        arf("complains@example.net", token=t("complains")),
    ])
    run = process_mailbox(mailbox_id=mailbox.pk)
    assert run.status == "succeeded", run.error_log
    kinds = dict(Bounce.objects.values_list("recipient", "kind"))
    assert kinds["gone@example.net"] == "hard" and kinds["moved@example.net"] == "hard"

    second = _campaign(news, "second")
    report = sending.send_campaign(campaign_id=second.pk)
    mailed = {r for env in smtp.received[8:] for r in env.rcpt_tos}

    # the dead addresses: unsubscribed from every list, suppressed, skipped with why
    for name in ("gone", "moved"):
        email, status, has_bounced, subs, suppressed = _state(people[name])
        assert has_bounced and suppressed and subs == ("unsubscribed", "unsubscribed"), name
        assert f"{name}@example.net" not in mailed
    skipped = dict(SentMessage.objects.filter(campaign=second, status="skipped").values_list("email", "skip_reason"))
    assert skipped["gone@example.net"] == SentMessage.SkipReason.SUPPRESSED
    # the complaint: per the complaint policy (suppressed, unsubscribed), not marked hard
    email, status, has_bounced, subs, suppressed = _state(people["complains"])
    assert suppressed and not has_bounced and status == "active"
    # nobody else was touched, and everybody else got the second campaign
    for name in ("full", "away", "blocked", "late", "fine"):
        assert _state(people[name]) == before[name], name
        assert f"{name}@example.net" in mailed, name
    assert report.sent == 5 and report.skipped == 3
