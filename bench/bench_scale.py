"""Scale-out: 20 mailboxes x 2,000 real bounces on the test Dovecot, PostgreSQL (durable
defaults) and Redis, processed by a Celery worker with 1 and then 2 pool processes.

Each round seeds fresh contacts and sent messages, writes the corpus bounces (rewritten to point
at them, as bench_pipeline.py does) into one Dovecot account per mailbox, starts a real worker
(`celery worker --concurrency N`, prefetch 1, acks_late: the project's settings), sends one
`process_mailbox_task` per mailbox, and waits for every run to finish. It prints the total
throughput, the per-mailbox latency (task sent -> run finished), the CPU seconds of the worker
processes, the PostgreSQL backends and Dovecot, and the load average (other work on the machine
skews the figures: judge the speed-up against the CPU seconds).

    .venv/bin/python bench/bench_scale.py [--mailboxes 20] [--messages 2000] [--workers 1 2]

`--stored N` measures instead one big run over N stored notices (pushed to us, e.g. by the SMTP
receiver, not processed yet): `manage.py process_stored` splits it into chunks of
`--chunk-size` (one task each) and the worker's 1 or 2 pool processes share them; it prints the
throughput, the run's wall time (queued -> ended) and the CPU seconds, as above.

    .venv/bin/python bench/bench_scale.py --stored 20000 [--chunk-size 500] [--workers 1 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its descendants, including children that already exited
    and were waited for (utime + stime + cutime + cstime)."""
    from tests.reliability.soak import _descendants

    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for p in [pid, *_descendants(pid)]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(x) for x in fields[11:15]) / tick
    return total


def postmaster_pid(pg) -> int:
    return int((pg.root / "data" / "postmaster.pid").read_text().split()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mailboxes", type=int, default=20)
    parser.add_argument("--messages", type=int, default=2000, help="bounces per mailbox")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker pool sizes to try")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--stored", type=int, default=0, metavar="N",
                        help="measure one run over N stored notices instead of mailbox runs")
    parser.add_argument("--chunk-size", type=int, default=500, help="with --stored: messages per chunk (task)")
    args = parser.parse_args()

    from bench.services import django_on_test_services

    with django_on_test_services("bm-bench-scale-") as (pg, redis, dovecot, work):
        one_round = stored_round if args.stored else run_round
        results = [one_round(args, n, pg, redis, dovecot, work) for n in args.workers]
    print()
    if args.stored:
        print(f"(one run over {args.stored} stored notices in chunks of {args.chunk_size}; wall and latency: "
              "the run, chunks queued -> last chunk ended)")
    print("| worker processes | messages | wall s | msgs/s | latency min / median / max s "
          "| CPU s worker / PostgreSQL / Dovecot | load average (1 min) |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['workers']} | {r['messages']} | {r['wall']:.1f} | {r['rate']:.0f} | "
              f"{r['lat'][0]:.1f} / {r['lat'][1]:.1f} / {r['lat'][2]:.1f} | "
              f"{r['cpu_worker']:.1f} / {r['cpu_pg']:.1f} / {r['cpu_dovecot']:.1f} | {r['load']} |")
    if len(results) > 1:
        print(f"\nspeed-up {results[-1]['workers']} vs {results[0]['workers']} worker processes: "
              f"{results[-1]['rate'] / results[0]['rate']:.2f}x")
    if any(r["problems"] for r in results):
        print("PROBLEMS: " + "; ".join(p for r in results for p in r["problems"]))
        sys.exit(1)


def stop_worker(worker: subprocess.Popen) -> str:
    """Terminate the Celery worker (kill it if it does not end within a minute); its output."""
    worker.terminate()
    try:
        return worker.communicate(timeout=60)[0].decode(errors="replace")
    except subprocess.TimeoutExpired:
        worker.kill()
        return worker.communicate()[0].decode(errors="replace")


