"""Issue 12 as the operator meets it: the admin's mailbox pages and real runs.

Semi-trusted staff (may edit a mailbox, never sees its secrets) against the real test
Dovecot, real files and the fake OAuth2 provider; each test walks what the review did.
"""

from __future__ import annotations

import mailbox as stdlib_mailbox
import os
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from bounces.models import Mailbox, ProcessingRun, RawMessage
from tests.pipeline.conftest import dsn

from .helpers import BannerServer

pytestmark = pytest.mark.django_db


@pytest.fixture
def root(tmp_path, settings) -> Path:
    path = tmp_path / "mail"
    path.mkdir()
    settings.LOCAL_MAILBOX_ROOTS = [str(path)]
    return path


def _test_page(client, mailbox: Mailbox) -> str:
    response = client.get(reverse("admin:bounces_mailbox_test", args=[mailbox.pk]))
    assert response.status_code == 200
    return response.content.decode()


def _process(mailbox: Mailbox) -> ProcessingRun:
    from bounces.intake.mailbox import process_mailbox

    return process_mailbox(mailbox_id=mailbox.pk)


# ------------------------------------------------------------------ item 2: local paths
def test_test_connection_on_etc_shadow_fails_clearly_and_leaves_no_lock(admin_client, root):
    before = sorted(os.listdir("/etc"))
    mailbox = Mailbox.objects.create(name="shadow", protocol="mbox", path="/etc/shadow")
    html = _test_page(admin_client, mailbox)
    assert "Connection failed" in html and "Connection OK" not in html
    assert "outside the folders allowed" in html
    assert sorted(os.listdir("/etc")) == before  # no /etc/shadow.lock


def test_a_run_never_writes_outside_the_root_through_move_to_folder(root, tmp_path):
    path = root / "bounces.mbox"
    box = stdlib_mailbox.mbox(path, create=True)
    box.add(dsn("nobody@example.net"))
    box.flush()
    box.close()
    target = tmp_path / "site-packages" / "evil.pth"
    target.parent.mkdir()
    # Stored bypassing the form (an old row, the API, a fixture): the run still refuses.
    mailbox = Mailbox.objects.create(name="m", protocol="mbox", path=str(path),
                                     unmatched_action="move", unmatched_folder=str(target),
                                     processed_action="move", processed_folder="../x.pth")
    run = _process(mailbox)
    assert run.status == ProcessingRun.Status.FAILED
    assert "local" in run.error_log
    assert not target.exists() and not (tmp_path / "x.pth").exists()
    assert len(stdlib_mailbox.mbox(path)) == 1  # the message is still there


def test_an_mbox_inside_the_root_is_processed_and_moved_beside_it(root):
    path = root / "bounces.mbox"
    box = stdlib_mailbox.mbox(path, create=True)
    box.add(dsn("nobody@example.net"))
    box.flush()
    box.close()
    mailbox = Mailbox.objects.create(name="m", protocol="mbox", path="bounces.mbox",
                                     unmatched_action="move", unmatched_folder="unmatched.mbox")
    run = _process(mailbox)
    assert run.status == ProcessingRun.Status.SUCCEEDED, run.error_log
    assert run.fetched == 1
    assert len(stdlib_mailbox.mbox(root / "unmatched.mbox")) == 1


# ------------------------------------------------------------------ item 11: mbox unseen
def _status_ro(raw: bytes) -> bytes:
    return raw.replace(b"\nSubject:", b"\nStatus: RO\nSubject:", 1)


def test_mbox_unseen_processes_bounces_that_arrived_with_status_ro(root):
    path = root / "bounces.mbox"
    box = stdlib_mailbox.mbox(path, create=True)
    for i in range(5):
        raw = dsn(f"user{i}@example.net")
        box.add(_status_ro(raw) if i < 2 else raw)
    box.flush()
    box.close()
    mailbox = Mailbox.objects.create(name="m", protocol="mbox", path=str(path), fetch_mode="unseen",
                                     processed_action="mark_read", unmatched_action="mark_read")
    first = _process(mailbox)
    assert (first.status, first.fetched) == (ProcessingRun.Status.SUCCEEDED, 5), first.error_log
    assert RawMessage.objects.count() == 5
    second = _process(mailbox)
    assert (second.status, second.fetched, second.total) == (ProcessingRun.Status.SUCCEEDED, 0, 0)


