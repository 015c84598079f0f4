"""Benchmark: the whole bounce pipeline, real Dovecot on loopback into a real PostgreSQL.

10,000 real bounces (the corpus files of shared/bounce-corpus/eml, cycled) are rewritten
to point at seeded contacts and SentMessages (the bounced recipient becomes the seeded
address, and the message arrives at our VERP address ``bounces+TOKEN@...`` as a real one
would), dropped into a Dovecot maildir, then one `process_mailbox` run fetches, parses,
matches, records, acts and deletes them. PostgreSQL runs with its durable defaults
(fsync on, synchronous_commit on).

    .venv/bin/python bench/bench_pipeline.py [--messages 10000] [--batch-size 500]

Prints messages/second, peak RSS of the pipeline process and where the time went
(fetch + dispose on the IMAP connection, parse in the engine, database statements,
the rest in Python: matching, decisions, building rows).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("BOUNCE_CORPUS", ROOT.parent / "shared" / "bounce-corpus"))
sys.path.insert(0, str(ROOT))


class Timer:
    def __init__(self) -> None:
        self.totals: dict[str, float] = {}

    @contextmanager
    def section(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.totals[name] = self.totals.get(name, 0.0) + time.perf_counter() - start


def load_corpus() -> list[tuple[bytes, list[str]]]:
    """(raw bytes, labelled recipients) per corpus file."""
    recipients: dict[str, list[str]] = {}
    for line in (CORPUS / "labels.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["recipient"]:
            recipients.setdefault(row["file"], []).append(row["recipient"])
    files = sorted((CORPUS / "eml").glob("*.eml"))
    return [(f.read_bytes(), recipients.get(f.name, [])) for f in files]


def rewrite(raw: bytes, originals: list[str], address: str, token: str) -> bytes:
    """Point a corpus bounce at our seeded recipient and VERP address."""
    for original in originals:
        raw = re.sub(re.escape(original).encode(), address.encode(), raw, flags=re.I)
    return f"Delivered-To: bounces+{token}@bounces.example.org\n".encode() + raw


def _proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--sql-profile", action="store_true", help="print the costliest statements")
    parser.add_argument("--profile", metavar="FILE", help="write a cProfile profile of the run (pipeline process) to FILE")
    args = parser.parse_args()

    from tests.servers.dovecot import DovecotServer
    from tests.servers.postgres import PostgresServer

    work = Path(tempfile.mkdtemp(prefix="bm-bench-pipeline-"))
    pg = PostgresServer.start(durable=True)
    dovecot = DovecotServer.start(work / "dovecot", tls=False)
    try:
        os.environ["DATABASE_URL"] = pg.url
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bouncemgr.settings")
        os.environ.setdefault("BOUNCEMGR_VAR_DIR", str(work / "var"))
        os.environ.setdefault("FIELD_ENCRYPTION_KEY", "YmVuY2gta2V5LWZvci1ib3VuY2VtZ3ItYmVuY2gtMDA=")
        os.environ.setdefault("SECRET_KEY", "bench-only-" + "k" * 40)  # settings refuse to start without one
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        run_bench(args, dovecot)
    finally:
        dovecot.stop()
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)


def run_bench(args: argparse.Namespace, dovecot) -> None:
    from django.db import connection
    from django.utils import timezone

    from bounces.intake import mailbox as intake_mailbox
    from bounces.mailboxes import imap as imap_module
    from bounces.models import Bounce, Mailbox
    from bounces.pipeline import background, processing
    from bounces.pipeline.background import BackgroundParser
    from campaigns.models import Campaign, SentMessage
    from contacts.models import Contact, MailingList, Subscription

    corpus = load_corpus()
    n = args.messages
    print(f"seeding {n} contacts and sent messages; writing {n} corpus bounces into the maildir ...")
    mlist = MailingList.objects.create(name="bench")
    campaign = Campaign.objects.create(name="bench", subject="s", from_email="news@example.org",
                                       mailing_list=mlist)
    contacts = Contact.objects.bulk_create([Contact(email=f"r{i}@bench.example.org") for i in range(n)],
                                           batch_size=2000)
    Subscription.objects.bulk_create([Subscription(contact=c, mailing_list=mlist) for c in contacts],
                                     batch_size=2000)
    now = timezone.now()
    sent = SentMessage.objects.bulk_create(
        [SentMessage(campaign=campaign, contact=c, email=c.email, message_id=f"m{c.pk}@bench.example.org",
                     status=SentMessage.Status.SENT, sent_at=now) for c in contacts],
        batch_size=2000,
    )
    user = dovecot.add_user()
    total_bytes = 0
    for i, message in enumerate(sent):
        raw, originals = corpus[i % len(corpus)]
        data = rewrite(raw, originals, message.email, message.token)
        total_bytes += len(data)
        dovecot.inject(user, data)
    mailbox = Mailbox.objects.create(
        name="bench", protocol="imap", host="127.0.0.1", port=dovecot.imap_port, security="none",
        username=user.name, password=user.password, batch_size=args.batch_size,
        processed_action="delete", unmatched_action="delete",
    )
    print(f"{n} messages, {total_bytes / 1e6:.1f} MB; processing ...")

    timer = Timer()
    real_parse = processing.parse_bounce
    real_fetch = imap_module.IMAPConnector.fetch
    real_apply = imap_module.IMAPConnector.apply
    real_list = imap_module.IMAPConnector.list_messages

    def parse(raw, options=None):
        with timer.section("parse"):
            return real_parse(raw, options)

    def fetch(self, refs, *, batch_size=200):
        iterator = real_fetch(self, refs, batch_size=batch_size)
        while True:
            with timer.section("fetch"):
                try:
                    item = next(iterator)
                except StopIteration:
                    return
            yield item

    def apply(self, dispositions):
        with timer.section("dispose"):
            return real_apply(self, dispositions)

    def list_messages(self, **kwargs):
        with timer.section("fetch"):
            return real_list(self, **kwargs)

    statements: dict[str, list[float]] = {}

    def sql(execute, sql, params, many, context):
        start = time.perf_counter()
        try:
            with timer.section("database"):
                return execute(sql, params, many, context)
        finally:
            if args.sql_profile:
                entry = statements.setdefault(sql[:90], [0, 0.0])
                entry[0] += 1
                entry[1] += time.perf_counter() - start

    from concurrent.futures import Future

    import contacts.services as contact_services

    real_executemany = contact_services.executemany
    real_copy_rows = contact_services.copy_rows

    def copy_rows(sql_text, rows):
        start = time.perf_counter()
        try:
            with timer.section("database"):
                return real_copy_rows(sql_text, rows)
        finally:
            if args.sql_profile:
                entry = statements.setdefault(sql_text[:90], [0, 0.0])
                entry[0] += 1
                entry[1] += time.perf_counter() - start
    real_submit = BackgroundParser.submit

    def executemany(sql_text, rows):
        start = time.perf_counter()
        try:
            with timer.section("database"):
                return real_executemany(sql_text, rows)
        finally:
            if args.sql_profile:
                entry = statements.setdefault("executemany " + sql_text[:78], [0, 0.0])
                entry[0] += 1
                entry[1] += time.perf_counter() - start

    class TimedFuture:
        def __init__(self, future: Future) -> None:
            self.future = future

        def result(self):
            with timer.section("parse"):  # waiting for the parse worker
                return self.future.result()

    def submit(self, pairs):
        return TimedFuture(real_submit(self, pairs))

    contact_services.executemany = executemany
    contact_services.copy_rows = copy_rows
    BackgroundParser.submit = submit
    processing.parse_bounce = parse
    background.parse_bounce = parse
    imap_module.IMAPConnector.fetch = fetch
    imap_module.IMAPConnector.apply = apply
    imap_module.IMAPConnector.list_messages = list_messages
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            backend_pid = cursor.fetchone()[0]
        backend_before = _proc_cpu(backend_pid)
        with connection.execute_wrapper(sql):
            self_before = resource.getrusage(resource.RUSAGE_SELF)
            children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
            profiler = None
            if args.profile:
                import cProfile

                profiler = cProfile.Profile(time.process_time)  # CPU seconds: a loaded machine distorts wall time
                profiler.enable()
            start = time.perf_counter()
            run = intake_mailbox.process_mailbox(mailbox_id=mailbox.pk, trigger="command")
            elapsed = time.perf_counter() - start
            if profiler is not None:
                profiler.disable()
                profiler.dump_stats(args.profile)
            self_after = resource.getrusage(resource.RUSAGE_SELF)
            children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
            backend_cpu = _proc_cpu(backend_pid) - backend_before
    finally:
        processing.parse_bounce = real_parse
        background.parse_bounce = real_parse
        contact_services.executemany = real_executemany
        contact_services.copy_rows = real_copy_rows
        BackgroundParser.submit = real_submit
        imap_module.IMAPConnector.fetch = real_fetch
        imap_module.IMAPConnector.apply = real_apply
        imap_module.IMAPConnector.list_messages = real_list

    if args.sql_profile:
        for text, (count, spent) in sorted(statements.items(), key=lambda kv: -kv[1][1])[:15]:
            print(f"  sql {spent:6.2f} s {count:5d}x  {text}")
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    left = len(dovecot.message_files(user))
    print(f"run: {run.status}; {run.summary()}")
    print(f"bounce rows: {Bounce.objects.count()}, matched: {Bounce.objects.exclude(match_method='none').count()}"
          f", messages left on the server: {left}")
    print(f"elapsed: {elapsed:.2f} s  ->  {n / elapsed:,.0f} msgs/s   peak RSS: {peak_rss_mb:.0f} MB")
    accounted = 0.0
    cpu_main = (self_after.ru_utime - self_before.ru_utime) + (self_after.ru_stime - self_before.ru_stime)
    cpu_worker = (children_after.ru_utime - children_before.ru_utime) + (
        children_after.ru_stime - children_before.ru_stime)
    load = os.getloadavg()[0]
    print(f"CPU: pipeline process {cpu_main:.2f} s, parse worker {cpu_worker:.2f} s, PostgreSQL backend "
          f"{backend_cpu:.2f} s (sum {cpu_main + cpu_worker + backend_cpu:.2f} s); "
          f"load average at the end {load:.2f} on {os.cpu_count()} cores")
    labels = {"parse": "parse (in-process, or waiting for the parse worker)"}
    for name in ("fetch", "dispose", "parse", "database"):
        t = timer.totals.get(name, 0.0)
        accounted += t
        print(f"  {name:9s} {t:6.2f} s  {100 * t / elapsed:5.1f} %  {labels.get(name, '')}")
    other = elapsed - accounted
    print(f"  {'other':9s} {other:6.2f} s  {100 * other / elapsed:5.1f} %  (matching, decisions, rows, rules)")


if __name__ == "__main__":
    main()
