"""Processing runs and the mailbox run lock: creating runs, adding up their counts, the lock's
conditional UPDATEs. Imports models only."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

from django.db.models import Q
from django.utils import timezone

from bounces.models import Mailbox, ProcessingRun

LOCK_TTL = timedelta(minutes=5)


ERROR_LOG_LIMIT = 20_000


ProgressCallback = Callable[[ProcessingRun, int], None]


def acquire_mailbox_lock(mailbox_id: int, token: str, *, ttl: timedelta = LOCK_TTL) -> bool:
    """Take the mailbox's run lock if free or expired (conditional UPDATE; True if taken)."""
    now = timezone.now()
    taken = Mailbox.objects.filter(pk=mailbox_id).filter(
        Q(locked_until__isnull=True) | Q(locked_until__lt=now) | Q(lock_token=token)
    ).update(lock_token=token, locked_until=now + ttl)
    return taken == 1


def refresh_mailbox_lock(mailbox_id: int, token: str, *, ttl: timedelta = LOCK_TTL) -> bool:
    """Extend our lock; False when it was lost (expired and taken by another run)."""
    return Mailbox.objects.filter(pk=mailbox_id, lock_token=token).update(
        locked_until=timezone.now() + ttl
    ) == 1


def release_mailbox_lock(mailbox_id: int, token: str) -> None:
    Mailbox.objects.filter(pk=mailbox_id, lock_token=token).update(lock_token="", locked_until=None)


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
    run.save(update_fields=[*_COUNT_FIELDS, "error_log", *extra])


def add_counts(run: ProcessingRun, counts: Counter) -> None:
    for name in ("hard", "soft", "blocked", "complaint", "autoreply", "delay", "unknown", "unmatched", "errors"):
        setattr(run, name, getattr(run, name) + counts.get(name, 0))


def chunked(values: list, size: int) -> Iterator[list]:
    for start in range(0, len(values), size):
        yield values[start : start + size]
