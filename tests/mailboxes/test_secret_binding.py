"""Stored secrets are bound to the endpoint they were entered for (issue 12, item 4)."""

from __future__ import annotations

import dataclasses

import pytest

from bounces.mailboxes import ConnectionSettings, OAuth2Settings, check_connection


def _base() -> ConnectionSettings:
    return ConnectionSettings(
        protocol="imap", host="imap.example.com", port=None, security="ssl",
        username="bounces", password="s3cret",
        oauth2=OAuth2Settings(token_url="https://login.example.com/token", client_id="app",
                              client_secret="cs", refresh_token="rt"),
    )


@pytest.mark.parametrize(
    "change",
    [
        {"host": "evil.example.net"},
        {"port": 1993},
        {"protocol": "pop3"},
        {"security": "none"},
        {"verify_certificate": False},
        {"ca_pem": "-----BEGIN CERTIFICATE-----\nattacker\n-----END CERTIFICATE-----"},
        {"username": "someone-else"},
    ],
)
def test_every_endpoint_change_changes_the_fingerprint(change):
    base = _base()
    assert dataclasses.replace(base, **change).endpoint_fingerprint() != base.endpoint_fingerprint()


def test_a_token_url_or_client_change_changes_the_fingerprint():
    base = _base()
    assert base.oauth2 is not None
    for change in ({"token_url": "https://evil.example.net/token"}, {"client_id": "other"}):
        moved = dataclasses.replace(base, oauth2=dataclasses.replace(base.oauth2, **change))
        assert moved.endpoint_fingerprint() != base.endpoint_fingerprint()


def test_secrets_the_folder_and_the_timeout_do_not_count():
    base = _base()
    same = dataclasses.replace(base, password="new", folder="Bounces", timeout=5.0)
    assert same.endpoint_fingerprint() == base.endpoint_fingerprint()
    # The default port spelled out is the same endpoint.
    assert dataclasses.replace(base, port=993).endpoint_fingerprint() == base.endpoint_fingerprint()


@pytest.mark.dovecot
@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_withheld_secrets_are_never_sent_and_the_report_says_why(imap_settings, pop3_settings, protocol):
    make = imap_settings if protocol == "imap" else pop3_settings
    report = check_connection(make(password="", secrets_withheld=True))
    assert report.error_category == "auth"
    assert "enter the password again" in (report.hint or "")