@pytest.mark.dovecot
def test_a_run_that_leaves_messages_read_by_someone_else_does_not_just_say_succeeded(
    dovecot, mail_user
):
    for i in range(3):
        dovecot.inject(mail_user, dsn(f"fresh{i}@example.net"))
    for i in range(2):
        dovecot.inject(mail_user, dsn(f"read{i}@example.net"), seen=True)  # a colleague read them
    mailbox = Mailbox.objects.create(
        name="m", protocol="imap", host="127.0.0.1", port=dovecot.imap_port, security="none",
        username=mail_user.name, password=mail_user.password, fetch_mode="unseen",
        unmatched_action="mark_read",
    )
    run = _process(mailbox)
    assert run.fetched == 3
    assert run.status != ProcessingRun.Status.SUCCEEDED
    assert "2 messages" in run.error_log and "marked read" in run.error_log
    # What this installation marked read itself is not reported again.
    again = _process(mailbox)
    assert "3 messages" not in again.error_log and "5 messages" not in again.error_log


# ------------------------------------------------------------------ item 10: POP3 long lines
@pytest.mark.dovecot
def test_a_pop3_bounce_with_a_line_over_one_mib_is_stored_and_the_run_succeeds(dovecot, mail_user):
    # An HTML-ish line of 1 MiB + 10 in the report's text part.
    long = dsn("long@example.net").replace(b"This is the mail system", b"<p>" + b"y" * (1024 * 1024 + 10)
                                           + b"</p>\r\nThis is the mail system", 1)
    dovecot.inject(mail_user, long)
    dovecot.inject(mail_user, dsn("short@example.net"))
    mailbox = Mailbox.objects.create(
        name="p", protocol="pop3", host="127.0.0.1", port=dovecot.pop3_port, security="none",
        username=mail_user.name, password=mail_user.password,
    )
    run = _process(mailbox)
    assert run.status == ProcessingRun.Status.SUCCEEDED, run.error_log
    assert run.fetched == 2
    assert any(len(bytes(r.raw)) > 1024 * 1024 for r in RawMessage.objects.all())


# ------------------------------------------------------------------ item 8: not a port scanner
def test_test_connection_to_another_service_shows_a_category_not_its_banner(admin_client):
    with BannerServer(b"SSH-2.0-OpenSSH_9.2p1 db-internal-3\r\n") as srv:
        mailbox = Mailbox.objects.create(name="scan", protocol="imap", host="127.0.0.1", port=srv.port,
                                         security="none", username="u", password="p")
        html = _test_page(admin_client, mailbox)
    assert "Connection failed" in html and "protocol" in html
    assert "OpenSSH" not in html and "db-internal-3" not in html


def test_with_blocking_on_a_loopback_host_is_never_contacted(admin_client, settings):
    settings.MAILBOX_BLOCK_PRIVATE_NETWORKS = True
    settings.MAILBOX_ALLOWED_NETWORKS = []
    with BannerServer(b"* OK ready\r\n") as srv:
        mailbox = Mailbox.objects.create(name="scan", protocol="imap", host="127.0.0.1", port=srv.port,
                                         security="none", username="u", password="p")
        html = _test_page(admin_client, mailbox)
        assert srv.connections == 0
    assert "blocked" in html


# ------------------------------------------------------------------ item 4: bound secrets
@pytest.fixture
def editor(client):
    """Staff who may edit mailboxes (and never sees their secrets)."""
    user = User.objects.create_user("editor", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(
        codename__in=["view_mailbox", "change_mailbox"]))
    client.force_login(user)
    return client


def _form(mailbox: Mailbox, **changes) -> dict:
    data = {
        "name": mailbox.name, "enabled": "on", "protocol": mailbox.protocol, "host": mailbox.host,
        "port": mailbox.port or "", "security": mailbox.security, "verify_certificate": "on",
        "folder": mailbox.folder, "path": mailbox.path, "auth": mailbox.auth,
        "username": mailbox.username, "password": "", "oauth2_token_url": mailbox.oauth2_token_url,
        "oauth2_client_id": mailbox.oauth2_client_id, "oauth2_client_secret": "",
        "oauth2_refresh_token": "", "oauth2_scope": mailbox.oauth2_scope,
        "fetch_mode": "unseen", "interval_minutes": "10", "batch_size": "200",
        "processed_action": "delete", "unmatched_action": "mark_read",
    }
    data.update(changes)
    return data


