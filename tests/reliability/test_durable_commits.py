"""Issue 12: a batch's commit must outlive a database crash before its messages leave the mail
server. The root cause of "PostgreSQL stopped mid-run loses a batch": the run disposed of
(deleted) messages whose results the server had acknowledged but not yet written to its WAL
(synchronous_commit off), so an immediate stop took the results with it and the messages were
gone from the server: never counted, never recorded."""

from __future__ import annotations

import subprocess
import sys

import pytest
from django.conf import settings
from django.db import connection

from bounces.intake.mailbox import process_mailbox
from bounces.models import Bounce, ProcessingRun, RawMessage
from contacts.models import Contact
from tests.pipeline.conftest import dsn, send
from tests.reliability.test_worker_faults import _accepting
from tests.reliability.workers import ROOT, database_env, start_postgres_again
from tests.reliability.workers import wait_until as _wait

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.dovecot, pytest.mark.postgres]

# The worker: one mailbox run that stops right after the server carried out its first
# disposition (the messages are gone from the mail server); the test crashes the database at
# that exact point, then kills the worker.
_CHILD = """
import sys, time, django
django.setup()
import bounces.intake.mailbox as mailbox
real = mailbox.dispose
def dispose(box, mb, rows):
    carry_out = box.apply
    def apply(dispositions):
        carry_out(dispositions)  # the messages are gone from the server ...
        print("disposed", len(dispositions), flush=True)
        time.sleep(600)  # ... and the database crashes now
    box.apply = apply
    real(box, mb, rows)
mailbox.dispose = dispose
mailbox.process_mailbox(mailbox_id=int(sys.argv[1]), batch_size=int(sys.argv[2]))
"""


def _set_server(name: str, value: str | None) -> None:
    with connection.cursor() as cursor:
        if value is None:
            cursor.execute(f"ALTER SYSTEM RESET {name}")
        else:
            cursor.execute(f"ALTER SYSTEM SET {name} = '{value}'")
        cursor.execute("SELECT pg_reload_conf()")


def test_a_batch_disposed_of_on_the_server_survives_a_database_crash_right_after(
    pipeline_dovecot, mail_user, mailbox, campaign, postgres_server
):
    """synchronous_commit off on the server (the test cluster's setting, and a common tuning) and
    a WAL writer that waits: the run's commits must still be durable before the disposition."""
    if connection.vendor != "postgresql":
        pytest.skip("needs the shared PostgreSQL (pytest --postgres)")
    n = 10
    sent = [send(campaign, f"dc{i}@example.net") for i in range(n)]
    pipeline_dovecot.inject_many(mail_user, [dsn(s.email, token=s.token) for s in sent])
    # Nothing flushes the WAL on its own for a while: the WAL writer waits, autovacuum and the
    # background writer are off, so an asynchronous commit stays in the server's memory.
    quiet = {"wal_writer_delay": "10s", "autovacuum": "off", "bgwriter_lru_maxpages": "0"}
    for name, value in quiet.items():
        _set_server(name, value)
    pg_ctl = [str(postgres_server.bin_dir / "pg_ctl"), "-D", str(postgres_server.root / "data"), "-w"]
    worker = subprocess.Popen([sys.executable, "-c", _CHILD, str(mailbox.pk), "5"],
                              env=database_env(settings.DATABASES["default"]), cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = worker.stdout.readline()
        assert line.startswith("disposed 5"), (line, worker.stderr.read() if worker.poll() is not None else "")
        connection.close()
        postgres_server._run([*pg_ctl, "-m", "immediate", "stop"])
        worker.kill()
        worker.wait(10)
        start_postgres_again(postgres_server)
    finally:
        if worker.poll() is None:
            worker.kill()
        if not _wait(lambda: _accepting(postgres_server), 1):
            start_postgres_again(postgres_server)
        connection.close()
        for name in quiet:
            _set_server(name, None)
    # five messages left the server: their results must be in the database
    assert len(pipeline_dovecot.message_files(mail_user)) == n - 5
    assert RawMessage.objects.filter(state=RawMessage.State.PROCESSED).count() == 5
    assert Bounce.objects.count() == 5

    again = process_mailbox(mailbox_id=mailbox.pk)

    assert again.status == ProcessingRun.Status.SUCCEEDED, again.error_log
    assert Bounce.objects.count() == n
    assert sorted(Contact.objects.filter(pk__in=[s.contact_id for s in sent])
                  .values_list("hard_bounce_count", flat=True)) == [1] * n
    assert pipeline_dovecot.message_files(mail_user) == []
    assert sum(ProcessingRun.objects.values_list("hard", flat=True)) == n


@pytest.mark.parametrize("count", [3, 450], ids=["one-statement", "one-transaction"])
def test_a_message_the_receiver_answered_250_for_survives_a_database_crash_right_after(
    postgres_server, count
):
    """The SMTP receiver answers 250 (a webhook 200) once `store_notices` returned: with the
    server's synchronous_commit off, that commit must still be on disk (issue 12). Both paths:
    a single INSERT in autocommit, and several chunks in one transaction."""
    if connection.vendor != "postgresql":
        pytest.skip("needs the shared PostgreSQL (pytest --postgres)")
    from bounces.intake.receiver import store_received
    from bounces.intake.smtpd import Received

    quiet = {"wal_writer_delay": "10s", "autovacuum": "off", "bgwriter_lru_maxpages": "0"}
    for name, value in quiet.items():
        _set_server(name, value)
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "off"  # the test cluster's tuning: the case to survive
    pg_ctl = [str(postgres_server.bin_dir / "pg_ctl"), "-D", str(postgres_server.root / "data"), "-w"]
    messages = [Received(mail_from="", rcpt_tos=("bounces@example.com",),
                         content=dsn(f"rc{count}-{i}@example.net")) for i in range(count)]
    try:
        ids = store_received(messages)  # the receiver's 250 goes out after this returns
        connection.close()
        postgres_server._run([*pg_ctl, "-m", "immediate", "stop"])
        start_postgres_again(postgres_server)
    finally:
        if not _wait(lambda: _accepting(postgres_server), 1):
            start_postgres_again(postgres_server)
        connection.close()
        for name in quiet:
            _set_server(name, None)
    assert sorted(RawMessage.objects.values_list("id", flat=True)) == sorted(int(i) for i in ids)
    assert RawMessage.objects.count() == count
