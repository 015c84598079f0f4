"""Reliability: crashes, a vanishing server, concurrent runs, memory on 10,000 messages."""

from __future__ import annotations

import threading
import tracemalloc

import pytest
from django.db import connection, connections

from bounces.intake.mailbox import DatabaseUnavailableError, TransientRunError, process_mailbox
from bounces.intake.stored import process_stored_messages
from bounces.models import Bounce, Mailbox, ProcessingRun, RawMessage
from contacts.models import Contact

from .conftest import dsn, send

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.dovecot]


class Killed(BaseException):
    """Stands for the worker being killed: not an Exception, nothing catches it."""


def _inject_bounces(server, user, campaign, n: int, prefix: str = "r") -> list:
    sent = [send(campaign, f"{prefix}{i}@example.net") for i in range(n)]
    server.inject_many(user, [dsn(s.email, token=s.token) for s in sent])
    return sent


def test_killing_the_worker_between_commit_and_disposition_loses_and_double_counts_nothing(
    pipeline_dovecot, mail_user, mailbox, campaign
):
    sent = _inject_bounces(pipeline_dovecot, mail_user, campaign, 12)
    mailbox.batch_size = 5
    mailbox.save(update_fields=["batch_size"])
    calls = []

    def kill_on_second_batch(ids: list[int]) -> None:
        calls.append(ids)
        if len(calls) == 2:
            raise Killed

    with pytest.raises(Killed):
        process_mailbox(mailbox_id=mailbox.pk, crash_after_commit=kill_on_second_batch)

    # batch 1 committed and disposed; batch 2 committed, not disposed; the rest on the server
    assert RawMessage.objects.filter(state="processed").count() == 10
    assert RawMessage.objects.filter(disposed=True).count() == 5
    assert len(pipeline_dovecot.message_files(mail_user)) == 7
    # a killed worker does not release its lock: let it expire
    Mailbox.objects.filter(pk=mailbox.pk).update(locked_until=None)

    run = process_mailbox(mailbox_id=mailbox.pk)

    assert run.status == ProcessingRun.Status.SUCCEEDED, run.error_log
    assert (run.duplicates, run.fetched, run.hard) == (5, 2, 2)
    assert Bounce.objects.count() == 12
    assert set(Contact.objects.values_list("hard_bounce_count", flat=True)) == {1}
    assert {b.contact_id for b in Bounce.objects.all()} == {s.contact_id for s in sent}
    assert pipeline_dovecot.message_files(mail_user) == []
    assert RawMessage.objects.filter(disposed=False).count() == 0
    killed = ProcessingRun.objects.exclude(pk=run.pk).get()
    assert killed.status == ProcessingRun.Status.FAILED and "Interrupted" in killed.error_log


def test_a_crash_before_processing_leaves_stored_messages_that_the_next_run_processes(
    pipeline_dovecot, mail_user, mailbox, campaign
):
    _inject_bounces(pipeline_dovecot, mail_user, campaign, 3)
    from bounces.pipeline.processing import Processor

    original = Processor.process

    def boom(self, items):
        raise Killed

    Processor.process = boom
    try:
        with pytest.raises(Killed):
            process_mailbox(mailbox_id=mailbox.pk)
    finally:
        Processor.process = original
    assert RawMessage.objects.filter(state="new").count() == 3
    assert not Bounce.objects.exists()
    assert len(pipeline_dovecot.message_files(mail_user)) == 3

    run = process_mailbox(mailbox_id=mailbox.pk)

    assert (run.fetched, run.hard) == (0, 3)
    assert Bounce.objects.count() == 3
    assert pipeline_dovecot.message_files(mail_user) == []


def test_the_server_disappearing_mid_run_ends_the_run_with_an_error_and_loses_nothing(
    pipeline_dovecot, mail_user, mailbox, campaign
):
    from tests.servers.proxy import CuttableProxy

    _inject_bounces(pipeline_dovecot, mail_user, campaign, 9)
    proxy = CuttableProxy(target=("127.0.0.1", pipeline_dovecot.imap_port)).start()
    Mailbox.objects.filter(pk=mailbox.pk).update(port=proxy.port, batch_size=3)
    _reenter_password(mailbox)  # a new endpoint: the stored password is bound to the old one

    def vanish(run, n):
        proxy.close()  # the server is gone: live connections cut, new ones refused

    with pytest.raises(TransientRunError):
        process_mailbox(mailbox_id=mailbox.pk, progress=vanish)

    run = ProcessingRun.objects.get()
    assert run.status == ProcessingRun.Status.FAILED
    assert "connection" in run.error_log.lower() or "refused" in run.error_log.lower()
    assert Mailbox.objects.get(pk=mailbox.pk).last_error
    stored = RawMessage.objects.count()
    assert 3 <= stored < 9  # what was fetched before the server went is stored and processed
    assert Bounce.objects.count() == stored
    disposed = RawMessage.objects.filter(disposed=True).count()
    assert len(pipeline_dovecot.message_files(mail_user)) == 9 - disposed

    Mailbox.objects.filter(pk=mailbox.pk).update(port=pipeline_dovecot.imap_port)
    _reenter_password(mailbox)
    again = process_mailbox(mailbox_id=mailbox.pk)

    assert again.status == ProcessingRun.Status.SUCCEEDED
    assert Bounce.objects.count() == 9
    assert sum(Contact.objects.values_list("hard_bounce_count", flat=True)) == 9
    assert pipeline_dovecot.message_files(mail_user) == []