def sent_messages(name: str, label: str, domain: str, n: int) -> list:
    """A list and campaign `name` with `n` fresh subscribed contacts at `domain`, each sent one message."""
    from django.utils import timezone

    from campaigns.models import Campaign, SentMessage
    from contacts.models import Contact, MailingList, Subscription

    mlist = MailingList.objects.create(name=name)
    campaign = Campaign.objects.create(name=name, subject="s", from_email="news@example.org", mailing_list=mlist)
    contacts = Contact.objects.bulk_create([Contact(email=f"{label}-{i}@{domain}") for i in range(n)],
                                           batch_size=2000)
    Subscription.objects.bulk_create([Subscription(contact=c, mailing_list=mlist) for c in contacts],
                                     batch_size=2000)
    now = timezone.now()
    return SentMessage.objects.bulk_create(
        [SentMessage(campaign=campaign, contact=c, email=c.email, message_id=f"m{c.pk}@{domain}",
                     status=SentMessage.Status.SENT, sent_at=now) for c in contacts], batch_size=2000)


def seed(args, label: str, dovecot) -> list:
    from bench_pipeline import load_corpus, rewrite

    from bounces.models import Mailbox

    corpus = load_corpus()
    sent = sent_messages(f"scale {label}", label, "scale.example.org", args.mailboxes * args.messages)
    mailboxes = []
    for m in range(args.mailboxes):
        user = dovecot.add_user()
        for i in range(m * args.messages, (m + 1) * args.messages):
            raw, originals = corpus[i % len(corpus)]
            dovecot.inject(user, rewrite(raw, originals, sent[i].email, sent[i].token))
        mailboxes.append((Mailbox.objects.create(
            name=f"scale-{label}-{m}", protocol="imap", host="127.0.0.1", port=dovecot.imap_port,
            security="none", username=user.name, password=user.password, batch_size=args.batch_size,
            processed_action="delete", unmatched_action="delete"), user))
    return mailboxes


def seed_stored(args, label: str) -> int:
    """`args.stored` corpus bounces for fresh contacts, stored as the SMTP receiver stores them
    (committed, not processed); the run's id is returned by `stored_round`."""
    from bench_pipeline import load_corpus, rewrite

    from bounces.intake.notices import Notice, store_notices

    corpus = load_corpus()
    sent = sent_messages(f"stored {label}", label, "stored.example.org", args.stored)
    notices = []
    for i, s in enumerate(sent):
        raw, originals = corpus[i % len(corpus)]
        notices.append(Notice.mail(source="smtpd", raw=rewrite(raw, originals, s.email, s.token)))
    for start in range(0, len(notices), 2000):
        store_notices(notices=notices[start:start + 2000])
    return len(notices)


class LockWaits:
    """Samples pg_stat_activity every 0.1 s from a connection of its own: how often a backend
    waited on a lock (rows another batch's transaction holds), by the relation it waited for."""

    def __init__(self, db: dict) -> None:
        import threading

        import psycopg

        self.seen: dict[str, int] = {}
        self.samples = 0
        self._stop = threading.Event()
        self._conn = psycopg.connect(host=db["HOST"], port=db["PORT"], dbname=db["NAME"], user=db["USER"],
                                     password=db["PASSWORD"], autocommit=True)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        sql = ("SELECT coalesce(l.relation::regclass::text, l.locktype) FROM pg_locks l "
               "JOIN pg_stat_activity a ON a.pid = l.pid WHERE NOT l.granted")
        while not self._stop.wait(0.1):
            self.samples += 1
            for (what,) in self._conn.execute(sql).fetchall():
                self.seen[what] = self.seen.get(what, 0) + 1

    def stop(self) -> str:
        self._stop.set()
        self._thread.join(5)
        self._conn.close()
        top = sorted(self.seen.items(), key=lambda kv: -kv[1])[:4]
        return (f"{sum(self.seen.values())} in {self.samples} samples"
                + (" (" + ", ".join(f"{k} {v}" for k, v in top) + ")" if top else ""))


