"""Issue 12, the database full or read-only mid-run, on SQLite (the embedded default) and on
PostgreSQL (`pytest --postgres`), against a real Dovecot IMAP mailbox and a local maildir.

The faults are the real errors, set from outside the code under test:

* SQLite read-only: `PRAGMA query_only = ON` on the run's connection (SQLITE_READONLY,
  "attempt to write a readonly database", what a read-only file or mount gives; the tests
  run as root, which ignores file modes).
* SQLite full: `PRAGMA max_page_count` at the current size, after a VACUUM (SQLITE_FULL,
  "database or disk is full", what a full disk gives).
* PostgreSQL read-only: `ALTER SYSTEM SET default_transaction_read_only = on` and a reload,
  from another connection: every session, the run's own too, refuses writes from its next
  transaction on ("cannot execute INSERT in a read-only transaction"), as after a fail-over
  to a standby or an operator's emergency switch.
* PostgreSQL full: the stored messages' table in a tablespace on a 4 MB tmpfs filled up
  mid-run ("could not extend file ... No space left on device"); skipped where mounting is
  not allowed.

After each: every message stored once and counted once; nothing left the mail server before
its result was committed; the run ends failed with one line for the operator (no traceback),
its lock does not block the next run; once the fault is gone the next run finishes and the
database equals a clean run's. The SMTP receiver answers 4xx (never 250) and a webhook
non-2xx while the database refuses writes, and the retried delivery is stored once.
"""

from __future__ import annotations

import base64
import json
import mailbox as stdlib_mailbox
import os
import smtplib
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.db import connection

from bounces.intake.mailbox import DatabaseUnavailableError, process_mailbox
from bounces.models import Bounce, Mailbox, ProcessingRun, RawMessage
from contacts.models import Contact
from tests.intake.conftest import RETURN_DOMAIN, eager  # noqa: F401 - eager: a fixture
from tests.pipeline.conftest import dsn, send
from tests.reliability.workers import fill_up

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

FAULTS = ["read-only", "full"]
# What the operator reads for each fault (the run's log, the mailbox's last error).
SAYS = {"read-only": "The database refused writes: it is read-only",
        "full": "The database refused writes: it is out of disk space"}


# ------------------------------------------------------------------------------ faults
class Fault:
    """A storage fault of the test database, switched on mid-run and off again."""

    def __init__(self, kind: str, request: pytest.FixtureRequest, tables: tuple = ()) -> None:
        self.kind = kind
        self.tables = tables or (RawMessage._meta.db_table,)  # PostgreSQL full: on the small disk
        self.vendor = connection.vendor
        self.active = False
        self._request = request
        self._mount: Path | None = None
        self._filler: Path | None = None

    # -- set up what the fault needs before the run (PostgreSQL full: the tablespace)
    def prepare(self) -> None:
        if self.vendor == "postgresql" and self.kind == "full":
            self._prepare_pg_tablespace()

    def on(self) -> None:
        """Switch the fault on, for the calling thread's connection and (PostgreSQL) every session."""
        self.active = True
        if self.vendor == "sqlite":
            self.apply_here()
        elif self.kind == "read-only":
            self._pg_admin("ALTER SYSTEM SET default_transaction_read_only = on", "SELECT pg_reload_conf()")
            time.sleep(0.3)  # sessions apply the reload before their next command
        else:
            fill_up(self._filler)

    def apply_here(self) -> None:
        """SQLite: the fault is a property of a connection; make this thread's match it."""
        if self.vendor != "sqlite":
            return
        with connection.cursor() as cursor:
            if self.kind == "read-only":
                cursor.execute(f"PRAGMA query_only = {'ON' if self.active else 'OFF'}")
            elif self.active:
                cursor.execute("VACUUM")  # no free pages left inside the file
                cursor.execute("PRAGMA page_count")
                cursor.execute(f"PRAGMA max_page_count = {cursor.fetchone()[0]}")
            else:
                cursor.execute("PRAGMA max_page_count = 1073741823")

    def off(self) -> None:
        """The operator fixed it: writable again, space freed."""
        self.active = False
        if self.vendor == "sqlite":
            self.apply_here()
        elif self.kind == "read-only":
            self._pg_admin("ALTER SYSTEM RESET default_transaction_read_only", "SELECT pg_reload_conf()")
            time.sleep(0.3)
        elif self._filler is not None:
            self._filler.unlink(missing_ok=True)

    def cleanup(self) -> None:
        if self.active:
            self.off()
        if self._mount is not None:
            connection.close()
            with connection.cursor() as cursor:
                for table in self.tables:
                    cursor.execute(f'ALTER TABLE "{table}" SET TABLESPACE pg_default')
                cursor.execute("DROP TABLESPACE IF EXISTS storage_fault")
            subprocess.run(["umount", str(self._mount)], check=False)
            self._mount.rmdir()

    # -- PostgreSQL helpers
    def _pg_admin(self, *statements: str) -> None:
        """Statements on a second connection (another client of the server, not the run's)."""
        import psycopg

        db = connection.settings_dict
        with psycopg.connect(host=db["HOST"], port=db["PORT"], user=db["USER"], password=db["PASSWORD"],
                             dbname=db["NAME"], autocommit=True) as admin:
            for sql in statements:
                admin.execute(sql)

    def _prepare_pg_tablespace(self) -> None:
        if os.geteuid() != 0:
            pytest.skip("mounting a small file system needs root")
        mount = Path(tempfile.mkdtemp(prefix="bm-storage-full-"))  # not under pytest's 0700 basetemp
        mount.chmod(0o755)
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True)
        if done.returncode != 0:
            mount.rmdir()
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")
        self._mount = mount
        server = self._request.getfixturevalue("postgres_server")
        ids = (server.user.pw_uid, server.user.pw_gid) if server.user is not None else (os.getuid(), os.getgid())
        os.chown(mount, *ids)
        (mount / "ts").mkdir()
        os.chown(mount / "ts", *ids)
        self._filler = mount / "filler"
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE TABLESPACE storage_fault LOCATION '{mount / 'ts'}'")
            for table in self.tables:
                cursor.execute(f'ALTER TABLE "{table}" SET TABLESPACE storage_fault')


