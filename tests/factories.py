"""factory-boy factories for the project's models: small and deterministic (sequences, no
random data), so a failing test reads the same every run."""

from __future__ import annotations

import datetime as dt

import factory
from django.utils import timezone

from bounces.models import Bounce, Mailbox, RawMessage
from campaigns.models import Campaign, SentMessage
from contacts.models import Contact, MailingList, Subscription


class MailingListFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MailingList

    name = factory.Sequence(lambda n: f"list {n}")


class ContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Contact

    email = factory.Sequence(lambda n: f"contact{n}@example.org")
    name = factory.Sequence(lambda n: f"Contact {n}")


class SubscriptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Subscription

    contact = factory.SubFactory(ContactFactory)
    mailing_list = factory.SubFactory(MailingListFactory)


class CampaignFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Campaign

    name = factory.Sequence(lambda n: f"Campaign {n}")
    subject = "News"
    from_email = "news@example.org"
    mailing_list = factory.SubFactory(MailingListFactory)


class SentMessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SentMessage

    campaign = factory.SubFactory(CampaignFactory)
    contact = factory.SubFactory(ContactFactory)
    email = factory.LazyAttribute(lambda o: o.contact.email if o.contact else "someone@example.org")
    message_id = factory.Sequence(lambda n: f"msg{n}@bounces.example.org")
    status = SentMessage.Status.SENT
    sent_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(hours=1))


class MailboxFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Mailbox

    name = factory.Sequence(lambda n: f"mailbox {n}")
    protocol = Mailbox.Protocol.IMAP
    host = "imap.example.org"
    username = "bounces"
    password = "secret"


class RawMessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RawMessage

    mailbox = factory.SubFactory(MailboxFactory)
    dedupe_key = factory.Sequence(lambda n: f"1:{n}")
    sha256 = factory.Sequence(lambda n: f"{n:064x}")
    raw = b"Subject: test\n\nbody\n"


class BounceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Bounce

    raw_message = factory.SubFactory(RawMessageFactory)
    recipient = factory.Sequence(lambda n: f"bounced{n}@example.org")
    kind = Bounce.Kind.HARD
    reason = "userunknown"
    bounced_at = factory.LazyFunction(timezone.now)
