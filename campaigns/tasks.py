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


@shared_task(name="campaigns.refresh_campaign_stats", acks_late=True, soft_time_limit=300, time_limit=360)
def refresh_campaign_stats_task(campaign_id: int) -> int:
    """Recompute a campaign's stored bounce aggregates; returns the time it took (ms)."""
    from .models import Campaign

    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None:
        return 0
    return services.refresh_campaign_stats(campaign=campaign).duration_ms
