"""IMAP connector against a real Dovecot."""

from __future__ import annotations

import dataclasses
import hashlib
import socket

import pytest
from imapclient import IMAPClient

from bounces.mailboxes import (
    AuthenticationError,
    ConnectionLostError,
    ConnectionSettings,
    Disposition,
    FolderNotFoundError,
    MailboxProtocolError,
    MessageRef,
    UidValidityChangedError,
    check_connection,
    open_mailbox,
)
from bounces.mailboxes.imap import IMAPConnector
from tests.servers.dovecot import (
    LEGACY_ADDRESS,
    SELF_SIGNED_ADDRESS,
    DovecotServer,
    MailUser,
    free_port,
)
from tests.servers.proxy import CuttableProxy

from .helpers import big_message, marker, numbered

pytestmark = pytest.mark.dovecot


def _inject(dovecot: DovecotServer, user: MailUser, samples: list[bytes], count: int) -> None:
    for i in range(count):
        dovecot.inject(user, numbered(samples[i % len(samples)], i))


def _raw_client(dovecot: DovecotServer, user: MailUser) -> IMAPClient:
    client = IMAPClient("127.0.0.1", port=dovecot.imap_port, ssl=False, timeout=10)
    client.login(user.name, user.password)
    return client


def _flags(dovecot: DovecotServer, user: MailUser, folder: str = "INBOX") -> dict[int, set[bytes]]:
    """Flags per UID as another client sees them (\\Recent is per session: left out)."""
    client = _raw_client(dovecot, user)
    try:
        client.select_folder(folder, readonly=True)
        return {
            uid: set(flags) - {b"\\Recent"}
            for uid, flags in client.get_flags(client.search("ALL")).items()
        }
    finally:
        client.logout()


# ---------------------------------------------------------------- connecting and errors
def test_a_wrong_password_is_reported_as_an_authentication_failure(imap_settings):
    report = check_connection(imap_settings(password="not-the-password"))

    assert not report.ok
    assert report.error_category == "auth"
    assert report.transient is False
    assert "rejected the login" in (report.error_message or "")


def test_a_wrong_password_raises_authentication_error(imap_settings):
    with pytest.raises(AuthenticationError):
        with open_mailbox(imap_settings(password="nope")):
            pass


def test_a_missing_folder_is_reported_and_the_existing_folders_are_listed(imap_settings):
    report = check_connection(imap_settings(folder="Bounces"))

    assert not report.ok
    assert report.error_category == "folder"
    assert "'Bounces' does not exist" in (report.error_message or "")
    assert [f.name for f in report.folders] == ["INBOX"]


def test_a_refused_connection_is_reported_as_refused_and_transient(imap_settings):
    report = check_connection(imap_settings(port=free_port()))

    assert report.error_category == "refused"
    assert report.transient is True


def test_an_unknown_host_is_reported_as_a_dns_failure(imap_settings):
    report = check_connection(imap_settings(host="no-such-host.invalid"))

    assert report.error_category == "dns"
    assert "no-such-host.invalid" in (report.error_message or "")


def test_a_successful_check_reports_capabilities_and_counts(
    dovecot, mail_user, imap_settings, bounce_samples
):
    _inject(dovecot, mail_user, bounce_samples, 3)
    dovecot.inject(mail_user, b"Subject: old\r\n\r\nread already\r\n", seen=True)

    report = check_connection(imap_settings())

    assert report.ok, report.as_text()
    assert "IMAP4REV1" in report.capabilities
    assert report.greeting == ""  # the server's free text is never shown (issue 12, item 8)
    assert report.folder is not None
    assert (report.folder.messages, report.folder.unseen) == (4, 3)
    assert report.folder.uidvalidity
    assert "4 messages, 3 unseen" in report.as_text()


# ---------------------------------------------------------------- TLS
def test_starttls_with_the_test_ca_trusted_logs_in(dovecot, imap_settings):
    report = check_connection(
        imap_settings(security="starttls", ca_file=str(dovecot.pki.ca_cert))
    )
    assert report.ok, report.as_text()


def test_implicit_tls_with_an_unknown_ca_fails_with_a_clear_certificate_error(
    dovecot, imap_settings
):
    report = check_connection(imap_settings(security="ssl", port=dovecot.imaps_port))

    assert not report.ok
    assert report.error_category == "certificate"
    assert "could not be verified" in (report.error_message or "")
    assert "certificate" in (report.hint or "")


