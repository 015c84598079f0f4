"""Line endings never change a verdict: IMAP and POP3 deliver CRLF, the corpus is LF, and
broken gateways produce CR CR LF or bare CR."""

from __future__ import annotations

from pathlib import Path

import pytest

from bounces.parsing import parse_bounce

from .conftest import SAMPLES


def verdict(raw: bytes) -> tuple:
    result = parse_bounce(raw)
    return (result.kind, result.message_id, result.token, tuple(
        (r.recipient, r.status, r.replycode, r.reason, r.hard, r.permanent, r.diagnostic)
        for r in result.recipients
    ))


def variants(lf: bytes) -> dict[str, bytes]:
    return {
        "crlf": lf.replace(b"\n", b"\r\n"),
        "cr-cr-lf": lf.replace(b"\n", b"\r\r\n"),
        "cr": lf.replace(b"\n", b"\r"),
    }


def lf_messages(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.eml") if b"\r" not in p.read_bytes())


@pytest.mark.parametrize("ending", ["crlf", "cr-cr-lf", "cr"])
def test_every_corpus_message_reads_the_same_with_other_line_endings(corpus_dir, ending):
    differ = [
        path.name for path in lf_messages(corpus_dir / "eml")
        if verdict(variants(path.read_bytes())[ending]) != verdict(path.read_bytes())
    ]
    assert differ == []


def test_our_own_samples_read_the_same_with_crlf():
    paths = lf_messages(SAMPLES)
    assert paths
    assert [p.name for p in paths if verdict(variants(p.read_bytes())["crlf"]) != verdict(p.read_bytes())] == []
