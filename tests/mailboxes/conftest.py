"""Fixtures for the mailbox connector tests: one real Dovecot for the session.

* ``dovecot``: session-scoped server (IMAP+POP3, STARTTLS, implicit TLS, a test CA,
  XOAUTH2 checked against ``oauth2_provider``'s introspection endpoint).
* ``mail_user``: a fresh account with an empty maildir for each test, so tests never
  see each other's mail and need no cleanup.
* ``imap_settings`` / ``pop3_settings``: ConnectionSettings factories for that user.

Missing Dovecot (or not root): the tests skip, and fail when CI=true.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bounces.mailboxes import ConnectionSettings
from bounces.mailboxes.oauth2 import clear_token_cache
from tests.servers.dovecot import (  # noqa: F401 - fixtures used by name
    DovecotServer,
    MailUser,
    dovecot,
    mail_user,
    oauth2_provider,
)

from .helpers import load_bounce_samples

pytestmark = pytest.mark.dovecot


@pytest.fixture(autouse=True)
def _fresh_token_cache() -> Iterator[None]:
    clear_token_cache()
    yield
    clear_token_cache()


SettingsFactory = Callable[..., ConnectionSettings]


@pytest.fixture
def imap_settings(dovecot: DovecotServer, mail_user: MailUser) -> SettingsFactory:  # noqa: F811
    """Build IMAP settings for ``mail_user``; plain by default (TLS tests ask for it)."""

    def make(**overrides: Any) -> ConnectionSettings:
        values: dict[str, Any] = {
            "protocol": "imap",
            "host": "127.0.0.1",
            "port": dovecot.imap_port,
            "security": "none",
            "username": mail_user.name,
            "password": mail_user.password,
            "timeout": 10.0,
        }
        values.update(overrides)
        return ConnectionSettings(**values)

    return make


@pytest.fixture
def pop3_settings(dovecot: DovecotServer, mail_user: MailUser) -> SettingsFactory:  # noqa: F811
    """Build POP3 settings for ``mail_user``; plain by default."""

    def make(**overrides: Any) -> ConnectionSettings:
        values: dict[str, Any] = {
            "protocol": "pop3",
            "host": "127.0.0.1",
            "port": dovecot.pop3_port,
            "security": "none",
            "username": mail_user.name,
            "password": mail_user.password,
            "timeout": 10.0,
        }
        values.update(overrides)
        return ConnectionSettings(**values)

    return make


@pytest.fixture(scope="session")
def bounce_samples() -> list[bytes]:
    """Real bounce files from the shared corpus (generated ones when it is absent)."""
    return load_bounce_samples()
