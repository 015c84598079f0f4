"""Celery tasks of the api app: webhook delivery and its sweep."""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(name="api.deliver_webhooks", acks_late=True, soft_time_limit=15 * 60, time_limit=16 * 60)
def deliver_webhooks_task(delivery_ids: list[int]) -> dict:
    """Attempt these webhook deliveries once each (retries are queued by the service)."""
    report = services.deliver_webhooks(delivery_ids=delivery_ids)
    return {"delivered": report.delivered, "failed": report.failed, "gave_up": report.gave_up}


@shared_task(name="api.sweep_webhook_deliveries", acks_late=True, soft_time_limit=5 * 60, time_limit=6 * 60)
def sweep_webhook_deliveries_task() -> dict:
    """Queue pending deliveries that are due (beat, every WEBHOOK_SWEEP_SECONDS)."""
    return {"queued": services.sweep_due_deliveries()}
