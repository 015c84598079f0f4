"""A real SMTP server on loopback for the sending tests (aiosmtpd in a thread).

It records every envelope it accepts (MAIL FROM, RCPT TO, the message bytes) and can
refuse chosen recipients at RCPT time with chosen replies, e.g.
`server.refuse("gone@example.com", "550 5.1.1 <gone@example.com>: user unknown")`,
the way a receiving MTA answers a campaign sender. It can also drop the connection
after a number of accepted messages, to test that an interrupted send resumes.
"""

from __future__ import annotations

import email
import email.policy
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from .common import free_loopback_port


@dataclass(frozen=True)
class ReceivedEnvelope:
    """One message as the server accepted it."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        """The parsed message (headers and body)."""
        return email.message_from_bytes(self.data, policy=email.policy.default)  # type: ignore[return-value]


@dataclass
class _Handler:
    refusals: dict[str, str] = field(default_factory=dict)
    data_refusals: dict[str, str] = field(default_factory=dict)
    received: list[ReceivedEnvelope] = field(default_factory=list)
    sessions: int = 0
    hang_up_after: int | None = None
    sender_refusal: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_EHLO(self, server: SMTP, session: Session, envelope: Envelope, hostname: str,
                          responses: list[str]) -> list[str]:
        session.host_name = hostname
        with self.lock:
            self.sessions += 1
        return responses

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          mail_options: list[str]) -> str:
        if self.sender_refusal:
            return self.sender_refusal
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        reply = self.refusals.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        for rcpt in envelope.rcpt_tos:
            reply = self.data_refusals.get(rcpt.lower())
            if reply:
                return reply
        with self.lock:
            if self.hang_up_after is not None and len(self.received) >= self.hang_up_after:
                # Drop the client without an answer: it never learns the outcome.
                server.transport.close()
                return "421 4.3.0 closing"
            self.received.append(
                ReceivedEnvelope(
                    mail_from=envelope.mail_from,
                    rcpt_tos=tuple(envelope.rcpt_tos),
                    data=bytes(envelope.original_content or envelope.content or b""),
                )
            )
        return "250 2.0.0 Ok: queued"


class SMTPServer:
    """A recording SMTP server on 127.0.0.1 and a free port; use as a context manager."""

    def __init__(self) -> None:
        self.host = "127.0.0.1"
        self.port = free_loopback_port()
        self._handler = _Handler()
        self._controller = Controller(self._handler, hostname=self.host, port=self.port)

    def start(self) -> SMTPServer:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> SMTPServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def refuse(self, address: str, reply: str) -> None:
        """Answer RCPT TO:<address> with `reply` (e.g. "550 5.1.1 user unknown")."""
        self._handler.refusals[address.lower()] = reply

    def refuse_sender(self, reply: str | None) -> None:
        """Answer every MAIL FROM with `reply` (e.g. "553 5.7.1 sender not allowed"); None: accept."""
        self._handler.sender_refusal = reply

    def refuse_data(self, address: str, reply: str) -> None:
        """Accept the recipient but refuse the message after DATA with `reply`."""
        self._handler.data_refusals[address.lower()] = reply

    def hang_up_after(self, count: int | None) -> None:
        """After `count` accepted messages, drop the connection instead of answering DATA."""
        self._handler.hang_up_after = count

    @property
    def received(self) -> list[ReceivedEnvelope]:
        """The envelopes accepted so far, in order."""
        with self._handler.lock:
            return list(self._handler.received)

    @property
    def sessions(self) -> int:
        """How many SMTP sessions (EHLO/HELO greetings) the server has seen."""
        return self._handler.sessions

    def email_settings(self) -> dict[str, object]:
        """Django settings that point the SMTP email backend at this server."""
        return {
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": self.host,
            "EMAIL_PORT": self.port,
            "EMAIL_HOST_USER": "",
            "EMAIL_HOST_PASSWORD": "",
            "EMAIL_USE_TLS": False,
            "EMAIL_USE_SSL": False,
            "EMAIL_TIMEOUT": 10,
        }


@contextmanager
def sending_to_test_smtp(settings, *, return_domain: str = "return.example.net", **extra: object
                         ) -> Iterator[SMTPServer]:
    """A recording SMTPServer with Django's SMTP backend (`settings`: pytest-django's fixture)
    pointed at it, campaigns' return path bounces@`return_domain`, and any `extra` settings."""
    with SMTPServer() as server:
        for name, value in {**server.email_settings(), "BOUNCE_LOCAL_PART": "bounces",
                            "BOUNCE_RETURN_DOMAIN": return_domain, **extra}.items():
            setattr(settings, name, value)
        yield server
