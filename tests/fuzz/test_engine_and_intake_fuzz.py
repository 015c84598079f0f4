"""Fuzzing (issue 12): mutated real bounces from shared/bounce-corpus through the engine and the
intake (stored, then processed). No uncaught exception; every message ends stored with a
state and an outcome; memory per message bounded (tracemalloc peak, not wall time)."""

from __future__ import annotations

import random
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bounces.parsing import parse_bounce

_HERE = Path(__file__).resolve()
CORPUS = next((p for p in (Path("/work/shared/bounce-corpus/eml"),
                           _HERE.parents[3] / "shared" / "bounce-corpus" / "eml") if p.is_dir()), None)
SAMPLES = sorted(CORPUS.glob("*.eml"))[:400] if CORPUS else []
PEAK_LIMIT = 200 * 1024 * 1024  # bytes allocated at once while parsing one message


def _read(index: int) -> bytes:
    return SAMPLES[index % len(SAMPLES)].read_bytes()


def truncate(raw: bytes, r: random.Random) -> bytes:
    return raw[: r.randrange(0, len(raw) + 1)]


def damage_bytes(raw: bytes, r: random.Random) -> bytes:
    data = bytearray(raw)
    for _ in range(max(1, len(data) // 200)):
        if data:
            data[r.randrange(len(data))] = r.randrange(256)
    return bytes(data)


def damage_charsets(raw: bytes, r: random.Random) -> bytes:
    out = raw.replace(b"charset=", b"charset=x-" + r.choice([b"bogus", b"utf-7", b"\xff\xfe", b"utf-32"]) + b"-")
    out = out.replace(b"Content-Transfer-Encoding: 7bit", b"Content-Transfer-Encoding: base64")
    return out.replace(b"quoted-printable", b"x-uuencode")


def nest(raw: bytes, depth: int = 200) -> bytes:
    head = b"".join(b'Content-Type: multipart/mixed; boundary="n%d"\n\n--n%d\n' % (i, i) for i in range(depth))
    tail = b"".join(b"\n--n%d--\n" % i for i in reversed(range(depth)))
    return b"From: MAILER-DAEMON@x.example\nSubject: nested\nMIME-Version: 1.0\n" + head + raw + tail


def many_parts(raw: bytes, parts: int = 10_000) -> bytes:
    body = b"".join(b"--p\nContent-Type: text/plain\n\n%d\n" % i for i in range(parts))
    return (b"From: MAILER-DAEMON@x.example\nSubject: parts\nMIME-Version: 1.0\n"
            b'Content-Type: multipart/mixed; boundary="p"\n\n' + body + b"--p\nContent-Type: message/rfc822\n\n"
            + raw + b"\n--p--\n")


def long_header(raw: bytes, size: int = 1024 * 1024) -> bytes:
    return b"X-Long: " + b"a" * size + b"\n" + raw


def binary(raw: bytes, r: random.Random) -> bytes:
    return bytes(r.randrange(256) for _ in range(4096)) + raw[:2000]


MUTATIONS = {
    "truncate": lambda raw, r: truncate(raw, r),
    "bytes": lambda raw, r: damage_bytes(raw, r),
    "charsets": lambda raw, r: damage_charsets(raw, r),
    "nest200": lambda raw, r: nest(raw),
    "parts10000": lambda raw, r: many_parts(raw),
    "header1mb": lambda raw, r: long_header(raw),
    "binary": lambda raw, r: binary(raw, r),
    "crlf": lambda raw, r: raw.replace(b"\n", b"\r\n") if r.random() < 0.5 else raw.replace(b"\n", b"\r"),
}

mutated = st.tuples(st.integers(0, 10_000), st.sampled_from(sorted(MUTATIONS)), st.integers(0, 2**32))

pytestmark = pytest.mark.skipif(not SAMPLES, reason="shared/bounce-corpus/eml not found")


def _mutate(case) -> bytes:
    index, name, seed = case
    return MUTATIONS[name](_read(index), random.Random(seed))


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutated)
def test_the_engine_survives_mutated_real_bounces(case):
    raw = _mutate(case)
    tracemalloc.start()
    try:
        result = parse_bounce(raw)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.kind is not None
    assert peak < PEAK_LIMIT, f"{case[1]}: {peak} bytes at once"


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_every_kind_of_damage_on_one_real_bounce_parses(name):
    raw = MUTATIONS[name](_read(0), random.Random(1))
    assert parse_bounce(raw).kind is not None


@pytest.mark.django_db
@settings(max_examples=8, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(st.lists(mutated, min_size=3, max_size=6))
def test_the_intake_stores_and_processes_every_mutated_bounce(cases):
    """Store then process (bounces.intake.stored), as every source does: each message ends
    processed with an outcome, none left new or failed, nothing raised."""
    from hashlib import sha256

    from bounces.intake.stored import process_stored_messages
    from bounces.models import RawMessage

    raws = [_mutate(case) for case in cases]
    rows = [RawMessage.objects.create(dedupe_key=f"fuzz-{i}-{sha256(raw).hexdigest()[:16]}",
                                      sha256=sha256(raw).hexdigest(), raw=raw, size=len(raw),
                                      source=RawMessage.Source.MAILBOX)
            for i, raw in enumerate(raws)]
    run = process_stored_messages(batch_size=4)
    assert run.status in ("succeeded", "partial"), run.error_log
    states = dict(RawMessage.objects.filter(pk__in=[r.pk for r in rows]).values_list("pk", "state"))
    assert set(states.values()) == {RawMessage.State.PROCESSED}, (states, run.error_log)
    assert not RawMessage.objects.filter(pk__in=[r.pk for r in rows], outcome="").exists()