@pytest.fixture(params=FAULTS)
def fault(request, monkeypatch):
    # A failed run tries to record its end a few times while the database comes back; a
    # fault that stays needs no 10 s of pauses here.
    monkeypatch.setattr("bounces.intake.mailbox.RECORD_RETRY_PAUSES", (0.1,))
    monkeypatch.setattr("bounces.intake.mailbox.RECORD_RECONNECT_SECONDS", 1.0)
    made = Fault(request.param, request, tables=getattr(request.function, "full_tables", ()))
    made.prepare()
    yield made
    made.cleanup()


def full_tables(*tables: str):
    """PostgreSQL "full": these tables go on the small disk (by default the stored messages')."""
    def mark(test):
        test.full_tables = tables
        return test

    return mark


def on_after_batches(fault: Fault, batches: int):
    """A progress hook that switches the fault on after `batches` batches of the run."""
    seen = []

    def hook(run, done):
        seen.append(done)
        if len(seen) == batches:
            fault.on()

    return hook


# ------------------------------------------------------------------------------ what holds
def outcome_by_address(emails: list[str]) -> list[tuple]:
    """The database as the operator sees it, per address in `emails` order: its bounce rows
    (kind, reason), the contact's status and counters, its suppression."""
    from contacts.models import Suppression

    contacts = {c.email: c for c in Contact.objects.filter(email__in=emails)}
    out = []
    for email in emails:
        c = contacts[email]
        bounces = sorted(Bounce.objects.filter(contact=c).values_list("kind", "reason", "counted"))
        suppressed = Suppression.objects.filter(email__iexact=email).count() if hasattr(Suppression, "email") else 0
        out.append((bounces, c.status, c.hard_bounce_count, c.soft_bounce_count, c.has_bounced, suppressed))
    return out


def run_counters(box: Mailbox) -> dict:
    fields = ("hard", "soft", "blocked", "complaint", "unknown", "unmatched")
    runs = ProcessingRun.objects.filter(mailbox=box)
    return {f: sum(runs.values_list(f, flat=True)) for f in fields}


def assert_nothing_left_unrecorded(remaining: int, n: int, box: Mailbox) -> None:
    """Every message gone from the mail server has its result committed."""
    rows = RawMessage.objects.filter(mailbox=box)
    processed = rows.filter(state=RawMessage.State.PROCESSED).count()
    assert not rows.filter(disposed=True).exclude(state=RawMessage.State.PROCESSED).exists()
    assert n - remaining <= processed, (n, remaining, processed)
    assert Bounce.objects.filter(raw_message__mailbox=box).count() == processed


