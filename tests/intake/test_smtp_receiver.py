"""The bounce SMTP receiver: a real smtplib client on a loopback port (the receiver runs the
same code as `manage.py run_bounce_smtpd`, in a thread of the test)."""

from __future__ import annotations

import smtplib
import socket
import ssl

import pytest

from bounces.intake.notices import process_notices
from bounces.models import Bounce, RawMessage
from contacts.models import Contact

from .conftest import RETURN_DOMAIN, corpus_files, dsn, send


def _deliver(receiver, raw: bytes, rcpt: str, *, mail_from: str = "") -> tuple[int, bytes]:
    with smtplib.SMTP(receiver.host, receiver.port, timeout=10) as smtp:
        smtp.ehlo("mx.example.net")
        smtp.mail(mail_from)
        code, msg = smtp.rcpt(rcpt)
        assert code == 250, msg
        return smtp.data(raw)


def _queue_id(reply: bytes) -> int:
    return int(reply.decode().rsplit(" ", 1)[1])


def test_corpus_dsns_are_committed_before_250_and_processed_by_the_intake(receiver):
    files = corpus_files(40)
    with smtplib.SMTP(receiver.host, receiver.port, timeout=10) as smtp:
        smtp.ehlo("mx.example.net")
        for i, path in enumerate(files):
            smtp.mail("")
            assert smtp.rcpt(f"bounces+{i:016d}@{RETURN_DOMAIN}")[0] == 250
            code, reply = smtp.data(path.read_bytes())
            assert code == 250, reply
            # acknowledged: the row is already committed (read by this, another, connection)
            row = RawMessage.objects.get(pk=_queue_id(reply))
            assert row.source == "smtpd" and row.state == "new"
            assert row.raw.tobytes().endswith(path.read_bytes()) if hasattr(row.raw, "tobytes") else True
    assert RawMessage.objects.filter(source="smtpd").count() == len(files)

    counts = process_notices(sources=["smtpd"])

    assert counts["processed"] == len(files)
    assert not RawMessage.objects.exclude(state="processed").exists()
    assert Bounce.objects.filter(raw_message__source="smtpd").values("raw_message").distinct().count() == len(files)


def test_a_bounce_received_by_smtp_acts_on_the_contact(receiver, campaign):
    sent = send(campaign, "gone@example.net")
    code, reply = _deliver(receiver, dsn("gone@example.net"), f"bounces+{sent.token}@{RETURN_DOMAIN}")
    assert code == 250

    process_notices(ids=[_queue_id(reply)])

    bounce = Bounce.objects.get()
    assert (bounce.kind, bounce.match_method, bounce.sent_message_id) == ("hard", "token", sent.pk)
    contact = Contact.objects.get(pk=sent.contact_id)
    assert contact.has_bounced and contact.hard_bounce_count == 1


def test_the_same_message_delivered_twice_is_stored_and_counted_once(receiver, campaign):
    sent = send(campaign, "twice@example.net")
    raw = dsn("twice@example.net")
    rcpt = f"bounces+{sent.token}@{RETURN_DOMAIN}"
    first = _deliver(receiver, raw, rcpt)
    second = _deliver(receiver, raw, rcpt)  # a sender retrying after a lost 250
    assert first == second
    process_notices()
    process_notices()
    assert RawMessage.objects.count() == 1 and Bounce.objects.count() == 1
    assert Contact.objects.get(pk=sent.contact_id).hard_bounce_count == 1


def test_mail_for_a_foreign_domain_is_refused(receiver):
    with smtplib.SMTP(receiver.host, receiver.port, timeout=10) as smtp:
        smtp.ehlo("relay.example.com")
        smtp.mail("spammer@example.com")
        code, msg = smtp.rcpt("victim@gmail.com")
        assert code == 550 and b"5.7.1" in msg
        code, _ = smtp.rcpt(f"bounces@sub.{RETURN_DOMAIN}")  # a subdomain is another domain
        assert code == 550
        with pytest.raises(smtplib.SMTPDataError) as refused:
            smtp.data(b"Subject: x\r\n\r\nx\r\n")
        assert refused.value.smtp_code == 503  # no valid recipient
    assert not RawMessage.objects.exists()


