"""Fault injection against the real services, at random points of a run, many times.

Faults (`--fault`):
  kill      SIGKILL of the worker (half the trials with the forked parse helper)
  postgres  PostgreSQL stopped with `pg_ctl stop -m immediate` and started again 2 s later
  dovecot   Dovecot (master and sessions) killed with SIGKILL and started again

Each trial: N bounces into a fresh Dovecot account, `process_mailbox` in a child process on a
real PostgreSQL, the fault once a random number of messages is committed, then a normal run.
After each trial it checks that every message is stored once and counted once (sum of the runs'
counters), each contact bounced once, the server folder is empty (nothing deleted before its
result was committed: the second run found everything it needed), no PostgreSQL session of the
worker is left, no run left running, and the next run was not blocked by the first run's lock.

    .venv/bin/python bench/faults.py [--fault kill] [--trials 50] [--messages 40] [--seed 1]

The suite runs short versions (tests/reliability/ and tests/pipeline/test_reliability.py).
"""

from __future__ import annotations

import argparse
import random
import signal
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fault", choices=["kill", "postgres", "dovecot"], default="kill")
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--messages", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    from bench.services import django_on_test_services

    with django_on_test_services("bm-bench-faults-", durable=False, with_redis=False) as (pg, _, dovecot, _work):
        failures = run_trials(args, dovecot, pg)
    sys.exit(1 if failures else 0)


def run_trials(args: argparse.Namespace, dovecot, pg) -> int:
    from django.conf import settings
    from django.db import connection

    from bench.services import mailbox_of_bounces, next_run_problems
    from bounces.models import ProcessingRun, RawMessage
    from tests.reliability.workers import (
        alive,
        children_of,
        kill_dovecot,
        start_dovecot_again,
        start_postgres_again,
        start_run,
    )

    rng = random.Random(args.seed)
    db = {**settings.DATABASES["default"]}
    failures = 0
    killed_points: list[int] = []
    started = time.monotonic()
    for trial in range(args.trials):
        n = args.messages
        sent, mailbox, user = mailbox_of_bounces(dovecot, f"faults {trial}", n, prefix=f"t{trial}-")
        helper = trial % 2 == 0 and args.fault == "kill"
        kill_at = rng.randrange(0, n)
        worker = start_run(db, mailbox.pk, batch_size=5, parallel_min=1 if helper else 10**6)
        deadline = time.monotonic() + 120
        while (RawMessage.objects.filter(mailbox=mailbox, state="processed").count() < kill_at
               and worker.poll() is None and time.monotonic() < deadline):
            time.sleep(rng.uniform(0, 0.02))
        helpers = children_of(worker.pid)
        if worker.poll() is not None:
            print(f"trial {trial + 1}: the worker ended before the fault (exit {worker.returncode})")
        if args.fault == "kill":
            worker.send_signal(signal.SIGKILL)
            worker.wait(30)
        elif args.fault == "postgres":
            connection.close()
            pg._run([str(pg.bin_dir / "pg_ctl"), "-D", str(pg.root / "data"), "-w", "-m", "immediate", "stop"])
            time.sleep(2)
            start_postgres_again(pg)
            worker.wait(150)  # it records its failure once the database is back
        else:
            kill_dovecot(dovecot)
            start_dovecot_again(dovecot)
            worker.wait(60)
        at = RawMessage.objects.filter(mailbox=mailbox, state="processed").count()
        killed_points.append(at)
        wait_until = time.monotonic() + 10
        while any(alive(p) for p in helpers) and time.monotonic() < wait_until:
            time.sleep(0.05)
        problems = []
        if any(alive(p) for p in helpers):
            problems.append("parse helper outlived its parent")
        found, took = next_run_problems(dovecot, user, mailbox, sent)
        problems += found
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                           "AND pid <> pg_backend_pid() AND backend_type = 'client backend'")
            if cursor.fetchone()[0]:
                problems.append("a PostgreSQL session of the first worker is left")
        if ProcessingRun.objects.filter(mailbox=mailbox, status=ProcessingRun.Status.RUNNING).exists():
            problems.append("a run was left running")
        status = "ok" if not problems else "FAILED: " + "; ".join(problems)
        failures += bool(problems)
        print(f"trial {trial + 1:2d}: {args.fault} after {at:2d}/{n} committed "
              f"({'with' if helper else 'without'} parse helper), next run {took:.1f} s: {status}", flush=True)
    print(f"\n{args.trials - failures}/{args.trials} {args.fault} trials survived "
          f"(kill points {min(killed_points)}..{max(killed_points)} of {args.messages} committed) "
          f"in {time.monotonic() - started:.0f} s")
    return failures


if __name__ == "__main__":
    main()