def assert_failed_with_one_line(box: Mailbox, says: str) -> None:
    run = ProcessingRun.objects.filter(mailbox=box).order_by("pk").first()
    box.refresh_from_db()
    assert run.status == ProcessingRun.Status.FAILED and run.finished_at is not None, (run.status, run.error_log)
    for text in (run.error_log, box.last_error):
        assert says in text, text
        assert "Traceback" not in text and len(text.strip().splitlines()) == 1, text


# ------------------------------------------------------------------------------ mailboxes
class ImapBox:
    """The test Dovecot's INBOX of a fresh user, as a Mailbox row."""

    def __init__(self, server) -> None:
        self.server = server
        self.user = server.add_user()
        self.row = Mailbox.objects.create(
            name=f"test-{self.user.name}", protocol=Mailbox.Protocol.IMAP, host="127.0.0.1",
            port=server.imap_port, security=Mailbox.Security.NONE, username=self.user.name,
            password=self.user.password, batch_size=5)

    def put(self, messages: list[bytes]) -> None:
        self.server.inject_many(self.user, messages)

    def remaining(self) -> int:
        return len(self.server.message_files(self.user))


class MaildirBox:
    """A local maildir (the local path: mbox/maildir connectors), as a Mailbox row."""

    def __init__(self, root: Path) -> None:
        self.path = root / "Maildir"
        self.box = stdlib_mailbox.Maildir(self.path, create=True)
        self.row = Mailbox.objects.create(name=f"maildir {root.name}", protocol=Mailbox.Protocol.MAILDIR,
                                          path=str(self.path), batch_size=5)

    def put(self, messages: list[bytes]) -> None:
        for raw in messages:
            self.box.add(raw)

    def remaining(self) -> int:
        return len([p for sub in ("new", "cur") for p in (self.path / sub).iterdir()])


def make_box(kind: str, request, tmp_path: Path, name: str):
    if kind == "imap":
        return ImapBox(request.getfixturevalue("pipeline_dovecot"))
    (tmp_path / name).mkdir()
    return MaildirBox(tmp_path / name)


def fill(box, campaign, n: int, prefix: str) -> list:
    sent = [send(campaign, f"{prefix}{i}@example.net") for i in range(n)]
    box.put([dsn(s.email, token=s.token) for s in sent])
    return sent


# ------------------------------------------------------------------------------ runs
@pytest.mark.dovecot
@pytest.mark.parametrize("at", ["between-batches", "before-disposition"])
@pytest.mark.parametrize("kind", ["imap", "maildir"])
def test_the_database_refusing_writes_mid_run_stops_it_cleanly_and_the_next_run_equals_a_clean_one(
    kind, at, fault, request, tmp_path, campaign
):
    """The database turns read-only (or full) after two batches of a run, or just after the
    third batch's results were committed and before its messages are disposed of on the
    server (flagging them disposed is then refused). The run stops with one line naming the
    fault, nothing left the server unrecorded, and its lock does not hold up the next run;
    once the fault is gone the next run finishes and the database equals that of a run that
    never met the fault."""
    n = 30
    box = make_box(kind, request, tmp_path, "faulty")
    sent = fill(box, campaign, n, "f")
    if at == "between-batches":
        hooks = {"progress": on_after_batches(fault, 2)}
    else:
        commits = []
        hooks = {"crash_after_commit": lambda ids: (commits.append(ids), len(commits) == 3 and fault.on())}

    with pytest.raises(DatabaseUnavailableError, match=SAYS[fault.kind]) as raised:
        process_mailbox(mailbox_id=box.row.pk, **hooks)
    assert "Traceback" not in str(raised.value) and len(str(raised.value).splitlines()) == 1
    # read while the fault lasts (a read-only or full database still answers reads)
    assert 10 <= RawMessage.objects.filter(mailbox=box.row).count() < n
    assert_nothing_left_unrecorded(box.remaining(), n, box.row)
    assert box.remaining() > 0
    fault.off()

    again = process_mailbox(mailbox_id=box.row.pk)

    assert again.status == ProcessingRun.Status.SUCCEEDED, again.error_log
    first = ProcessingRun.objects.filter(mailbox=box.row).exclude(pk=again.pk).get()
    assert first.status == ProcessingRun.Status.FAILED and first.finished_at is not None
    assert SAYS[fault.kind] in first.error_log and "Traceback" not in first.error_log, first.error_log
    assert box.remaining() == 0
    assert RawMessage.objects.filter(mailbox=box.row).count() == n
    assert Mailbox.objects.get(pk=box.row.pk).locked_until is None
    # a clean run of the same messages for other addresses: the same database, address by address
    clean = make_box(kind, request, tmp_path, "clean")
    clean_sent = fill(clean, campaign, n, "c")
    assert process_mailbox(mailbox_id=clean.row.pk).status == ProcessingRun.Status.SUCCEEDED
    assert outcome_by_address([s.email for s in sent]) == outcome_by_address([s.email for s in clean_sent])
    assert run_counters(box.row) == run_counters(clean.row)


