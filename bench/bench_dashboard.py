"""Time the dashboard with 1,000,000 SentMessages and 1,000,000 Bounces in PostgreSQL.

Fills a private, durable PostgreSQL the way bench_campaign_page.py does (every bounce
within the last few days, so all of them fall inside the dashboard's 30-day window: the worst
case), rebuilds the stored counts once (what the beat does every 15 minutes; timed), then
renders the dashboard through the view (RequestFactory, superuser, template included) N times
and prints the median and p90, and each selector's own time; then again with --live bounces
added after the rebuild (counted live until the next one).

    .venv/bin/python bench/bench_dashboard.py [--sent 1000000] [--bounces 1000000] [--runs 15]
                                              [--live 20000]

Target: well under a second server time with 1M bounces in the window.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def time_dashboard(*, runs: int) -> list[float]:
    from django.contrib.auth import get_user_model
    from django.contrib.messages.storage.fallback import FallbackStorage
    from django.contrib.sessions.backends.db import SessionStore
    from django.test import RequestFactory

    from console.views import dashboard

    user = get_user_model().objects.get(username="bench")
    times = []
    for _ in range(runs):
        request = RequestFactory().get("/")
        request.user = user
        request.session = SessionStore()
        request._messages = FallbackStorage(request)
        t0 = time.perf_counter()
        response = dashboard(request)
        response.render()
        times.append((time.perf_counter() - t0) * 1000)
        assert response.status_code == 200
    return times


def _report(selectors, *, runs: int, label: str) -> None:
    from django.utils import timezone

    time_dashboard(runs=2)  # warm caches and templates
    now = timezone.now()
    for name, call in (
        ("dashboard_counts", lambda: selectors.dashboard_counts(now=now)),
        ("mailboxes", selectors.mailboxes), ("recent_runs", selectors.recent_runs),
        ("suppression_count", selectors.suppression_count),
    ):
        samples = []
        for _ in range(5):
            t = time.perf_counter()
            call()
            samples.append((time.perf_counter() - t) * 1000)
        print(f"  {name:<20} median {statistics.median(samples):7.1f} ms")
    times = sorted(time_dashboard(runs=runs))
    p90 = times[int(0.9 * (len(times) - 1))]
    print(f"dashboard ({label}), {runs} renders: median {statistics.median(times):.1f} ms, p90 {p90:.1f} ms",
          flush=True)


def _add_live(n: int) -> None:
    """Copy `n` bounces as new rows (higher ids, bounced now): what arrives between rebuilds."""
    from django.db import connection

    from bounces.models import Bounce

    columns = [f.column for f in Bounce._meta.concrete_fields if f.column != "id"]
    copied = ", ".join(c if c not in ("bounced_at", "created_at") else "now()" for c in columns)
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO bounces_bounce ({', '.join(columns)}) "  # noqa: S608 - fixed names
                       f"SELECT {copied} FROM bounces_bounce ORDER BY id LIMIT %s", [n])
        cursor.execute("ANALYZE bounces_bounce")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sent", type=int, default=1_000_000)
    parser.add_argument("--bounces", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--live", type=int, default=20_000, help="bounces added after the rebuild")
    args = parser.parse_args()

    from tests.servers.postgres import PostgresServer, postgres_available

    reason = postgres_available()
    if reason:
        sys.exit(f"cannot run: {reason}")
    server = PostgresServer.start(durable=True)
    try:
        os.environ["DATABASE_URL"] = server.url
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bouncemgr.settings")
        os.environ.setdefault("FIELD_ENCRYPTION_KEY", "dGVzdC1rZXktZm9yLWJvdW5jZW1nci10ZXN0cy0wMDA=")
        import django

        django.setup()
        from django.conf import settings
        from django.core.management import call_command

        settings.DEBUG = False
        settings.ALLOWED_HOSTS = ["*"]
        settings.STORAGES = {**settings.STORAGES, "staticfiles": {
            "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
        print(f"PostgreSQL on {server.host}:{server.port} (durable), migrating...", flush=True)
        call_command("migrate", verbosity=0)
        from django.contrib.auth import get_user_model

        from bench.bench_campaign_page import fill

        get_user_model().objects.create_superuser("bench", "bench@example.com", "bench")
        print(f"filling {args.sent:,} sent messages and {args.bounces:,} bounces...", flush=True)
        t0 = time.perf_counter()
        fill(sent=args.sent, bounces=args.bounces)
        print(f"filled in {time.perf_counter() - t0:.1f}s", flush=True)

        from console import selectors, services

        t0 = time.perf_counter()
        state = services.rebuild_dashboard_counts()
        print(f"rebuild of the stored counts: {(time.perf_counter() - t0) * 1000:.0f} ms "
              f"({state.took_ms} ms inside; {services.DashboardCount.objects.count():,} rows)", flush=True)
        _report(selectors, runs=args.runs, label="just after a rebuild")
        _add_live(args.live)
        _report(selectors, runs=args.runs, label=f"with {args.live:,} bounces since the rebuild")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
