"""Issue 12, items 9 and 12 against the real PostgreSQL and Dovecot: a run killed with SIGKILL
while its parse helper works, PostgreSQL stopping mid-run, the run lock of a dead run."""

from __future__ import annotations

import signal
import time

import pytest
from django.conf import settings
from django.db import connection

from bounces.intake.mailbox import DatabaseUnavailableError, process_mailbox
from bounces.models import Bounce, Mailbox, ProcessingRun, RawMessage
from bounces.pipeline import runs
from contacts.models import Contact
from tests.reliability.workers import alive, children_of, start_postgres_again, start_run
from tests.reliability.workers import inject_bounces as _inject
from tests.reliability.workers import wait_until as _wait

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.dovecot, pytest.mark.postgres]


def _postgres_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("a second process needs the shared database (pytest --postgres)")


def _other_sessions() -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid, state FROM pg_stat_activity WHERE datname = current_database() "
                       "AND pid <> pg_backend_pid() AND backend_type = 'client backend'")
        return cursor.fetchall()


def _accepting(server) -> bool:
    import socket

    try:
        socket.create_connection((server.host, server.port), timeout=1).close()
        return True
    except OSError:
        return False


def test_the_parse_helper_dies_with_its_killed_parent_and_leaves_no_session_or_lock(
    pipeline_dovecot, mail_user, mailbox, campaign
):
    _postgres_only()
    n = 150  # enough that the kill lands mid-run on an idle machine too
    sent = _inject(pipeline_dovecot, mail_user, campaign, n, "h")
    before = {pid for pid, _ in _other_sessions()}  # sessions of other tests, if any
    worker = start_run(settings.DATABASES["default"], mailbox.pk, batch_size=5, parallel_min=1)
    try:
        assert _wait(lambda: RawMessage.objects.filter(state="processed").count() >= 5
                     and children_of(worker.pid), 90), "the run never forked its parse helper"
        helpers = children_of(worker.pid)
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert RawMessage.objects.filter(state="processed").count() < n, "the run ended before the kill"
    # the helper dies with its parent, and the parent's PostgreSQL session (and any transaction
    # with row locks) ends with it
    assert _wait(lambda: not any(alive(p) for p in helpers), 5), "the parse helper outlived its parent"
    assert _wait(lambda: not ({pid for pid, _ in _other_sessions()} - before), 10), _other_sessions()

    # the next run takes over the dead run's lock at once (same machine, holder's pid gone)
    run = process_mailbox(mailbox_id=mailbox.pk)

    assert run.status == ProcessingRun.Status.SUCCEEDED, run.error_log
    assert Bounce.objects.count() == n
    assert sorted(Contact.objects.filter(pk__in=[s.contact_id for s in sent])
                  .values_list("hard_bounce_count", flat=True)) == [1] * n
    assert pipeline_dovecot.message_files(mail_user) == []
    # every message counted once over the two runs
    assert sum(ProcessingRun.objects.values_list("hard", flat=True)) == n
    killed = ProcessingRun.objects.exclude(pk=run.pk).get()
    assert killed.status == ProcessingRun.Status.FAILED and "Interrupted" in killed.error_log


