"""Processing runs and the mailbox run lock: creating runs, adding up their counts, the lock's
conditional UPDATEs. Imports models only."""

from __future__ import annotations

import os
import secrets
import socket
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import F, Q, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from bounces.models import Mailbox, ProcessingRun

# The run lock is a heartbeat: the holder refreshes it after every batch and it expires
# LOCK_TTL after the last beat. A holder on this machine whose process is gone is taken over
# at once (the token names host and pid), so a killed run blocks nobody (issue 12, item 12).
LOCK_TTL = timedelta(minutes=2)

# PostgreSQL limits for the pipeline's connection (issue 12, item 9): a run never waits
# forever on a row lock, and a session left idle in a transaction is ended by the server.
LOCK_TIMEOUT = "30s"
STATEMENT_TIMEOUT = "5min"
IDLE_IN_TRANSACTION_TIMEOUT = "5min"


ERROR_LOG_LIMIT = 20_000

# Lock tokens of this process's runs in progress. A token naming this process that is not
# here belongs to a run that ended without clearing the lock (the database refused the
# write: read-only, full): dead, so the next run here takes it over at once.
_HELD_HERE: set[str] = set()


ProgressCallback = Callable[[ProcessingRun, int], None]


def writes_refused(error: str) -> str:
    """Why the database refused a write, from its error text: "it is read-only" (PostgreSQL's
    "read-only transaction", SQLite's "readonly database"), "it is out of disk space"
    (PostgreSQL's "could not extend file ... No space left on device", SQLite's "database or
    disk is full"), or "" for any other error."""
    text = error.lower()
    if "read-only" in text or "readonly" in text:
        return "it is read-only"
    if any(s in text for s in ("no space left", "disk full", "disk is full", "could not extend")):
        return "it is out of disk space"
    return ""


def new_lock_token() -> str:
    """A lock token that names its holder: ``host:pid:random`` (32 characters at most)."""
    host = socket.gethostname().split(".")[0][:12] or "?"
    return f"{host}:{os.getpid()}:{secrets.token_hex(4)}"[:32]


def lock_holder(token: str) -> tuple[str, int] | None:
    """(host, pid) named by a lock token, or None for an old-style or foreign token."""
    parts = token.split(":")
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    return parts[0], int(parts[1])


def holder_is_dead(token: str) -> bool:
    """True when the token's holder ran on this machine and its process no longer exists."""
    holder = lock_holder(token)
    if holder is None or holder[0] != (socket.gethostname().split(".")[0][:12] or "?"):
        return False
    host, pid = holder
    if pid == os.getpid():
        return token not in _HELD_HERE  # this process: alive while another thread's run holds it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # exists, owned by someone else
    return False


def acquire_mailbox_lock(mailbox_id: int, token: str, *, ttl: timedelta = LOCK_TTL) -> bool:
    """Take the mailbox's run lock if free, expired, or held by a dead process of this machine
    (conditional UPDATEs; True if taken)."""
    now = timezone.now()
    taken = Mailbox.objects.filter(pk=mailbox_id).filter(
        Q(locked_until__isnull=True) | Q(locked_until__lt=now) | Q(lock_token=token)
    ).update(lock_token=token, locked_until=now + ttl)
    if taken != 1:
        held = Mailbox.objects.filter(pk=mailbox_id).values_list("lock_token", flat=True).first()
        if held and holder_is_dead(held):
            taken = Mailbox.objects.filter(pk=mailbox_id, lock_token=held).update(
                lock_token=token, locked_until=now + ttl)
    if taken == 1:
        _HELD_HERE.add(token)
    return taken == 1


def describe_lock(mailbox_id: int) -> str:
    """Who holds the mailbox's lock and until when, for the operator ("" when free)."""
    row = Mailbox.objects.filter(pk=mailbox_id).values_list("lock_token", "locked_until").first()
    if not row or not row[1]:
        return ""
    token, until = row
    holder = lock_holder(token or "")
    who = f"process {holder[1]} on {holder[0]}" if holder else "another worker"
    return f"{who}, lock held until {_hms(until)} unless it beats again"


