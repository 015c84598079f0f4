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

import mailbox as stdlib_mailbox
import os
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from django.db import connection

from bounces.intake.mailbox import DatabaseUnavailableError, process_mailbox
from bounces.models import Bounce, Mailbox, ProcessingRun, RawMessage
from contacts.models import Contact
from tests.pipeline.conftest import dsn, send

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

FAULTS = ["read-only", "full"]
# What the operator reads for each fault (the run's log, the mailbox's last error).
SAYS = {"read-only": "The database refused writes: it is read-only",
        "full": "The database refused writes: it is out of disk space"}


# ------------------------------------------------------------------------------ faults
class Fault:
    """A storage fault of the test database, switched on mid-run and off again."""

    def __init__(self, kind: str, request: pytest.FixtureRequest) -> None:
        self.kind = kind
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
            free = os.statvfs(self._mount).f_bavail * os.statvfs(self._mount).f_frsize
            self._filler.write_bytes(b"\0" * max(0, free - 16 * 1024))

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
            table = RawMessage._meta.db_table
            with connection.cursor() as cursor:
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
            cursor.execute(f'ALTER TABLE "{RawMessage._meta.db_table}" SET TABLESPACE storage_fault')


@pytest.fixture(params=FAULTS)
def fault(request, monkeypatch):
    # A failed run tries to record its end a few times while the database comes back; a
    # fault that stays needs no 10 s of pauses here.
    monkeypatch.setattr("bounces.intake.mailbox.RECORD_RETRY_PAUSES", (0.1,))
    monkeypatch.setattr("bounces.intake.mailbox.RECORD_RECONNECT_SECONDS", 1.0)
    made = Fault(request.param, request)
    made.prepare()
    yield made
    made.cleanup()


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
@pytest.mark.parametrize("kind", ["imap", "maildir"])
def test_the_database_refusing_writes_mid_run_stops_it_cleanly_and_the_next_run_equals_a_clean_one(
    kind, fault, request, tmp_path, campaign
):
    """The database turns read-only (or full) after two batches of a run. The run stops with
    one line naming the fault, nothing left the server unrecorded, and its lock does not hold
    up the next run; once the fault is gone the next run finishes and the database equals
    that of a run that never met the fault."""
    n = 30
    box = make_box(kind, request, tmp_path, "faulty")
    sent = fill(box, campaign, n, "f")

    with pytest.raises(DatabaseUnavailableError, match=SAYS[fault.kind]) as raised:
        process_mailbox(mailbox_id=box.row.pk, progress=on_after_batches(fault, 2))
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
