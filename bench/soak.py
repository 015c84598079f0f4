"""Soak: bounces arrive continuously in Dovecot while Celery beat schedules every mailbox each
minute and a real worker processes them (Redis broker, PostgreSQL), for `--minutes`.

Prints the worker's resident memory over time (main process and its pool children) and checks
at the end: every message stored once and counted once (the runs' counters), one bounce per
message, each contact bounced once, the server folders emptied, no mailbox lock and no run left
running, no failed run, no traceback in the worker or beat output. Exit status 1 on a problem.

    .venv/bin/python bench/soak.py [--minutes 30] [--mailboxes 3] [--rate 2] [--concurrency 2]

The suite runs a one-minute version with 10-second intervals (tests/reliability/test_soak.py).
PostgreSQL runs with its durable defaults here (fsync, synchronous commit).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--mailboxes", type=int, default=3)
    parser.add_argument("--rate", type=float, default=2.0, help="bounces per second, all mailboxes together")
    parser.add_argument("--interval", type=int, default=60, help="seconds between scheduled runs of a mailbox")
    parser.add_argument("--concurrency", type=int, default=2, help="worker pool processes")
    args = parser.parse_args()

    from bench.services import django_on_test_services

    with django_on_test_services("bm-bench-soak-") as (pg, redis, dovecot, work):
        from django.conf import settings

        from tests.reliability.soak import soak

        print(f"soak: {args.minutes:g} min, {args.mailboxes} mailboxes, {args.rate:g} bounces/s, runs every "
              f"{args.interval} s, worker concurrency {args.concurrency}; load average {_load()}", flush=True)
        result = soak(db=settings.DATABASES["default"], dovecot=dovecot, redis_url=redis.url, work=work / "soak",
                      duration=args.minutes * 60, mailboxes=args.mailboxes, rate=args.rate,
                      interval_seconds=args.interval, concurrency=args.concurrency, sample_every=15.0,
                      log=lambda line: print(line, flush=True))
    print(f"\n{result.injected} bounces in {result.duration / 60:.1f} min (injection and the last runs); "
          f"{result.stored} stored, {result.bounces} bounces, {result.counted} counted by the runs; "
          f"runs: {result.runs}")
    print("worker RSS (main + pool), MiB, every ~minute: "
          + " ".join(f"{kib / 1024:.0f}" for at, kib in result.rss[::4]))
    early, late = result.rss_growth()
    print(f"worker RSS median, 2nd quarter -> last quarter: {early / 1024:.1f} -> {late / 1024:.1f} MiB; "
          f"beat {result.beat_rss[0][1] / 1024 if result.beat_rss else 0:.1f} -> "
          f"{result.beat_rss[-1][1] / 1024 if result.beat_rss else 0:.1f} MiB; load average {_load()}")
    if result.problems:
        print("PROBLEMS: " + "; ".join(result.problems))
        sys.exit(1)
    print("no problem: every message stored once and counted once, no lock, no run left running")


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()
