"""The database read-only or full at random points of a run, many times (issue 12).

Faults (`--fault`):
  read-only  `ALTER SYSTEM SET default_transaction_read_only = on` + `pg_reload_conf()` from
             the bench's own connection: the worker's session refuses writes from its next
             transaction on, as after a fail-over to a standby
  full       the stored messages' and the bounces' tables in a tablespace on a 4 MB tmpfs,
             filled up to the last byte (a real "could not extend file ... No space left on
             device"); needs root and mount

Each trial: N bounces into a fresh Dovecot account, `process_mailbox` in a child process on a
real PostgreSQL, the fault once a random number of messages is committed; the fault is removed
once the worker has stopped, then a normal run. After each trial it checks: the worker stopped
with the one-line "The database refused writes: ..." (no traceback line after it), every
message stored once and counted once (sum of the runs' counters), each contact bounced once,
the server folder empty (nothing deleted before its result was committed), no run left
running, and the next run not blocked by the first run's lock.

    .venv/bin/python bench/storage_faults.py [--fault read-only] [--trials 20] [--messages 60] [--seed 1]

The suite runs short versions (tests/reliability/test_storage_faults.py).
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fault", choices=["read-only", "full"], default="read-only")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--messages", type=int, default=60)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    from bench.services import django_on_test_services

    mount = None
    with django_on_test_services("bm-bench-storage-", durable=False, with_redis=False) as (pg, _, dovecot, work):
        try:
            if args.fault == "full":
                mount = small_tablespace(work, pg)
            failures = run_trials(args, dovecot, pg, mount)
        finally:
            if mount is not None:
                subprocess.run(["umount", "-l", str(mount)], check=False)
    sys.exit(1 if failures else 0)


def small_tablespace(work: Path, pg) -> Path:
    """The stored messages' and bounces' tables on a 4 MB tmpfs."""
    from django.db import connection

    from bounces.models import Bounce, RawMessage

    mount = work / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        sys.exit(f"cannot mount a tmpfs here (root needed): {done.stderr.decode(errors='replace').strip()}")
    ids = (pg.user.pw_uid, pg.user.pw_gid) if pg.user is not None else (os.getuid(), os.getgid())
    (mount / "ts").mkdir()
    os.chown(mount, *ids)
    os.chown(mount / "ts", *ids)
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLESPACE small LOCATION '{mount / 'ts'}'")
        for model in (RawMessage, Bounce):
            cursor.execute(f'ALTER TABLE "{model._meta.db_table}" SET TABLESPACE small')
    return mount


def run_trials(args: argparse.Namespace, dovecot, pg, mount: Path | None) -> int:
    from django.conf import settings
    from django.db import connection

    from bench.services import mailbox_of_bounces, next_run_problems
    from bounces.models import ProcessingRun, RawMessage
    from tests.reliability.workers import fill_up, start_run

    says = {"read-only": "The database refused writes: it is read-only",
            "full": "The database refused writes: it is out of disk space"}[args.fault]
    rng = random.Random(args.seed)
    db = {**settings.DATABASES["default"]}
    failures = 0
    points: list[int] = []
    started = time.monotonic()

    def fault(on: bool) -> None:
        if args.fault == "read-only":
            with connection.cursor() as cursor:
                cursor.execute("ALTER SYSTEM SET default_transaction_read_only = on" if on
                               else "ALTER SYSTEM RESET default_transaction_read_only")
                cursor.execute("SELECT pg_reload_conf()")
            time.sleep(0.3)  # sessions apply the reload before their next command
            connection.close()  # this session's own setting came from the old configuration
        elif on:
            fill_up(mount / "filler")
        else:
            (mount / "filler").unlink(missing_ok=True)

    for trial in range(args.trials):
        n = args.messages
        sent, mailbox, user = mailbox_of_bounces(dovecot, f"storage {trial}", n, prefix=f"s{trial}-")
        fault_at = rng.randrange(0, n - 5)
        worker = start_run(db, mailbox.pk, batch_size=5, parallel_min=10**6, capture=True)
        deadline = time.monotonic() + 120
        while (RawMessage.objects.filter(mailbox=mailbox, state="processed").count() < fault_at
               and worker.poll() is None and time.monotonic() < deadline):
            time.sleep(rng.uniform(0, 0.02))
        problems = []
        fault(True)
        try:
            out, err = worker.communicate(timeout=150)
        finally:
            fault(False)
        at = RawMessage.objects.filter(mailbox=mailbox, state="processed").count()
        points.append(at)
        last = (err.decode(errors="replace").strip().splitlines() or [""])[-1]
        if worker.returncode == 0:
            print(f"trial {trial + 1}: the worker ended before the fault took ({out.decode().strip()[:80]})")
        elif says not in last:
            problems.append(f"the worker's last line: {last[:200]}")
        found, took = next_run_problems(dovecot, user, mailbox, sent)
        problems += found
        if ProcessingRun.objects.filter(mailbox=mailbox, status=ProcessingRun.Status.RUNNING).exists():
            problems.append("a run was left running")
        status = "ok" if not problems else "FAILED: " + "; ".join(problems)
        failures += bool(problems)
        print(f"trial {trial + 1:2d}: {args.fault} after {at:2d}/{n} committed, next run {took:.1f} s: {status}",
              flush=True)
    print(f"\n{args.trials - failures}/{args.trials} {args.fault} trials survived "
          f"(fault points {min(points)}..{max(points)} of {args.messages} committed) "
          f"in {time.monotonic() - started:.0f} s")
    return failures


if __name__ == "__main__":
    main()
