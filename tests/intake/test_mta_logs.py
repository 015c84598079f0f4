"""PowerMTA accounting, Postfix and Exim records read as notices (pure, no database)."""

from __future__ import annotations

import io
from pathlib import Path

from bounces.intake.mta_logs import (
    AccountingReader,
    accounting_notice,
    log_notices,
    parse_accounting_csv,
    record_hash,
)
from bounces.intake.structured import StructuredNotice, to_parse_result

SAMPLES = Path(__file__).parent / "samples"


def _records() -> list[dict[str, str]]:
    return list(parse_accounting_csv((SAMPLES / "pmta-acct.csv").read_text()))


def test_bounce_and_feedback_records_become_notices_and_other_types_are_skipped():
    notices = [n for r in _records() if (n := accounting_notice(r))]
    assert [(n.event, n.recipient) for n in notices] == [
        ("failure", "bob@example.org"), ("failure", "carol@example.net"), ("failure", "dave@example.com"),
        ("failure", "erin@example.com"), ("complaint", "grace@example.com"),
    ]
    bob = notices[0]
    assert bob.status == "5.1.1" and bob.token == "aaaaaaaaaaaaaaa2"
    assert bob.message_id == "<m2@news.example.com>" and bob.remote_mta == "dns;mx.example.org"
    # rb record without our header: the Message-ID is the evidence
    assert notices[2].token is None and notices[2].message_id == "<m4@news.example.com>"


def test_accounting_records_are_classified_by_the_engine():
    kinds = {}
    for record in _records():
        notice = accounting_notice(record)
        if notice:
            rr = to_parse_result(notice).recipients[0]
            kinds[rr.recipient] = (str(rr.category), rr.reason)
    assert kinds["bob@example.org"] == ("hard", "userunknown")
    assert kinds["carol@example.net"] == ("soft", "mailboxfull")
    assert kinds["erin@example.com"][0] == "blocked"
    assert kinds["grace@example.com"] == ("complaint", "feedback")


def test_a_quoted_field_with_comma_and_quote_survives_and_the_diagnostic_type_is_stripped():
    carol = next(r for r in _records() if r["rcpt"] == "carol@example.net")
    assert carol["dsnDiag"] == 'smtp;552 5.2.2 Mailbox full, "quota exceeded"'
    rr = to_parse_result(accounting_notice(carol)).recipients[0]
    assert rr.diagnostic.startswith("552 5.2.2") and rr.remote_mta == "mx.example.net"


def test_the_reader_resumes_at_an_offset_and_leaves_an_unfinished_line():
    data = (SAMPLES / "pmta-acct.csv").read_bytes()
    cut = data + b"b,2026-12-06,,x@y,partial@example.com,,failed"  # the MTA is still writing
    reader = AccountingReader()
    seen = list(reader.records(io.BytesIO(cut)))
    assert len(seen) == 7 and seen[-1][0] == len(data)
    # a second reader given the header resumes after the third record
    offset = seen[2][0]
    later = list(AccountingReader(header=reader.header).records(io.BytesIO(cut), offset))
    assert [r["rcpt"] for _, r in later] == [r["rcpt"] for _, r in seen[3:]]


def test_record_hash_ignores_column_order_and_empty_fields():
    a = {"type": "b", "rcpt": "x@y", "dsnStatus": "5.1.1", "jobId": ""}
    b = {"dsnStatus": "5.1.1", "rcpt": "x@y", "type": "b"}
    assert record_hash(a) == record_hash(b) != record_hash({**b, "rcpt": "z@y"})


def test_postfix_and_exim_permanent_failures_with_their_message_ids():
    lines = (SAMPLES / "postfix.log").read_text().splitlines() + (SAMPLES / "exim.log").read_text().splitlines()
    notices = list(log_notices(lines))
    assert [(n.source, n.recipient, n.message_id) for n in notices] == [
        ("postfix", "henry@example.org", "m8@news.example.com"),
        ("exim", "judy@example.net", "m9@news.example.com"),
    ]
    for n in notices:
        rr = to_parse_result(n).recipients[0]
        assert (str(rr.category), rr.reason, rr.status) == ("hard", "userunknown", "5.1.1")


def test_hostile_lines_do_not_crash_the_readers():
    junk = ["", "** ", "status=bounced", "x" * 100_000, "\x00\xff garbage ** <>", 'a,"unterminated']
    assert list(log_notices(junk)) == []
    assert list(parse_accounting_csv("type,rcpt\n" + "\n".join(junk))) is not None


def test_a_notice_survives_its_stored_form():
    n = StructuredNotice(source="pmta", event="failure", recipient="a@b.c", status="5.1.1",
                         original={"jobId": "x", "ünï": "cödé"})
    assert StructuredNotice.from_payload(n.to_payload()) == n


def test_the_time_a_record_gives_becomes_the_notice_time():
    from datetime import UTC, datetime

    from bounces.intake.structured import notice_time

    assert notice_time("2026-12-06 10:00:02+0000") == datetime(2026, 12, 6, 10, 0, 2, tzinfo=UTC)
    assert notice_time("2026-12-06T10:00:01Z") == datetime(2026, 12, 6, 10, 0, 1, tzinfo=UTC)
    assert notice_time("1765000000") == datetime.fromtimestamp(1765000000, tz=UTC)
    assert notice_time("junk") is None and notice_time("0001-01-01T00:00:00") is None
    bob = next(r for r in _records() if r["rcpt"] == "bob@example.org")
    assert to_parse_result(accounting_notice(bob)).notice_time == datetime(2026, 12, 6, 10, 0, 2, tzinfo=UTC)
