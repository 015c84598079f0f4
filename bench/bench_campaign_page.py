"""Time the campaign results page with 1,000,000 SentMessages and 100,000 Bounces in PostgreSQL.

Starts a private, durable PostgreSQL (tests.servers.postgres, fsync on), migrates, fills
one campaign with COPY (1M contacts, 1M sent messages, 100k bounces over 48 hours, 7
kinds, ~1,000 domains), runs VACUUM ANALYZE, then renders the results page through the
view function (RequestFactory, staff user; template rendering included) N times per
variant and prints the median, p90 and the per-query times of one run.

    .venv/bin/python bench/bench_campaign_page.py [--sent 1000000] [--bounces 100000] [--runs 15]

Target: median under 200 ms server time. After a bulk load the first render computes and
stores the bounce aggregates (CampaignStats); later renders read them and check they are
current with one index-only query; "--stale" also times renders while a refresh is pending
(a new bounce arrived: large campaigns are recomputed by a Celery task, not in the request).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

KINDS = [  # (kind, share, reasons)
    ("hard", 0.40, ["userunknown", "hostunknown", "hasmoved"]),
    ("soft", 0.25, ["mailboxfull", "exceedlimit", "systemerror"]),
    ("blocked", 0.10, ["blocked", "spamdetected", "policyviolation"]),
    ("complaint", 0.05, ["feedback"]),
    ("autoreply", 0.10, ["vacation"]),
    ("delay", 0.05, ["expired"]),
    ("unknown", 0.05, ["undefined"]),
]


def _copy(cursor, model, columns: list[str], rows, *, fill_defaults: bool = True) -> int:
    """COPY rows (tuples in `columns` order) into the model's table; NOT NULL columns the
    caller did not give get the field default, so the bench survives schema additions."""
    import json

    from django.utils import timezone

    extra: list[tuple[str, object]] = []
    if fill_defaults:
        for field in model._meta.concrete_fields:
            if field.primary_key or field.column in columns or field.null:
                continue
            if getattr(field, "auto_now_add", False) or getattr(field, "auto_now", False):
                value: object = timezone.now()
            else:
                value = field.get_default()  # "" for text fields without a default
            if value is None:
                continue  # let PostgreSQL say which column is missing
            if isinstance(value, list | dict):
                value = json.dumps(value)
            extra.append((field.column, value))
    all_columns = columns + [c for c, _ in extra]
    sql = f'COPY {model._meta.db_table} ({", ".join(all_columns)}) FROM STDIN'
    n = 0
    with cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row((*row, *(v for _, v in extra)))
            n += 1
    return n


def fill(*, sent: int, bounces: int, seed: int = 5) -> int:
    """Create one campaign with `sent` messages and `bounces` bounces; returns the campaign id."""
    import datetime as dt

    from django.db import connection
    from django.utils import timezone

    from bounces.models import Bounce
    from campaigns.models import Campaign, SentMessage, new_token
    from contacts.models import Contact, MailingList

    rng = random.Random(seed)
    now = timezone.now()
    sent_at = now - dt.timedelta(hours=48)
    mailing_list = MailingList.objects.create(name="bench")
    refused, deferred = sent // 140, sent // 330
    campaign = Campaign.objects.create(
        name="bench", subject="Bench", from_email="News <news@example.com>", mailing_list=mailing_list,
        status=Campaign.Status.SENT, sent_at=sent_at, finished_at=sent_at + dt.timedelta(hours=2),
        sent_count=sent - refused - deferred, refused_count=refused, deferred_count=deferred,
    )
    domains = [f"mail{i}.example" for i in range(1000)]
    weights = [1 / (i + 1) for i in range(len(domains))]
    t0 = time.perf_counter()
    connection.ensure_connection()
    raw = connection.connection  # the psycopg connection
    emails = [f"user{i}@{d}" for i, d in enumerate(rng.choices(domains, weights, k=sent))]
    with raw.cursor() as cur:
        first_contact = Contact.objects.count()
        _copy(cur, Contact, ["email", "name", "status"], ((e, "", "active") for e in emails))
        cur.execute("SELECT min(id) FROM contacts_contact WHERE id > %s", [first_contact])
        contact0 = cur.fetchone()[0]
        print(f"  contacts: {sent:,} in {time.perf_counter() - t0:.1f}s", flush=True)
        t1 = time.perf_counter()
        tokens = [new_token() for _ in range(sent)]
        _copy(
            cur, SentMessage,
            ["campaign_id", "contact_id", "email", "message_id", "token", "status", "sent_at", "created_at"],
            (
                (campaign.pk, contact0 + i, emails[i], f"{tokens[i]}@bounces.example", tokens[i], "sent",
                 sent_at + dt.timedelta(seconds=i * 7200 / sent), sent_at)
                for i in range(sent)
            ),
        )
        cur.execute("SELECT min(id) FROM campaigns_sentmessage WHERE campaign_id = %s", [campaign.pk])
        sent0 = cur.fetchone()[0]
        print(f"  sent messages: {sent:,} in {time.perf_counter() - t1:.1f}s", flush=True)
        t2 = time.perf_counter()
        chosen = rng.sample(range(sent), bounces)
        kinds = rng.choices(KINDS, [k[1] for k in KINDS], k=bounces)

        def bounce_rows():
            for j, i in enumerate(chosen):
                kind, _, reasons = kinds[j]
                at = sent_at + dt.timedelta(minutes=rng.expovariate(1 / 240))
                at = min(at, now)
                yield (
                    campaign.pk, sent0 + i, contact0 + i, emails[i], kind, rng.choice(reasons),
                    "5.1.1" if kind == "hard" else "4.2.2", "550" if kind == "hard" else "452",
                    f"{kind} diagnostic text for {emails[i]}", "mx.example", "token", "applied", at, at,
                )

        _copy(
            cur, Bounce,
            ["campaign_id", "sent_message_id", "contact_id", "recipient", "kind", "reason", "status_code",
             "reply_code", "diagnostic", "remote_mta", "match_method", "state", "bounced_at", "created_at"],
            bounce_rows(),
        )
        print(f"  bounces: {bounces:,} in {time.perf_counter() - t2:.1f}s", flush=True)
        # The pipeline moves bounced rows' status on; do the same for the hard ones.
        cur.execute(
            "UPDATE campaigns_sentmessage SET status = 'bounced' WHERE id IN "
            "(SELECT sent_message_id FROM bounces_bounce WHERE campaign_id = %s AND kind = 'hard')",
            [campaign.pk],
        )
    raw.commit() if not raw.autocommit else None
    t3 = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    print(f"  vacuum analyze: {time.perf_counter() - t3:.1f}s", flush=True)
    return campaign.pk


def time_view(campaign_id: int, *, runs: int, query: dict[str, str]) -> list[float]:
    """Server time (view + template) of `runs` requests, in milliseconds."""
    from django.contrib.auth import get_user_model
    from django.test import RequestFactory

    from campaigns.views import campaign_results

    user = get_user_model().objects.filter(is_superuser=True).first()
    factory = RequestFactory()
    times = []
    for _ in range(runs):
        request = factory.get(f"/campaigns/{campaign_id}/", query)
        request.user = user
        request._messages = []  # base.html reads messages; none here
        start = time.perf_counter()
        response = campaign_results(request, pk=campaign_id)
        _ = response.content
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, response.status_code
    return times


def explain_one(campaign_id: int) -> None:
    """Print each query of one page render with its time."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        time_view(campaign_id, runs=1, query={})
    for q in ctx.captured_queries:
        sql = " ".join(q["sql"].split())
        print(f"    {float(q['time']) * 1000:7.1f} ms  {sql[:150]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sent", type=int, default=1_000_000)
    parser.add_argument("--bounces", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=15)
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
        os.environ.setdefault("SECRET_KEY", "bench-only-" + "k" * 40)  # settings refuse to start without one
        import django

        django.setup()
        from django.conf import settings
        from django.core.management import call_command

        settings.DEBUG = False
        settings.ALLOWED_HOSTS = ["*"]
        # No collectstatic here: plain static URLs instead of the manifest's hashed names.
        settings.STORAGES = {**settings.STORAGES, "staticfiles": {
            "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
        print(f"PostgreSQL on {server.host}:{server.port} (durable), migrating...", flush=True)
        call_command("migrate", verbosity=0)
        from django.contrib.auth import get_user_model

        get_user_model().objects.create_superuser("bench", "bench@example.com", "bench")
        print(f"filling {args.sent:,} sent messages and {args.bounces:,} bounces...", flush=True)
        t0 = time.perf_counter()
        campaign_id = fill(sent=args.sent, bounces=args.bounces)
        print(f"filled in {time.perf_counter() - t0:.1f}s", flush=True)
        cold = time_view(campaign_id, runs=1, query={})[0]
        print(f"first render (computes and stores the bounce aggregates): {cold:.1f} ms")
        from campaigns.models import CampaignStats

        print(f"  aggregate computation alone: {CampaignStats.objects.get().duration_ms} ms")
        time_view(campaign_id, runs=2, query={})  # warm caches and templates
        print(f"campaign results page, {args.runs} runs each (ms):")
        for label, query in (
            ("results, all kinds, page 1", {}),
            ("results, kind=hard, page 1", {"kind": "hard"}),
            ("results, all kinds, page 10", {"page": "10"}),
            ("results, all kinds, page 50", {"page": "50"}),
            ("results, all kinds, page 1000", {"page": "1000"}),
        ):
            times = sorted(time_view(campaign_id, runs=args.runs, query=query))
            p90 = times[max(0, int(len(times) * 0.9) - 1)]
            print(f"  {label:32s} median {statistics.median(times):6.1f}  p90 {p90:6.1f}  "
                  f"min {times[0]:6.1f}  max {times[-1]:6.1f}")
        from django.utils import timezone

        from bounces.models import Bounce

        template = Bounce.objects.filter(campaign_id=campaign_id).first()
        template.pk = None
        template.bounced_at = timezone.now()
        template.save()  # a new bounce: the stored aggregates no longer match
        from campaigns import tasks

        queued: list[int] = []
        tasks.refresh_campaign_stats_task.delay = queued.append  # no broker here: just record it
        times = sorted(time_view(campaign_id, runs=args.runs, query={}))
        print(f"  {'after a new bounce (stale, task)':32s} median {statistics.median(times):6.1f}  "
              f"min {times[0]:6.1f}  max {times[-1]:6.1f}  (refresh tasks queued: {len(queued)})")
        print("queries of one render (all kinds, page 1):")
        explain_one(campaign_id)
    finally:
        from django.db import connections

        connections.close_all()
        server.stop()


if __name__ == "__main__":
    main()