def test_implicit_tls_without_verification_logs_in(dovecot, imap_settings):
    settings = imap_settings(security="ssl", port=dovecot.imaps_port, verify_certificate=False)
    assert check_connection(settings).ok


def test_implicit_tls_with_the_test_ca_trusted_logs_in(dovecot, imap_settings):
    settings = imap_settings(
        security="ssl", port=dovecot.imaps_port, ca_file=str(dovecot.pki.ca_cert)
    )
    assert check_connection(settings).ok


def test_a_certificate_for_another_host_name_is_refused(dovecot, imap_settings):
    # The certificate names localhost and 127.0.0.1, not 127.0.0.2.
    settings = imap_settings(
        host=LEGACY_ADDRESS,
        port=dovecot.legacy_imap_port,
        security="starttls",
        ca_file=str(dovecot.pki.ca_cert),
    )
    report = check_connection(settings)
    assert report.error_category == "certificate"
    assert "mismatch" in (report.error_message or "").lower()


def test_implicit_tls_on_a_plain_port_explains_the_port_mix_up(dovecot, imap_settings):
    report = check_connection(imap_settings(security="ssl", port=dovecot.imap_port))

    assert report.error_category == "tls"
    assert "STARTTLS" in (report.hint or "")


def test_the_settings_repr_never_shows_the_password(imap_settings):
    settings = imap_settings(password="s3cret-value")
    assert "s3cret-value" not in repr(settings)
    assert "s3cret-value" not in settings.describe()


# ---------------------------------------------------------------- reading
def test_listing_and_fetching_leaves_messages_unseen(dovecot, mail_user, imap_settings):
    dovecot.inject(mail_user, b"Subject: a\r\n\r\nA\r\n")
    dovecot.inject(mail_user, b"Subject: b\r\n\r\nB\r\n", seen=True)

    with open_mailbox(imap_settings()) as box:
        state = box.open_folder()
        unseen = box.list_messages()
        everything = box.list_messages(unseen_only=False)
        fetched = list(box.fetch(unseen))

    assert len(unseen) == 1 and len(everything) == 2
    assert unseen[0].key == f"{state.uidvalidity}:{unseen[0].uid}"
    assert fetched[0].raw == b"Subject: a\r\n\r\nA\r\n"
    assert all(b"\\Seen" not in flags for uid, flags in _flags(dovecot, mail_user).items()
               if uid == unseen[0].uid)


def test_exclude_keys_and_limit_narrow_the_listing(dovecot, mail_user, imap_settings):
    for i in range(5):
        dovecot.inject(mail_user, f"Subject: {i}\r\n\r\n{i}\r\n".encode())
    with open_mailbox(imap_settings()) as box:
        box.open_folder()
        refs = box.list_messages()
        rest = box.list_messages(exclude_keys={refs[0].key, refs[1].key}, limit=2)
    assert [r.uid for r in rest] == [refs[2].uid, refs[3].uid]


def test_more_than_a_thousand_messages_are_fetched_in_batches(
    dovecot, mail_user, imap_settings, bounce_samples
):
    count = 1200
    _inject(dovecot, mail_user, bounce_samples, count)

    with open_mailbox(imap_settings()) as box:
        box.open_folder()
        refs = box.list_messages()
        seen = [marker(m.raw) for m in box.fetch(refs, batch_size=200)]

    assert len(refs) == count
    assert sorted(seen) == list(range(count))


def test_fetched_bytes_match_the_stored_bounce(dovecot, mail_user, imap_settings, bounce_samples):
    sample = bounce_samples[0]
    dovecot.inject(mail_user, sample)
    with open_mailbox(imap_settings()) as box:
        box.open_folder()
        [message] = list(box.fetch(box.list_messages()))
    # Dovecot serves CRLF line ends whatever the file has.
    assert message.raw.replace(b"\r\n", b"\n") == sample.replace(b"\r\n", b"\n")


