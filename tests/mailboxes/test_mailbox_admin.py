"""``manage.py mailbox_check`` and the admin's "Test connection" / "Browse folders"."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.core.management import CommandError, call_command

from bounces.models import Mailbox
from bounces.views import mailboxes as mailbox_views
from tests.servers.common import free_loopback_port

pytestmark = [pytest.mark.django_db, pytest.mark.dovecot]


@pytest.fixture
def mailbox(dovecot, mail_user):
    return Mailbox.objects.create(
        name="bounces",
        protocol=Mailbox.Protocol.IMAP,
        host="127.0.0.1",
        port=dovecot.imap_port,
        security=Mailbox.Security.NONE,
        username=mail_user.name,
        password=mail_user.password,
    )


def test_mailbox_check_prints_counts_for_a_working_mailbox(dovecot, mail_user, mailbox, capsys):
    dovecot.inject(mail_user, b"Subject: x\r\n\r\nx\r\n")
    call_command("mailbox_check", "bounces")
    out = capsys.readouterr().out
    assert "Folder 'INBOX': 1 messages, 1 unseen" in out
    assert "OK" in out


def test_mailbox_check_fails_with_the_error_category(mailbox, capsys):
    Mailbox.objects.filter(pk=mailbox.pk).update(port=free_loopback_port())
    with pytest.raises(CommandError, match="refused") as caught:
        call_command("mailbox_check", "bounces")
    assert caught.value.returncode == 1
    assert "FAILED [refused" in capsys.readouterr().out


def test_mailbox_check_names_the_known_mailboxes_for_a_typo(mailbox):
    with pytest.raises(CommandError, match="Known mailboxes: bounces"):
        call_command("mailbox_check", "bounce")


def _request(rf, user, method="get", data=None):
    request = getattr(rf, method)("/admin/bounces/mailbox/1/x/", data or {})
    request.user = user
    SessionMiddleware(lambda r: None).process_request(request)
    MessageMiddleware(lambda r: None).process_request(request)
    return request


def test_the_test_connection_page_shows_counts_and_never_the_password(
    rf, admin_user, dovecot, mail_user, mailbox
):
    dovecot.inject(mail_user, b"Subject: x\r\n\r\nx\r\n")
    response = mailbox_views.test_connection_view(
        _request(rf, admin_user), model_admin=admin.site._registry[Mailbox], mailbox_id=mailbox.pk
    )
    html = response.render().content.decode()
    assert "Connection OK" in html
    assert "IMAP4REV1" in html
    assert mail_user.password not in html


def test_the_test_connection_page_explains_a_wrong_password(rf, admin_user, mailbox):
    mailbox.password = "wrong"
    mailbox.save(update_fields=["password"])
    response = mailbox_views.test_connection_view(
        _request(rf, admin_user), model_admin=admin.site._registry[Mailbox], mailbox_id=mailbox.pk
    )
    html = response.render().content.decode()
    assert "Connection failed" in html and "auth" in html


def test_browse_folders_lists_counts_and_picks_a_folder(rf, admin_user, dovecot, mail_user, mailbox):
    dovecot.inject(mail_user, b"Subject: x\r\n\r\nx\r\n", folder="Bounces")
    model_admin = admin.site._registry[Mailbox]

    page = mailbox_views.browse_folders_view(
        _request(rf, admin_user), model_admin=model_admin, mailbox_id=mailbox.pk
    ).render().content.decode()
    assert "Bounces" in page and "Use this folder" in page

    response = mailbox_views.browse_folders_view(
        _request(rf, admin_user, "post", {"folder": "Bounces"}),
        model_admin=model_admin,
        mailbox_id=mailbox.pk,
    )
    assert response.status_code == 302
    mailbox.refresh_from_db()
    assert mailbox.folder == "Bounces"


def test_browse_folders_refuses_a_folder_the_server_does_not_have(
    rf, admin_user, mailbox
):
    mailbox_views.browse_folders_view(
        _request(rf, admin_user, "post", {"folder": "Made Up"}),
        model_admin=admin.site._registry[Mailbox],
        mailbox_id=mailbox.pk,
    ).render()
    mailbox.refresh_from_db()
    assert mailbox.folder == "INBOX"
