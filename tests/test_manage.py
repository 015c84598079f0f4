"""`manage.py classify_bounce` runs the pure engine without starting Django, with the same output."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

from django.core.management import call_command

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = sorted((ROOT / "tests" / "samples").rglob("*.eml"))[:8]


def run_manage(*args: str, **kw) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "no.such.settings"}  # Django would fail
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, **kw)


def test_classify_bounce_needs_no_django_settings_and_matches_the_management_command():
    assert SAMPLES
    fast = run_manage("classify_bounce", *map(str, SAMPLES))
    assert fast.returncode == 0, fast.stderr
    django_out = io.StringIO()
    sys_stdout = sys.stdout
    sys.stdout = django_out  # the command writes straight to the process's stdout
    try:
        call_command("classify_bounce", *map(str, SAMPLES))
    finally:
        sys.stdout = sys_stdout
    assert [json.loads(line) for line in fast.stdout.splitlines()] == [
        json.loads(line) for line in django_out.getvalue().splitlines()
    ]


def test_classify_bounce_reads_paths_from_stdin():
    out = run_manage("classify_bounce", "--files-from", "-", input="\n".join(map(str, SAMPLES[:2])) + "\n")
    assert out.returncode == 0, out.stderr
    assert {json.loads(line)["file"] for line in out.stdout.splitlines()} == set(map(str, SAMPLES[:2]))


def test_django_options_take_the_django_path():
    out = run_manage("classify_bounce", "--settings", "no.such.settings", str(SAMPLES[0]))
    assert out.returncode != 0 and "No module named 'no'" in out.stderr