def _threads(target, n: int = 2) -> list:
    results: list = []
    barrier = threading.Barrier(n)

    def work():
        try:
            barrier.wait()
            results.append(target())
        except BaseException as exc:  # noqa: BLE001 - reported below
            results.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


@pytest.mark.postgres
def test_two_runs_started_at_once_process_each_message_once(pipeline_dovecot, mail_user, mailbox, campaign):
    if connection.vendor != "postgresql":
        pytest.skip("concurrency is tested on PostgreSQL (pytest --postgres)")
    _inject_bounces(pipeline_dovecot, mail_user, campaign, 40)

    results = _threads(lambda: process_mailbox(mailbox_id=mailbox.pk))

    assert all(isinstance(r, ProcessingRun) for r in results), results
    assert Bounce.objects.count() == 40
    assert sum(r.hard for r in ProcessingRun.objects.all()) == 40
    assert sum(Contact.objects.values_list("hard_bounce_count", flat=True)) == 40
    assert pipeline_dovecot.message_files(mail_user) == []


@pytest.mark.postgres
def test_two_processors_claiming_the_same_stored_messages_process_each_once(campaign):
    if connection.vendor != "postgresql":
        pytest.skip("concurrency is tested on PostgreSQL (pytest --postgres)")
    sent = [send(campaign, f"c{i}@example.net") for i in range(300)]
    RawMessage.objects.bulk_create([
        RawMessage(dedupe_key=f"upload:{s.pk}", source="upload", sha256="0" * 64, raw=dsn(s.email, token=s.token))
        for s in sent
    ])

    results = _threads(lambda: process_stored_messages(batch_size=20))

    assert all(isinstance(r, ProcessingRun) for r in results), results
    assert Bounce.objects.count() == 300
    assert sum(r.hard for r in results) == 300
    assert sum(Contact.objects.values_list("hard_bounce_count", flat=True)) == 300


