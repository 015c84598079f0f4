"""The four format bugs of issue 13, one test each (samples under tests/samples/)."""

from __future__ import annotations

from pathlib import Path

from bounces.parsing import Kind, parse_bounce
from bounces.parsing.common import find_status

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def _parse(name: str):  # type: ignore[no-untyped-def]
    return parse_bounce((SAMPLES / name).read_bytes())


def test_exim_intro_does_not_swallow_the_first_recipient() -> None:
    """The intro pattern's trailing whitespace crossed the line end ("failed" without a colon)
    and ate the first listed address: only the second recipient was reported."""
    result = _parse("exim/intro-without-colon.eml")
    assert result.kind == Kind.FAILURE
    got = [(r.recipient, r.status, r.reason) for r in result.recipients]
    assert got == [
        ("ruth@example.org", "5.1.1", "userunknown"),
        ("sam@example.org", "5.2.2", "mailboxfull"),
    ]


def test_ses_event_in_an_sns_envelope_with_escaped_quotes() -> None:
    """SNS's e-mail subscription sends the SES event as a JSON string inside its envelope
    (\\"notificationType\\":\\"Bounce\\"), from amazonaws.com rather than amazonses.com."""
    result = _parse("amazonses/sns-envelope-escaped.eml")
    assert result.kind == Kind.FAILURE
    assert result.mta == "amazonses"
    [r] = result.recipients
    assert (r.recipient, r.status, r.reason, r.hard) == ("vera@example.org", "5.1.1", "userunknown", True)


def test_ses_event_forwarded_as_a_json_attachment() -> None:
    """An SES event forwarded by mail as an application/json attachment, by a sender that is
    no mail system and with a "Fwd:" subject: the structured event still counts."""
    result = _parse("amazonses/forwarded-json-attachment.eml")
    assert result.mta == "amazonses"
    assert [(r.recipient, r.reason) for r in result.recipients] == [("walt@example.net", "mailboxfull")]


def test_a_list_managers_version_header_is_no_status_code() -> None:
    """"X-Mailman-Version: 2.1.39" in the recipient's text was read as status 2.1.39, which
    turned a failure into a delivery."""
    assert find_status("X-Mailman-Version: 2.1.39") is None
    assert find_status("Mailman v2.1.9 said: 550 5.1.1 no such user") == "5.1.1"
    result = _parse("mailman/version-header-in-returned-copy.eml")
    assert result.kind == Kind.FAILURE
    [r] = result.recipients
    assert r.recipient == "sven@example.org"
    assert r.status is not None and not r.status.startswith("2.")
    assert r.reason != "delivered"


_OUTLOOK_MAIL = (
    b"From: Bruno Keller <bruno.keller@example.de>\n"
    b"To: news@mail.example.com\n"
    b"Subject: Holiday photos from the team trip\n"
    b"X-Auto-Response-Suppress: All\n"
    b"Message-ID: <p1@example.de>\n\n"
    b"Hi, here are the photos. Cheers, Bruno\n"
)


def test_auto_response_suppress_is_no_auto_reply() -> None:
    """The auto-reply check mixed `or` and `and` without parentheses, and a subject that
    merely starts like one ("Holiday ...") was enough. X-Auto-Response-Suppress asks
    others not to answer automatically; it says nothing about the message itself."""
    result = parse_bounce(_OUTLOOK_MAIL)
    assert result.kind == Kind.NOT_BOUNCE
    assert result.recipients == ()


def test_an_auto_reply_header_alone_is_an_auto_reply() -> None:
    raw = _OUTLOOK_MAIL.replace(b"X-Auto-Response-Suppress: All\n", b"X-Autoreply: yes\n")
    result = parse_bounce(raw)
    assert result.kind == Kind.AUTOREPLY
    assert [r.recipient for r in result.recipients] == ["bruno.keller@example.de"]


def test_a_weak_subject_needs_auto_reply_wording() -> None:
    raw = _OUTLOOK_MAIL.replace(
        b"Hi, here are the photos. Cheers, Bruno\n", b"I am out of the office until Monday.\n"
    )
    assert parse_bounce(raw).kind == Kind.AUTOREPLY