def test_a_20_mb_message_is_fetched_intact(dovecot, mail_user, imap_settings):
    big = big_message(20 * 1024 * 1024)
    dovecot.inject(mail_user, big)

    with open_mailbox(imap_settings()) as box:
        box.open_folder()
        refs = box.list_messages()
        [message] = list(box.fetch(refs))

    assert refs[0].size == len(big)
    assert hashlib.sha256(message.raw).digest() == hashlib.sha256(big).digest()


# ---------------------------------------------------------------- folders
def test_folders_are_listed_with_message_and_unseen_counts(dovecot, mail_user, imap_settings):
    dovecot.inject(mail_user, b"Subject: 1\r\n\r\n1\r\n")
    dovecot.inject(mail_user, b"Subject: 2\r\n\r\n2\r\n", folder="Bounces", seen=True)
    dovecot.inject(mail_user, b"Subject: 3\r\n\r\n3\r\n", folder="Bounces")

    with open_mailbox(imap_settings()) as box:
        folders = {f.name: f for f in box.list_folders()}

    assert (folders["INBOX"].messages, folders["INBOX"].unseen) == (1, 1)
    assert (folders["Bounces"].messages, folders["Bounces"].unseen) == (2, 1)
    assert folders["Bounces"].delimiter == "/"


@pytest.mark.parametrize("name", ["Rückläufer", "Unzustellbar/Rückläufer", "退信", "Bounces & Co"])
def test_non_ascii_folder_names_can_be_listed_opened_and_used_as_move_target(
    dovecot, mail_user, imap_settings, name
):
    dovecot.inject(mail_user, b"Subject: x\r\n\r\nx\r\n")
    with open_mailbox(imap_settings()) as box:
        assert isinstance(box, IMAPConnector)
        box.create_folder(name)
        assert name in [f.name for f in box.list_folders()]
        box.open_folder("INBOX")
        [ref] = box.list_messages()
        box.apply({ref: Disposition.move(name)})
        state = box.open_folder(name)
    assert state.messages == 1
    # On the wire the name is modified UTF-7 (RFC 3501 5.1.3).
    if not name.isascii():
        raw = _raw_client(dovecot, mail_user)
        raw.folder_encode = False
        listed = [n for _, _, n in raw.list_folders()]
        raw.logout()
        assert any(b"&" in (n if isinstance(n, bytes) else n.encode()) for n in listed)


# ---------------------------------------------------------------- dispositions
@pytest.fixture(params=["modern", "legacy"])
def server_flavour(request, dovecot, imap_settings):
    """Dovecot with MOVE/UIDPLUS, and the same server advertising neither."""
    if request.param == "modern":
        return imap_settings()
    return imap_settings(host=LEGACY_ADDRESS, port=dovecot.legacy_imap_port)


def _three(dovecot: DovecotServer, user: MailUser) -> None:
    for i in range(3):
        dovecot.inject(user, f"Subject: m{i}\r\n\r\n{i}\r\n".encode())


def test_delete_expunges_exactly_the_given_messages(dovecot, mail_user, server_flavour):
    _three(dovecot, mail_user)
    # Another client marked message 3 \Deleted without expunging: it must survive.
    other = _raw_client(dovecot, mail_user)
    other.select_folder("INBOX")
    other.add_flags([3], [b"\\Deleted"])
    other.logout()

    with open_mailbox(server_flavour) as box:
        box.open_folder()
        refs = box.list_messages(unseen_only=False)
        box.apply({refs[0]: Disposition.delete(), refs[1]: Disposition.leave()})
        remaining = [r.uid for r in box.list_messages(unseen_only=False)]

    assert remaining == [2, 3]
    assert b"\\Deleted" in _flags(dovecot, mail_user)[3]


def test_mark_read_sets_only_the_seen_flag(dovecot, mail_user, server_flavour):
    _three(dovecot, mail_user)
    with open_mailbox(server_flavour) as box:
        box.open_folder()
        refs = box.list_messages()
        box.apply({refs[1]: Disposition.mark_read()})
        unseen = [r.uid for r in box.list_messages()]
    assert unseen == [1, 3]
    assert _flags(dovecot, mail_user)[2] == {b"\\Seen"}


