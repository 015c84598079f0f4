"""Shared network helpers: TLS contexts, the address policy, and turning socket/TLS
errors into ours.

Error messages are written here, never copied from the other side: "Test connection"
must not become a way to read another service's banner or replies (issue 12, item 8).
The remote words go to the worker log only (``log.info``, repr-quoted).
"""

from __future__ import annotations

import errno
import imaplib
import ipaddress
import logging
import poplib
import socket
import ssl

from .base import (
    BlockedAddressError,
    CertificateError,
    ConnectionLostError,
    ConnectionRefusedMailboxError,
    ConnectionSettings,
    HostNotFoundError,
    MailboxError,
    MailboxProtocolError,
    MailboxTimeoutError,
    TLSFailureError,
)

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

BLOCKED_HINT = (
    "This installation does not connect to private, loopback or link-local addresses. "
    "An administrator can allow a network or host in MAILBOX_ALLOWED_NETWORKS."
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


def _allowed(ip: IPAddress, host: str, settings: ConnectionSettings) -> bool:
    candidates = [ip]
    mapped = getattr(ip, "ipv4_mapped", None)
    if mapped is not None:
        candidates.append(mapped)
    for entry in settings.allowed_networks:
        entry = entry.strip()
        if not entry:
            continue
        try:
            network = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            if entry.lower().rstrip(".") == host.lower().rstrip("."):
                return True
            continue
        if any(c.version == network.version and c in network for c in candidates):
            return True
    return False


def is_public(ip: IPAddress) -> bool:
    """True for globally routable unicast addresses."""
    mapped = getattr(ip, "ipv4_mapped", None)
    if mapped is not None:
        ip = mapped
    return ip.is_global and not ip.is_multicast


def check_address(host: str, port: int | None, settings: ConnectionSettings) -> None:
    """Refuse ``host`` before any packet is sent when it resolves to a blocked address.

    Every address the name resolves to must be public or allowed, so a name that
    resolves to both a public and a private address is refused.
    """
    if not settings.block_private_networks:
        return
    try:
        infos = socket.getaddrinfo(host, port or 0, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise translate(exc, settings) from exc
    for info in infos:
        _check_ip(str(info[4][0]), host, settings)


def check_peer(sock: socket.socket | None, settings: ConnectionSettings) -> None:
    """Check the address a connection actually reached (DNS may have changed since)."""
    if not settings.block_private_networks or sock is None:
        return
    try:
        peer = sock.getpeername()[0]
    except OSError:
        return  # the connection is already gone: the next read reports it
    _check_ip(str(peer), settings.host, settings)


def _check_ip(address: str, host: str, settings: ConnectionSettings) -> None:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if is_public(ip) or _allowed(ip, host, settings):
        return
    raise BlockedAddressError(
        f"{host!r} resolves to a private or local network address ({ip}), which this "
        "installation does not connect to.",
        hint=BLOCKED_HINT,
    )


def not_a_mail_server(settings: ConnectionSettings, exc: BaseException) -> MailboxError:
    """Whatever answered on that port does not speak the configured protocol."""
    log.info("%s:%s did not speak %s: %r", settings.host, settings.effective_port,
             settings.protocol, exc)
    name = {"imap": "an IMAP", "pop3": "a POP3"}.get(settings.protocol, "a mail")
    return MailboxProtocolError(
        f"{settings.host}:{settings.effective_port} did not answer like {name} server.",
        hint="Check the host, the port and the protocol (and SSL/TLS versus STARTTLS).",
    )


def translate(exc: BaseException, settings: ConnectionSettings) -> MailboxError:
    """Map a low-level exception to the :class:`MailboxError` an operator understands."""
    if isinstance(exc, MailboxError):
        return exc
    where = f"{settings.host}:{settings.effective_port}"
    if isinstance(exc, socket.gaierror):
        if exc.errno in (socket.EAI_AGAIN, getattr(socket, "EAI_SYSTEM", None)):
            return HostNotFoundError(
                f"Temporary DNS failure looking up {settings.host!r}.",
                hint="The resolver did not answer; this is usually retried successfully.",
                transient=True,
            )
        return HostNotFoundError(
            f"The host name {settings.host!r} could not be found (DNS).",
            hint="Check the spelling of the server name.",
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        # OpenSSL's own words about the chain (e.g. "self-signed certificate"): local text.
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
        # imaplib's abort text can quote the server ("unexpected response: ..."): log it.
        log.info("connection to %s lost: %r", where, exc)
        return ConnectionLostError(f"The connection to {where} was lost.")
    if isinstance(exc, poplib.error_proto) and not is_pop3_server_reply(exc):
        # poplib raises error_proto('-ERR EOF') (a str) when the socket closes.
        return ConnectionLostError(f"The connection to {where} was lost.")
    if isinstance(exc, poplib.error_proto):
        log.info("POP3 server %s answered %r", where, exc)
        return MailboxProtocolError(f"The POP3 server {where} refused a command.")
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
            f"Network error talking to {where}: {exc.strerror or type(exc).__name__}.",
            transient=transient,
        )
    log.info("unexpected error talking to %s: %r", where, exc)
    return MailboxError(f"Unexpected error talking to {where} ({type(exc).__name__}).")


def is_connection_problem(exc: BaseException) -> bool:
    """True for errors after which the socket is unusable (worth a reconnect)."""
    return isinstance(
        exc,
        OSError | EOFError | imaplib.IMAP4.abort | ConnectionLostError | MailboxTimeoutError,
    ) or (isinstance(exc, poplib.error_proto) and not is_pop3_server_reply(exc))


def is_pop3_server_reply(exc: poplib.error_proto) -> bool:
    """poplib raises server ``-ERR`` replies as bytes, its own local errors as str."""
    return bool(exc.args) and isinstance(exc.args[0], bytes)
