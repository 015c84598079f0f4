"""Celery tasks of the campaigns app: each takes an id and calls one service."""

from __future__ import annotations

from celery import shared_task

from . import services


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
    """Send (or resume sending) one campaign; safe to run twice (see campaigns.services)."""
    return services.send_campaign(campaign_id=campaign_id).as_dict()
