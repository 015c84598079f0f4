"""The receiver as a real process, killed with SIGKILL mid-stream: nothing it acknowledged
is lost, and the senders' retries of what it did not acknowledge are stored once."""

from __future__ import annotations

import os
import signal
import smtplib
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.db import connection

from bounces.models import RawMessage
from tests.servers.common import free_loopback_port, wait_for_port

from .conftest import RETURN_DOMAIN, corpus_files

ROOT = Path(__file__).resolve().parents[2]


def _start(port: int) -> subprocess.Popen:
    from django.conf import settings

    from tests.conftest import TEST_ENCRYPTION_KEY

    db = settings.DATABASES["default"]
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bouncemgr.settings", "FIELD_ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
           "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"}
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "run_bounce_smtpd", "--host", "127.0.0.1", "--port", str(port),
         "--domain", RETURN_DOMAIN, "--process", "none"],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    wait_for_port("127.0.0.1", port, timeout=30)
    return proc


@pytest.mark.postgres
def test_a_receiver_killed_after_250_loses_nothing_it_acknowledged(transactional_db):
    if connection.vendor != "postgresql":
        pytest.skip("the receiver process needs a shared database (pytest --postgres)")
    messages = [p.read_bytes() for p in corpus_files(150)]
    port = free_loopback_port()
    proc = _start(port)
    acked: dict[int, int] = {}  # message index -> queue id the receiver answered with
    lock = threading.Lock()
    kill_at = 40

    def sender(indexes: list[int]) -> None:
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
                smtp.ehlo("mx.example.net")
                for i in indexes:
                    smtp.mail("")
                    smtp.rcpt(f"bounces+{i:016d}@{RETURN_DOMAIN}")
                    code, reply = smtp.data(messages[i])
                    assert code == 250
                    with lock:
                        acked[i] = int(reply.decode().rsplit(" ", 1)[1])
                        if len(acked) == kill_at:
                            proc.send_signal(signal.SIGKILL)  # right after a 250, others mid-DATA
        except (smtplib.SMTPException, OSError):
            pass  # the receiver died under us; what was not acknowledged is retried below

    try:
        threads = [threading.Thread(target=sender, args=(list(range(k, len(messages), 3)),)) for k in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        proc.wait(10)
        assert proc.returncode == -signal.SIGKILL
        assert kill_at <= len(acked) < len(messages), "the kill came too late to test anything"

        # everything acknowledged is stored, under the id the receiver gave
        stored = dict(RawMessage.objects.filter(source="smtpd").values_list("id", "raw"))
        for i, queue_id in acked.items():
            assert queue_id in stored, f"message {i} was acknowledged as {queue_id} but is lost"
            assert bytes(stored[queue_id]).rstrip().endswith(messages[i].rstrip())

        # the senders retry what got no 250 (some of it may be stored already)
        proc = _start(port)
        sender([i for i in range(len(messages)) if i not in acked])
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(20)
    assert len(acked) == len(messages)
    assert RawMessage.objects.filter(source="smtpd").count() == len(messages)  # each stored once
    assert set(acked.values()) == set(RawMessage.objects.values_list("id", flat=True))
