"""Celery tasks of the contacts app: interfaces that call one service by ids."""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(name="contacts.expire_suppressions", acks_late=True, soft_time_limit=300, time_limit=330)
def expire_suppressions_task() -> int:
    """Move suppressions whose time ran out into the history (sending already ignores them)."""
    return services.expire_suppressions()
