"""Connector settings from a Mailbox row (secrets decrypted, never logged) and opening the
connector. Imports models and the connectors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.utils.crypto import salted_hmac

from bounces.mailboxes import connect_mailbox
from bounces.mailboxes.base import ConnectionSettings, MailboxConnector, OAuth2Settings
from bounces.models import Mailbox


def mailbox_connection_settings(mailbox: Mailbox) -> ConnectionSettings:
    """The connector settings of `mailbox` (decrypted secrets; never logged).

    Secrets entered for another endpoint are withheld (issue 12, item 4); local paths are
    confined to LOCAL_MAILBOX_ROOTS; the address policy comes from the settings.
    """
    bound = mailbox.secrets_bound()
    oauth2 = None
    if mailbox.auth == Mailbox.Auth.XOAUTH2:
        oauth2 = OAuth2Settings(
            token_url=mailbox.oauth2_token_url, client_id=mailbox.oauth2_client_id,
            client_secret=(mailbox.oauth2_client_secret or "") if bound else "",
            refresh_token=(mailbox.oauth2_refresh_token or "") if bound else "",
            scope=mailbox.oauth2_scope,
            on_token=_token_saver(mailbox.pk),
        )
    has_secret = any(getattr(mailbox, name) for name in Mailbox.SECRET_FIELDS)
    return ConnectionSettings(
        local_roots=tuple(str(root) for root in settings.LOCAL_MAILBOX_ROOTS),
        # Keyed per mailbox: our mbox "processed" mark, which a sender cannot forge.
        marker_secret=salted_hmac("bounces.mbox-seen", str(mailbox.pk)).hexdigest(),
        block_private_networks=settings.MAILBOX_BLOCK_PRIVATE_NETWORKS,
        allowed_networks=tuple(settings.MAILBOX_ALLOWED_NETWORKS),
        secrets_withheld=has_secret and not bound,
        ca_pem=mailbox.ca_pem or None,
        protocol=mailbox.protocol,  # type: ignore[arg-type]
        host=mailbox.host,
        port=mailbox.port,
        security=mailbox.security,  # type: ignore[arg-type]
        verify_certificate=mailbox.verify_certificate,
        username=mailbox.username,
        password=(mailbox.password or "") if bound else "",
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
