""""Browse folders" lists a folder's newest messages (subject, from, date, size) against a real
Dovecot before anything is processed: headers only, nothing marked seen, hostile headers
escaped and cut, and only folders the server listed."""

from __future__ import annotations

import pytest

from bounces.mailboxes import ConnectionSettings, open_mailbox
from bounces.models import Mailbox
from tests.servers.dovecot import dovecot, mail_user, oauth2_provider  # noqa: F401 - fixtures

pytestmark = [pytest.mark.django_db, pytest.mark.dovecot]


@pytest.fixture
def mailbox(dovecot, mail_user):  # noqa: F811
    return Mailbox.objects.create(
        name="bounces", protocol=Mailbox.Protocol.IMAP, host="127.0.0.1", port=dovecot.imap_port,
        security=Mailbox.Security.NONE, username=mail_user.name, password=mail_user.password,
    )


def _msg(subject: str, sender: str = "MAILER-DAEMON@mx.example.net", body: bytes = b"x\r\n") -> bytes:
    return (f"From: {sender}\r\nSubject: {subject}\r\nDate: Mon, 2 Mar 2026 09:00:00 +0000\r\n\r\n"
            .encode() + body)


def test_the_newest_messages_of_a_folder_are_listed_and_stay_unseen(admin_client, dovecot, mail_user, mailbox):  # noqa: F811
    dovecot.make_folder(mail_user, "Bounces")
    for i in range(25):
        dovecot.inject(mail_user, _msg(f"Undelivered Mail Returned to Sender {i}", body=b"y" * (100 * i)),
                       folder="Bounces")
    dovecot.inject(mail_user, _msg("=?utf-8?q?Unzustellbar=3A_caf=C3=A9?= <script>alert(1)</script>"),
                   folder="Bounces")

    page = admin_client.get(f"/admin/bounces/mailbox/{mailbox.pk}/folders/?messages=Bounces")
    html = page.content.decode()
    assert page.status_code == 200
    assert "Newest messages in Bounces" in html
    rows = html.split('id="newest-messages-table"')[1].split("</table>")[0].count("<tr>") - 1
    assert rows == 20  # bounded
    assert html.index("Unzustellbar: café") < html.index("Returned to Sender 24")  # newest first
    assert "Returned to Sender 5<" not in html  # older than the newest 20
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    assert "MAILER-DAEMON@mx.example.net" in html and "Mon, 2 Mar 2026" in html

    conn = ConnectionSettings(protocol="imap", host="127.0.0.1", port=dovecot.imap_port, security="none",
                              username=mail_user.name, password=mail_user.password)
    with open_mailbox(conn) as box:
        bounces = next(f for f in box.list_folders() if f.name == "Bounces")
    assert (bounces.messages, bounces.unseen) == (26, 26)  # nothing was marked seen


def test_only_a_folder_the_server_lists_is_opened(admin_client, mailbox):
    html = admin_client.get(f"/admin/bounces/mailbox/{mailbox.pk}/folders/?messages=Nope").content.decode()
    assert "Newest messages in" not in html
    html = admin_client.get(f"/admin/bounces/mailbox/{mailbox.pk}/folders/").content.decode()
    assert "?messages=INBOX" in html and "Newest messages" in html


def test_an_empty_folder_says_so(admin_client, mailbox):
    html = admin_client.get(f"/admin/bounces/mailbox/{mailbox.pk}/folders/?messages=INBOX").content.decode()
    assert "The folder is empty." in html