@pytest.mark.dovecot
def test_repointing_the_host_does_not_send_the_stored_password_there(editor, dovecot, mail_user):
    mailbox = Mailbox.objects.create(
        name="m", protocol="imap", host="127.0.0.1", port=dovecot.imap_port, security="none",
        username=mail_user.name, password=mail_user.password,
    )
    assert "Connection OK" in _test_page(editor, mailbox)
    capture = BannerServer(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready\r\n", b"{tag} NO no\r\n",
                           capability=b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n")
    with capture:
        # The form refuses the new port without the password ...
        url = reverse("admin:bounces_mailbox_change", args=[mailbox.pk])
        response = editor.post(url, _form(mailbox, port=str(capture.port)))
        assert response.status_code == 200
        assert "enter the password again" in response.content.decode()
        # ... and a row repointed another way (API, shell, old data) withholds it.
        Mailbox.objects.filter(pk=mailbox.pk).update(port=capture.port)
        mailbox.refresh_from_db()
        html = _test_page(editor, mailbox)
    assert "Connection failed" in html and "enter the password again" in html
    assert capture.connections == 1
    assert mail_user.password.encode() not in b"".join(capture.received)


@pytest.mark.dovecot
def test_repointing_the_oauth2_token_url_does_not_send_the_client_secret(
    editor, oauth2_provider, dovecot
):
    mailbox = Mailbox.objects.create(
        name="o", protocol="imap", host="imap.example.com", security="ssl", auth="xoauth2",
        username="u", oauth2_token_url="https://login.example.com/token", oauth2_client_id="app",
        oauth2_client_secret="client-secret-value", oauth2_refresh_token="refresh-token-value",
    )
    url = reverse("admin:bounces_mailbox_change", args=[mailbox.pk])
    response = editor.post(url, _form(mailbox, oauth2_token_url=oauth2_provider.token_url))
    assert response.status_code == 200
    assert "enter the OAuth2 client secret again" in response.content.decode()
    Mailbox.objects.filter(pk=mailbox.pk).update(oauth2_token_url=oauth2_provider.token_url,
                                                 host="127.0.0.1", port=dovecot.imap_port,
                                                 security="none")
    before = len(oauth2_provider.token_requests)
    _test_page(editor, mailbox)
    sent = oauth2_provider.token_requests[before:]
    assert all("client-secret-value" not in str(r) and "refresh-token-value" not in str(r) for r in sent)


def test_re_entering_the_secret_with_the_new_endpoint_binds_it_again(editor):
    mailbox = Mailbox.objects.create(name="m", protocol="imap", host="imap.example.com",
                                     username="u", password="old")
    url = reverse("admin:bounces_mailbox_change", args=[mailbox.pk])
    response = editor.post(url, _form(mailbox, host="imap2.example.com", password="new"))
    assert response.status_code == 302, response.content.decode()[:3000]
    mailbox.refresh_from_db()
    assert (mailbox.host, mailbox.password) == ("imap2.example.com", "new")
    assert mailbox.secrets_bound()
    # The same endpoint with the password left blank keeps it, still bound.
    assert editor.post(url, _form(mailbox, folder="Bounces")).status_code == 302
    mailbox.refresh_from_db()
    assert mailbox.password == "new" and mailbox.secrets_bound()


def test_an_endpoint_change_drops_secrets_that_were_not_re_entered():
    mailbox = Mailbox.objects.create(name="m", protocol="imap", host="imap.example.com", username="u",
                                     password="pw", oauth2_client_secret="cs", oauth2_refresh_token="rt",
                                     oauth2_token_url="https://login.example.com/token")
    mailbox.host = "attacker.example.net"
    mailbox.enter_secrets(password="attacker-chosen")
    mailbox.save()
    mailbox.refresh_from_db()
    assert mailbox.secrets_bound()
    assert (mailbox.oauth2_client_secret, mailbox.oauth2_refresh_token) == ("", "")


# ------------------------------------------------------------------ low items
def test_a_view_only_user_sees_the_mailbox_page_without_its_secrets(client):
    mailbox = Mailbox.objects.create(name="m", protocol="imap", host="imap.example.com", username="u",
                                     password="the-stored-password", oauth2_client_secret="the-client-secret")
    user = User.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename="view_mailbox"))
    client.force_login(user)
    response = client.get(reverse("admin:bounces_mailbox_change", args=[mailbox.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "the-stored-password" not in html and "the-client-secret" not in html
    assert "stored" in html


def test_the_mailbox_form_hides_secrets_from_error_reports(admin_client):
    from django.views.debug import SafeExceptionReporterFilter

    response = admin_client.post(reverse("admin:bounces_mailbox_add"),
                                 _form(Mailbox(name="new", host="imap.example.com", username="u"),
                                       password="typed-password", oauth2_client_secret="typed-secret"))
    request = response.wsgi_request
    shown = SafeExceptionReporterFilter().get_post_parameters(request)
    assert shown["password"] != "typed-password"
    assert shown["oauth2_client_secret"] != "typed-secret"


def test_a_secret_changed_in_the_database_is_not_taken_as_entered_after_a_refresh():
    # The OAuth2 token saver rotates the refresh token with an UPDATE; an instance refreshed
    # afterwards and saved for another reason must not rebind secrets to a new endpoint.
    mailbox = Mailbox.objects.create(name="m", protocol="imap", host="imap.example.com", username="u",
                                     auth="xoauth2", oauth2_refresh_token="rt1",
                                     oauth2_token_url="https://login.example.com/token")
    Mailbox.objects.filter(pk=mailbox.pk).update(oauth2_refresh_token="rt2", host="attacker.example.net")
    mailbox.refresh_from_db()
    mailbox.save()
    mailbox.refresh_from_db()
    assert not mailbox.secrets_bound()