@pytest.mark.dovecot
def test_a_run_started_while_the_database_refuses_writes_stops_before_touching_the_server(
    fault, request, tmp_path, campaign
):
    """Read-only (or full) before the run begins: the run cannot even be created. It stops
    with the same one line as a TransientRunError (the task retries with backoff, instead of
    failing for good with a raw database error), nothing was fetched or disposed of; once the
    fault is gone the next run does the work."""
    from bounces.intake.mailbox import TransientRunError

    box = make_box("maildir", request, tmp_path, "early")
    sent = fill(box, campaign, 6, "e")
    fault.on()
    if fault.vendor == "sqlite" and fault.kind == "full":
        # a full disk still takes rows that fit into free space of existing pages: fill them
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA max_page_count = 1073741823")
            cursor.execute("CREATE TABLE storage_fault_filler (b BLOB)")
            cursor.execute("PRAGMA page_count")
            cursor.execute(f"PRAGMA max_page_count = {cursor.fetchone()[0]}")
            with pytest.raises(Exception, match="full"):
                while True:
                    cursor.execute("INSERT INTO storage_fault_filler VALUES (zeroblob(64))")
    try:
        with pytest.raises(TransientRunError, match=SAYS[fault.kind]) as raised:
            process_mailbox(mailbox_id=box.row.pk)
        assert isinstance(raised.value, DatabaseUnavailableError)
        assert box.remaining() == 6
        assert not RawMessage.objects.exists()
    finally:
        fault.off()
        if fault.vendor == "sqlite" and fault.kind == "full":
            with connection.cursor() as cursor:
                cursor.execute("DROP TABLE storage_fault_filler")

    run = process_mailbox(mailbox_id=box.row.pk)

    assert run.status == ProcessingRun.Status.SUCCEEDED, run.error_log
    assert box.remaining() == 0 and Bounce.objects.count() == 6
    assert sorted(Contact.objects.filter(pk__in=[s.contact_id for s in sent])
                  .values_list("hard_bounce_count", flat=True)) == [1] * 6


