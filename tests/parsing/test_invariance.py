"""Format invariance (tests/parsing/invariance.py): a notice re-encoded, re-wrapped, stamped
by a gateway, stripped of its DSN part or forwarded gets the answer its original gets,
unless the transformation destroyed what the answer rests on (`invariance.EXPECTED`).

`make test` runs a deterministic sixth of the corpus files per transformation (a different
sixth for each; the full sweep is `python tests/parsing/invariance.py`, figures in
docs/engine.md) and every transformation of every ordinary message of the negative set
(less its base64 and CRLF copies).
"""

from __future__ import annotations

import random

import pytest

from bounces.parsing import Kind, parse_bounce

from . import invariance as inv
from .conftest import SAMPLES


def _subset(corpus: str, transform_index: int, every: int = 6) -> list:
    files = inv.corpus_files(corpus)
    return [p for n, p in enumerate(files) if n % every == transform_index % every]


def _unexpected(changes: list[inv.Change]) -> list[str]:
    return [
        f"{c.transform} {c.file}: want {inv._fmt(c.before)} / got {inv._fmt(c.after)}"
        for c in changes
        if not c.why
    ]


@pytest.mark.parametrize("corpus", ["shared", "flufl"])
def test_corpus_bounces_keep_their_answer_under_every_transformation(corpus_dir, corpus: str) -> None:
    if not inv.CORPORA[corpus].is_dir():
        pytest.skip(f"{inv.CORPORA[corpus]} not found")
    wrong: list[str] = []
    for n, t in enumerate(inv.TRANSFORMS):
        _, changes = inv.sweep(corpus, _subset(corpus, n), [t])
        wrong += _unexpected(changes)
    assert wrong == []


# What the sweep found and the engine now reads (each failed before this pass)
_FIXED = [
    ("lhost-exim-01.eml", "wrap76"), ("lhost-exim-34.eml", "wrap78"), ("lhost-mailru-08.eml", "wrap76"),
    ("lhost-dragonfly-01.eml", "wrap76"), ("lhost-qmail-20.eml", "wrap78"),
    ("lhost-mcafee-05.eml", "dsn-removed"), ("lhost-mcafee-05.eml", "dsn-as-text"),
    ("lhost-sendgrid-03.eml", "dsn-removed"), ("lhost-googleworkspace-01.eml", "list-footer"),
    ("lhost-googleworkspace-01.eml", "disclaimer"), ("arf-14.eml", "forward-gateway"),
    ("lhost-postfix-01.eml", "forward-gateway"), ("lhost-exim-01.eml", "forward-gateway"),
    ("arf-22.eml", "forward-person"), ("arf-24.eml", "forward-person"),
    ("lhost-sendmail-16.eml", "wrap76"), ("lhost-sendmail-27.eml", "wrap78"), ("lhost-sendmail-48.eml", "wrap76"),
    ("lhost-postfix-02.eml", "html-only"), ("lhost-qmail-08.eml", "html-only"), ("lhost-x6-02.eml", "html-only"),
    ("lhost-exchange2003-01.eml", "html-only"), ("rhost-messagelabs-02.eml", "dsn-as-text"),
]


@pytest.mark.parametrize(("name", "transform"), _FIXED)
def test_a_transformation_that_used_to_change_the_answer_no_longer_does(corpus_dir, name: str, transform: str) -> None:
    _, changes = inv.sweep("shared", [corpus_dir / "eml" / name], [inv.BY_NAME[transform]])
    assert _unexpected(changes) == []
    assert not [c for c in changes if c.why]


def test_every_listed_exception_still_happens(corpus_dir) -> None:
    """The reviewed list stays true: an entry the engine has outgrown is removed from it."""
    stale = []
    for corpus, name, transform in inv.EXPECTED:
        if not inv.CORPORA[corpus].is_dir():
            continue
        _, changes = inv.sweep(corpus, [inv.CORPORA[corpus] / name], [inv.BY_NAME[transform]])
        if not changes:
            stale.append((corpus, name, transform))
    assert stale == []


def test_ordinary_mail_stays_unbounced_under_every_transformation() -> None:
    """Newsletters as base64, replies re-wrapped, parcel notices with an antivirus stamp,
    success notices without their DSN part, everything forwarded by a gateway: nothing
    bounced."""
    # the -b64 and -crlf copies are transformations already: the originals only here
    files = [p for p in inv.corpus_files("notbounce") if not p.stem.endswith(("-b64", "-crlf"))]
    applied, changes = inv.sweep("notbounce", files, inv.TRANSFORMS)
    assert sum(applied.values()) > 1200
    assert _unexpected(changes) == []


def test_the_tool_gives_back_every_message_byte_for_byte() -> None:
    """Otherwise a changed answer could be the tool's doing, not the transformation's."""
    paths = inv.corpus_files("notbounce") + sorted(SAMPLES.rglob("*.eml"))
    for path in paths:
        raw = inv.normalise(path.read_bytes())
        assert inv.parse(raw).to_bytes() == raw, path.name


