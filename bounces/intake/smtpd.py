"""The bounce SMTP receiver (aiosmtpd): the return-path domain's MX points here.

* RCPT is accepted only for the configured return-path domains; anything else gets
  `550 5.7.1` (we are no relay). At most `max_recipients` per message.
* Size limit (SIZE in EHLO, 552 beyond it), connection limit (421 to connections beyond
  it), optional STARTTLS with the operator's certificate.
* Every accepted message is committed to the database BEFORE 250 is answered: DATA hands
  the message to one writer thread, which stores whatever messages are waiting in one
  transaction (group commit: concurrent connections share one fsync) and only then lets
  each connection answer 250. A store failure answers 451 (the sender retries), so a
  message that got 250 is never lost, and a message lost in a crash never got 250.

Storage and what happens after it are injected (`store`, `after_commit`), so this module
needs no Django; `manage.py run_bounce_smtpd` wires them to the intake services.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from aiosmtpd.smtp import SMTP, Envelope, Session

log = logging.getLogger(__name__)
# aiosmtpd logs every command at INFO: at hundreds of messages a second that is the
# bottleneck and a flood of addresses in the logs.
logging.getLogger("mail.log").setLevel(logging.WARNING)

#: Largest batch one commit stores.
WRITE_BATCH = 200


@dataclass(frozen=True)
class ReceiverConfig:
    domains: frozenset[str]
    max_size: int = 10 * 1024 * 1024
    max_connections: int = 100
    max_recipients: int = 100
    tls_context: ssl.SSLContext | None = None
    hostname: str | None = None
    timeout: float = 120.0


@dataclass(frozen=True)
class Received:
    """One accepted message: envelope and bytes as they came in."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    content: bytes
    peer: str = ""


#: store(batch) -> one queue id (e.g. the stored row's id) per message, in order; it must
#: have committed when it returns.
StoreFn = Callable[[list[Received]], list[str]]


@dataclass
class _Job:
    message: Received
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future


@dataclass
class GroupWriter:
    """A thread that stores waiting messages in batches (one commit per batch)."""

    store: StoreFn
    after_commit: Callable[[list[str]], None] | None = None
    on_exit: Callable[[], None] | None = None  # e.g. close the thread's database connection
    jobs: queue.Queue = field(default_factory=queue.Queue)
    thread: threading.Thread | None = None
    stored: int = 0

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="bounce-smtpd-writer", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.jobs.put(None)
        if self.thread is not None:
            self.thread.join(timeout=30)

    async def submit(self, message: Received) -> str:
        loop = asyncio.get_running_loop()
        job = _Job(message, loop, loop.create_future())
        self.jobs.put(job)
        return await job.future

    def _run(self) -> None:
        try:
            self._loop()
        finally:
            if self.on_exit is not None:
                self.on_exit()

    def _loop(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            batch = [job]
            while len(batch) < WRITE_BATCH:
                try:
                    more = self.jobs.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self.jobs.put(None)
                    break
                batch.append(more)
            try:
                ids = self.store([j.message for j in batch])
            except Exception as exc:  # the database is down: every sender retries later
                log.exception("storing %d received messages failed", len(batch))
                for j in batch:
                    j.loop.call_soon_threadsafe(_set_exception, j.future, exc)
                continue
            self.stored += len(batch)
            for j, queue_id in zip(batch, ids, strict=True):
                j.loop.call_soon_threadsafe(_set_result, j.future, queue_id)
            if self.after_commit is not None:
                try:
                    self.after_commit(ids)
                except Exception:  # processing is queued again by the sweep
                    log.exception("queueing the processing of received messages failed")


def _set_result(future: asyncio.Future, value: str) -> None:
    if not future.done():
        future.set_result(value)


def _set_exception(future: asyncio.Future, exc: Exception) -> None:
    if not future.done():
        future.set_exception(exc)


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].strip().strip(">").lower().rstrip(".")


@dataclass
class BounceHandler:
    """aiosmtpd handler: domain check at RCPT, store-then-250 at DATA."""

    config: ReceiverConfig
    writer: GroupWriter

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        if domain_of(address) not in self.config.domains:
            return "550 5.7.1 Relaying denied: this server only takes bounces for its own domains"
        if len(envelope.rcpt_tos) >= self.config.max_recipients:
            return "452 4.5.3 Too many recipients"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        if isinstance(content, str):  # pragma: no cover - decode_data is off
            content = content.encode("utf-8", "surrogateescape")
        peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer or "")
        message = Received(mail_from=envelope.mail_from or "", rcpt_tos=tuple(envelope.rcpt_tos),
                           content=content, peer=peer)
        try:
            queue_id = await self.writer.submit(message)
        except Exception:
            return "451 4.3.0 Temporary storage failure, try again later"
        return f"250 2.0.0 OK queued as {queue_id}"


class LimitedSMTP(SMTP):
    """aiosmtpd's SMTP with a cap on concurrent connections (421 beyond it)."""

    # RFC 5321 says 1000, but bounces quote what remote servers wrote, and real DSNs carry
    # longer lines; refusing them would lose bounces. Still bounded (and SIZE bounds the total).
    line_length_limit = 64 * 1024

    def __init__(self, handler: BounceHandler, counter: dict, **kwargs) -> None:
        super().__init__(handler, **kwargs)
        self._counter = counter
        self._counted = False
        self._over_limit = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self._counted:
            self._counted = True
            self._counter["open"] += 1
            self._over_limit = self._counter["open"] > self._counter["max"]
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        if self._counted:
            self._counted = False
            self._counter["open"] -= 1
        super().connection_lost(error)

    async def _handle_client(self) -> None:
        if self._over_limit:
            await self.push("421 4.7.0 Too many connections, try again later")
            self.transport.close()
            return
        await super()._handle_client()


async def serve(config: ReceiverConfig, writer: GroupWriter, host: str, port: int) -> asyncio.base_events.Server:
    """Start listening on host:port (the caller runs the loop and closes the server)."""
    handler = BounceHandler(config=config, writer=writer)
    counter = {"open": 0, "max": config.max_connections}

    def factory() -> LimitedSMTP:
        return LimitedSMTP(
            handler, counter, data_size_limit=config.max_size, enable_SMTPUTF8=True, decode_data=False,
            hostname=config.hostname, tls_context=config.tls_context, require_starttls=False,
            timeout=config.timeout, ident="bouncemgr bounce receiver",
            auth_exclude_mechanism=["LOGIN", "PLAIN"],  # nobody logs in here
        )

    loop = asyncio.get_running_loop()
    return await loop.create_server(factory, host=host, port=port, reuse_address=True)


def tls_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """A server context for STARTTLS with the operator's certificate chain and key."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert_file, key_file)
    return ctx


def envelope_headers(message: Received) -> bytes:
    """Trace headers a delivery agent adds (RFC 5321 section 4.4): the envelope sender and
    the recipients, so the engine sees our VERP address as in a mailbox."""
    lines = [f"Return-Path: <{_safe(message.mail_from).strip('<>')}>"]
    lines += [f"Delivered-To: {_safe(rcpt)}" for rcpt in message.rcpt_tos[:20]]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8", "replace")


def _safe(value: str) -> str:
    return "".join(ch for ch in value if ch >= " " and ch != "\x7f")[:320]