def test_a_run_waiting_on_a_row_lock_gives_up_with_a_clear_error(
    pipeline_dovecot, mail_user, mailbox, campaign, monkeypatch
):
    """Another session holds the mailbox row: the run stops after lock_timeout, says why,
    and leaves nothing held."""
    _postgres_only()
    import psycopg

    _inject(pipeline_dovecot, mail_user, campaign, 3, "l")
    monkeypatch.setattr(runs, "LOCK_TIMEOUT", "500ms")
    monkeypatch.setattr("bounces.intake.mailbox.RECORD_RETRY_PAUSES", (0.2,))
    db = settings.DATABASES["default"]
    other = psycopg.connect(host=db["HOST"], port=db["PORT"], user=db["USER"], password=db["PASSWORD"],
                            dbname=db["NAME"])
    try:
        # the row the run lock is taken on (FOR NO KEY UPDATE: runs can still be created)
        other.execute("SELECT 1 FROM bounces_mailbox WHERE id = %s FOR NO KEY UPDATE", [mailbox.pk])
        started = time.monotonic()
        with pytest.raises(DatabaseUnavailableError, match="lock"):
            process_mailbox(mailbox_id=mailbox.pk)
        assert time.monotonic() - started < 60
    finally:
        other.rollback()
        other.close()
    run = ProcessingRun.objects.get()
    mailbox.refresh_from_db()
    assert run.status == ProcessingRun.Status.FAILED and "lock timeout" in run.error_log
    assert "Database error" in run.error_log and run.finished_at is not None
    assert mailbox.locked_until is None
    # and the next run does the work
    assert process_mailbox(mailbox_id=mailbox.pk).status == ProcessingRun.Status.SUCCEEDED
    assert Bounce.objects.count() == 3


def test_a_skipped_run_names_the_live_holder_and_a_dead_holders_lock_is_taken_over(mailbox):
    import subprocess
    import sys

    live = runs.new_lock_token()  # this process: alive
    assert runs.acquire_mailbox_lock(mailbox.pk, live)
    run = process_mailbox(mailbox_id=mailbox.pk)
    assert run.status == ProcessingRun.Status.SKIPPED
    assert f"process {__import__('os').getpid()}" in run.error_log
    runs.release_mailbox_lock(mailbox.pk, live)

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    host = live.split(":")[0]
    dead = f"{host}:{gone.stdout.strip()}:deadbeef"
    assert runs.acquire_mailbox_lock(mailbox.pk, dead)  # the dead run's lock, 2 minutes to go
    run = process_mailbox(mailbox_id=mailbox.pk)
    assert run.status == ProcessingRun.Status.SUCCEEDED, run.error_log
    assert Mailbox.objects.get(pk=mailbox.pk).locked_until is None


def test_postgresql_stopped_mid_run_gives_a_clean_error_a_failed_run_and_a_free_lock(
    pipeline_dovecot, mail_user, mailbox, campaign, postgres_server
):
    """pg_ctl stop -m immediate while the worker runs, started again 2 s later: the worker
    says what happened in one line (no traceback), the run is failed with last_error set and
    the lock released; the next run finishes the job, every message counted once."""
    import subprocess
    import sys

    from tests.reliability.workers import ROOT, database_env

    _postgres_only()
    n = 200  # enough that the stop lands mid-run on an idle machine too
    sent = _inject(pipeline_dovecot, mail_user, campaign, n, "p")
    Mailbox.objects.filter(pk=mailbox.pk).update(batch_size=5)
    worker = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "process_bounces", "--mailbox", mailbox.name, "--no-progress"],
        env=database_env(settings.DATABASES["default"]), cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )
    pg_ctl = [str(postgres_server.bin_dir / "pg_ctl"), "-D", str(postgres_server.root / "data"), "-w"]
    try:
        assert _wait(lambda: RawMessage.objects.filter(state="processed").count() >= 5, 90)
        connection.close()
        postgres_server._run([*pg_ctl, "-m", "immediate", "stop"])
        time.sleep(2)
        start_postgres_again(postgres_server)
        out, err = worker.communicate(timeout=120)
    finally:
        if worker.poll() is None:
            worker.kill()
        if not _wait(lambda: _accepting(postgres_server), 1):
            start_postgres_again(postgres_server)
    assert worker.returncode != 0, f"the run ended before PostgreSQL stopped: {out}"
    assert "Traceback" not in err, err
    assert "Database error" in err, err
    run = ProcessingRun.objects.get()
    mailbox.refresh_from_db()
    assert run.status == ProcessingRun.Status.FAILED and run.finished_at is not None, err
    assert "Database error" in mailbox.last_error
    assert mailbox.locked_until is None

    again = process_mailbox(mailbox_id=mailbox.pk)

    assert again.status == ProcessingRun.Status.SUCCEEDED, again.error_log
    assert Bounce.objects.count() == n
    assert sorted(Contact.objects.filter(pk__in=[s.contact_id for s in sent])
                  .values_list("hard_bounce_count", flat=True)) == [1] * n
    assert pipeline_dovecot.message_files(mail_user) == []
    assert sum(ProcessingRun.objects.values_list("hard", flat=True)) == n


