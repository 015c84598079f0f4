"""Property tests: nothing, however broken, makes parse_bounce raise."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bounces.parsing import Kind, ParseResult, parse_bounce

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "bounce-corpus" / "eml"
REAL = [p.read_bytes() for p in sorted(SAMPLES.glob("*/*.eml"))]
if CORPUS.is_dir():
    REAL += [p.read_bytes() for p in sorted(CORPUS.iterdir())[::7]]

HEADERISH = st.sampled_from([
    b"Content-Type: multipart/report; boundary=\"b\"\n", b"Content-Transfer-Encoding: base64\n",
    b"--b\n", b"--b--\n", b"Content-Type: message/delivery-status\n", b"Final-Recipient: rfc822; \n",
    b"Status: 5.1.1\n", b"=?utf-8?B?////?=", b"\n\n", b"\r\n", b"\x00", b"\xff\xfe",
    b"Content-Type: message/rfc822\n", b"Content-Type: text/plain; charset=x-unknown\n",
])


def _check(result: object) -> None:
    assert isinstance(result, ParseResult)
    assert isinstance(result.kind, Kind)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4000))
def test_random_bytes_never_raise(data: bytes) -> None:
    _check(parse_bounce(data))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(HEADERISH, st.binary(max_size=40)), max_size=40))
def test_mime_shaped_garbage_never_raises(chunks: list[bytes]) -> None:
    _check(parse_bounce(b"".join(chunks)))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(range(len(REAL))),
    st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255), st.sampled_from(["flip", "cut", "dup", "insert"])),
             min_size=1, max_size=8),
)
def test_mutated_real_bounces_never_raise(index: int, edits: list[tuple[float, int, str]]) -> None:
    data = bytearray(REAL[index])
    for where, byte, op in edits:
        if not data:
            break
        i = int(where * (len(data) - 1))
        if op == "flip":
            data[i] = byte
        elif op == "cut":
            del data[i : i + byte]
        elif op == "dup":
            data[i:i] = data[i : i + byte]
        else:
            data[i:i] = bytes([byte]) * 3
    _check(parse_bounce(bytes(data)))


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=2000))
def test_str_input_is_accepted_too(text: str) -> None:
    _check(parse_bounce(text))  # type: ignore[arg-type]
