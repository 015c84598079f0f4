"""Model constraints, on SQLite and (marked postgres) on a real PostgreSQL."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction

from bounces.models import Bounce, Mailbox, RawMessage
from campaigns.models import TOKEN_ALPHABET, TOKEN_LENGTH, SentMessage, new_token
from contacts.models import Contact, Suppression
from tests.factories import (
    BounceFactory,
    CampaignFactory,
    ContactFactory,
    MailboxFactory,
    RawMessageFactory,
    SentMessageFactory,
)

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def test_contact_email_is_unique_regardless_of_case():
    Contact.objects.create(email="Ann@Example.com")
    with pytest.raises(IntegrityError), transaction.atomic():
        Contact.objects.create(email="ann@example.COM")


def test_contacts_without_an_address_do_not_collide():
    Contact.objects.create(email="", bounced_address="a@example.com")
    Contact.objects.create(email="", bounced_address="b@example.com")
    assert Contact.objects.filter(email="").count() == 2


def test_contact_lookup_by_email_ignores_case():
    contact = Contact.objects.create(email="Bob@Example.com")
    assert Contact.objects.by_email("  bob@EXAMPLE.com ").get() == contact


def test_duplicate_message_id_is_rejected():
    first = SentMessageFactory(message_id="abc@example.com")
    with pytest.raises(IntegrityError), transaction.atomic():
        SentMessageFactory(campaign=first.campaign, message_id="abc@example.com")


def test_duplicate_token_is_rejected():
    first = SentMessageFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        SentMessageFactory(campaign=first.campaign, token=first.token)


def test_one_contact_gets_a_campaign_once():
    campaign, contact = CampaignFactory(), ContactFactory()
    SentMessageFactory(campaign=campaign, contact=contact)
    with pytest.raises(IntegrityError), transaction.atomic():
        SentMessageFactory(campaign=campaign, contact=contact)
    assert SentMessage.objects.filter(campaign=campaign).count() == 1


def test_tokens_are_lowercase_alphanumeric_and_distinct():
    tokens = {new_token() for _ in range(1000)}
    assert len(tokens) == 1000
    assert all(len(t) == TOKEN_LENGTH and set(t) <= set(TOKEN_ALPHABET) for t in tokens)


def test_mailbox_password_is_not_readable_in_the_database():
    mailbox = Mailbox.objects.create(name="bounces", host="imap.example.com", username="u",
                                     password="s3cret-Passw0rd")
    with connection.cursor() as cursor:
        cursor.execute("SELECT password FROM bounces_mailbox WHERE id = %s", [mailbox.pk])
        stored = cursor.fetchone()[0]
    assert "s3cret" not in stored
    assert stored.startswith("fernet:")
    assert Mailbox.objects.get(pk=mailbox.pk).password == "s3cret-Passw0rd"


def test_bounce_dedupe_key_is_unique_per_mailbox():
    mailbox = MailboxFactory()
    RawMessageFactory(mailbox=mailbox, dedupe_key="1:10")
    with pytest.raises(IntegrityError), transaction.atomic():
        RawMessageFactory(mailbox=mailbox, dedupe_key="1:10")
    RawMessageFactory(mailbox=MailboxFactory(), dedupe_key="1:10")
    assert RawMessage.objects.filter(dedupe_key="1:10").count() == 2


def test_one_bounce_per_recipient_per_message():
    raw = RawMessageFactory()
    BounceFactory(raw_message=raw, recipient="a@example.com")
    BounceFactory(raw_message=raw, recipient="b@example.com")
    with pytest.raises(IntegrityError), transaction.atomic():
        BounceFactory(raw_message=raw, recipient="a@example.com")
    assert Bounce.objects.filter(raw_message=raw).count() == 2


def test_suppression_values_must_be_lowercase():
    Suppression.objects.create(value="bad@example.com")
    with pytest.raises(IntegrityError), transaction.atomic():
        Suppression.objects.create(value="Bad@Example.com")


def test_mailbox_port_must_be_a_tcp_port():
    with pytest.raises(IntegrityError), transaction.atomic():
        Mailbox.objects.create(name="m", port=70000)


def test_tests_run_on_the_database_they_were_asked_for(request):
    expected = "postgresql" if request.config.getoption("--postgres") else "sqlite"
    assert connection.vendor == expected
