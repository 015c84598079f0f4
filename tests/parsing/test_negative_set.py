"""The negative set (tests/samples_notbounce/): ordinary mail must yield no bounced recipient.

The set is written by tests/samples_notbounce/generate.py (replies, newsletters,
notifications, auto-replies, calendar invitations, challenge-response requests, list-manager
notices and digests, read receipts, success notices, bounces forwarded by people). The test
checks the files on disk against the generator, so the two never drift apart.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from bounces.parsing import Category, Kind, parse_bounce

SET = Path(__file__).resolve().parents[1] / "samples_notbounce"
_BOUNCED_KINDS = (Kind.FAILURE, Kind.DELAY, Kind.UNKNOWN)


def _generator():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("notbounce_generate", SET / "generate.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _files() -> list[Path]:
    return sorted((SET / "eml").glob("*.eml"))


def test_the_set_is_large_and_matches_its_generator() -> None:
    generated = {f"{name}.eml": raw for name, raw, _ in _generator().messages()}
    on_disk = {p.name: p.read_bytes() for p in _files()}
    assert len(on_disk) >= 200
    assert on_disk == generated, "run tests/samples_notbounce/generate.py"


def test_no_message_of_the_set_yields_a_bounced_recipient() -> None:
    """The score: every message, and the list of those that fail (expected empty)."""
    labels = {
        json.loads(line)["file"]: json.loads(line)
        for line in (SET / "labels.jsonl").read_text().splitlines()
        if line.strip()
    }
    wrong: list[str] = []
    for path in _files():
        result = parse_bounce(path.read_bytes())
        label = labels[path.name]
        bounced = [
            r.recipient for r in result.recipients
            if r.reason not in ("vacation", "delivered") and r.category != Category.NOT_BOUNCE
        ]
        if result.kind in _BOUNCED_KINDS or bounced:
            wrong.append(f"{path.name}: {result.kind} {bounced}")
            continue
        if label["kind"] == "not-bounce" and result.kind not in (Kind.AUTOREPLY, Kind.CHALLENGE):
            assert result.recipients == (), path.name  # ordinary mail names nobody
        if label["kind"] == "vacation":
            # an auto-reply may name its sender, and only its sender
            assert result.kind == Kind.AUTOREPLY, path.name
            assert {r.recipient for r in result.recipients} <= {label["recipient"]}, path.name
    assert wrong == [], f"{len(wrong)} of {len(_files())} ordinary messages read as bounces"


@pytest.mark.parametrize(
    "name",
    ["forwarded-inline-00.eml", "forwarded-quoted.eml", "forwarded-attached.eml", "misc-05.eml"],
)
def test_a_bounce_a_person_forwards_or_quotes_names_nobody(name: str) -> None:
    result = parse_bounce((SET / "eml" / name).read_bytes())
    assert result.kind == Kind.NOT_BOUNCE
    assert result.recipients == ()


def test_a_challenge_wrapped_in_a_dsn_is_a_challenge_not_a_failure() -> None:
    result = parse_bounce((SET / "eml" / "challenge-dsn.eml").read_bytes())
    assert result.kind == Kind.CHALLENGE
    assert all(r.recipient != "emi@example.jp" for r in result.recipients)


@pytest.mark.parametrize("name", ["autoreply-00.eml", "autoreply-02.eml", "autoreply-04.eml"])
def test_an_auto_reply_names_its_sender_as_working(name: str) -> None:
    result = parse_bounce((SET / "eml" / name).read_bytes())
    assert result.kind == Kind.AUTOREPLY
    assert [r.reason for r in result.recipients] == ["vacation"]


@pytest.mark.parametrize("name", ["report-dmarc-aggregate.eml", "report-tlsrpt.eml", "report-mdn-00.eml",
                                  "report-mdn-01.eml", "report-mdn-02.eml"])
def test_machine_reports_that_are_no_failure_name_nobody(name: str) -> None:
    """DMARC aggregate reports, TLS-RPT (RFC 8460) and read receipts (RFC 8098, also
    "deleted" and "failed" dispositions) are reports, but of no delivery failure."""
    result = parse_bounce((SET / "eml" / name).read_bytes())
    assert result.kind == Kind.NOT_BOUNCE
    assert result.recipients == ()


def test_a_dmarc_failure_report_is_no_complaint() -> None:
    """RFC 6591 auth-failure reports come as ARF, but the recipient complained about
    nothing: the address is named (Sisimai counts it as feedback) with category not_bounce,
    so no complaint suppresses it."""
    result = parse_bounce((SET / "eml" / "report-dmarc-failure.eml").read_bytes())
    assert result.kind == Kind.NOT_BOUNCE
    assert [(r.recipient, r.feedback_type, r.category) for r in result.recipients] == [
        ("bob@example.com", "auth-failure", Category.NOT_BOUNCE)
    ]


@pytest.mark.parametrize("name", [f"lookalike-{i:02d}.eml" for i in range(19)])
def test_bouncy_ordinary_mail_names_nobody(name: str) -> None:
    """People, parcels, tickets, moderation, quarantine digests, recalls, newsletters quoting
    a bounce: their words are a bounce's, their form is not."""
    result = parse_bounce((SET / "eml" / name).read_bytes())
    assert result.kind in (Kind.NOT_BOUNCE, Kind.AUTOREPLY)
    assert [r.recipient for r in result.recipients if r.reason != "vacation"] == []