# ------------------------------------------------------------------------------ SQLite file on a full disk
@contextmanager
def small_tmpfs(size: str):
    """A tmpfs of `size` (root only; skips where mounting is not allowed)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root")
    mount = Path(tempfile.mkdtemp(prefix="bm-sqlite-full-"))
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        mount.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
        mount.rmdir()


def copy_sqlite(source, target) -> None:
    """The whole database from one sqlite3 connection into another (the backup API)."""
    source.backup(target)


@pytest.mark.dovecot
def test_the_sqlite_file_on_a_disk_that_fills_up_mid_run_stops_it_cleanly_and_the_next_run_finishes(
    request, pipeline_dovecot, campaign
):
    """The embedded default: the worker runs on a SQLite file on a small file system that
    fills up mid-run (a real ENOSPC under SQLite's WAL). The run stops with one line, nothing
    left the server unrecorded, the dead worker's lock does not block the next run, and once
    space is freed the next run finishes: the database equals a clean run's."""
    import sqlite3

    from tests.reliability.workers import run_mailbox_in_child, sqlite_database_env

    if connection.vendor != "sqlite":
        pytest.skip("the embedded default is SQLite")
    n = 40
    box = ImapBox(pipeline_dovecot)
    sent = fill(box, campaign, n, "t")
    with small_tmpfs("6m") as mount:
        path = mount / "bouncemgr.sqlite3"
        connection.ensure_connection()
        target = sqlite3.connect(path)
        copy_sqlite(connection.connection, target)  # the test's database, as a worker's file
        target.close()
        # leave room for a few batches (each commit appends to the write-ahead log)
        filler = mount / "filler"
        free = os.statvfs(mount).f_bavail * os.statvfs(mount).f_frsize
        filler.write_bytes(b"\0" * max(0, free - 1024 * 1024))
        env = sqlite_database_env(path)

        failed = run_mailbox_in_child(env, box.row.pk)

        last = failed.stderr.strip().splitlines()[-1] if failed.stderr.strip() else failed.stdout
        assert failed.returncode != 0, failed.stdout + failed.stderr
        assert "The database refused writes: it is out of disk space" in last, failed.stderr[-3000:]
        filler.unlink()
        remaining = box.remaining()
        assert 0 < remaining < n

        again = run_mailbox_in_child(env, box.row.pk)

        assert again.returncode == 0 and again.stdout.startswith("succeeded"), again.stdout + again.stderr[-3000:]
        source = sqlite3.connect(path)
        copy_sqlite(source, connection.connection)  # back into the test's database, to look at it
        source.close()
    assert box.remaining() == 0
    assert RawMessage.objects.filter(mailbox=box.row).count() == n
    assert Mailbox.objects.get(pk=box.row.pk).locked_until is None
    first = ProcessingRun.objects.filter(mailbox=box.row).order_by("pk").first()
    assert first.status == ProcessingRun.Status.FAILED, (first.status, first.error_log)
    assert SAYS["full"] in first.error_log and "Traceback" not in first.error_log, first.error_log
    clean = ImapBox(pipeline_dovecot)
    clean_sent = fill(clean, campaign, n, "u")
    assert process_mailbox(mailbox_id=clean.row.pk).status == ProcessingRun.Status.SUCCEEDED
    assert outcome_by_address([s.email for s in sent]) == outcome_by_address([s.email for s in clean_sent])
    assert run_counters(box.row) == run_counters(clean.row)


# ------------------------------------------------------------------------------ pushed notices
@contextmanager
def smtp_receiver(fault: Fault):
    """The SMTP receiver (the code of run_bounce_smtpd) on a loopback port, in threads of the
    test; on SQLite its writer thread's connection gets the fault too."""
    from bounces.intake.receiver import store_received
    from bounces.intake.smtpd import ReceiverConfig
    from tests.intake.conftest import running_receiver

    def store(messages):
        fault.apply_here()
        return store_received(messages)

    with running_receiver(store, config=ReceiverConfig(domains=frozenset({RETURN_DOMAIN}))) as (port, _):
        yield port


def deliver(port: int, raw: bytes, rcpt: str) -> tuple[int, bytes]:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        smtp.ehlo("mx.example.net")
        smtp.mail("")
        assert smtp.rcpt(rcpt)[0] == 250
        return smtp.data(raw)


def test_the_smtp_receiver_answers_4xx_never_250_while_the_database_refuses_writes(fault, campaign):
    """A bounce arriving by SMTP while the database is read-only or full gets a 4xx (the
    sending MTA keeps it and retries), never a 250; the retry after the fault is stored once
    and counted once."""
    from bounces.intake.notices import process_notices

    sent = send(campaign, "smtp-fault@example.net")
    # 24 KB of trace headers: a row that needs new pages (a full disk still takes what fits
    # into the free space of pages the database already has)
    raw = b"".join(b"X-Trace-%03d: %s\r\n" % (i, b"x" * 100) for i in range(240)) + dsn(sent.email, token=sent.token)
    rcpt = f"bounces+{sent.token}@{RETURN_DOMAIN}"
    with smtp_receiver(fault) as port:
        fault.on()
        code, reply = deliver(port, raw, rcpt)
        assert code == 451, (code, reply)  # 4.3.0: a temporary failure, the sender retries
        assert not RawMessage.objects.exists()
        fault.off()
        code, reply = deliver(port, raw, rcpt)  # the sender's retry
        assert code == 250, reply
        code, reply = deliver(port, raw, rcpt)  # and one more, as if our 250 had been lost
        assert code == 250, reply

    process_notices(sources=[RawMessage.Source.RECEIVER])

    assert RawMessage.objects.count() == 1 and Bounce.objects.count() == 1
    contact = Contact.objects.get(pk=sent.contact_id)
    assert contact.has_bounced and contact.hard_bounce_count == 1


WEBHOOK_SECRET = "hooks:s3cret-webhook-pass"


def postmark_bounce(rcpt: str, token: str) -> str:
    return json.dumps({
        "RecordType": "Bounce", "ID": 4323372036854775807, "Type": "HardBounce", "TypeCode": 1,
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483", "Email": rcpt,
        "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
        "Details": f"smtp; 550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown",
        "BouncedAt": "2026-12-06T10:00:01Z", "Metadata": {"bouncemgr_token": token}, "Inactive": True,
        # the bounce as Postmark keeps it: 24 KB, a row that needs new pages of the database
        "Content": "Received: from mx.example.net\r\n" * 800})


@pytest.mark.usefixtures("eager")
def test_a_webhook_gets_a_non_2xx_answer_while_the_database_refuses_writes(fault, campaign, settings):
    """An ESP's webhook (Postmark through anymail) while the database is read-only or full is
    not acknowledged (non-2xx: the ESP retries); its retry after the fault is stored once."""
    from django.test import Client

    settings.ANYMAIL = {"WEBHOOK_SECRET": WEBHOOK_SECRET}
    sent = send(campaign, "hook-fault@example.net")
    body = postmark_bounce(sent.email, sent.token)
    auth = "Basic " + base64.b64encode(WEBHOOK_SECRET.encode()).decode()
    client = Client(raise_request_exception=False)

    def post():
        return client.post("/intake/esp/postmark/tracking/", data=body, content_type="application/json",
                           HTTP_AUTHORIZATION=auth)

    fault.on()
    refused = post()
    assert (refused.status_code, refused["Retry-After"]) == (503, "60"), refused.status_code
    assert "nothing was stored" in refused.json()["error"]
    fault.off()
    assert not RawMessage.objects.exists()
    assert post().status_code == 200  # the ESP's retry
    assert post().status_code == 200  # and a replay

    assert RawMessage.objects.count() == 1 and Bounce.objects.count() == 1
    contact = Contact.objects.get(pk=sent.contact_id)
    assert contact.has_bounced and contact.hard_bounce_count == 1


@full_tables(Bounce._meta.db_table)
def test_stored_notices_the_database_would_not_process_are_processed_once_it_takes_writes_again(
    fault, campaign
):
    """Notices stored (and acknowledged) just before the database refused writes: every
    sweep while the fault lasts fails on the database (on PostgreSQL "full", the bounces'
    table is on the full disk, so their processing fails mid-batch while the stored rows can
    still be updated), and must not use up the notices' attempts as if the notices were bad.
    Once the fault is gone the next sweep processes each once."""
    from django.db import DatabaseError

    from bounces.intake.notices import Notice, store_notices, sweep_notices
    from bounces.intake.stored import MAX_ATTEMPTS

    sent = [send(campaign, f"late{i}@example.net") for i in range(3)]
    store_notices(notices=[Notice.mail(source=RawMessage.Source.RECEIVER, raw=dsn(s.email, token=s.token))
                           for s in sent])
    fault.on()
    for _ in range(MAX_ATTEMPTS + 1):  # the beat sweep, every minute, for as long as it lasts
        try:
            sweep_notices()
        except DatabaseError:
            pass
        fault.apply_here()
    fault.off()

    sweep_notices()

    assert RawMessage.objects.filter(state=RawMessage.State.PROCESSED).count() == 3
    assert Bounce.objects.count() == 3
    assert sorted(Contact.objects.filter(pk__in=[s.contact_id for s in sent])
                  .values_list("hard_bounce_count", flat=True)) == [1, 1, 1]


def test_an_accounting_push_gets_503_with_retry_after_while_the_database_refuses_writes(fault, campaign):
    """Logstash / Vector pushing PowerMTA records while the database is read-only or full: 503
    with Retry-After (nothing stored: the shipper retries), then the retry is stored once."""
    from django.test import Client

    from bounces.models import Integration

    item = Integration(name="pmta-fault")
    token = item.set_new_token()
    item.save()
    n = 200  # more than the free space a "full" database has left in its pages
    sent = [send(campaign, f"acct-fault{i}@example.net") for i in range(n)]
    body = "type,timeLogged,orig,rcpt,dsnAction,dsnStatus,dsnDiag,bounceCat\n" + "".join(
        f"b,2026-12-06 10:00:00+0000,news@example.com,{s.email},failed,5.1.1 (bad destination mailbox "
        "address),smtp;550 5.1.1 User unknown,bad-mailbox\n" for s in sent)
    client = Client(raise_request_exception=False)

    def push():
        return client.post("/intake/accounting/", data=body, content_type="text/csv",
                           HTTP_AUTHORIZATION=f"Bearer {token}")

    fault.on()
    refused = push()
    assert (refused.status_code, refused["Retry-After"]) == (503, "60")
    fault.off()
    assert not RawMessage.objects.exists()
    assert push().json()["stored"] == n
    assert push().json()["duplicates"] == n
    assert RawMessage.objects.count() == n
