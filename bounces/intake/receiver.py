"""The SMTP receiver's side of the intake: store what it accepted, then get it processed."""

from __future__ import annotations

import logging
import threading
from hashlib import sha256

from django.db import close_old_connections, connection

from ..models import RawMessage
from .notices import Notice, process_notices, queue_processing, store_notices
from .smtpd import Received, envelope_headers

log = logging.getLogger(__name__)


def received_key(message: Received) -> str:
    """Idempotency key of a received message: "smtpd:" + SHA-256 of envelope and bytes (a
    sender that retries after a lost 250 gets the same row, and the same queue id)."""
    h = sha256()
    h.update(message.mail_from.lower().encode("utf-8", "replace") + b"\x00")
    for rcpt in message.rcpt_tos:
        h.update(rcpt.lower().encode("utf-8", "replace") + b"\x00")
    h.update(message.content)
    return "smtpd:" + h.hexdigest()


def store_received(messages: list[Received]) -> list[str]:
    """Store accepted messages in one transaction (committed on return); their queue ids."""
    notices = [Notice.mail(source=RawMessage.Source.RECEIVER, key=received_key(m),
                           raw=envelope_headers(m) + m.content) for m in messages]
    try:
        stored = store_notices(notices=notices)
    except Exception:
        # A broken connection (database restarted): drop it so the next batch reconnects.
        connection.close()
        raise
    return [str(stored.ids[n.key]) for n in notices]


def queue_received(ids: list[str]) -> None:
    """After a commit: a Celery task processes the batch (the sweep catches lost tasks)."""
    queue_processing([int(i) for i in ids])


class InlineProcessor:
    """Processes received messages in a thread of the receiver itself (no Celery): woken
    after each commit, it takes every waiting message in batches."""

    def __init__(self, batch_size: int = 500, retry_seconds: float = 30.0) -> None:
        self.batch_size = batch_size
        self.retry_seconds = retry_seconds
        self.wake = threading.Event()
        self.stopping = False
        self.processed = 0
        self.thread = threading.Thread(target=self._run, name="bounce-smtpd-processor", daemon=True)

    def start(self) -> None:
        self.thread.start()
        self.wake.set()  # anything left from before a restart

    def notify(self, ids: list[str]) -> None:
        self.wake.set()

    def stop(self) -> None:
        self.stopping = True
        self.wake.set()
        self.thread.join(timeout=60)

    def _run(self) -> None:
        try:
            self._loop()
        finally:
            connection.close()

    def _loop(self) -> None:
        while not self.stopping:
            self.wake.wait(timeout=self.retry_seconds)
            self.wake.clear()
            while not self.stopping:
                try:
                    close_old_connections()
                    counts = process_notices(sources=[RawMessage.Source.RECEIVER], batch_size=self.batch_size,
                                             limit=self.batch_size, actor_label="SMTP receiver")
                except Exception:
                    log.exception("processing received messages failed; retrying in %s s", self.retry_seconds)
                    connection.close()
                    break
                self.processed += counts.get("processed", 0)
                if not counts.get("processed") and not counts.get("errors"):
                    break


def close_thread_connection() -> None:
    """Close the calling thread's database connection (a writer thread's last act)."""
    connection.close()
