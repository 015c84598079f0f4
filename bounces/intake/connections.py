"""Connector settings from a Mailbox row (secrets decrypted, never logged) and opening the
connector. Imports models and the connectors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bounces.mailboxes import connect_mailbox
from bounces.mailboxes.base import ConnectionSettings, MailboxConnector, OAuth2Settings
from bounces.models import Mailbox


def mailbox_connection_settings(mailbox: Mailbox) -> ConnectionSettings:
    """The connector settings of `mailbox` (decrypted secrets; never logged)."""
    oauth2 = None
    if mailbox.auth == Mailbox.Auth.XOAUTH2:
        oauth2 = OAuth2Settings(
            token_url=mailbox.oauth2_token_url, client_id=mailbox.oauth2_client_id,
            client_secret=mailbox.oauth2_client_secret or "",
            refresh_token=mailbox.oauth2_refresh_token or "", scope=mailbox.oauth2_scope,
            on_token=_token_saver(mailbox.pk),
        )
    return ConnectionSettings(
        ca_pem=mailbox.ca_pem or None,
        protocol=mailbox.protocol,  # type: ignore[arg-type]
        host=mailbox.host,
        port=mailbox.port,
        security=mailbox.security,  # type: ignore[arg-type]
        verify_certificate=mailbox.verify_certificate,
        username=mailbox.username,
        password=mailbox.password or "",
        folder=mailbox.folder or "INBOX",
        path=mailbox.path,
        oauth2=oauth2,
    )


def _token_saver(mailbox_id: int) -> Callable[[Any], None]:
    def save(token: Any) -> None:
        # Microsoft rotates refresh tokens: keep the newest one.
        if getattr(token, "refresh_token", None):
            Mailbox.objects.filter(pk=mailbox_id).update(oauth2_refresh_token=token.refresh_token)

    return save


def open_connector(conn: ConnectionSettings) -> MailboxConnector:
    """A connected connector for `conn`; the caller closes it."""
    return connect_mailbox(conn)