def test_move_puts_the_message_in_the_target_folder(dovecot, mail_user, server_flavour):
    _three(dovecot, mail_user)
    dovecot.make_folder(mail_user, "Processed")
    with open_mailbox(server_flavour) as box:
        box.open_folder()
        refs = box.list_messages()
        box.apply({refs[0]: Disposition.move("Processed"), refs[2]: Disposition.move("Processed")})
        left = [r.uid for r in box.list_messages(unseen_only=False)]
        moved = box.open_folder("Processed")
        moved_refs = box.list_messages()
        bodies = sorted(m.raw for m in box.fetch(moved_refs))
    assert left == [2]
    assert moved.messages == 2
    assert bodies == [b"Subject: m0\r\n\r\n0\r\n", b"Subject: m2\r\n\r\n2\r\n"]


def test_leave_changes_nothing(dovecot, mail_user, server_flavour):
    _three(dovecot, mail_user)
    before = _flags(dovecot, mail_user)
    with open_mailbox(server_flavour) as box:
        box.open_folder()
        refs = box.list_messages()
        box.apply({ref: Disposition.leave() for ref in refs})
    assert _flags(dovecot, mail_user) == before


def test_moving_to_a_missing_folder_creates_it_once(dovecot, mail_user, imap_settings):
    # A new mailbox moves processed messages to "Processed" by default (issue 15, part 5).
    _three(dovecot, mail_user)
    with open_mailbox(imap_settings()) as box:
        box.open_folder()
        [ref, *_] = box.list_messages()
        box.apply({ref: Disposition.move("Processed")})
    assert len(dovecot.message_files(mail_user)) == 2
    assert len(dovecot.message_files(mail_user, "Processed")) == 1


def test_moving_to_a_folder_that_cannot_be_created_is_a_folder_error(dovecot, mail_user, imap_settings,
                                                                     monkeypatch):
    _three(dovecot, mail_user)
    with open_mailbox(imap_settings()) as box:
        # a server that refuses the CREATE (quota, ACL, a name it does not allow)
        def refuse(name: str) -> None:
            raise MailboxProtocolError("The IMAP server refused a command.")

        monkeypatch.setattr(box, "create_folder", refuse)
        box.open_folder()
        [ref, *_] = box.list_messages()
        with pytest.raises(FolderNotFoundError, match="Nowhere"):
            box.apply({ref: Disposition.move("Nowhere")})
    assert len(dovecot.message_files(mail_user)) == 3


# ---------------------------------------------------------------- UIDVALIDITY
def test_a_reset_folder_is_noticed_and_old_refs_are_refused(dovecot, mail_user, imap_settings):
    _three(dovecot, mail_user)
    with open_mailbox(imap_settings()) as box:
        first = box.open_folder()
        old_refs = box.list_messages()

    dovecot.reset_uidvalidity(mail_user)

    with open_mailbox(imap_settings()) as box:
        second = box.open_folder(expected_uidvalidity=first.uidvalidity)
        assert second.uidvalidity_changed
        assert second.uidvalidity != first.uidvalidity
        with pytest.raises(UidValidityChangedError):
            box.apply({old_refs[0]: Disposition.delete()})
        with pytest.raises(UidValidityChangedError):
            list(box.fetch(old_refs))
        new_keys = {r.key for r in box.list_messages()}
    assert len(dovecot.message_files(mail_user)) == 3
    assert not new_keys & {r.key for r in old_refs}


def test_a_recreated_folder_gets_a_new_uidvalidity(dovecot, mail_user, imap_settings):
    with open_mailbox(imap_settings()) as box:
        assert isinstance(box, IMAPConnector)
        box.create_folder("Bounces")
        first = box.open_folder("Bounces")
        box.open_folder("INBOX")
        box.client.delete_folder("Bounces")
        box.create_folder("Bounces")
        second = box.open_folder("Bounces", expected_uidvalidity=first.uidvalidity)
    assert second.uidvalidity_changed


# ---------------------------------------------------------------- dropped connections
@pytest.fixture
def proxied(dovecot, imap_settings):
    proxy = CuttableProxy(("127.0.0.1", dovecot.imap_port)).start()
    yield proxy, imap_settings(port=proxy.port)
    proxy.close()


