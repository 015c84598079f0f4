"""When the mailbox poller runs: one django-celery-beat entry per mailbox, and queueing a run
now (the task is sent by name after commit). Imports models and the pipeline's runs."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import CharField, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Cast, Concat
from django.utils import timezone

from bouncemgr.queue import send_task
from bounces.models import Mailbox, ProcessingRun
from bounces.pipeline.runs import create_run

log = logging.getLogger(__name__)


PERIODIC_TASK_NAME = "bounces: process mailbox #{id}"


TASK_NAME = "bounces.tasks.process_mailbox_task"


def sync_mailbox_schedule(*, mailbox: Mailbox) -> None:
    """Create/update the django-celery-beat entry of `mailbox`: every `interval_minutes`, or
    once a day at `run_at` (a crontab in TIME_ZONE); enabled as the mailbox is."""
    import json

    from django.conf import settings
    from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

    when: dict[str, Any]
    if mailbox.schedule == Mailbox.Schedule.DAILY and mailbox.run_at is not None:
        crontab, _ = CrontabSchedule.objects.get_or_create(
            minute=str(mailbox.run_at.minute), hour=str(mailbox.run_at.hour), day_of_week="*",
            day_of_month="*", month_of_year="*", timezone=settings.TIME_ZONE,
        )
        when = {"crontab": crontab, "interval": None}
    else:
        interval, _ = IntervalSchedule.objects.get_or_create(
            every=mailbox.interval_minutes, period=IntervalSchedule.MINUTES
        )
        when = {"interval": interval, "crontab": None}
    PeriodicTask.objects.update_or_create(
        name=PERIODIC_TASK_NAME.format(id=mailbox.pk),
        defaults={"task": TASK_NAME, **when, "args": json.dumps([mailbox.pk]),
                  "enabled": mailbox.enabled, "description": f"Bounce processing of {mailbox.name}"},
    )


def with_last_scheduled_run(queryset: QuerySet[Mailbox]) -> QuerySet[Mailbox]:
    """Annotate `last_scheduled_run`: when the beat entry last started this mailbox (one
    subquery, no query per row), for `Mailbox.next_run`."""
    from django_celery_beat.models import PeriodicTask

    name = Concat(Value(PERIODIC_TASK_NAME.split("{", 1)[0]), Cast(OuterRef("pk"), CharField()))
    return queryset.annotate(last_scheduled_run=Subquery(
        PeriodicTask.objects.filter(name=name).values("last_run_at")[:1]))


def next_run(mailbox: Mailbox, *, now: datetime | None = None) -> datetime | None:
    """`Mailbox.next_run` with the beat entry's last run (annotated, else read)."""
    now = now or timezone.now()
    if hasattr(mailbox, "last_scheduled_run"):
        last = mailbox.last_scheduled_run
    else:
        from django_celery_beat.models import PeriodicTask

        last = (PeriodicTask.objects.filter(name=PERIODIC_TASK_NAME.format(id=mailbox.pk))
                .values_list("last_run_at", flat=True).first())
    return mailbox.next_run(now=now, last_scheduled_run=last)


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