def test_a_read_only_database_stops_the_command_with_one_clear_line(
    pipeline_dovecot, mail_user, mailbox, campaign
):
    """default_transaction_read_only on the database: `process_bounces` says so and exits 1;
    nothing left the server; once writable again the next run does the work."""
    from django.core.management import CommandError, call_command

    _postgres_only()
    _inject(pipeline_dovecot, mail_user, campaign, 4, "ro")
    name = connection.settings_dict["NAME"]
    with connection.cursor() as cursor:
        cursor.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
    connection.close()
    try:
        with pytest.raises(CommandError, match="read-only"):
            call_command("process_bounces", "--mailbox", mailbox.name, "--no-progress")
    finally:
        connection.close()
        with connection.cursor() as cursor:
            cursor.execute("SET default_transaction_read_only = off")
            cursor.execute(f'ALTER DATABASE "{name}" RESET default_transaction_read_only')
        connection.close()
    assert len(pipeline_dovecot.message_files(mail_user)) == 4
    assert process_mailbox(mailbox_id=mailbox.pk).status == ProcessingRun.Status.SUCCEEDED
    assert Bounce.objects.count() == 4 and pipeline_dovecot.message_files(mail_user) == []


def test_a_run_whose_database_stays_down_for_seconds_still_records_its_end_once_it_is_back(
    pipeline_dovecot, mail_user, mailbox, campaign, postgres_server, monkeypatch
):
    """PostgreSQL stopped mid-run and back only after the quick retries are spent (crash
    recovery under load takes that long): the run keeps trying to reconnect, then records its
    failure and frees the lock, instead of being left "running" with the lock held."""
    import threading

    _postgres_only()
    sent = _inject(pipeline_dovecot, mail_user, campaign, 30, "dn")
    Mailbox.objects.filter(pk=mailbox.pk).update(batch_size=5)
    monkeypatch.setattr("bounces.intake.mailbox.RECORD_RETRY_PAUSES", (0.1,))
    pg_ctl = [str(postgres_server.bin_dir / "pg_ctl"), "-D", str(postgres_server.root / "data"), "-w"]
    restarts: list[threading.Timer] = []

    def stop_database(run, done):
        if not restarts:
            postgres_server._run([*pg_ctl, "-m", "immediate", "stop"])
            restarts.append(threading.Timer(3.0, start_postgres_again, [postgres_server]))
            restarts[0].start()

    try:
        with pytest.raises(DatabaseUnavailableError):
            process_mailbox(mailbox_id=mailbox.pk, progress=stop_database)
    finally:
        for timer in restarts:
            timer.join(60)
        if not _wait(lambda: _accepting(postgres_server), 1):
            start_postgres_again(postgres_server)
    run = ProcessingRun.objects.get()
    mailbox.refresh_from_db()
    assert run.status == ProcessingRun.Status.FAILED and run.finished_at is not None
    assert "Database error" in mailbox.last_error
    assert mailbox.locked_until is None

    again = process_mailbox(mailbox_id=mailbox.pk)

    assert again.status == ProcessingRun.Status.SUCCEEDED, again.error_log
    assert Bounce.objects.count() == len(sent)
    assert sum(ProcessingRun.objects.values_list("hard", flat=True)) == len(sent)
    assert pipeline_dovecot.message_files(mail_user) == []
