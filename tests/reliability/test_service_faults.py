"""Issue 12, fault injection against the real services: Dovecot stopped mid-fetch, Redis (the
Celery broker) restarted while a worker runs a mailbox, the database's disk full. After each:
every message stored once and counted once, nothing deleted from the server before its result
was committed, no lock left behind, and the next run finishes the job."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from bounces.intake.mailbox import DatabaseUnavailableError, TransientRunError, process_mailbox
from bounces.models import Bounce, Mailbox, ProcessingRun, RawMessage
from contacts.models import Contact
from tests.reliability.workers import ROOT, database_env, kill_dovecot, start_dovecot_again
from tests.reliability.workers import inject_bounces as _inject
from tests.reliability.workers import wait_until as _wait

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.dovecot]


def assert_every_message_once(server, user, mailbox: Mailbox, sent: list) -> None:
    """The end state of a clean run: one bounce per message, each contact counted once, the
    server emptied, every message counted once over all the runs, no lock left."""
    assert Bounce.objects.count() == len(sent)
    assert RawMessage.objects.count() == len(sent)
    assert sorted(Contact.objects.filter(pk__in=[s.contact_id for s in sent])
                  .values_list("hard_bounce_count", flat=True)) == [1] * len(sent)
    assert server.message_files(user) == []
    assert sum(ProcessingRun.objects.values_list("hard", flat=True)) == len(sent)
    assert Mailbox.objects.get(pk=mailbox.pk).locked_until is None


def assert_nothing_left_the_server_unrecorded(server, user, n: int) -> None:
    """Every message gone from the server has its result committed (no more messages are gone
    than processed rows exist), and every processed message has its bounce."""
    processed = RawMessage.objects.filter(state=RawMessage.State.PROCESSED).count()
    assert not RawMessage.objects.filter(disposed=True).exclude(state=RawMessage.State.PROCESSED).exists()
    assert n - len(server.message_files(user)) <= processed
    assert Bounce.objects.count() == processed


# ------------------------------------------------------------------------------ Dovecot
def test_dovecot_stopped_mid_fetch_fails_the_run_cleanly_and_the_next_run_finishes_the_job(
    pipeline_dovecot, mail_user, mailbox, campaign
):
    """Dovecot (master and sessions) is killed while the run works on its second batch, and
    started again: the run fails with a connection error, releases its lock, and what it
    committed stays; the next run processes the rest, nothing twice."""
    n = 100
    sent = _inject(pipeline_dovecot, mail_user, campaign, n, "dv")
    Mailbox.objects.filter(pk=mailbox.pk).update(batch_size=5)
    stoppers: list[threading.Timer] = []

    def stop_during_next_fetch(run, done):
        if not stoppers:  # after the first batch: the next FETCH is about to go out
            stoppers.append(threading.Timer(0.01, kill_dovecot, [pipeline_dovecot]))
            stoppers[0].start()

    try:
        with pytest.raises(TransientRunError):
            process_mailbox(mailbox_id=mailbox.pk, progress=stop_during_next_fetch)
    finally:
        for thread in stoppers:
            thread.join(30)
        if pipeline_dovecot.process is None:
            start_dovecot_again(pipeline_dovecot)
    run = ProcessingRun.objects.get()
    assert run.status == ProcessingRun.Status.FAILED and run.finished_at is not None
    assert Mailbox.objects.get(pk=mailbox.pk).last_error
    assert Mailbox.objects.get(pk=mailbox.pk).locked_until is None
    assert 5 <= RawMessage.objects.count() < n
    assert_nothing_left_the_server_unrecorded(pipeline_dovecot, mail_user, n)

    again = process_mailbox(mailbox_id=mailbox.pk)

    assert again.status == ProcessingRun.Status.SUCCEEDED, again.error_log
    assert_every_message_once(pipeline_dovecot, mail_user, mailbox, sent)


# ------------------------------------------------------------------------------ Redis
def restart_redis(server, *, down_seconds: float = 1.0) -> None:
    """Kill the test redis-server (SIGKILL: no persistence, the queue is lost) and start it
    again on the same port after `down_seconds`."""
    server.process.kill()
    server.process.wait(10)
    time.sleep(down_seconds)
    log = open(server.root / "redis-restarted.log", "wb")  # noqa: SIM115 - closed with the process
    server.process = subprocess.Popen(
        ["redis-server", "--port", str(server.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(server.root)], stdout=log, stderr=subprocess.STDOUT)
    assert _wait(lambda: subprocess.run(["redis-cli", "-p", str(server.port), "ping"], capture_output=True,
                                        text=True).stdout.strip() == "PONG", 15)


def celery_worker(db: dict, redis_url: str, *extra: str) -> subprocess.Popen:
    """A real Celery worker process on the Redis broker and the test PostgreSQL."""
    env = {**database_env(db), "REDIS_URL": redis_url}
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "bouncemgr", "worker", "--pool=solo", "-l", "warning",
         "--without-gossip", "--without-mingle", "--without-heartbeat", *extra],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )


def stop_worker(worker: subprocess.Popen) -> str:
    worker.terminate()
    try:
        return worker.communicate(timeout=30)[0].decode(errors="replace")
    except subprocess.TimeoutExpired:
        worker.kill()
        return worker.communicate()[0].decode(errors="replace")


@pytest.mark.redis
@pytest.mark.postgres
def test_redis_restarted_while_a_worker_runs_a_mailbox_loses_and_double_counts_nothing(
    redis_server, pipeline_dovecot, mail_user, mailbox, campaign
):
    """The broker dies mid-run (its queue with it) and comes back: the run in progress needs
    only the database and the mail server, so it finishes; the worker reconnects and takes the
    next mailbox task; every message is counted once."""
    if connection.vendor != "postgresql":
        pytest.skip("the worker process needs the shared database (pytest --postgres)")
    from celery import Celery

    from bounces.tasks import process_mailbox_task

    n = 300
    sent = _inject(pipeline_dovecot, mail_user, campaign, n, "rd")
    Mailbox.objects.filter(pk=mailbox.pk).update(batch_size=5)
    worker = celery_worker(settings.DATABASES["default"], redis_server.url)
    output = ""
    try:
        client = Celery("client", broker=redis_server.url, backend=redis_server.url)
        client.send_task(process_mailbox_task.name, args=[mailbox.pk])
        assert _wait(lambda: RawMessage.objects.filter(state="processed").count() >= 5, 120), "the run never started"
        # Counted just before the kill (not after the restart, which takes over a second: on
        # an idle machine the run may finish while Redis is down, which is fine).
        at_kill = RawMessage.objects.filter(state="processed").count()
        restart_redis(redis_server)
        assert at_kill < n, "the run ended before Redis was killed"
        assert _wait(lambda: not ProcessingRun.objects.filter(
            status__in=[ProcessingRun.Status.RUNNING, ProcessingRun.Status.QUEUED]).exists(), 180)
        first = ProcessingRun.objects.get()
        assert first.status == ProcessingRun.Status.SUCCEEDED, first.error_log
        assert_nothing_left_the_server_unrecorded(pipeline_dovecot, mail_user, n)
        # the same worker, reconnected to the new Redis, runs the next task
        sent += _inject(pipeline_dovecot, mail_user, campaign, 10, "rd2-")
        client = Celery("client2", broker=redis_server.url, backend=redis_server.url)
        outcome = client.send_task(process_mailbox_task.name, args=[mailbox.pk]).get(timeout=120)
        assert outcome["status"] == ProcessingRun.Status.SUCCEEDED, outcome
        assert worker.poll() is None
    finally:
        output = stop_worker(worker)
    assert_every_message_once(pipeline_dovecot, mail_user, mailbox, sent)
    assert "Traceback" not in output.split("Connection to broker lost")[0], output


# ------------------------------------------------------------------------------ disk full
def _pg_user_ids(postgres_server) -> tuple[int, int]:
    user = postgres_server.user
    return (user.pw_uid, user.pw_gid) if user is not None else (os.getuid(), os.getgid())


@pytest.mark.postgres
def test_the_database_disk_filling_up_mid_run_stops_it_cleanly_and_the_next_run_finishes(
    pipeline_dovecot, mail_user, mailbox, campaign, postgres_server
):
    """The stored messages' table lives on a small file system that fills up mid-run (a real
    ENOSPC from PostgreSQL): the run stops with one clear line, its lock released; nothing left
    the server unrecorded; once space is freed the next run finishes the job."""
    if connection.vendor != "postgresql":
        pytest.skip("needs the shared PostgreSQL (pytest --postgres)")
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root")
    n = 120
    sent = _inject(pipeline_dovecot, mail_user, campaign, n, "df")
    Mailbox.objects.filter(pk=mailbox.pk).update(batch_size=5)
    # not under pytest's basetemp (0700): the PostgreSQL user must reach it
    mount = Path(tempfile.mkdtemp(prefix="bm-diskfull-"))
    mount.chmod(0o755)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)]).returncode != 0:
        mount.rmdir()
        pytest.skip("cannot mount a tmpfs here")
    table = RawMessage._meta.db_table
    filler = mount / "filler"
    try:
        os.chown(mount, *_pg_user_ids(postgres_server))
        (mount / "ts").mkdir()
        os.chown(mount / "ts", *_pg_user_ids(postgres_server))
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE TABLESPACE small LOCATION '{mount / 'ts'}'")
            cursor.execute(f'ALTER TABLE "{table}" SET TABLESPACE small')
        # leave about 160 KB: a few batches fit, then the disk is full
        free = os.statvfs(mount).f_bavail * os.statvfs(mount).f_frsize
        filler.write_bytes(b"\0" * max(0, free - 160 * 1024))
        with pytest.raises(DatabaseUnavailableError, match="out of disk space"):
            process_mailbox(mailbox_id=mailbox.pk)
        run = ProcessingRun.objects.get()
        assert run.status == ProcessingRun.Status.FAILED and "No space left" in run.error_log
        assert Mailbox.objects.get(pk=mailbox.pk).locked_until is None
        assert 0 < RawMessage.objects.count() < n
        assert_nothing_left_the_server_unrecorded(pipeline_dovecot, mail_user, n)
        filler.unlink()

        again = process_mailbox(mailbox_id=mailbox.pk)

        assert again.status == ProcessingRun.Status.SUCCEEDED, again.error_log
        assert_every_message_once(pipeline_dovecot, mail_user, mailbox, sent)
    finally:
        filler.unlink(missing_ok=True)
        connection.close()
        with connection.cursor() as cursor:
            cursor.execute(f'ALTER TABLE "{table}" SET TABLESPACE pg_default')
            cursor.execute("DROP TABLESPACE IF EXISTS small")
        subprocess.run(["umount", str(mount)], check=False)
        mount.rmdir()