def test_every_transformation_applies_to_some_bounce() -> None:
    paths = sorted(SAMPLES.rglob("*.eml"))
    applied, _ = inv.sweep("samples", paths, inv.TRANSFORMS)
    assert set(applied) == {t.name for t in inv.TRANSFORMS}


# --- the weaknesses the sweep found, one scenario each -------------------------------------

_POSTFIX = (
    b"Return-Path: <>\nFrom: MAILER-DAEMON@mx.example.net (Mail Delivery System)\n"
    b"To: bounces+tok123@mail.example.org\nSubject: Undelivered Mail Returned to Sender\n"
    b"Auto-Submitted: auto-replied\nMIME-Version: 1.0\n"
    b'Content-Type: multipart/report; report-type=delivery-status; boundary="B1"\n\n'
    b"--B1\nContent-Type: text/plain\n\nI'm sorry to have to inform you that your message could not\n"
    b"be delivered to one or more recipients.\n\n<ruth@example.com>: host mx.example.com[192.0.2.7] said:\n"
    b"    550 5.1.1 <ruth@example.com>: Recipient address rejected: User unknown\n"
    b"    (in reply to RCPT TO command)\n\n"
    b"--B1\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.net\n\n"
    b"Final-Recipient: rfc822; ruth@example.com\nAction: failed\nStatus: 5.1.1\n"
    b"Diagnostic-Code: smtp; 550 5.1.1 <ruth@example.com>: Recipient address rejected: User unknown\n\n"
    b"--B1--\n"
)


def test_a_bounce_a_gateway_forwards_as_an_attachment_is_read_as_the_bounce() -> None:
    """A quarantine release or mailbox rule passes the notice on as message/rfc822 with
    Auto-Submitted: auto-forwarded: the attachment is the notice."""
    wrapped = inv.BY_NAME["forward-gateway"].apply(_POSTFIX, random.Random(0))
    assert wrapped is not None
    result = parse_bounce(wrapped)
    assert result.kind == Kind.FAILURE
    assert [(r.recipient, r.reason, r.hard) for r in result.recipients] == [("ruth@example.com", "userunknown", True)]


def test_a_bounce_a_person_forwards_as_an_attachment_is_no_bounce() -> None:
    wrapped = inv.BY_NAME["forward-person"].apply(_POSTFIX, random.Random(0))
    assert wrapped is not None
    result = parse_bounce(wrapped)
    assert result.kind == Kind.NOT_BOUNCE
    assert result.recipients == ()


def test_a_gateway_forwarding_a_read_receipt_or_a_newsletter_names_nobody() -> None:
    for name in ("receipt-mdn-00.eml", "report-mdn-01.eml", "challenge-dsn.eml", "lookalike-02.eml"):
        raw = inv.normalise((inv.CORPORA["notbounce"] / name).read_bytes())
        wrapped = inv.BY_NAME["forward-gateway"].apply(raw, random.Random(0))
        assert wrapped is not None
        result = parse_bounce(wrapped)
        assert result.kind not in (Kind.FAILURE, Kind.DELAY, Kind.UNKNOWN), name


@pytest.mark.parametrize("transform", ["banner-top", "banner-bottom", "list-footer", "disclaimer"])
def test_a_parcel_notice_with_a_gateways_stamp_is_still_no_bounce(transform: str) -> None:
    """"This email has been scanned by ..." says "email": it does not make a parcel notice
    about a message."""
    raw = inv.normalise((inv.CORPORA["notbounce"] / "lookalike-11.eml").read_bytes())
    new = inv.BY_NAME[transform].apply(raw, random.Random(0))
    assert new is not None
    assert parse_bounce(new).recipients == ()


def test_a_success_notice_without_its_dsn_part_bounces_nobody() -> None:
    raw = inv.normalise((inv.CORPORA["notbounce"] / "success-dsn-01.eml").read_bytes())
    new = inv.BY_NAME["dsn-removed"].apply(raw, random.Random(0))
    assert new is not None and b"delivery-status" not in new
    assert parse_bounce(new).recipients == ()


def test_a_quotation_wrapped_onto_a_line_of_its_own_is_no_recipient_line() -> None:
    """A help-desk ticket quoting an NDR, re-wrapped at 76 columns: 'accounts@customer.example"'
    stands alone under 'recipients or groups:', but its closing quote says it is prose."""
    raw = inv.normalise((inv.CORPORA["notbounce"] / "lookalike-04.eml").read_bytes())
    new = inv.BY_NAME["wrap76"].apply(raw, random.Random(0))
    assert new is not None and b'\naccounts@customer.example"' in new
    assert parse_bounce(new).recipients == ()


def test_a_virus_scanners_own_notice_is_no_banner() -> None:
    """Banner lines are skipped when the engine asks "does the notice say up front what it
    is?"; a virus scanner's notice says "virus" in exactly that sentence."""
    raw = (b"From: Symantec_AntiVirus@corp.example\nTo: bounces+tok@mail.example.org\nSubject: Message blocked\n\n"
           b"A virus was found in your message to ruth@example.com and it could not be delivered.\n\n"
           b"Recipient:\nruth@example.com\n")
    result = parse_bounce(raw)
    assert [(r.recipient, r.reason) for r in result.recipients] == [("ruth@example.com", "virusdetected")]
