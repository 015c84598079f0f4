"""Celery tasks of the campaigns app: each takes an id and calls one service."""

from __future__ import annotations

import datetime as dt

from celery import shared_task

from . import services


def schedule_retry(campaign_id: int, when: dt.datetime | None, **options) -> bool:
    """Queue retry_deferred_task for one campaign at `when` (the earliest pending retry).

    Not done in eager mode: the task would run at once, before anything is due. The beat
    entry "campaigns.retry_deferred" (every few minutes, all campaigns) catches whatever a
    lost scheduled task leaves behind; two runs never send a row twice (claims).
    `options` go to apply_async (e.g. a producer). Returns whether a task was queued.
    """
    if when is None or retry_deferred_task.app.conf.task_always_eager:
        return False
    retry_deferred_task.apply_async(args=[campaign_id], eta=when, **options)
    return True


@shared_task(
    name="campaigns.send_campaign",
    acks_late=True,
    autoretry_for=(services.SendInterrupted,),
    retry_backoff=30,
    retry_backoff_max=15 * 60,
    retry_jitter=True,
    max_retries=20,
)
def send_campaign_task(campaign_id: int) -> dict:
    """Send (or resume sending) one campaign; safe to run twice (see campaigns.services).

    When messages were deferred, the campaign's retry task is queued for the first one due.
    """
    result = services.send_campaign(campaign_id=campaign_id).as_dict()
    due = services.next_retry_at(campaign_id=campaign_id)
    result["retry_at"] = due.isoformat() if due else ""
    schedule_retry(campaign_id, due)
    return result


@shared_task(
    name="campaigns.retry_deferred",
    acks_late=True,
    autoretry_for=(services.SendInterrupted,),
    retry_backoff=60,
    retry_backoff_max=15 * 60,
    retry_jitter=True,
    max_retries=10,
)
def retry_deferred_task(campaign_id: int | None = None) -> dict:
    """Try again the deferred messages that are due (one campaign, or all without an id).

    A per-campaign run that claimed messages queues the next run for the next one due;
    a run that found nothing to claim (a duplicate delivery of the task) queues nothing,
    so copies of the task do not multiply. The beat sweep runs without an id.
    """
    report = services.retry_deferred(campaign_id=campaign_id)
    if campaign_id is not None and (report.retried or report.dropped) and report.next_due:
        schedule_retry(campaign_id, dt.datetime.fromisoformat(report.next_due))
    return report.as_dict()


@shared_task(name="campaigns.refresh_campaign_stats", acks_late=True, soft_time_limit=300, time_limit=360)
def refresh_campaign_stats_task(campaign_id: int) -> int:
    """Recompute a campaign's stored bounce aggregates; returns the time it took (ms)."""
    from .models import Campaign

    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None:
        return 0
    return services.refresh_campaign_stats(campaign=campaign).duration_ms
