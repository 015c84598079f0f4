"""Mailbox connectors (IMAP, POP3, mbox, maildir) behind one small interface.

Pure Python: no Django here. Start with :func:`open_mailbox` and see
:mod:`bounces.mailboxes.base` for the contract and the error types.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager

from .base import (
    INBOX,
    AuthenticationError,
    BlockedAddressError,
    CertificateError,
    ConnectionLostError,
    ConnectionRefusedMailboxError,
    ConnectionReport,
    ConnectionSettings,
    Disposition,
    DispositionAction,
    ErrorCategory,
    FetchedMessage,
    FolderInfo,
    FolderNotFoundError,
    FolderState,
    HostNotFoundError,
    LocalMailboxError,
    MailboxConfigError,
    MailboxConnector,
    MailboxError,
    MailboxProtocolError,
    MailboxTimeoutError,
    MessageRef,
    MessageSummary,
    OAuth2Error,
    OAuth2Settings,
    OAuth2Token,
    SecretsWithheldError,
    TLSFailureError,
    UidValidityChangedError,
    UnsupportedOperationError,
)

__all__ = [
    "INBOX",
    "AuthenticationError",
    "BlockedAddressError",
    "CertificateError",
    "ConnectionLostError",
    "ConnectionRefusedMailboxError",
    "ConnectionReport",
    "ConnectionSettings",
    "Disposition",
    "DispositionAction",
    "ErrorCategory",
    "FetchedMessage",
    "FolderInfo",
    "FolderNotFoundError",
    "FolderState",
    "HostNotFoundError",
    "LocalMailboxError",
    "MailboxConfigError",
    "MailboxConnector",
    "MailboxError",
    "MailboxProtocolError",
    "MailboxTimeoutError",
    "MessageRef",
    "MessageSummary",
    "OAuth2Error",
    "OAuth2Settings",
    "OAuth2Token",
    "SecretsWithheldError",
    "TLSFailureError",
    "UidValidityChangedError",
    "UnsupportedOperationError",
    "check_connection",
    "connect_mailbox",
    "connector_for",
    "open_mailbox",
    "test_connection",
]


# What a capability name looks like (RFC 3501 atoms; POP3 CAPA tags): anything else a
# server sends there is not shown.
_CAPABILITY = re.compile(r"[A-Z0-9][A-Z0-9=+._\-]{0,63}")


def connector_for(settings: ConnectionSettings) -> MailboxConnector:
    """An unconnected connector of the right class for ``settings.protocol``."""
    # Imported lazily so that e.g. mbox users never import imapclient.
    if settings.protocol == "imap":
        from .imap import IMAPConnector

        return IMAPConnector(settings)
    if settings.protocol == "pop3":
        from .pop3 import POP3Connector

        return POP3Connector(settings)
    from .local import MaildirConnector, MboxConnector

    if settings.protocol == "maildir":
        return MaildirConnector(settings)
    return MboxConnector(settings)


def connect_mailbox(settings: ConnectionSettings) -> MailboxConnector:
    """A connected, logged-in connector. The caller must ``close()`` it."""
    connector = connector_for(settings)
    connector.connect()
    return connector


@contextmanager
def open_mailbox(settings: ConnectionSettings) -> Iterator[MailboxConnector]:
    """``with open_mailbox(settings) as box:``: connected on entry, closed on exit."""
    connector = connect_mailbox(settings)
    try:
        yield connector
    finally:
        connector.close()


def check_connection(settings: ConnectionSettings, *, list_folders: bool = True) -> ConnectionReport:
    """Log in, read capabilities, folder list and the configured folder's counts.

    Never raises for mailbox problems: the report carries the error category, the
    operator-facing message and a hint. Folders are listed before the configured folder
    is opened so that a "folder missing" report still shows what exists.
    """
    started = time.monotonic()
    target = settings.describe()
    greeting = ""
    capabilities: tuple[str, ...] = ()
    folders: tuple[FolderInfo, ...] = ()
    try:
        with open_mailbox(settings) as box:
            # The greeting is the server's free text (a banner, for a port that is not a
            # mail server): never part of the report (issue 12, item 8).
            capabilities = tuple(
                c for c in box.capabilities() if _CAPABILITY.fullmatch(c)
            )[:64]
            if list_folders:
                try:
                    folders = tuple(box.list_folders())
                except MailboxProtocolError:
                    folders = ()  # an odd LIST reply must not hide the real result
            state = box.open_folder(settings.folder or INBOX)
    except MailboxError as exc:
        return ConnectionReport(
            ok=False,
            target=target,
            greeting=greeting,
            capabilities=capabilities,
            folders=folders,
            error_category=str(exc.category),
            error_message=exc.message,
            hint=exc.hint or None,
            transient=exc.transient,
            elapsed=time.monotonic() - started,
        )
    return ConnectionReport(
        ok=True,
        target=target,
        greeting=greeting,
        capabilities=capabilities,
        folders=folders,
        folder=state,
        elapsed=time.monotonic() - started,
    )


# The name the issue uses. pytest would collect a module-level ``test_*`` function that a
# test module imports, so mark it as not a test.
test_connection = check_connection
test_connection.__test__ = False  # type: ignore[attr-defined]