def stored_round(args, workers: int, pg, redis, dovecot, work: Path) -> dict:
    """One run over `args.stored` stored notices, its chunks shared by `workers` pool processes."""
    from celery import Celery
    from django.conf import settings

    from bounces.models import Bounce, ProcessingRun, RawMessage
    from tests.reliability.soak import celery_process
    from tests.reliability.workers import database_env

    label = f"s{workers}"
    print(f"round with {workers} worker process(es): storing {args.stored} notices ...", flush=True)
    total = seed_stored(args, label)
    db = settings.DATABASES["default"]
    worker = celery_process("worker", db, redis.url, work, "--concurrency", str(workers),
                            "--without-gossip", "--without-mingle", "--without-heartbeat")
    client = Celery("bench", broker=redis.url, backend=redis.url)
    problems: list[str] = []
    env = {**database_env(db), "REDIS_URL": redis.url, "BOUNCEMGR_VAR_DIR": str(work / "var"),
           "PROCESSING_CHUNK_SIZE": str(args.chunk_size)}
    try:
        client.send_task("bouncemgr.ping", args=["ready"]).get(timeout=120)  # the worker is up
        cpu_pg, cpu_worker = tree_cpu(postmaster_pid(pg)), tree_cpu(worker.pid)
        waits = LockWaits(db)
        t0 = time.monotonic()
        queued = subprocess.run([sys.executable, "manage.py", "process_stored"], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=600)
        if queued.returncode:
            problems.append(f"{label}: process_stored failed: {queued.stderr.strip()[-400:]}")
        run = ProcessingRun.objects.filter(trigger=ProcessingRun.Trigger.REPROCESS).latest("id")
        deadline = t0 + 3600
        while time.monotonic() < deadline and not queued.returncode:
            run.refresh_from_db()
            if run.finished_at:
                break
            time.sleep(0.25)
        wall = time.monotonic() - t0
        waited = waits.stop()
        cpu_worker = tree_cpu(worker.pid) - cpu_worker
        cpu_pg = tree_cpu(postmaster_pid(pg)) - cpu_pg
    finally:
        output = stop_worker(worker)
    run.refresh_from_db()
    busy = sum((c.finished_at - c.started_at).total_seconds() for c in run.chunks.all()
               if c.finished_at and c.started_at)
    span = (run.finished_at - run.started_at).total_seconds() if run.finished_at and run.started_at else 0
    print(f"  chunks in progress on average: {busy / span if span else 0:.2f}; backends waiting on a lock: "
          f"{waited}", flush=True)
    recorded = Bounce.objects.filter(run=run).values("raw_message_id").distinct().count()
    if run.status != ProcessingRun.Status.SUCCEEDED or run.processed != total or recorded != total:
        problems.append(f"{label}: run {run.status}, {run.processed} processed, {recorded} recorded for {total} "
                        f"({run.error_log.strip()[-300:]})")
    if RawMessage.objects.filter(run=run, attempts__gt=1).exists():
        problems.append(f"{label}: messages processed more than once")
    if "Traceback" in output:
        problems.append(f"{label}: traceback in the worker output")
    load = f"{os.getloadavg()[0]:.1f}"
    # The run's own time (chunks queued -> last chunk ended): the command's start-up (Django in a
    # fresh process, a few seconds under load) is left out of the rate, and printed.
    took = (run.finished_at - run.started_at).total_seconds() if run.finished_at and run.started_at else wall
    print(f"  command start-up and queueing: {wall - took:.1f} s", flush=True)
    wall = took
    result = {"workers": workers, "messages": total, "wall": wall, "rate": total / wall, "lat": (took, took, took),
              "cpu_worker": cpu_worker, "cpu_pg": cpu_pg, "cpu_dovecot": 0.0, "load": load, "problems": problems}
    print(f"  {total} notices in {wall:.1f} s ({total / wall:.0f}/s), {run.chunks_total} chunks; CPU worker "
          f"{cpu_worker:.1f} s, PostgreSQL {cpu_pg:.1f} s; load {load}" + (f"; PROBLEMS {problems}" if problems else ""),
          flush=True)
    return result


