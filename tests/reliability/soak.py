"""The soak: bounces arrive continuously in Dovecot while real Celery beat and worker processes
run every mailbox on its schedule; afterwards every message must be stored once and counted
once, no lock or running run left, and the worker's memory flat. Used by bench/soak.py (30
minutes) and tests/reliability/test_soak.py (one minute)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.reliability.workers import ROOT, database_env


@dataclass
class SoakResult:
    duration: float = 0.0
    injected: int = 0
    bounces: int = 0
    stored: int = 0
    counted: int = 0
    runs: dict = field(default_factory=dict)  # status -> count
    rss: list[tuple[float, int]] = field(default_factory=list)  # (seconds, KiB of the worker processes)
    beat_rss: list[tuple[float, int]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    worker_output: str = ""

    def rss_growth(self) -> tuple[int, int]:
        """Median KiB of the second quarter of the samples and of the last quarter (after warm-up)."""
        values = [kib for _, kib in self.rss]
        if len(values) < 4:
            return (values[0], values[-1]) if values else (0, 0)
        q = len(values) // 4
        early, late = sorted(values[q:2 * q]), sorted(values[-q:])
        return early[len(early) // 2], late[len(late) // 2]


def rss_kib(pid: int) -> int:
    """Resident memory of a process and its children, in KiB (from /proc)."""
    total = 0
    for p in [pid, *_descendants(pid)]:
        try:
            with open(f"/proc/{p}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            continue
    return total


def _descendants(pid: int) -> list[int]:
    parents: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as fh:
                    parents[int(name)] = int(fh.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        kids = [p for p, parent in parents.items() if parent == current]
        found += kids
        todo += kids
    return found


def celery_process(kind: str, db: dict, redis_url: str, work: Path, *args: str) -> subprocess.Popen:
    env = {**database_env(db), "REDIS_URL": redis_url, "BOUNCEMGR_VAR_DIR": str(work / "var")}
    command = [sys.executable, "-m", "celery", "-A", "bouncemgr", kind, "-l", "warning", *args]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)


def _stop(process: subprocess.Popen, timeout: float = 60) -> str:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)  # warm shutdown: running tasks finish
    try:
        return process.communicate(timeout=timeout)[0].decode(errors="replace")
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        return process.communicate()[0].decode(errors="replace")


def soak(*, db: dict, dovecot, redis_url: str, work: Path, duration: float, mailboxes: int = 2,
         rate: float = 2.0, interval_seconds: int = 60, concurrency: int = 2, sample_every: float = 5.0,
         log: Callable[[str], None] = print) -> SoakResult:
    """Run the soak for `duration` seconds (bounces at `rate` per second over `mailboxes`), then
    wait for the schedule to pick up the last ones and check the end state."""
    from django.db.models import Count

    from bounces.intake.schedules import PERIODIC_TASK_NAME, sync_mailbox_schedule
    from bounces.models import Bounce, Mailbox, ProcessingRun, RawMessage
    from campaigns.models import Campaign
    from contacts.models import Contact, MailingList
    from tests.pipeline.conftest import dsn, send

    work.mkdir(parents=True, exist_ok=True)
    (work / "var").mkdir(exist_ok=True)
    mlist = MailingList.objects.create(name="soak")
    campaign = Campaign.objects.create(name="soak", subject="s", from_email="news@example.org", mailing_list=mlist)
    boxes = []
    for i in range(mailboxes):
        user = dovecot.add_user()
        mailbox = Mailbox.objects.create(
            name=f"soak-{i}-{user.name}", protocol=Mailbox.Protocol.IMAP, host="127.0.0.1", port=dovecot.imap_port,
            security=Mailbox.Security.NONE, username=user.name, password=user.password, interval_minutes=1)
        sync_mailbox_schedule(mailbox=mailbox)
        boxes.append((mailbox, user))
    if interval_seconds != 60:  # the short version: the same beat entries, a shorter interval
        from django_celery_beat.models import IntervalSchedule, PeriodicTask

        every, _ = IntervalSchedule.objects.get_or_create(every=interval_seconds, period=IntervalSchedule.SECONDS)
        PeriodicTask.objects.filter(name__in=[PERIODIC_TASK_NAME.format(id=m.pk) for m, _ in boxes]).update(
            interval=every)

    result = SoakResult()
    worker = celery_process("worker", db, redis_url, work, "--concurrency", str(concurrency),
                            "--without-gossip", "--without-mingle", "--without-heartbeat")
    beat = celery_process("beat", db, redis_url, work, "--scheduler",
                          "django_celery_beat.schedulers:DatabaseScheduler", "--pidfile", str(work / "beat.pid"),
                          "-s", str(work / "beat-schedule"))
    contacts: list[int] = []
    started = time.monotonic()
    stop_sampling = threading.Event()

    def sample() -> None:
        while not stop_sampling.wait(sample_every):
            at = time.monotonic() - started
            result.rss.append((at, rss_kib(worker.pid)))
            result.beat_rss.append((at, rss_kib(beat.pid)))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        n = 0
        next_report = started + 60
        while time.monotonic() - started < duration:
            mailbox, user = boxes[n % len(boxes)]
            sent = send(campaign, f"soak{n}@example.net")
            contacts.append(sent.contact_id)
            dovecot.inject(user, dsn(sent.email, token=sent.token))
            n += 1
            if worker.poll() is not None or beat.poll() is not None:
                result.problems.append("the worker or beat process died")
                break
            if time.monotonic() >= next_report:
                next_report += 60
                done = RawMessage.objects.filter(state="processed").count()
                log(f"{time.monotonic() - started:6.0f} s: {n} injected, {done} processed, "
                    f"worker RSS {rss_kib(worker.pid) / 1024:.0f} MiB")
            # a steady rate: sleep until this message's slot
            delay = started + n / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        result.injected = n
        log(f"injection done: {n} bounces in {time.monotonic() - started:.0f} s; waiting for the schedule")
        deadline = time.monotonic() + 2 * interval_seconds + 90
        while time.monotonic() < deadline:
            left = sum(len(dovecot.message_files(u)) for _, u in boxes)
            busy = ProcessingRun.objects.filter(status__in=[ProcessingRun.Status.RUNNING,
                                                            ProcessingRun.Status.QUEUED]).exists()
            if not left and not busy and RawMessage.objects.exclude(state="processed").count() == 0:
                break
            time.sleep(1)
    finally:
        result.duration = time.monotonic() - started
        stop_sampling.set()
        sampler.join(10)
        beat_output = _stop(beat)
        result.worker_output = _stop(worker) + beat_output

    result.bounces = Bounce.objects.count()
    result.stored = RawMessage.objects.count()
    result.counted = sum(ProcessingRun.objects.values_list("hard", flat=True))
    result.runs = dict(ProcessingRun.objects.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    n = result.injected
    if result.stored != n:
        result.problems.append(f"{result.stored} messages stored for {n} injected")
    if result.bounces != n:
        result.problems.append(f"{result.bounces} bounces for {n} messages")
    if result.counted != n:
        result.problems.append(f"the runs counted {result.counted} hard bounces for {n}")
    counts = list(Contact.objects.filter(pk__in=contacts).values_list("hard_bounce_count", flat=True))
    if sorted(counts) != [1] * n:
        result.problems.append("a contact was not counted exactly once")
    left = sum(len(dovecot.message_files(u)) for _, u in boxes)
    if left:
        result.problems.append(f"{left} messages left on the server")
    if Mailbox.objects.filter(pk__in=[m.pk for m, _ in boxes], locked_until__isnull=False).exists():
        result.problems.append("a mailbox lock was left")
    if ProcessingRun.objects.filter(status=ProcessingRun.Status.RUNNING).exists():
        result.problems.append("a run was left running")
    if ProcessingRun.objects.filter(status=ProcessingRun.Status.FAILED).exists():
        result.problems.append("failed runs: " + json.dumps(list(
            ProcessingRun.objects.filter(status=ProcessingRun.Status.FAILED).values_list("error_log", flat=True)[:3])))
    if "Traceback" in result.worker_output:
        result.problems.append("a traceback in the worker or beat output")
    return result
