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
    args = parser.parse_args()

    from bench.services import django_on_test_services

    with django_on_test_services("bm-bench-scale-") as (pg, redis, dovecot, work):
        results = [run_round(args, n, pg, redis, dovecot, work) for n in args.workers]
    print()
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


def seed(args, label: str, dovecot) -> list:
    from bench_pipeline import load_corpus, rewrite
    from django.utils import timezone

    from bounces.models import Mailbox
    from campaigns.models import Campaign, SentMessage
    from contacts.models import Contact, MailingList, Subscription

    corpus = load_corpus()
    mlist = MailingList.objects.create(name=f"scale {label}")
    campaign = Campaign.objects.create(name=f"scale {label}", subject="s", from_email="news@example.org",
                                       mailing_list=mlist)
    total = args.mailboxes * args.messages
    contacts = Contact.objects.bulk_create(
        [Contact(email=f"{label}-{i}@scale.example.org") for i in range(total)], batch_size=2000)
    Subscription.objects.bulk_create([Subscription(contact=c, mailing_list=mlist) for c in contacts],
                                     batch_size=2000)
    now = timezone.now()
    sent = SentMessage.objects.bulk_create(
        [SentMessage(campaign=campaign, contact=c, email=c.email, message_id=f"m{c.pk}@scale.example.org",
                     status=SentMessage.Status.SENT, sent_at=now) for c in contacts], batch_size=2000)
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
        worker.terminate()
        try:
            output = worker.communicate(timeout=60)[0].decode(errors="replace")
        except subprocess.TimeoutExpired:
            worker.kill()
            output = worker.communicate()[0].decode(errors="replace")
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