def test_a_connection_cut_between_batches_is_retried_and_nothing_is_lost(
    dovecot, mail_user, proxied, bounce_samples
):
    proxy, settings = proxied
    _inject(dovecot, mail_user, bounce_samples, 300)
    seen: list[int] = []
    with open_mailbox(settings) as box:
        box.open_folder()
        refs = box.list_messages()
        for i, message in enumerate(box.fetch(refs, batch_size=50)):
            seen.append(marker(message.raw))
            if i == 10:
                proxy.cut()
    assert sorted(seen) == list(range(300))
    assert proxy.connections_accepted == 2


def test_a_connection_cut_inside_a_message_literal_is_retried(
    dovecot, mail_user, bounce_samples, imap_settings
):
    _inject(dovecot, mail_user, bounce_samples, 100)
    # The first connection dies after 150 kB of server output: in the middle of the
    # FETCH of the 100-message batch (the corpus averages ~6 kB a message).
    with CuttableProxy(
        ("127.0.0.1", dovecot.imap_port), cut_after_bytes=150_000, cut_connections=1
    ) as proxy:
        with open_mailbox(imap_settings(port=proxy.port)) as box:
            box.open_folder()
            refs = box.list_messages()
            seen = [marker(m.raw) for m in box.fetch(refs, batch_size=100)]
    assert sorted(seen) == list(range(100))
    assert proxy.connections_accepted == 2


def test_a_connection_that_keeps_dropping_ends_the_run_with_nothing_lost(
    dovecot, mail_user, proxied, bounce_samples
):
    proxy, settings = proxied
    _inject(dovecot, mail_user, bounce_samples, 100)
    got: list[int] = []
    with open_mailbox(settings) as box:
        box.open_folder()
        refs = box.list_messages()
        proxy.cut_after_bytes = 50_000  # every new connection dies mid-FETCH
        proxy.cut()
        with pytest.raises(ConnectionLostError) as caught:
            for message in box.fetch(refs, batch_size=100):
                got.append(marker(message.raw))
    assert caught.value.transient
    assert got == []
    # Nothing was disposed: every message is still there and still unseen.
    flags = _flags(dovecot, mail_user)
    assert len(flags) == 100
    assert all(b"\\Seen" not in f and b"\\Deleted" not in f for f in flags.values())


def test_a_folder_reset_noticed_on_reconnect_stops_the_run(
    dovecot, mail_user, proxied, bounce_samples
):
    proxy, settings = proxied
    _inject(dovecot, mail_user, bounce_samples, 20)
    with open_mailbox(settings) as box:
        box.open_folder()
        refs = box.list_messages()
        proxy.cut()
        dovecot.reset_uidvalidity(mail_user)
        with pytest.raises(UidValidityChangedError):
            list(box.fetch(refs, batch_size=5))


def test_refs_from_another_folder_are_refused(dovecot, mail_user, imap_settings):
    _three(dovecot, mail_user)
    with open_mailbox(imap_settings()) as box:
        state = box.open_folder()
        stray = MessageRef(key="x", folder="Other", uid=1, uidvalidity=state.uidvalidity)
        with pytest.raises(Exception, match="belongs to folder"):
            box.apply({stray: Disposition.delete()})


def test_the_legacy_listener_really_lacks_move_and_uidplus(dovecot, imap_settings):
    settings = imap_settings(host=LEGACY_ADDRESS, port=dovecot.legacy_imap_port)
    with open_mailbox(settings) as box:
        capabilities = box.capabilities()
    assert "MOVE" not in capabilities and "UIDPLUS" not in capabilities


def test_a_self_signed_certificate_fails_verification_and_works_without_it(dovecot, imap_settings):
    strict = imap_settings(
        host=SELF_SIGNED_ADDRESS, port=dovecot.self_signed_imaps_port, security="ssl"
    )
    report = check_connection(strict)
    assert report.error_category == "certificate"
    assert "self-signed" in (report.error_message or "")

    relaxed = dataclasses.replace(strict, verify_certificate=False)
    assert check_connection(relaxed).ok
    # Trusting that very certificate (as a one-certificate "CA") also works.
    pinned = dataclasses.replace(strict, ca_file=str(dovecot.pki.self_signed_cert))
    assert check_connection(pinned).ok
    as_text = dataclasses.replace(strict, ca_pem=dovecot.pki.self_signed_cert.read_text())
    assert check_connection(as_text).ok