@pytest.mark.slow
def test_a_run_over_3000_messages_keeps_memory_bounded(pipeline_dovecot, mail_user, mailbox, campaign):
    # Messages of ~12 KB: 36 MB in all, 1.2 MB per batch of 100. Holding them would show;
    # streaming keeps a batch. (Above 2,000 new messages the run parses in its helper
    # process, as a large production run does; bench/bench_pipeline.py runs 10,000.)
    padding = ("x" * 76 + "\r\n") * 150
    sent = send(campaign, "many@example.net")
    raw = dsn("many@example.net", token=sent.token).replace(b"This is the mail system",
                                                            padding.encode() + b"This is the mail system")
    n = 3_000
    for _ in range(n):
        pipeline_dovecot.inject(mail_user, raw)
    Mailbox.objects.filter(pk=mailbox.pk).update(batch_size=100)
    from bounces.pipeline import background

    background.FORK_WITH_THREADS = True  # as in production; proxy threads of earlier tests linger
    tracemalloc.start()
    try:
        run = process_mailbox(mailbox_id=mailbox.pk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        background.FORK_WITH_THREADS = False

    assert run.fetched == n and run.hard == n, run.summary() + run.error_log
    print(f"tracemalloc peak during the {n:,}-message run ({n * len(raw) / 1e6:.0f} MB): {peak / 1e6:.1f} MB")
    assert n * len(raw) > 35 * 1024 * 1024
    assert peak < 20 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"


def test_a_folder_reset_does_not_count_processed_messages_again(pipeline_dovecot, mail_user, mailbox, campaign):
    sent = send(campaign, "keep@example.net")
    pipeline_dovecot.inject(mail_user, dsn("keep@example.net", token=sent.token))
    Mailbox.objects.filter(pk=mailbox.pk).update(processed_action="mark_read", fetch_mode="all")
    first = process_mailbox(mailbox_id=mailbox.pk)
    assert first.hard == 1

    pipeline_dovecot.reset_uidvalidity(mail_user)  # a restore: new UIDVALIDITY, new UIDs
    pipeline_dovecot.inject(mail_user, dsn("new@example.net"))
    again = process_mailbox(mailbox_id=mailbox.pk)

    # the old message is a duplicate; the new one is a hard bounce nobody matches
    assert (again.duplicates, again.fetched, again.hard, again.unmatched) == (1, 2, 1, 1), again.summary()
    assert RawMessage.objects.count() == 2
    assert "UIDVALIDITY changed" in again.error_log
    assert Contact.objects.get(pk=sent.contact_id).hard_bounce_count == 1


@pytest.mark.postgres
@pytest.mark.parametrize("kill_after_processed", [1, 7, 15, 30])
def test_a_worker_killed_with_sigkill_mid_run_loses_and_double_counts_nothing(
    pipeline_dovecot, mail_user, mailbox, campaign, kill_after_processed
):
    """A real kill: `process_bounces` in a subprocess, SIGKILLed once rows are committed."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from django.conf import settings

    from tests.conftest import TEST_ENCRYPTION_KEY

    if connection.vendor != "postgresql":
        pytest.skip("the subprocess needs a shared database (pytest --postgres)")
    sent = _inject_bounces(pipeline_dovecot, mail_user, campaign, 40, prefix=f"k{kill_after_processed}-")
    Mailbox.objects.filter(pk=mailbox.pk).update(batch_size=5)
    db = settings.DATABASES["default"]
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "FIELD_ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
        "DJANGO_SETTINGS_MODULE": "bouncemgr.settings",
    }
    root = Path(__file__).resolve().parents[2]
    worker = subprocess.Popen(
        [sys.executable, str(root / "manage.py"), "process_bounces", "--mailbox", mailbox.name, "--no-progress"],
        env=env, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while RawMessage.objects.filter(state="processed").count() < kill_after_processed:
            assert worker.poll() is None, "the worker ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.005)
        worker.send_signal(signal.SIGKILL)
    finally:
        worker.wait(10)
    assert worker.returncode == -signal.SIGKILL
    killed_at = RawMessage.objects.filter(state="processed").count()
    assert killed_at < 40, "the run finished before the kill; nothing was tested"
    Mailbox.objects.filter(pk=mailbox.pk).update(locked_until=None)  # the dead run's lock, expired

    run = process_mailbox(mailbox_id=mailbox.pk)

    assert run.status == ProcessingRun.Status.SUCCEEDED, run.error_log
    assert Bounce.objects.count() == 40
    assert sorted(Contact.objects.filter(pk__in=[s.contact_id for s in sent])
                  .values_list("hard_bounce_count", flat=True)) == [1] * 40
    assert pipeline_dovecot.message_files(mail_user) == []
    assert not RawMessage.objects.exclude(state="processed").exists()
    assert not RawMessage.objects.filter(disposed=False).exists()


def _reenter_password(mailbox) -> None:
    """What the operator does after repointing a mailbox: enter its password again."""
    row = Mailbox.objects.get(pk=mailbox.pk)
    row.enter_secrets(password=row.password)
    row.save()


@pytest.mark.postgres
def test_a_batch_whose_commit_went_through_as_the_connection_broke_is_counted_once(
    pipeline_dovecot, mail_user, mailbox, campaign, monkeypatch
):
    """The database stops right as a batch's COMMIT is written: the server has the batch (and
    its counts, added in the same transaction), the worker only sees the connection break.
    Recording the failed run must not write the worker's lower figures over the stored ones:
    the next run takes those messages as already done, so the batch would be counted by no run
    (seen as 195 of 200 after a real `pg_ctl stop -m immediate`)."""
    from django.db import OperationalError

    from bounces.pipeline.processing import Processor

    n = 10
    sent = [send(campaign, f"cc{i}@example.net") for i in range(n)]
    for s in sent:
        pipeline_dovecot.inject(mail_user, dsn(s.email, token=s.token))
    Mailbox.objects.filter(pk=mailbox.pk).update(batch_size=5)
    real = Processor.process

    def commit_then_break(self, items):
        real(self, items)  # committed, counts included
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(Processor, "process", commit_then_break)
    with pytest.raises(DatabaseUnavailableError):  # the task retries it later
        process_mailbox(mailbox_id=mailbox.pk)
    monkeypatch.undo()

    first = ProcessingRun.objects.get()
    assert first.status == ProcessingRun.Status.FAILED
    assert first.hard == 5  # what the batch committed
    again = process_mailbox(mailbox_id=mailbox.pk)
    assert again.status == ProcessingRun.Status.SUCCEEDED, again.error_log
    assert (again.duplicates, again.hard) == (5, 5)
    assert sum(ProcessingRun.objects.values_list("hard", flat=True)) == n == Bounce.objects.count()
    assert pipeline_dovecot.message_files(mail_user) == []