def _hms(when: datetime) -> str:
    return timezone.localtime(when).strftime("%H:%M:%S") if timezone.is_aware(when) else str(when)


def set_database_limits() -> None:
    """Lock, statement and idle-in-transaction timeouts on this connection (PostgreSQL)."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'")
        cursor.execute(f"SET statement_timeout = '{STATEMENT_TIMEOUT}'")
        cursor.execute(f"SET idle_in_transaction_session_timeout = '{IDLE_IN_TRANSACTION_TIMEOUT}'")


def reset_database_limits() -> None:
    if connection.vendor != "postgresql" or connection.connection is None:
        return
    with connection.cursor() as cursor:
        for name in ("lock_timeout", "statement_timeout", "idle_in_transaction_session_timeout"):
            cursor.execute(f"RESET {name}")


def refresh_mailbox_lock(mailbox_id: int, token: str, *, ttl: timedelta = LOCK_TTL) -> bool:
    """Extend our lock; False when it was lost (expired and taken by another run)."""
    return Mailbox.objects.filter(pk=mailbox_id, lock_token=token).update(
        locked_until=timezone.now() + ttl
    ) == 1


def release_mailbox_lock(mailbox_id: int, token: str) -> None:
    abandon_mailbox_lock(token)  # the run is over, whether or not the database takes the write
    Mailbox.objects.filter(pk=mailbox_id, lock_token=token).update(lock_token="", locked_until=None)


def abandon_mailbox_lock(token: str) -> None:
    """This process's run is over though its lock may still be stored (the database refused
    the release): the next run in this process takes it over, any other after LOCK_TTL."""
    _HELD_HERE.discard(token)


def create_run(*, mailbox: Mailbox | None, trigger: str, actor: Any = None, dry_run: bool = False
               ) -> ProcessingRun:
    """A queued run (the admin button creates it before queuing the task)."""
    return ProcessingRun.objects.create(
        mailbox=mailbox, trigger=trigger, dry_run=dry_run,
        triggered_by=actor if getattr(actor, "pk", None) else None,
    )


_COUNT_FIELDS = ("fetched", "duplicates", "hard", "soft", "blocked", "complaint", "autoreply", "delay",
                 "unknown", "unmatched", "errors", "total", "processed")


def save_run(run: ProcessingRun, *extra: str) -> None:
    """Write the run's counters (and `extra` fields). The outcome counters never go down: each
    batch already added its counts in its own transaction (`count_in_batch_transaction`), and
    a batch whose COMMIT went through while the connection broke (the database stopped right
    then) raised in this process without counting in memory; the stored figure is right then,
    and writing the memory's would drop that batch from every run's counters (issue 12)."""
    fields = [*_COUNT_FIELDS, "error_log", *extra]
    values: dict[str, Any] = {name: getattr(run, name) for name in fields if name not in _OUTCOME_FIELDS}
    values.update({name: Greatest(F(name), Value(getattr(run, name))) for name in _OUTCOME_FIELDS})
    ProcessingRun.objects.filter(pk=run.pk).update(**values)


_OUTCOME_FIELDS = ("hard", "soft", "blocked", "complaint", "autoreply", "delay", "unknown", "unmatched", "errors")


def add_counts(run: ProcessingRun, counts: Counter) -> None:
    for name in _OUTCOME_FIELDS:
        setattr(run, name, getattr(run, name) + counts.get(name, 0))


def count_in_batch_transaction(run: ProcessingRun | None, counts: Counter) -> None:
    """Add a batch's outcome counts to the stored run inside the batch's own transaction, so a
    run killed after the commit has still counted what it recorded (`add_counts` then brings
    the run in memory level with it)."""
    if run is None or not run.pk:
        return
    changes = {name: F(name) + counts[name] for name in _OUTCOME_FIELDS if counts.get(name)}
    if changes:
        ProcessingRun.objects.filter(pk=run.pk).update(**changes)


def chunked(values: list, size: int) -> Iterator[list]:
    for start in range(0, len(values), size):
        yield values[start : start + size]
