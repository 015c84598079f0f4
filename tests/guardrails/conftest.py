"""Fixtures of the guardrail tests: the real SMTP server of the campaign tests, lists of many
recipients, operators with and without the send permission, and complaints as real ARF mail."""

from __future__ import annotations

import itertools
import mailbox as stdlib_mailbox
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission, User

from contacts.models import Contact, Subscription
from tests.campaigns.conftest import make_campaign, make_list, smtp_server  # noqa: F401 - fixture

_seq = itertools.count(1)


def list_of(addresses: list[str]):
    """A mailing list with one active, subscribed contact per address (bulk: hundreds are cheap)."""
    mailing_list = make_list()
    contacts = Contact.objects.bulk_create([Contact(email=a, status=Contact.Status.ACTIVE) for a in addresses])
    Subscription.objects.bulk_create([Subscription(contact=c, mailing_list=mailing_list,
                                                   status=Subscription.Status.SUBSCRIBED) for c in contacts])
    return mailing_list


def campaign_to(addresses: list[str], **kw):
    return make_campaign(list_of(addresses), **kw)


def staff(*perms: str, name: str | None = None) -> User:
    """A staff user with exactly these permissions ("app.codename")."""
    user = User.objects.create_user(name or f"staff{next(_seq)}", password="pw-not-used", is_staff=True)
    for perm in perms:
        app, codename = perm.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app, codename=codename))
    return User.objects.get(pk=user.pk)  # fresh permission cache


def arf_for(received_bytes: bytes, *, mail_from: str, recipient: str) -> bytes:
    """A mailbox provider's ARF complaint (RFC 5965) about the message as the test SMTP server
    received it, sent back to its VERP return path."""
    n = next(_seq)
    head = (f"From: fbl@feedback.example.net\r\nTo: {mail_from}\r\nSubject: FW: complaint\r\n"
            f"Message-ID: <fbl{n}@feedback.example.net>\r\nMIME-Version: 1.0\r\n"
            f'Content-Type: multipart/report; report-type=feedback-report; boundary="FBL{n}"\r\n\r\n')
    parts = (f"--FBL{n}\r\nContent-Type: text/plain\r\n\r\nThis is an email abuse report.\r\n\r\n"
             f"--FBL{n}\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\n"
             f"User-Agent: fbl/1.0\r\nVersion: 1\r\nOriginal-Rcpt-To: {recipient}\r\n\r\n"
             f"--FBL{n}\r\nContent-Type: message/rfc822\r\n\r\n")
    return head.encode() + parts.encode() + received_bytes + f"\r\n--FBL{n}--\r\n".encode()


@pytest.fixture
def maildir(tmp_path: Path):
    """A real Maildir folder and a Mailbox row reading it."""
    from bounces.models import Mailbox

    path = tmp_path / "Maildir"
    box = stdlib_mailbox.Maildir(str(path), create=True)
    row = Mailbox.objects.create(name=f"fbl {next(_seq)}", protocol=Mailbox.Protocol.MAILDIR, path=str(path))
    return box, row
