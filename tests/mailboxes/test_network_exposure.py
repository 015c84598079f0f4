""""Test connection" is not a port scanner (issue 12, item 8).

The report shows categorised, operator-facing errors written by us, never the remote
side's text (service banners, server replies, OAuth error descriptions), and the
installation can refuse private, loopback and link-local addresses with an allowlist.
"""

from __future__ import annotations

import pytest

from bounces.mailboxes import (
    ConnectionSettings,
    OAuth2Settings,
    check_connection,
)
from bounces.mailboxes.oauth2 import TokenSource

from .helpers import BannerServer

SECRET = b"internal-host-7.corp hunter2"


def _settings(protocol: str, port: int, **kw) -> ConnectionSettings:
    values = {"protocol": protocol, "host": "127.0.0.1", "port": port, "security": "none",
              "username": "u", "password": "p", "timeout": 5.0}
    values.update(kw)
    return ConnectionSettings(**values)


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_another_service_on_the_port_is_a_protocol_error_without_its_banner(protocol):
    with BannerServer(b"SSH-2.0-OpenSSH_9.2p1 " + SECRET + b"\r\n", b"Protocol mismatch.\r\n") as srv:
        report = check_connection(_settings(protocol, srv.port))
    text = report.as_text()
    assert not report.ok
    assert report.error_category == "protocol"
    assert "did not answer like a" in (report.error_message or "")
    assert SECRET.decode() not in text and "OpenSSH" not in text and "mismatch" not in text


@pytest.mark.parametrize(
    ("protocol", "banner", "reply"),
    [
        ("imap", b"* OK [CAPABILITY IMAP4rev1] ready\r\n", b"{tag} NO [ALERT] " + SECRET + b"\r\n"),
        ("pop3", b"+OK ready\r\n", b"-ERR " + SECRET + b"\r\n"),
    ],
)
def test_a_rejected_login_does_not_echo_the_servers_reply(protocol, banner, reply):
    with BannerServer(banner, reply, capability=b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n") as srv:
        report = check_connection(_settings(protocol, srv.port))
    assert report.error_category == "auth"
    assert SECRET.decode() not in report.as_text()
    assert "ready" not in report.as_text()  # the greeting is not shown either


@pytest.mark.dovecot
@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_dovecots_own_words_are_not_shown_for_a_wrong_password(imap_settings, pop3_settings, protocol):
    make = imap_settings if protocol == "imap" else pop3_settings
    report = check_connection(make(password="wrong"))
    assert report.error_category == "auth"
    assert "Authentication failed" not in report.as_text()
    assert "Dovecot" not in report.as_text()


def test_an_oauth2_error_body_is_reduced_to_its_standard_code(oauth2_provider):
    refresh = oauth2_provider.add_refresh_token("carol")
    source = TokenSource(OAuth2Settings(token_url=oauth2_provider.token_url,
                                        client_id=oauth2_provider.client_id,
                                        client_secret="wrong", refresh_token=refresh))
    with pytest.raises(Exception) as caught:
        source.token()
    message = caught.value.message
    assert "invalid_client" in message
    assert "bad client secret" not in message  # the provider's error_description


def test_a_token_url_that_is_not_an_oauth2_endpoint_shows_no_body(oauth2_provider):
    source = TokenSource(OAuth2Settings(token_url=oauth2_provider.base_url + "/not-here",
                                        client_id="c", refresh_token="r"))
    with pytest.raises(Exception) as caught:
        source.token()
    assert "not_found" not in caught.value.message
    assert "HTTP 404" in caught.value.message


# ------------------------------------------------------------- private address blocking
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_blocked_private_address_is_never_contacted(host):
    with BannerServer(b"* OK ready\r\n") as srv:
        report = check_connection(_settings("imap", srv.port, host=host, block_private_networks=True))
        assert srv.connections == 0
    assert report.error_category == "blocked"
    assert "private" in (report.error_message or "").lower()


@pytest.mark.dovecot
def test_an_allowlisted_network_is_reachable_while_blocking(imap_settings):
    assert check_connection(
        imap_settings(block_private_networks=True, allowed_networks=("127.0.0.0/8",))
    ).ok
    assert check_connection(
        imap_settings(block_private_networks=True, allowed_networks=("127.0.0.1",))
    ).ok
    blocked = check_connection(imap_settings(block_private_networks=True, allowed_networks=("10.0.0.0/8",)))
    assert blocked.error_category == "blocked"


@pytest.mark.dovecot
def test_a_blocked_oauth2_token_url_is_never_requested(imap_settings, oauth2_provider):
    # The mail server is allowed (127.0.0.1), the token URL's address (127.0.0.2) is not.
    token_url = oauth2_provider.token_url.replace("127.0.0.1", "127.0.0.2")
    before = len(oauth2_provider.token_requests)
    report = check_connection(imap_settings(
        block_private_networks=True, allowed_networks=("127.0.0.1/32",),
        oauth2=OAuth2Settings(token_url=token_url, client_id="c", refresh_token="r"),
    ))
    assert report.error_category == "blocked", report.as_text()
    assert "127.0.0.2" in (report.error_message or "")
    assert len(oauth2_provider.token_requests) == before
