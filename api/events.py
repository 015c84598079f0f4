"""Emitting events: other code calls `emit_event` (or `emit_events`) inside its transaction.

The event and one delivery per subscribed, enabled endpoint are written in the caller's
transaction, so they exist exactly when what they announce does; delivery is queued once
it commits. With no endpoint subscribed it costs one query per process every few seconds
(`subscribed`), so the pipeline may call it for every batch.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .models import EventType, WebhookDelivery, WebhookEndpoint, WebhookEvent

# Other processes see a new, changed or disabled endpoint within this many seconds.
SUBSCRIPTIONS_TTL = 5.0
QUEUE_CHUNK = 100
DELIVER_TASK = "api.deliver_webhooks"

_lock = threading.Lock()
_subscriptions: tuple[float, frozenset[str]] | None = None


def forget_endpoints() -> None:
    """Drop this process's cached subscriptions (after an endpoint was saved or deleted)."""
    global _subscriptions
    with _lock:
        _subscriptions = None


def subscribed(event_type: str) -> bool:
    """Whether some enabled endpoint takes `event_type` (cached for SUBSCRIPTIONS_TTL)."""
    global _subscriptions
    now = time.monotonic()
    cached = _subscriptions
    if cached is None or cached[0] < now:
        types: set[str] = set()
        for wanted in WebhookEndpoint.objects.filter(enabled=True).values_list("event_types", flat=True):
            types.update(wanted or ())
        cached = (now + SUBSCRIPTIONS_TTL, frozenset(types))
        with _lock:
            _subscriptions = cached
    return event_type in cached[1]


def retry_window() -> dt.timedelta:
    return dt.timedelta(hours=float(getattr(settings, "WEBHOOK_RETRY_HOURS", 72.0)))


def emit_event(event_type: str, data: dict[str, Any]) -> WebhookEvent | None:
    """Record one event for the endpoints that subscribe to it; None when none does."""
    events = emit_events(event_type, [data])
    return events[0] if events else None


def emit_events(event_type: str, items: Iterable[dict[str, Any]]) -> list[WebhookEvent]:
    """Record one event per item of `items` (a batch: two bulk INSERTs), deliveries after commit.

    Call inside the transaction that makes the change. `data` must be JSON-serialisable
    and should carry ids and addresses, not whole objects (receivers fetch details from
    the API).
    """
    if event_type not in EventType.values:
        raise ValueError(f"unknown event type {event_type!r}")
    if not subscribed(event_type):
        return []
    items = list(items)
    if not items:
        return []
    endpoint_ids = [
        pk for pk, wanted in WebhookEndpoint.objects.filter(enabled=True).values_list("pk", "event_types")
        if event_type in (wanted or ())
    ]
    if not endpoint_ids:
        return []
    now = timezone.now()
    with transaction.atomic():
        events = WebhookEvent.objects.bulk_create(
            [WebhookEvent(type=event_type, payload=data, created_at=now) for data in items]
        )
        deliveries = WebhookDelivery.objects.bulk_create(
            [
                WebhookDelivery(event=event, endpoint_id=endpoint_id, next_attempt_at=now,
                                retry_until=now + retry_window(), created_at=now)
                for event in events for endpoint_id in endpoint_ids
            ]
        )
        ids = [d.pk for d in deliveries]
        transaction.on_commit(lambda: queue_deliveries(ids))
    return events


def queue_deliveries(delivery_ids: list[int], *, countdown: float | None = None) -> None:
    """Send delivery tasks for these ids, QUEUE_CHUNK per task. A broker that is down is only
    logged: the deliveries are in the database and the sweep queues them again."""
    import logging

    from celery import current_app

    app = current_app
    if DELIVER_TASK not in app.tasks:
        app.loader.import_default_modules()  # sent by name: services import no tasks
    task = app.tasks[DELIVER_TASK]
    for start in range(0, len(delivery_ids), QUEUE_CHUNK):
        chunk = delivery_ids[start : start + QUEUE_CHUNK]
        try:
            if countdown:
                task.apply_async((chunk,), countdown=countdown)
            else:
                task.delay(chunk)
        except Exception:  # noqa: BLE001 - the sweep is the backstop
            logging.getLogger(__name__).warning("could not queue %d webhook deliveries", len(chunk),
                                                exc_info=True)