def test_a_message_over_the_size_limit_is_refused_and_not_stored(receiver):
    with smtplib.SMTP(receiver.host, receiver.port, timeout=10) as smtp:
        smtp.ehlo("mx.example.net")
        assert smtp.has_extn("size") and int(smtp.esmtp_features["size"]) == 200_000
        smtp.mail("")
        smtp.rcpt(f"bounces@{RETURN_DOMAIN}")
        code, _ = smtp.data(b"Subject: big\r\n\r\n" + b"x" * 76 + b"\r\n" * 1 + (b"y" * 998 + b"\r\n") * 300)
        assert code == 552
    assert not RawMessage.objects.exists()


def test_connections_beyond_the_limit_get_421(receiver):
    open_ = [smtplib.SMTP(receiver.host, receiver.port, timeout=10) for _ in range(3)]
    try:
        with socket.create_connection((receiver.host, receiver.port), timeout=10) as extra:
            assert extra.recv(200).startswith(b"421")
    finally:
        for s in open_:
            s.quit()


def test_starttls_with_the_operators_certificate(transactional_db, tmp_path):
    import asyncio
    import threading

    from bounces.intake.receiver import close_thread_connection, store_received
    from bounces.intake.smtpd import GroupWriter, ReceiverConfig, serve, tls_context
    from tests.servers.common import free_loopback_port
    from tests.servers.pki import make_test_pki

    pki = make_test_pki(tmp_path)
    writer = GroupWriter(store=store_received, on_exit=close_thread_connection)
    writer.start()
    config = ReceiverConfig(domains=frozenset({RETURN_DOMAIN}),
                            tls_context=tls_context(str(pki.server_cert), str(pki.server_key)))
    port = free_loopback_port()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    box: dict = {}

    def run() -> None:
        asyncio.set_event_loop(loop)
        box["server"] = loop.run_until_complete(serve(config, writer, "127.0.0.1", port))
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
        ctx.check_hostname = False
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            smtp.ehlo("mx.example.net")
            assert smtp.has_extn("starttls")
            smtp.starttls(context=ctx)
            smtp.ehlo("mx.example.net")
            smtp.mail("")
            smtp.rcpt(f"bounces@{RETURN_DOMAIN}")
            code, _ = smtp.data(dsn("tls@example.net"))
            assert code == 250
    finally:
        loop.call_soon_threadsafe(box["server"].close)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        writer.stop()
    assert RawMessage.objects.filter(source="smtpd").count() == 1


@pytest.mark.parametrize("junk", [b"\x00\xff" * 100, b"no headers at all", b"Subject: =?bogus?=\r\n\r\n\xff"])
def test_garbage_is_stored_and_lands_in_the_unexplained_queue(receiver, junk):
    code, reply = _deliver(receiver, junk, f"bounces@{RETURN_DOMAIN}")
    assert code == 250
    process_notices()
    assert RawMessage.objects.get(pk=_queue_id(reply)).state == "processed"
    assert Bounce.objects.get().state == "unmatched"


def test_the_inline_processor_processes_what_the_receiver_committed(receiver, campaign):
    import time

    from bounces.intake.receiver import InlineProcessor

    sent = send(campaign, "inline@example.net")
    processor = InlineProcessor(batch_size=10, retry_seconds=0.5)
    processor.start()
    try:
        code, reply = _deliver(receiver, dsn(sent.email), f"bounces+{sent.token}@{RETURN_DOMAIN}")
        processor.notify([reply.decode()])  # what the writer's after_commit does
        deadline = time.monotonic() + 60
        # Poll the processor, not the database: SQLite's shared-cache test database refuses a
        # second thread's read while the processor writes ("database table is locked").
        while not processor.processed:
            assert time.monotonic() < deadline, "not processed"
            time.sleep(0.05)
    finally:
        processor.stop()
    assert Bounce.objects.get().kind == "hard" and processor.processed == 1
