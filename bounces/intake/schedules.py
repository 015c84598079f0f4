"""When the mailbox poller runs: one django-celery-beat entry per mailbox, and queueing a run
now (the task is sent by name after commit). Imports models and the pipeline's runs."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from bouncemgr.queue import send_task
from bounces.models import Mailbox, ProcessingRun
from bounces.pipeline.runs import create_run

log = logging.getLogger(__name__)


PERIODIC_TASK_NAME = "bounces: process mailbox #{id}"


TASK_NAME = "bounces.tasks.process_mailbox_task"


def sync_mailbox_schedule(*, mailbox: Mailbox) -> None:
    """Create/update the django-celery-beat entry of `mailbox` (interval, enabled)."""
    import json

    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    schedule, _ = IntervalSchedule.objects.get_or_create(
        every=mailbox.interval_minutes, period=IntervalSchedule.MINUTES
    )
    PeriodicTask.objects.update_or_create(
        name=PERIODIC_TASK_NAME.format(id=mailbox.pk),
        defaults={"task": TASK_NAME, "interval": schedule, "args": json.dumps([mailbox.pk]),
                  "enabled": mailbox.enabled, "description": f"Bounce processing of {mailbox.name}"},
    )


def remove_mailbox_schedule(*, mailbox_id: int) -> None:
    from django_celery_beat.models import PeriodicTask

    PeriodicTask.objects.filter(name=PERIODIC_TASK_NAME.format(id=mailbox_id)).delete()


def sync_all_schedules() -> tuple[int, int]:
    """Every mailbox gets its entry; entries of deleted mailboxes go. Returns (synced, removed)."""
    from django_celery_beat.models import PeriodicTask

    ids = set()
    for mailbox in Mailbox.objects.all():
        sync_mailbox_schedule(mailbox=mailbox)
        ids.add(mailbox.pk)
    removed = 0
    for task in PeriodicTask.objects.filter(task=TASK_NAME, name__startswith="bounces: process mailbox #"):
        try:
            mailbox_id = int(task.name.rsplit("#", 1)[1])
        except ValueError:
            continue
        if mailbox_id not in ids:
            task.delete()
            removed += 1
    return len(ids), removed


def queue_mailbox_run(*, mailbox: Mailbox, actor: Any = None, trigger: str = ProcessingRun.Trigger.MANUAL
                      ) -> ProcessingRun:
    """Create a queued run and send its task once the transaction commits."""
    run = create_run(mailbox=mailbox, trigger=trigger, actor=actor)
    transaction.on_commit(lambda: _send(mailbox.pk, run.pk))
    return run


def _send(mailbox_id: int, run_id: int) -> None:
    try:
        result = send_task(TASK_NAME, mailbox_id, run_id)
        ProcessingRun.objects.filter(pk=run_id).update(task_id=getattr(result, "id", "") or "")
    except Exception as exc:  # the broker is down: say so on the run instead of a 500
        log.exception("could not queue run %s", run_id)
        ProcessingRun.objects.filter(pk=run_id, status=ProcessingRun.Status.QUEUED).update(
            status=ProcessingRun.Status.FAILED, error_log=f"Could not queue the task: {exc}",
            finished_at=timezone.now(),
        )
