"""Celery tasks of the console."""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(name="console.rebuild_dashboard_counts", acks_late=True, time_limit=600, soft_time_limit=540)
def rebuild_dashboard_counts_task() -> int:
    """Recount the dashboard's stored figures (beat, every 15 minutes); returns the bounce id mark."""
    return services.rebuild_dashboard_counts().last_bounce_id
