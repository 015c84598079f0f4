"""Shared network helpers: TLS contexts and turning socket/TLS errors into ours."""

from __future__ import annotations

import errno
import imaplib
import poplib
import socket
import ssl

from .base import (
    CertificateError,
    ConnectionLostError,
    ConnectionRefusedMailboxError,
    ConnectionSettings,
    HostNotFoundError,
    MailboxError,
    MailboxTimeoutError,
    TLSFailureError,
)

CERT_HINT = (
    "If the server uses a self-signed certificate or a private CA, configure that CA "
    "certificate for this mailbox, or (less safe) switch off certificate verification."
)


def make_ssl_context(settings: ConnectionSettings) -> ssl.SSLContext:
    """A client TLS context: verifying by default, optionally trusting a given CA."""
    context = ssl.create_default_context(
        cafile=settings.ca_file or None, cadata=settings.ca_pem or None
    )
    if not settings.verify_certificate:
        # The operator explicitly chose "don't verify" for this mailbox.
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def translate(exc: BaseException, settings: ConnectionSettings) -> MailboxError:
    """Map a low-level exception to the :class:`MailboxError` an operator understands."""
    if isinstance(exc, MailboxError):
        return exc
    where = f"{settings.host}:{settings.effective_port}"
    if isinstance(exc, socket.gaierror):
        if exc.errno in (socket.EAI_AGAIN, getattr(socket, "EAI_SYSTEM", None)):
            return HostNotFoundError(
                f"Temporary DNS failure looking up {settings.host!r}: {exc.strerror}.",
                hint="The resolver did not answer; this is usually retried successfully.",
                transient=True,
            )
        return HostNotFoundError(
            f"The host name {settings.host!r} could not be found (DNS): {exc.strerror}.",
            hint="Check the spelling of the server name.",
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        return CertificateError(
            f"The TLS certificate of {where} could not be verified: "
            f"{exc.verify_message or exc.reason}.",
            hint=CERT_HINT,
        )
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or str(exc)
        hint = ""
        if reason in ("WRONG_VERSION_NUMBER", "UNKNOWN_PROTOCOL", "RECORD_LAYER_FAILURE"):
            hint = (
                "The server did not answer with TLS on this port: ports 143 (IMAP) and "
                "110 (POP3) use STARTTLS, ports 993 and 995 use SSL/TLS."
            )
        return TLSFailureError(f"TLS handshake with {where} failed: {reason}.", hint=hint)
    if isinstance(exc, ConnectionRefusedError):
        return ConnectionRefusedMailboxError(
            f"Connection to {where} was refused.",
            hint="Check host and port, and that the server is running and reachable.",
        )
    if isinstance(exc, TimeoutError):
        return MailboxTimeoutError(
            f"{where} did not answer within {settings.timeout:g} seconds.",
            hint="A firewall may drop the connection, or the server is overloaded.",
        )
    if isinstance(
        exc,
        ConnectionResetError | BrokenPipeError | ConnectionAbortedError | EOFError
        | imaplib.IMAP4.abort,
    ):
        return ConnectionLostError(f"The connection to {where} was lost: {exc}.")
    if isinstance(exc, poplib.error_proto) and not is_pop3_server_reply(exc):
        # poplib raises error_proto('-ERR EOF') (a str) when the socket closes.
        return ConnectionLostError(f"The connection to {where} was lost: {exc}.")
    if isinstance(exc, OSError):
        transient = exc.errno in (
            errno.ENETUNREACH,
            errno.EHOSTUNREACH,
            errno.ENETDOWN,
            errno.ECONNRESET,
        )
        if exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return ConnectionRefusedMailboxError(
                f"{where} is not reachable from here ({exc.strerror}).", transient=True
            )
        return ConnectionLostError(
            f"Network error talking to {where}: {exc}.", transient=transient
        )
    return MailboxError(f"Unexpected error talking to {where}: {exc!r}.")


def is_connection_problem(exc: BaseException) -> bool:
    """True for errors after which the socket is unusable (worth a reconnect)."""
    return isinstance(
        exc,
        OSError | EOFError | imaplib.IMAP4.abort | ConnectionLostError | MailboxTimeoutError,
    ) or (isinstance(exc, poplib.error_proto) and not is_pop3_server_reply(exc))


def is_pop3_server_reply(exc: poplib.error_proto) -> bool:
    """poplib raises server ``-ERR`` replies as bytes, its own local errors as str."""
    return bool(exc.args) and isinstance(exc.args[0], bytes)
