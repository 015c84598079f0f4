"""POP3 connector against a real Dovecot."""

from __future__ import annotations

import hashlib

import pytest

from bounces.mailboxes import (
    AuthenticationError,
    Disposition,
    UnsupportedOperationError,
    check_connection,
    open_mailbox,
)
from tests.servers.proxy import CuttableProxy

from .helpers import big_message, marker, numbered

pytestmark = pytest.mark.dovecot


def _inject(dovecot, user, samples, count):
    for i in range(count):
        dovecot.inject(user, numbered(samples[i % len(samples)], i))


def test_a_wrong_password_is_an_authentication_failure(pop3_settings):
    report = check_connection(pop3_settings(password="wrong"))
    assert report.error_category == "auth"
    with pytest.raises(AuthenticationError):
        with open_mailbox(pop3_settings(password="wrong")):
            pass


def test_only_the_inbox_exists_over_pop3(pop3_settings):
    report = check_connection(pop3_settings(folder="Bounces"))
    assert report.error_category == "folder"
    assert "only gives access to the inbox" in (report.error_message or "")


def test_stls_with_the_test_ca_trusted_logs_in(dovecot, pop3_settings):
    report = check_connection(
        pop3_settings(security="starttls", ca_file=str(dovecot.pki.ca_cert))
    )
    assert report.ok, report.as_text()
    assert "STLS" in report.capabilities or "UIDL" in report.capabilities


def test_pop3s_with_an_unknown_ca_fails_and_works_without_verification(dovecot, pop3_settings):
    strict = check_connection(pop3_settings(security="ssl", port=dovecot.pop3s_port))
    relaxed = check_connection(
        pop3_settings(security="ssl", port=dovecot.pop3s_port, verify_certificate=False)
    )
    trusted = check_connection(
        pop3_settings(security="ssl", port=dovecot.pop3s_port, ca_file=str(dovecot.pki.ca_cert))
    )
    assert strict.error_category == "certificate"
    assert relaxed.ok and trusted.ok


def test_uidl_keys_are_stable_across_sessions(dovecot, mail_user, pop3_settings, bounce_samples):
    _inject(dovecot, mail_user, bounce_samples, 5)
    with open_mailbox(pop3_settings()) as box:
        first = [r.key for r in box.list_messages()]
    with open_mailbox(pop3_settings()) as box:
        second = [r.key for r in box.list_messages(unseen_only=True)]
    assert first == second and len(set(first)) == 5


def test_all_messages_are_fetched_and_nothing_changes_without_a_disposition(
    dovecot, mail_user, pop3_settings, bounce_samples
):
    _inject(dovecot, mail_user, bounce_samples, 30)
    with open_mailbox(pop3_settings()) as box:
        refs = box.list_messages()
        seen = [marker(m.raw) for m in box.fetch(refs)]
    assert sorted(seen) == list(range(30))
    assert len(dovecot.message_files(mail_user)) == 30


def test_fetched_bytes_match_the_stored_bounce(dovecot, mail_user, pop3_settings, bounce_samples):
    long_line = b"X-Long: " + b"a" * 5000 + b"\r\n"  # poplib alone refuses > 2048
    raw = long_line + bounce_samples[1]
    dovecot.inject(mail_user, raw)
    with open_mailbox(pop3_settings()) as box:
        [message] = list(box.fetch(box.list_messages()))
    assert message.raw.replace(b"\r\n", b"\n") == raw.replace(b"\r\n", b"\n")


def test_delete_removes_exactly_the_given_messages_at_quit(
    dovecot, mail_user, pop3_settings, bounce_samples
):
    _inject(dovecot, mail_user, bounce_samples, 4)
    with open_mailbox(pop3_settings()) as box:
        refs = box.list_messages()
        box.apply(
            {
                refs[0]: Disposition.delete(),
                refs[2]: Disposition.delete(),
                refs[1]: Disposition.mark_read(),
                refs[3]: Disposition.leave(),
            }
        )
        # The connector reconnects by itself after the committing QUIT.
        left = [r.key for r in box.list_messages()]
    assert left == [refs[1].key, refs[3].key]
    assert len(dovecot.message_files(mail_user)) == 2


