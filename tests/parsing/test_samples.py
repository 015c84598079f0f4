"""Per-format and per-reason expectations over tests/samples/<family>/*.eml (our own,
anonymised samples; every bug adds one)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bounces.parsing import Kind, ParseOptions, parse_bounce

SAMPLES = Path(__file__).resolve().parents[1] / "samples"

# file -> (kind, mta, [(recipient, status, reason, hard, permanent)], message_id, token)
EXPECTED: dict[str, tuple] = {
    "postfix/user-unknown.eml": (
        Kind.FAILURE, "postfix", [("alice@example.org", "5.1.1", "userunknown", True, True)],
        "<news-0001@mail.example.com>", "a1b2c3d4e5f6a7b8"),
    "postfix/mailbox-full-delayed.eml": (
        Kind.DELAY, "postfix", [("bob@example.org", "4.2.2", "mailboxfull", False, False)],
        None, "c3d4e5f6a7b8a1b2"),
    "sendmail/host-unknown.eml": (
        Kind.FAILURE, "sendmail", [("carol@nowhere.example", "5.1.2", "hostunknown", True, True)],
        "<news-0002@mail.example.com>", "b2c3d4e5f6a7b8a1"),
    "sendmail/no-dsn-two-recipients.eml": (
        Kind.FAILURE, "sendmail",
        [("ada@example.org", "5.1.1", "userunknown", True, True),
         ("bob@example.org", "5.2.2", "mailboxfull", False, True)],
        "<s1@mail.example.com>", None),
    "postfix/old-style-no-dsn.eml": (
        Kind.FAILURE, "postfix",
        [("yan@example.org", None, None, None, True), ("zoe@example.org", None, None, False, True)],
        "<x1@mail.example.com>", None),
    "exim/rejected-after-data.eml": (
        Kind.FAILURE, "exim", [("dave@example.org", "5.7.1", "spamdetected", False, True)],
        "<news-0003@mail.example.com>", "d4e5f6a7b8a1b2c3"),
    "exim/malformed-address.eml": (
        Kind.FAILURE, "exim", [("walt@example..org", None, "syntaxerror", False, True)], None, None),
    "exim/undisclosed-generated-from.eml": (
        Kind.FAILURE, "exim", [("xena@example.org", None, "hostunknown", True, True)], None, None),
    "exim/delay-warning.eml": (
        Kind.DELAY, "exim", [("erin@example.org", "4.3.0", None, False, False)], None, None),
    "qmail/two-recipients.eml": (
        Kind.FAILURE, "qmail",
        [("frank@example.org", "5.1.1", "userunknown", True, True),
         ("grace@example.org", "5.2.2", "mailboxfull", False, True)],
        "<news-0004@mail.example.com>", "e5f6a7b8a1b2c3d4"),
    "gmail/address-not-found.eml": (
        Kind.FAILURE, "gmail", [("heidi@example.org", "5.1.1", "userunknown", True, True)],
        "<news-0005@mail.example.com>", "f6a7b8a1b2c3d4e5"),
    "microsoft/recipient-not-found.eml": (
        Kind.FAILURE, "microsoft", [("ivan@contoso.example", "5.1.10", "userunknown", True, True)],
        "<news-0006@mail.example.com>", None),
    "microsoft/german-ndr.eml": (
        Kind.FAILURE, "microsoft", [("anna@contoso.example", "5.1.1", "userunknown", True, True)],
        "<x2@mail.example.com>", None),
    "gmail/address-not-found-dsn.eml": (
        Kind.FAILURE, None, [("bea@example.org", "5.1.1", "userunknown", True, True)], None, None),
    "amazonses/json-bounce.eml": (
        Kind.FAILURE, "amazonses", [("judy@example.org", "5.1.1", "userunknown", True, True)], None, None),
    "arf/abuse.eml": (
        Kind.COMPLAINT, "arf", [("kim@isp.example", None, "feedback", None, None)],
        "<news-0007@mail.example.com>", "a7b8a1b2c3d4e5f6"),
    "rfc3834/out-of-office.eml": (
        Kind.AUTOREPLY, "rfc3834", [("leo@example.org", None, "vacation", None, None)], None, None),
    "rfc3834/abwesenheit.eml": (
        Kind.AUTOREPLY, "rfc3834", [("mia@example.de", None, "vacation", None, None)], None, None),
    "challenge/confirm.eml": (Kind.CHALLENGE, "challenge", [("nina@example.org", None, None, None, None)], None, None),
    "delivered/relayed.eml": (
        Kind.DELIVERED, None, [("oscar@example.org", "2.0.0", "delivered", None, None)], None, None),
    "not_bounce/plain.eml": (Kind.NOT_BOUNCE, None, [], None, None),
    # issue 13: known layouts under another intro (read by layout, not by sentence)
    "reworded/postfix-layout-own-intro.eml": (
        Kind.FAILURE, None,
        [("xena@example.org", "5.1.1", "userunknown", True, True),
         ("yuri@example.org", "4.2.2", "mailboxfull", False, False)], None, "a1b2c3d4e5f6a7b8"),
    "reworded/exim-layout-own-intro.eml": (
        Kind.FAILURE, None, [("zack@example.org", "5.1.1", "userunknown", True, True)], None, "a1b2c3d4e5f6a7b8"),
    "reworded/qmail-layout-own-intro.eml": (
        Kind.FAILURE, None, [("amy@example.org", "5.2.1", None, False, True)], None, "a1b2c3d4e5f6a7b8"),
    "reworded/sendmail-no-dsn.eml": (
        Kind.FAILURE, None, [("bea@example.org", "5.7.1", "norelaying", False, True)], None, "a1b2c3d4e5f6a7b8"),
    # issue 13's format bugs (tests/parsing/test_format_bugs.py)
    "exim/intro-without-colon.eml": (
        Kind.FAILURE, "exim",
        [("ruth@example.org", "5.1.1", "userunknown", True, True),
         ("sam@example.org", "5.2.2", "mailboxfull", False, True)], None, "a1b2c3d4e5f6a7b8"),
    "amazonses/sns-envelope-escaped.eml": (
        Kind.FAILURE, "amazonses", [("vera@example.org", "5.1.1", "userunknown", True, True)], None, None),
    "amazonses/forwarded-json-attachment.eml": (
        Kind.FAILURE, "amazonses", [("walt@example.net", "5.2.2", "mailboxfull", False, True)], None, None),
    "mailman/version-header-in-returned-copy.eml": (
        Kind.FAILURE, None, [("sven@example.org", None, None, False, True)],
        "<news-0030@lists.example.com>", "a1b2c3d4e5f6a7b8"),
    # formats with no sample in the corpus's DEV part (generalisation checks)
    "apachejames/error-message-below.eml": (
        Kind.FAILURE, None, [("sam@example.org", "5.1.1", "userunknown", True, True)],
        "<news-0010@mail.example.com>", None),
    "biglobe/mailbox-limit.eml": (
        Kind.FAILURE, None, [("tom@example.org", None, "mailboxfull", False, True)],
        "<news-0011@mail.example.com>", None),
    "qmail_clone/spanish.eml": (
        Kind.FAILURE, "qmail", [("uma@example.es", "5.1.1", "userunknown", True, True)],
        "<news-0012@mail.example.com>", None),
    "nested_dsn/dsn-inside-rfc822.eml": (
        Kind.FAILURE, None, [("vic@example.org", "5.1.1", "userunknown", True, True)], None, None),
    "facebook/rcp-p2-preferences.eml": (
        Kind.FAILURE, None, [("pia@facebook.com", "5.1.1", "filtered", False, True)],
        "<news-0020@mail.example.com>", "0a1b2c3d4e5f6071"),
    "interscanmss/user-unknown.eml": (
        Kind.FAILURE, None, [("quin@example.co.jp", "5.1.1", "userunknown", True, True)],
        "<news-0021@mail.example.com>", None),
    # the transcript arrows ("受信 <<< 550 ...") carry the reply when the wording is not English
    "interscanmss/japanese.eml": (
        Kind.FAILURE, None, [("wren@example.co.jp", "5.1.1", "userunknown", True, True)],
        "<news-0025@mail.example.com>", None),
    "x4/does-not-like-recipient.eml": (
        Kind.FAILURE, None, [("rosa@example.net", "5.1.1", "userunknown", True, True)],
        "<news-0022@mail.example.com>", None),
    "messagelabs/no-such-user.eml": (
        Kind.FAILURE, None, [("ulla@example.co.uk", None, "userunknown", True, True)],
        "<news-0023@mail.example.com>", "1f2e3d4c5b6a7980"),
    # a relay returns the DSN it got: the Message-ID is the one of the copy inside the inner DSN
    "x5/nested-dsn.eml": (
        Kind.FAILURE, None, [("vera@example.jp", "5.1.1", "userunknown", True, True)],
        "<news-0024@mail.example.com>", None),
    "aol/mx-lookup-broken.eml": (
        Kind.FAILURE, None, [("yuri@example.invalid", "5.4.4", "notaccept", True, True)],
        "<news-0026@mail.example.com>", "9a8b7c6d5e4f3a2b"),
    # the text names nobody: the returned copy's single To is who bounced
    "returned_to/mailbox-full-no-address.eml": (
        Kind.FAILURE, None, [("zed@example.org", "5.2.2", "mailboxfull", False, True)],
        "<news-0027@mail.example.com>", None),
    "imailserver/delivery-failed-attempts.eml": (
        Kind.FAILURE, None, [("abe@example.biz", None, "expired", False, True)],
        "<news-0028@mail.example.com>", None),
    # Biglobe's fixed wording; no command known, so "user unknown" is a filter's answer (Sisimai)
    "biglobe/user-unknown-iso2022jp.eml": (
        Kind.FAILURE, None, [("ben@example.ne.jp", None, "filtered", False, True)],
        "<news-0029@mail.example.com>", None),
    # several failed recipients on one line, the reason printed apart from the list
    "apachejames/no-such-user-two-recipients.eml": (
        Kind.FAILURE, None,
        [("cara@example.org", None, "filtered", False, True), ("dan@example.org", None, "filtered", False, True)],
        "<news-0030@mail.example.com>", None),
    "gmx/retry-timeout.eml": (
        Kind.FAILURE, None, [("eve@example.de", None, "expired", False, True)],
        "<news-0031@mail.example.com>", None),
    # Office 365 NDR with only an HTML part
    "office365/html-only-not-found.eml": (
        Kind.FAILURE, None, [("fay@contoso.example", "5.1.10", "userunknown", True, True)],
        "<news-0032@mail.example.com>", None),
    # Exchange NDR in French: the quoted reply after the localised "Remote Server returned"
    "microsoft/french-ndr.eml": (
        Kind.FAILURE, None, [("gil@contoso.example", "5.1.1", "userunknown", True, True)],
        "<news-0033@mail.example.com>", None),
    # a DSN block that names the recipient only in Original-Recipient
    "rfc3464/original-recipient-only.eml": (
        Kind.FAILURE, None, [("hal@example.net", "5.2.1", "suspend", False, True)],
        "<news-0034@mail.example.com>", None),
    # Russian wording; no command known, so "invalid mailbox" is a filter's answer (Sisimai)
    "yandex/invalid-mailbox-ru.eml": (
        Kind.FAILURE, None, [("ivan@example.ru", "5.0.0", "filtered", False, True)],
        "<news-0035@mail.example.com>", None),
    "sendgrid/bounce-no-dsn-status.eml": (
        Kind.FAILURE, None, [("jill@example.jp", "5.1.1", "userunknown", True, True)],
        "<news-0036@mail.example.com>", None),
    # Mail.ru (Exim) in Russian, list not indented: the reply follows the "after RCPT TO:" line
    "mailru/rcpt-invalid-mailbox.eml": (
        Kind.FAILURE, None, [("kira@example.ru", "5.1.1", "userunknown", True, True)],
        "<news-0037@mail.example.com>", None),
    # plain-text bounces of unknown MTAs worded in other languages
    "non_english/german-mailbox-full.eml": (
        Kind.FAILURE, None, [("jana@beispiel.de", None, "mailboxfull", False, True)],
        "<news-0040@mail.example.com>", None),
    "non_english/spanish-mailbox-full-qp.eml": (
        Kind.FAILURE, None, [("luis@ejemplo.es", None, "mailboxfull", False, True)],
        "<news-0041@mail.example.com>", None),
    "non_english/portuguese-unknown-user.eml": (
        Kind.FAILURE, None, [("maria@exemplo.com.br", "5.1.1", "userunknown", True, True)],
        "<news-0042@mail.example.com>", None),
    # no code and no command: "unknown address" is a filter's answer (Sisimai's rule)
    "non_english/french-unknown-address.eml": (
        Kind.FAILURE, None, [("paul@example.fr", None, "filtered", False, True)],
        "<news-0043@mail.example.com>", None),
    # Gmail's titled layout ("** Delivery incomplete **"): a delay, the reply names the reason
    "gmail/delivery-incomplete-delay.eml": (
        Kind.DELAY, "gmail", [("kurt@example.com", "4.2.2", "mailboxfull", False, False)],
        "<news-0044@mail.example.com>", None),
    "gmail/address-not-found-titled.eml": (
        Kind.FAILURE, "gmail", [("lena@example.com", "5.1.1", "userunknown", True, True)],
        "<news-0045@mail.example.com>", None),
    # Sendmail's four-hour warning without a DSN: still being tried, a delay
    "sendmail/warning-still-trying.eml": (
        Kind.DELAY, None, [("pat@slow.example", None, "expired", False, False)],
        "<news-0048@mail.example.com>", None),
    "qmail/no-host-and-loop.eml": (
        Kind.FAILURE, "qmail",
        [("max@nohost.example", "5.1.2", "hostunknown", True, True),
         ("nia@example.org", "5.4.6", "networkerror", False, True)],
        "<news-0046@mail.example.com>", None),
    # "宛先: <address>" then "理由: ..." in ISO-2022-JP; the quoted original starts at "元のメッセージ"
    "non_english/japanese-iso2022jp-unknown.eml": (
        Kind.FAILURE, None, [("sora@example.ne.jp", "5.1.1", "userunknown", True, True)],
        "<news-0049@mail.example.com>", None),
    # T-Online (Deutsche Telekom) and Smail 3: "|--- Failed addresses follow: ---|" frames
    "telekom/quota-exceeded.eml": (
        Kind.FAILURE, None, [("ruth@t-online.example", "5.2.2", "mailboxfull", False, True)],
        "<news-0051@mail.example.com>", None),
    "telekom/smail-unknown-host.eml": (
        Kind.FAILURE, None, [("sven@nohost.example.com", None, "hostunknown", True, True)],
        "<news-0052@mail.example.com>", None),
    # Courier without a DSN part: "From: Courier mail server at ...", "NOTICE: mail delivery status."
    "courier/undeliverable-no-dsn.eml": (
        Kind.FAILURE, None, [("tess@example.co.jp", "5.1.1", "userunknown", True, True)], None, None),
    # regression: a body starting with a line that only begins like the boundary looped forever
    "broken/boundary-prefix-at-start.eml": (
        Kind.FAILURE, None, [("rose@example.org", "5.1.1", "userunknown", True, True)], None, None),
    "broken/no-boundary-8bit.eml": (
        Kind.FAILURE, None, [("quinn@example.org", "5.1.1", "userunknown", True, True)], None, None),
}


def test_every_sample_has_an_expectation() -> None:
    on_disk = {p.relative_to(SAMPLES).as_posix() for p in SAMPLES.glob("*/*.eml")}
    assert on_disk == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_is_parsed_as_expected(name: str) -> None:
    kind, mta, rows, message_id, token = EXPECTED[name]
    result = parse_bounce((SAMPLES / name).read_bytes())
    assert result.kind == kind
    if mta is not None:
        assert result.mta == mta
    got = [(r.recipient, r.status, r.reason, r.hard, r.permanent) for r in result.recipients]
    assert len(got) == len(rows)
    for (rcpt, status, reason, hard, permanent), r in zip(rows, result.recipients, strict=True):
        assert r.recipient == rcpt
        if status is not None:  # None: a pseudo code chosen by the classification tables
            assert r.status == status
        if reason is not None:  # None: the reason is the classification tables' business
            assert r.reason == reason
        if hard is not None or reason is not None:
            assert r.hard == hard
        assert r.permanent == permanent
    assert result.message_id == message_id
    assert result.token == token


def test_failed_recipient_keeps_its_own_diagnostic_not_the_whole_body() -> None:
    result = parse_bounce((SAMPLES / "qmail/two-recipients.eml").read_bytes())
    frank, grace = result.recipients
    assert "No such user" in frank.diagnostic and "quota" not in frank.diagnostic
    assert "quota" in grace.diagnostic and "No such user" not in grace.diagnostic


def test_remote_mta_and_reply_code_come_from_the_dsn() -> None:
    r = parse_bounce((SAMPLES / "postfix/user-unknown.eml").read_bytes()).recipients[0]
    assert (r.remote_mta, r.replycode, r.action) == ("mx.example.org", "550", "failed")


def test_token_prefix_and_header_name_are_options() -> None:
    raw = (SAMPLES / "postfix/user-unknown.eml").read_bytes()
    raw = raw.replace(b"bounces+", b"rtn-").replace(b"X-Bouncemgr-Token", b"X-Other")
    assert parse_bounce(raw).token is None
    opts = ParseOptions(verp_local_prefix="rtn", tracking_header="X-Other")
    assert parse_bounce(raw, opts).token == "a1b2c3d4e5f6a7b8"


def test_token_is_found_case_insensitively_and_returned_lower_case() -> None:
    raw = b"From: MAILER-DAEMON@x.example\nTo: BOUNCES+A1B2C3D4E5F6A7B8@MAIL.EXAMPLE.COM\n" \
          b"Subject: Undelivered Mail Returned to Sender\n\n<z@example.org>: 550 5.1.1 unknown user\n"
    assert parse_bounce(raw).token == "a1b2c3d4e5f6a7b8"


def test_crlf_and_lf_line_endings_give_the_same_result() -> None:
    raw = (SAMPLES / "sendmail/host-unknown.eml").read_bytes()
    assert parse_bounce(raw) == parse_bounce(raw.replace(b"\n", b"\r\n"))


def test_empty_input_is_not_a_bounce_and_does_not_raise() -> None:
    assert parse_bounce(b"").kind in (Kind.NOT_BOUNCE, Kind.UNKNOWN)
