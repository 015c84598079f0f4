"""Helpers shared by the mailbox tests."""

from __future__ import annotations

import base64
import os
from pathlib import Path

CORPUS = Path("/work/shared/bounce-corpus/eml")


def _generated_bounce(index: int) -> bytes:
    return (
        "From: MAILER-DAEMON@example.net\r\n"
        "To: bounces@example.org\r\n"
        f"Subject: Undelivered Mail Returned to Sender #{index}\r\n"
        f"Message-ID: <gen-{index}@example.net>\r\n"
        "Content-Type: text/plain\r\n"
        "\r\n"
        f"<user{index}@example.com>: host mx.example.com said: 550 5.1.1 unknown user\r\n"
    ).encode()


def load_bounce_samples() -> list[bytes]:
    """Real bounce files from the shared corpus (generated ones when it is absent)."""
    if CORPUS.is_dir():
        samples = [p.read_bytes() for p in sorted(CORPUS.glob("*.eml"))]
        if samples:
            return samples
    return [_generated_bounce(i) for i in range(50)]


def numbered(raw: bytes, index: int) -> bytes:
    """``raw`` with a unique first header, so repeated corpus files stay distinct."""
    return f"X-Bouncemgr-Test: {index}\r\n".encode() + raw


def marker(raw: bytes) -> int:
    """The index :func:`numbered` put into a message."""
    first = raw.split(b"\n", 1)[0]
    return int(first.split(b":", 1)[1])


def big_message(size: int) -> bytes:
    """A message of about ``size`` bytes: a base64 attachment of random data."""
    payload = base64.encodebytes(os.urandom(size * 3 // 4))
    head = (
        b"From: MAILER-DAEMON@example.net\r\nSubject: huge bounce\r\n"
        b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    )
    return head + payload.replace(b"\n", b"\r\n")