def run_round(args, workers: int, pg, redis, dovecot, work: Path) -> dict:
    from celery import Celery
    from django.conf import settings

    from bounces.models import Bounce, ProcessingRun
    from tests.reliability.soak import celery_process

    label = f"w{workers}"
    print(f"round with {workers} worker process(es): seeding {args.mailboxes} x {args.messages} ...", flush=True)
    mailboxes = seed(args, label, dovecot)
    worker = celery_process("worker", settings.DATABASES["default"], redis.url, work, "--concurrency", str(workers),
                            "--without-gossip", "--without-mingle", "--without-heartbeat")
    client = Celery("bench", broker=redis.url, backend=redis.url)
    problems: list[str] = []
    try:
        client.send_task("bouncemgr.ping", args=["ready"]).get(timeout=120)  # the worker is up
        cpu_pg, cpu_dovecot, cpu_worker = (tree_cpu(postmaster_pid(pg)), tree_cpu(dovecot.process.pid),
                                           tree_cpu(worker.pid))
        ids = [m.pk for m, _ in mailboxes]
        started = time.time()
        t0 = time.monotonic()
        for pk in ids:
            client.send_task("bounces.tasks.process_mailbox_task", args=[pk])
        deadline = t0 + 3600
        while time.monotonic() < deadline:
            done = ProcessingRun.objects.filter(mailbox_id__in=ids, finished_at__isnull=False).count()
            if done >= len(ids):
                break
            time.sleep(0.5)
        wall = time.monotonic() - t0
        cpu_worker = tree_cpu(worker.pid) - cpu_worker
        cpu_pg = tree_cpu(postmaster_pid(pg)) - cpu_pg
        cpu_dovecot = tree_cpu(dovecot.process.pid) - cpu_dovecot
    finally:
        output = stop_worker(worker)
    runs = list(ProcessingRun.objects.filter(mailbox_id__in=ids))
    latencies = sorted(r.finished_at.timestamp() - started for r in runs if r.finished_at)
    total = args.mailboxes * args.messages
    bounces = Bounce.objects.filter(mailbox_id__in=ids).values("raw_message_id").distinct().count()
    if bounces != total:
        problems.append(f"{label}: {bounces} messages recorded for {total}")
    if any(r.status != ProcessingRun.Status.SUCCEEDED for r in runs):
        bad = next(r for r in runs if r.status != ProcessingRun.Status.SUCCEEDED)
        problems.append(f"{label}: runs " + ", ".join(sorted({r.status for r in runs}))
                        + f" (first: {bad.error_log.strip()[-400:]})")
    left = sum(len(dovecot.message_files(u)) for _, u in mailboxes)
    if left:
        problems.append(f"{label}: {left} messages left on the server")
    if "Traceback" in output:
        problems.append(f"{label}: traceback in the worker output")
    load = f"{os.getloadavg()[0]:.1f}"
    result = {"workers": workers, "messages": total, "wall": wall, "rate": total / wall,
              "lat": (latencies[0], statistics.median(latencies), latencies[-1]) if latencies else (0, 0, 0),
              "cpu_worker": cpu_worker, "cpu_pg": cpu_pg, "cpu_dovecot": cpu_dovecot, "load": load,
              "problems": problems}
    print(f"  {total} messages in {wall:.1f} s ({total / wall:.0f}/s); CPU worker {cpu_worker:.1f} s, "
          f"PostgreSQL {cpu_pg:.1f} s, Dovecot {cpu_dovecot:.1f} s; load {load}"
          + (f"; PROBLEMS {problems}" if problems else ""), flush=True)
    return result


if __name__ == "__main__":
    main()
