"""The engine's command line (bounces.parsing.cli, wrapped by manage.py classify_bounce)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

from bounces.parsing.cli import run

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
KEYS = {"file", "kind", "recipient", "status", "replycode", "reason", "hard", "permanent",
        "diagnostic", "remote_mta", "message_id", "token"}


def test_one_json_line_per_failed_recipient_with_the_agreed_keys() -> None:
    out = io.StringIO()
    path = str(SAMPLES / "qmail/two-recipients.eml")
    assert run([path], out=out) == 0
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["recipient"] for r in rows] == ["frank@example.org", "grace@example.org"]
    assert all(set(r) == KEYS and r["file"] == path for r in rows)


def test_message_without_recipient_prints_one_line_with_null_recipient() -> None:
    out = io.StringIO()
    run([str(SAMPLES / "not_bounce/plain.eml")], out=out)
    (row,) = [json.loads(line) for line in out.getvalue().splitlines()]
    assert row["recipient"] is None and row["kind"] == "not_bounce"


def test_files_from_reads_paths_one_per_line() -> None:
    paths = sorted(str(p) for p in SAMPLES.glob("*/*.eml"))
    out = io.StringIO()
    run([], files_from=io.StringIO("\n".join(paths) + "\n"), out=out)
    assert {json.loads(line)["file"] for line in out.getvalue().splitlines()} == set(paths)


def test_dash_reads_one_message_from_stdin() -> None:
    out = io.StringIO()
    raw = (SAMPLES / "sendmail/host-unknown.eml").read_bytes()
    run(["-"], out=out, stdin_bytes=io.BytesIO(raw))
    assert json.loads(out.getvalue())["recipient"] == "carol@nowhere.example"


def test_summary_counts_kinds_and_reasons() -> None:
    out = io.StringIO()
    run(sorted(str(p) for p in SAMPLES.glob("*/*.eml")), summary=True, out=out)
    counts = json.loads(out.getvalue().splitlines()[0])
    assert counts["kinds"]["failure"] >= 5 and counts["reasons"]["userunknown"] >= 3


def test_unreadable_file_is_reported_and_sets_the_exit_code() -> None:
    assert run(["/nonexistent/x.eml"], out=io.StringIO()) == 1


def test_module_runs_as_a_program() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bounces.parsing.cli", str(SAMPLES / "arf/abuse.eml")],
        capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parents[2],
    )
    assert json.loads(proc.stdout)["reason"] == "feedback"
