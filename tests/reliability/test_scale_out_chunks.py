"""Issue 12, scale-out of stored-message processing: an operator reprocesses ~2,000 stored notices
(`manage.py process_stored --wait`, as on the web host: it only queues) and TWO real Celery worker
processes share the run's chunks through Redis, on the shared PostgreSQL. Each notice is processed
once and the run's totals equal those of the same notices processed by one process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from celery import Celery
from django.conf import settings
from django.db import connection
from django.utils import timezone

from bounces.intake.notices import Notice, store_notices
from bounces.models import Bounce, ProcessingRun, RawMessage, RunChunk
from campaigns.models import Campaign, SentMessage
from contacts.models import Contact, MailingList, Subscription
from tests.pipeline.conftest import dsn

from .workers import ROOT, database_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis, pytest.mark.postgres]

N = 2000
CHUNK = 100


def _notices(label: str, n: int) -> list[Notice]:
    """`n` notices of mixed kinds for fresh contacts: hard (token), soft (mailbox full),
    hard for an address we never mailed (unmatched), and a delay."""
    mlist = MailingList.objects.create(name=f"scale {label}")
    campaign = Campaign.objects.create(name=f"scale {label}", subject="s", from_email="news@example.org",
                                       mailing_list=mlist)
    contacts = Contact.objects.bulk_create([Contact(email=f"{label}{i}@example.net") for i in range(n)])
    Subscription.objects.bulk_create([Subscription(contact=c, mailing_list=mlist) for c in contacts])
    sent = SentMessage.objects.bulk_create([
        SentMessage(campaign=campaign, contact=c, email=c.email, message_id=f"{label}{c.pk}@news.example.org",
                    status=SentMessage.Status.SENT, sent_at=timezone.now() - timedelta(hours=1)) for c in contacts])
    notices = []
    for i, s in enumerate(sent):
        if i % 4 == 0:
            raw = dsn(s.email, token=s.token)
        elif i % 4 == 1:
            raw = dsn(s.email, token=s.token, status="4.2.2", diagnostic="452 4.2.2 <{rcpt}>: Mailbox full")
        elif i % 4 == 2:
            raw = dsn(f"stranger-{label}{i}@example.com")
        else:
            raw = dsn(s.email, token=s.token, status="4.4.1", action="delayed",
                      diagnostic="421 4.4.1 <{rcpt}>: Connection timed out")
        notices.append(Notice.mail(source="smtpd", raw=raw))
    return notices


def _totals(run: ProcessingRun) -> dict:
    return {name: getattr(run, name) for name in (
        "status", "total", "processed", "hard", "soft", "delay", "unknown", "unmatched", "errors", "chunks_total",
        "chunks_done")}


def _command(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", "process_stored", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_two_worker_processes_share_one_reprocess_and_count_every_notice_once(redis_server, tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("worker processes need the shared database (pytest --postgres)")
    broker = redis_server.url.rsplit("/", 1)[0] + "/7"  # a database of its own: nothing queued by other tests
    client = Celery("operator", broker=broker)
    client.connection_for_write().default_channel.client.flushdb()
    env = {**database_env(settings.DATABASES["default"]), "REDIS_URL": broker, "CELERY_RESULT_BACKEND": "",
           "PROCESSING_CHUNK_SIZE": str(CHUNK), "BOUNCEMGR_VAR_DIR": str(tmp_path / "var")}
    store_notices(notices=_notices("two", N))

    workers = [subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "bouncemgr", "worker", "--pool=solo", "-n", f"w{i}@%h",
         "-l", "warning", "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for i in (1, 2)]
    try:
        deadline = time.monotonic() + 60
        while len(client.control.ping(timeout=0.5) or []) < 2:  # both workers listen before the run starts
            assert time.monotonic() < deadline, "the workers did not start"
        started = time.monotonic()
        done = _command(env, "--wait", "--timeout", "60")
        took = time.monotonic() - started
    finally:
        outputs = []
        for w in workers:
            w.terminate()
            try:
                outputs.append(w.communicate(timeout=30)[0].decode(errors="replace"))
            except subprocess.TimeoutExpired:
                w.kill()
                outputs.append(w.communicate()[0].decode(errors="replace"))
    assert done.returncode == 0, done.stdout + done.stderr + "\n".join(outputs)
    assert "Traceback" not in "".join(outputs), outputs
    run = ProcessingRun.objects.get(trigger=ProcessingRun.Trigger.REPROCESS)
    assert f"run #{run.pk}: {N} stored messages in {N // CHUNK} chunks" in done.stdout
    assert f"run #{run.pk}: Succeeded — {N} processed" in done.stdout

    # both workers processed chunks (the per-chunk record names the process), each chunk once
    chunks = list(RunChunk.objects.filter(run=run))
    assert len(chunks) == N // CHUNK and {c.state for c in chunks} == {"done"}
    by_worker = {c.worker for c in chunks}
    assert len(by_worker) == 2, by_worker
    assert {c.attempts for c in chunks} == {1} and sum(c.processed for c in chunks) == N
    # each notice processed once: one claim, one attempt, one bounce row
    assert RawMessage.objects.filter(run=run, state="processed", attempts=1).count() == N
    assert Bounce.objects.filter(run=run).values("raw_message_id").distinct().count() == N
    assert Bounce.objects.filter(run=run).count() == N
    two = _totals(run)

    # The same notices (fresh contacts) processed by one process, chunk after chunk.
    store_notices(notices=_notices("one", N))
    alone = _command(env, "--in-process")
    assert alone.returncode == 0, alone.stdout + alone.stderr
    one = _totals(ProcessingRun.objects.filter(trigger=ProcessingRun.Trigger.REPROCESS).latest("id"))
    assert two == one
    assert (two["hard"], two["soft"], two["delay"], two["unmatched"]) == (N // 2, N // 4, N // 4, N // 4)
    print(f"2 workers: {N} notices in {took:.1f} s; totals {two}")


def test_a_chunk_whose_worker_process_is_killed_mid_chunk_is_done_again_and_counted_once(redis_server, tmp_path):
    """SIGKILL of the pool process running a chunk, after some of its batches committed: the
    worker rejects the task (acks_late, reject_on_worker_lost), Redis delivers it again, another
    pool process processes what is left; the run ends once with every notice counted once."""
    if connection.vendor != "postgresql":
        pytest.skip("worker processes need the shared database (pytest --postgres)")
    broker = redis_server.url.rsplit("/", 1)[0] + "/8"
    client = Celery("operator", broker=broker)
    client.connection_for_write().default_channel.client.flushdb()
    env = {**database_env(settings.DATABASES["default"]), "REDIS_URL": broker, "CELERY_RESULT_BACKEND": "",
           "BOUNCEMGR_VAR_DIR": str(tmp_path / "var")}
    n = 1200
    store_notices(notices=_notices("kill", n))
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "bouncemgr", "worker", "--pool=prefork", "--concurrency", "2",
         "-l", "warning", "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    killed: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while len(client.control.ping(timeout=0.5) or []) < 1:
            assert time.monotonic() < deadline, "the worker did not start"
        queued = _command(env, "--chunk-size", "300", "--batch-size", "25")
        assert queued.returncode == 0, queued.stdout + queued.stderr
        run = ProcessingRun.objects.get(trigger=ProcessingRun.Trigger.REPROCESS)
        deadline = time.monotonic() + 60
        while not killed and time.monotonic() < deadline:
            for chunk in RunChunk.objects.filter(run=run, state="running", attempts=1):
                partly = RawMessage.objects.filter(id__in=chunk.ids, state="processed").count()
                if 0 < partly < len(chunk.ids) - 50:  # some batches committed, more to come
                    os.kill(int(chunk.worker.rsplit(":", 1)[1]), signal.SIGKILL)
                    killed.append(chunk.pk)
                    break
            time.sleep(0.01)
        assert killed, "no chunk was caught half done"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            run.refresh_from_db()
            if run.finished:
                break
            time.sleep(0.2)
    finally:
        worker.terminate()
        try:
            output = worker.communicate(timeout=30)[0].decode(errors="replace")
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            output = worker.communicate()[0].decode(errors="replace")
    chunk = RunChunk.objects.get(pk=killed[0])
    assert (chunk.state, chunk.attempts, chunk.processed) == ("done", 2, 300), output
    assert run.status == ProcessingRun.Status.SUCCEEDED, (run.error_log, output)
    assert (run.processed, run.chunks_done, run.chunks_total, run.hard, run.errors) == (n, 4, 4, n // 2, 0)
    assert Bounce.objects.filter(run=run).count() == n
    assert Bounce.objects.filter(run=run).values("raw_message_id").distinct().count() == n
    assert RawMessage.objects.filter(run=run, state="processed", attempts=1).count() == n  # each claimed once