@pytest.fixture(scope="module")
def dovecot_without_tls():
    """A second, TLS-less Dovecot: STARTTLS must be refused, not silently skipped."""
    from tests.servers.common import unavailable
    from tests.servers.dovecot import dovecot_available, dovecot_root

    reason = dovecot_available()
    if reason:
        unavailable(reason)
    with dovecot_root() as root:
        server = DovecotServer.start(root, tls=False)
        yield server
        server.stop()


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_starttls_is_required_when_chosen_and_the_password_is_never_sent(
    dovecot_without_tls, protocol
):
    user = dovecot_without_tls.add_user()
    settings = ConnectionSettings(
        protocol=protocol,
        host="127.0.0.1",
        port=dovecot_without_tls.imap_port if protocol == "imap" else dovecot_without_tls.pop3_port,
        security="starttls",
        username=user.name,
        password=user.password,
        timeout=5,
    )
    report = check_connection(settings)
    assert report.error_category == "tls"
    assert "does not offer" in (report.error_message or "")
    assert f"user=<{user.name}>" not in dovecot_without_tls.log_tail(200)


def test_a_server_that_never_answers_is_a_timeout(imap_settings):
    # A listening socket nobody accepts from: the TCP handshake succeeds (backlog),
    # the greeting never comes.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        report = check_connection(imap_settings(port=silent.getsockname()[1], timeout=0.5))
    assert report.error_category == "timeout"
    assert report.transient is True


def test_a_closed_connector_reconnects_and_reselects_its_folder(dovecot, mail_user, imap_settings):
    dovecot.inject(mail_user, b"Subject: a\r\n\r\na\r\n", folder="Bounces")
    with open_mailbox(imap_settings()) as box:
        box.open_folder("Bounces")
        refs = box.list_messages()
        box.close()
        assert [m.raw for m in box.fetch(refs)] == [b"Subject: a\r\n\r\na\r\n"]


def test_the_quick_fetch_reads_what_imapclient_reads(dovecot, mail_user, imap_settings, bounce_samples):
    """Sizes and bodies are read by imaplib directly (issue 11, speed): the same answer as
    imapclient's parser, and a message deleted meanwhile is left out as before."""
    from bounces.mailboxes import imap as imap_module

    for sample in bounce_samples[:5]:
        dovecot.inject(mail_user, sample)
    with open_mailbox(imap_settings()) as box:
        box.open_folder()
        refs = box.list_messages(unseen_only=False)
        uids = [r.uid for r in refs]
        quick_sizes = imap_module._fetch_sizes_fast(box.client, uids)
        quick_bodies = imap_module._fetch_bodies_fast(box.client, uids)
        general = box.client.fetch(uids, ["RFC822.SIZE", "BODY.PEEK[]"])
        assert quick_sizes == {u: d[b"RFC822.SIZE"] for u, d in general.items()}
        assert quick_bodies == {u: d[b"BODY[]"] for u, d in general.items()}
        assert {r.uid: r.size for r in refs} == quick_sizes
        box.client.delete_messages([uids[0]])
        box.client.expunge()
        assert [m.ref.uid for m in box.fetch(refs)] == uids[1:]


def test_an_unexpected_fetch_answer_goes_to_the_general_parser():
    from bounces.mailboxes import imap as imap_module

    class Fake:
        def __init__(self, data):
            self._imap = self
            self.data = data

        def uid(self, *args):
            return "OK", self.data

    moved_uid = [(b"1 (BODY[] {3}", b"abc"), b" UID 7)"]
    assert imap_module._fetch_bodies_fast(Fake(moved_uid), [7]) is None
    quoted = [b'1 (UID 7 BODY[] "abc")']
    assert imap_module._fetch_bodies_fast(Fake(quoted), [7]) is None
    assert imap_module._fetch_bodies_fast(Fake([(b"1 (UID 7 BODY[] {3}", b"abc"), b")", b"2 (FLAGS (\\Seen))"]),
                                          [7]) == {7: b"abc"}
    assert imap_module._fetch_sizes_fast(Fake([b"1 (RFC822.SIZE 12)"]), [7]) is None
    assert imap_module._fetch_sizes_fast(Fake([b"1 (RFC822.SIZE 12 UID 7)", b"2 (FLAGS ())"]), [7]) == {7: 12}
