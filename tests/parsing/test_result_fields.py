"""The fields added for the pipeline in issue 13: Original-Recipient alias, notice time."""

from __future__ import annotations

from datetime import UTC, datetime

from bounces.parsing import Kind, parse_bounce

_DSN = b"""From: Mail Delivery System <MAILER-DAEMON@mx.example.net>
To: bounces+a1b2c3d4e5f6a7b8@return.example.com
Subject: Undelivered Mail Returned to Sender
Date: Tue, 24 Nov 2026 10:00:00 +0100
Received: from mx.example.net by in.return.example.com; Tue, 24 Nov 2026 09:00:05 +0000
Content-Type: multipart/report; report-type=delivery-status; boundary="b1"

--b1
Content-Type: text/plain

Your message could not be delivered.

--b1
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net
Arrival-Date: Tue, 24 Nov 2026 08:58:00 +0000

Final-Recipient: rfc822; mbox-4411@store.example.net
Original-Recipient: rfc822; Nora@Example.Net
Action: failed
Status: 5.2.2
Diagnostic-Code: x-unix; mailbox quota exceeded
Last-Attempt-Date: Tue, 24 Nov 2026 08:59:30 +0000

--b1--
"""


def test_final_recipient_is_reported_with_the_original_as_alias() -> None:
    result = parse_bounce(_DSN)
    assert result.kind == Kind.FAILURE
    [r] = result.recipients
    assert r.recipient == "mbox-4411@store.example.net"
    assert r.original_recipient == "Nora@example.net"
    assert r.reason == "mailboxfull"


def test_no_alias_when_the_original_is_the_same_address() -> None:
    raw = _DSN.replace(b"rfc822; Nora@Example.Net", b"rfc822; MBOX-4411@store.example.net")
    [r] = parse_bounce(raw).recipients
    assert r.original_recipient is None


def test_notice_time_prefers_last_attempt_then_arrival_then_date_then_received() -> None:
    assert parse_bounce(_DSN).notice_time == datetime(2026, 11, 24, 8, 59, 30, tzinfo=UTC)
    no_last = _DSN.replace(b"Last-Attempt-Date: Tue, 24 Nov 2026 08:59:30 +0000\n", b"")
    assert parse_bounce(no_last).notice_time == datetime(2026, 11, 24, 8, 58, tzinfo=UTC)
    no_dsn_dates = no_last.replace(b"Arrival-Date: Tue, 24 Nov 2026 08:58:00 +0000\n", b"")
    assert parse_bounce(no_dsn_dates).notice_time == datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    no_date = no_dsn_dates.replace(b"Date: Tue, 24 Nov 2026 10:00:00 +0100\n", b"")
    assert parse_bounce(no_date).notice_time == datetime(2026, 11, 24, 9, 0, 5, tzinfo=UTC)


def test_notice_time_is_none_when_no_date_parses() -> None:
    raw = b"From: MAILER-DAEMON@mx.example.net\nDate: yesterday-ish\nSubject: x\n\nhello\n"
    assert parse_bounce(raw).notice_time is None


def test_the_x_unix_diagnostic_type_is_kept_for_classification() -> None:
    """RFC 3464's X-Unix type says a local program failed: mailer error when its text names
    no cause; a cause it names (quota) still decides."""
    base = _DSN.replace(b"Original-Recipient: rfc822; Nora@Example.Net\n", b"")
    unnamed = base.replace(b"Diagnostic-Code: x-unix; mailbox quota exceeded", b"Diagnostic-Code: X-Unix; exit 75")
    [r] = parse_bounce(unnamed.replace(b"Status: 5.2.2", b"Status: 5.0.0")).recipients
    assert r.reason == "mailererror"
    [r] = parse_bounce(base.replace(b"Status: 5.2.2", b"Status: 5.0.0")).recipients
    assert r.reason == "mailboxfull"
