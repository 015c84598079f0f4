"""XOAUTH2: the SASL string, token refresh, and logins checked by Dovecot's oauth2 passdb.

The provider's token endpoint is the only fake (tests/servers/oauth2.py); Dovecot is
real and asks that fake's introspection endpoint whether the bearer token is valid.
"""

from __future__ import annotations

import time

import pytest

from bounces.mailboxes import (
    ConnectionSettings,
    OAuth2Error,
    OAuth2Settings,
    OAuth2Token,
    check_connection,
    open_mailbox,
)
from bounces.mailboxes.oauth2 import TokenSource, xoauth2_sasl_string
from tests.servers.common import free_loopback_port


def test_the_xoauth2_string_follows_the_documented_format():
    assert xoauth2_sasl_string("someuser@example.com", "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg") == (
        b"user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01"
    )


def _oauth(provider, **overrides) -> OAuth2Settings:
    values = {
        "token_url": provider.token_url,
        "client_id": provider.client_id,
        "client_secret": provider.client_secret,
    }
    values.update(overrides)
    return OAuth2Settings(**values)


def test_a_refresh_token_is_exchanged_once_and_the_access_token_cached(oauth2_provider):
    refresh = oauth2_provider.add_refresh_token("alice")
    received: list[OAuth2Token] = []
    source = TokenSource(_oauth(oauth2_provider, refresh_token=refresh, on_token=received.append))
    before = len(oauth2_provider.token_requests)

    first = source.token()
    second = source.token()
    forced = source.token(force_refresh=True)

    assert first == second != forced
    assert oauth2_provider.access_tokens[first] == "alice"
    assert len(oauth2_provider.token_requests) - before == 2
    request = oauth2_provider.token_requests[-1]
    assert request["grant_type"] == "refresh_token" and request["refresh_token"] == refresh
    assert [t.access_token for t in received] == [first, forced]
    assert received[0].expires_at and received[0].expires_at > time.time() + 3000


def test_an_expired_configured_access_token_is_refreshed(oauth2_provider):
    refresh = oauth2_provider.add_refresh_token("bob")
    source = TokenSource(
        _oauth(oauth2_provider, refresh_token=refresh, access_token="stale", expires_at=time.time() - 1)
    )
    assert source.token() != "stale"


def test_client_credentials_are_used_without_a_refresh_token(oauth2_provider):
    oauth2_provider.client_credentials_user = "app-mailbox"
    source = TokenSource(_oauth(oauth2_provider, scope="https://outlook.office365.com/.default"))
    token = source.token()
    request = oauth2_provider.token_requests[-1]
    assert request["grant_type"] == "client_credentials"
    assert request["scope"] == "https://outlook.office365.com/.default"
    assert oauth2_provider.access_tokens[token] == "app-mailbox"


def test_a_wrong_client_secret_is_a_permanent_oauth2_error_with_a_hint(oauth2_provider):
    refresh = oauth2_provider.add_refresh_token("carol")
    source = TokenSource(_oauth(oauth2_provider, refresh_token=refresh, client_secret="wrong"))
    with pytest.raises(OAuth2Error) as caught:
        source.token()
    assert not caught.value.transient
    assert "invalid_client" in caught.value.message
    assert "client secret" in caught.value.hint


def test_a_revoked_refresh_token_asks_the_operator_to_sign_in_again(oauth2_provider):
    source = TokenSource(_oauth(oauth2_provider, refresh_token="rt-revoked"))
    with pytest.raises(OAuth2Error) as caught:
        source.token()
    assert "invalid_grant" in caught.value.message
    assert "sign in again" in caught.value.hint


def test_an_unreachable_token_endpoint_is_transient():
    url = f"http://127.0.0.1:{free_loopback_port()}/token"
    source = TokenSource(OAuth2Settings(token_url=url, client_id="x", refresh_token="y"), timeout=2)
    with pytest.raises(OAuth2Error) as caught:
        source.token()
    assert caught.value.transient


# ------------------------------------------------------------- against Dovecot
pytestmark_dovecot = pytest.mark.dovecot


def _xoauth2_settings(dovecot, user, oauth2, protocol="imap") -> ConnectionSettings:
    return ConnectionSettings(
        protocol=protocol,
        host="127.0.0.1",
        port=dovecot.imap_port if protocol == "imap" else dovecot.pop3_port,
        security="starttls",
        ca_file=str(dovecot.pki.ca_cert),
        username=user.name,
        oauth2=oauth2,
        timeout=10,
    )


@pytestmark_dovecot
@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_xoauth2_login_with_a_refreshed_token_is_accepted_by_dovecot(
    dovecot, mail_user, oauth2_provider, protocol
):
    refresh = oauth2_provider.add_refresh_token(mail_user.name)
    dovecot.inject(mail_user, b"Subject: x\r\n\r\nx\r\n")
    checks_before = oauth2_provider.introspections

    report = check_connection(
        _xoauth2_settings(dovecot, mail_user, _oauth(oauth2_provider, refresh_token=refresh), protocol)
    )

    assert report.ok, report.as_text() + "\n" + dovecot.log_tail()
    assert report.folder is not None and report.folder.messages == 1
    assert oauth2_provider.introspections > checks_before


@pytestmark_dovecot
def test_a_rejected_access_token_is_refreshed_once_and_the_login_retried(
    dovecot, mail_user, oauth2_provider
):
    refresh = oauth2_provider.add_refresh_token(mail_user.name)
    oauth = _oauth(oauth2_provider, refresh_token=refresh, access_token="at-revoked-early")
    with open_mailbox(_xoauth2_settings(dovecot, mail_user, oauth)) as box:
        assert box.open_folder().name == "INBOX"
    assert oauth2_provider.token_requests[-1]["refresh_token"] == refresh


@pytestmark_dovecot
def test_a_token_for_another_user_is_an_authentication_failure(
    dovecot, mail_user, oauth2_provider
):
    refresh = oauth2_provider.add_refresh_token("somebody-else")
    report = check_connection(
        _xoauth2_settings(dovecot, mail_user, _oauth(oauth2_provider, refresh_token=refresh))
    )
    assert report.error_category == "auth"
    assert "XOAUTH2" in (report.error_message or "")


@pytestmark_dovecot
def test_a_revoked_refresh_token_is_reported_as_an_oauth2_error(dovecot, mail_user, oauth2_provider):
    report = check_connection(
        _xoauth2_settings(dovecot, mail_user, _oauth(oauth2_provider, refresh_token="rt-gone"))
    )
    assert report.error_category == "oauth2"
    assert "sign in again" in (report.hint or "")