def test_move_is_refused_on_pop3_before_anything_happens(dovecot, mail_user, pop3_settings):
    dovecot.inject(mail_user, b"Subject: a\r\n\r\na\r\n")
    dovecot.inject(mail_user, b"Subject: b\r\n\r\nb\r\n")
    with open_mailbox(pop3_settings()) as box:
        refs = box.list_messages()
        with pytest.raises(UnsupportedOperationError):
            box.apply({refs[0]: Disposition.delete(), refs[1]: Disposition.move("Done")})
    assert len(dovecot.message_files(mail_user)) == 2


def test_exclude_keys_skips_already_processed_messages(dovecot, mail_user, pop3_settings):
    for i in range(3):
        dovecot.inject(mail_user, f"Subject: {i}\r\n\r\n{i}\r\n".encode())
    with open_mailbox(pop3_settings()) as box:
        refs = box.list_messages()
        rest = box.list_messages(exclude_keys={refs[0].key})
    assert [r.key for r in rest] == [r.key for r in refs[1:]]


def test_a_connection_cut_mid_fetch_is_retried_and_nothing_is_lost(
    dovecot, mail_user, pop3_settings, bounce_samples
):
    _inject(dovecot, mail_user, bounce_samples, 60)
    with CuttableProxy(("127.0.0.1", dovecot.pop3_port)) as proxy:
        seen = []
        with open_mailbox(pop3_settings(port=proxy.port)) as box:
            refs = box.list_messages()
            for i, message in enumerate(box.fetch(refs)):
                seen.append(marker(message.raw))
                if i == 20:
                    proxy.cut()
    assert sorted(seen) == list(range(60))
    assert proxy.connections_accepted == 2


def test_deletions_of_a_session_cut_before_quit_are_rolled_back(
    dovecot, mail_user, pop3_settings
):
    for i in range(3):
        dovecot.inject(mail_user, f"Subject: {i}\r\n\r\n{i}\r\n".encode())
    with CuttableProxy(("127.0.0.1", dovecot.pop3_port)) as proxy:
        with open_mailbox(pop3_settings(port=proxy.port)) as box:
            refs = box.list_messages()
            conn = box.conn  # the live poplib session
            conn.dele(refs[0].uid)
            proxy.cut()  # no QUIT: the server must forget the DELE
    assert len(dovecot.message_files(mail_user)) == 3


def test_a_20_mb_message_is_retrieved_intact(dovecot, mail_user, pop3_settings):
    big = big_message(20 * 1024 * 1024)
    dovecot.inject(mail_user, big)
    with open_mailbox(pop3_settings()) as box:
        refs = box.list_messages()
        [message] = list(box.fetch(refs))
    assert refs[0].size == len(big)
    assert hashlib.sha256(message.raw).digest() == hashlib.sha256(big).digest()


def test_a_line_over_one_mib_is_stored_like_imap_does(dovecot, mail_user, pop3_settings, imap_settings):
    # Issue 12, item 10: poplib's line limit stopped the mailbox for good on such a message.
    head = b"From: MAILER-DAEMON@example.net\r\nSubject: long line\r\n\r\n"
    raw = head + b"<p>" + b"x" * (1024 * 1024 + 4096) + b"</p>\r\nafter\r\n"
    dovecot.inject(mail_user, raw)
    dovecot.inject(mail_user, b"Subject: next\r\n\r\nnext\r\n")
    with open_mailbox(pop3_settings()) as box:
        pop3 = [m.raw for m in box.fetch(box.list_messages())]
    with open_mailbox(imap_settings()) as box:
        box.open_folder()
        imap = [m.raw for m in box.fetch(box.list_messages(unseen_only=False))]
    assert len(pop3) == 2
    assert pop3 == imap
    assert pop3[0] == raw
