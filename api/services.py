"""Writes of the api app: API keys, and delivering webhook events.

Delivery (`deliver_webhooks`) claims each delivery with a conditional UPDATE that sets a
lease (`locked_until`), commits, then makes the request outside any transaction, then
records the outcome. A worker killed mid-request leaves a lease that expires; the sweep
(`sweep_due_deliveries`, on beat) queues every pending delivery that is due and not
leased, so neither a worker nor a broker restart loses an event (at least once; the
receiver de-duplicates on webhook-id).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import secrets
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.mail import mail_admins
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from . import events, keys
from .delivery import Attempt, Sender, signed_headers
from .models import ApiKey, WebhookDelivery, WebhookEndpoint, WebhookEvent, new_webhook_secret

log = logging.getLogger(__name__)

MAX_RETRY_DELAY = dt.timedelta(hours=12)
# Retries due within this are queued with a countdown; later ones are left to the sweep
# (a countdown longer than the broker's visibility timeout would be delivered twice).
COUNTDOWN_LIMIT = 300.0
SWEEP_LIMIT = 5000


# --------------------------------------------------------------------------- API keys
def create_api_key(*, name: str, owner: Any, scope: str = ApiKey.Scope.READ) -> tuple[ApiKey, str]:
    """A new key and its token. The token is not stored: show it once, now."""
    token, prefix, hashed = keys.new_token()
    key = ApiKey.objects.create(name=name, owner=owner, scope=scope, prefix=prefix, hashed_key=hashed)
    return key, token


def revoke_api_keys(*, key_ids: list[int]) -> int:
    """Revoke keys: the next request with them gets 401 (in other server processes within
    API_KEY_CACHE_SECONDS, api.auth). Returns how many changed."""
    from .auth import forget_keys

    now = timezone.now()
    changed = ApiKey.objects.filter(pk__in=key_ids, revoked=False).update(
        revoked=True, revoked_at=now, updated_at=now
    )
    transaction.on_commit(forget_keys)
    forget_keys()
    return changed


# --------------------------------------------------------------------------- endpoints
def rotate_endpoint_secret(*, endpoint: WebhookEndpoint) -> str:
    """A new signing secret for the endpoint (its receiver must be given it)."""
    endpoint.secret = new_webhook_secret()
    endpoint.save(update_fields=["secret", "updated_at"])
    return endpoint.secret


def endpoints_changed() -> None:
    """Call after creating, changing or deleting endpoints (drops the subscription cache)."""
    events.forget_endpoints()


def enable_endpoint(*, endpoint: WebhookEndpoint) -> None:
    """Enable again after a disabling: the failure count restarts, pending deliveries resume."""
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        enabled=True, failure_count=0, disabled_at=None, disabled_reason="", updated_at=timezone.now()
    )
    WebhookDelivery.objects.filter(endpoint_id=endpoint.pk, status=WebhookDelivery.Status.PENDING).update(
        next_attempt_at=timezone.now()
    )
    events.forget_endpoints()


# --------------------------------------------------------------------------- delivery
def event_body(event: WebhookEvent) -> bytes:
    """The JSON body POSTed for an event (Standard Webhooks' recommended envelope)."""
    envelope = {"type": event.type, "timestamp": event.created_at.isoformat(), "data": event.payload}
    return json.dumps(envelope, separators=(",", ":"), sort_keys=True).encode()


def retry_delay(attempts: int) -> dt.timedelta:
    """Exponential backoff after `attempts` failed attempts: base, 2×base, 4×base… ≤ 12 h, ±10 %."""
    base = float(getattr(settings, "WEBHOOK_RETRY_BASE_SECONDS", 30.0))
    seconds = min(base * (2 ** max(attempts - 1, 0)), MAX_RETRY_DELAY.total_seconds())
    return dt.timedelta(seconds=seconds * random.uniform(0.9, 1.1))


def _lease() -> dt.timedelta:
    return dt.timedelta(seconds=float(settings.WEBHOOK_TIMEOUT) + 5)


def _claim(delivery_ids: list[int], now: dt.datetime) -> str:
    token = secrets.token_hex(8)
    WebhookDelivery.objects.filter(
        Q(locked_until__isnull=True) | Q(locked_until__lt=now),
        pk__in=delivery_ids, status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now,
        endpoint__enabled=True,
    ).update(claim=token, locked_until=now + _lease(), attempts=F("attempts") + 1, last_attempt_at=now)
    return token


@dataclass
class DeliveryReport:
    delivered: int = 0
    failed: int = 0
    gave_up: int = 0
    retry_ids: list[int] | None = None
    retry_in: float | None = None


def deliver_webhooks(*, delivery_ids: list[int]) -> DeliveryReport:
    """Attempt these deliveries (those due and not claimed elsewhere); record each outcome.

    Safe to run twice: a delivery is claimed by one call only, and a delivered one is
    never claimed again.
    """
    report = DeliveryReport(retry_ids=[])
    now = timezone.now()
    token = _claim(delivery_ids, now)
    claimed = list(
        WebhookDelivery.objects.filter(claim=token, locked_until__gt=now)
        .select_related("event", "endpoint").order_by("endpoint_id", "pk")
    )
    if not claimed:
        return report
    by_endpoint: dict[int, list[WebhookDelivery]] = defaultdict(list)
    for delivery in claimed:
        by_endpoint[delivery.endpoint_id].append(delivery)
    timeout = float(settings.WEBHOOK_TIMEOUT)
    allow_private = bool(settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS)
    for endpoint_id, group in by_endpoint.items():
        endpoint = group[0].endpoint
        sender = Sender(endpoint.url, timeout=timeout, allow_private=allow_private)
        outcomes: list[tuple[WebhookDelivery, Attempt]] = []
        try:
            for delivery in group:
                body = event_body(delivery.event)
                try:
                    headers = signed_headers(secret=endpoint.secret, msg_id=delivery.event.event_id, body=body)
                except Exception:  # noqa: BLE001 - e.g. a secret no FIELD_ENCRYPTION_KEY decrypts
                    outcomes.append((delivery, Attempt(False, None, 0, "signing secret unreadable")))
                    continue
                outcomes.append((delivery, sender.post(body, headers)))
        finally:
            sender.close()
            _record(endpoint_id, outcomes, report)
    if report.retry_ids:
        events.queue_deliveries(report.retry_ids, countdown=report.retry_in)
    return report


def _record(endpoint_id: int, outcomes: list[tuple[WebhookDelivery, Attempt]], report: DeliveryReport) -> None:
    now = timezone.now()
    failures = 0
    delivered: list[list] = []
    with transaction.atomic():
        for delivery, attempt in outcomes:
            common = {"response_code": attempt.status, "response_ms": attempt.ms, "locked_until": None,
                      "claim": ""}
            if attempt.ok:
                report.delivered += 1
                failures = 0
                delivered.append([attempt.status, attempt.ms, delivery.pk])
                continue
            failures += 1
            report.failed += 1
            next_at = now + retry_delay(delivery.attempts + 1)
            if delivery.retry_until is not None and next_at > delivery.retry_until:
                report.gave_up += 1
                WebhookDelivery.objects.filter(pk=delivery.pk).update(
                    status=WebhookDelivery.Status.FAILED, next_attempt_at=None, last_error=attempt.error[:200],
                    **common,
                )
                continue
            WebhookDelivery.objects.filter(pk=delivery.pk).update(
                next_attempt_at=next_at, last_error=attempt.error[:200], **common
            )
            wait = (next_at - now).total_seconds()
            if wait <= COUNTDOWN_LIMIT:
                report.retry_ids.append(delivery.pk)  # type: ignore[union-attr]
                report.retry_in = max(report.retry_in or 0.0, wait)
        _mark_delivered(delivered, now)
        succeeded = bool(delivered)
        if succeeded:
            # the streak restarts from the failures after the last success
            WebhookEndpoint.objects.filter(pk=endpoint_id).update(failure_count=failures, last_success_at=now)
        elif failures:
            WebhookEndpoint.objects.filter(pk=endpoint_id).update(
                failure_count=F("failure_count") + failures, last_failure_at=now
            )
            _disable_if_failing(endpoint_id, now)


def _mark_delivered(rows: list[list], now: dt.datetime) -> None:
    """Record successful attempts ([status, ms, id] each): one statement sent with executemany."""
    if not rows:
        return
    from django.db import connection

    from contacts.services import executemany

    q = connection.ops.quote_name
    at = WebhookDelivery._meta.get_field("delivered_at").get_db_prep_save(now, connection)
    sql = (f"UPDATE {q(WebhookDelivery._meta.db_table)} SET {q('status')} = %s, {q('delivered_at')} = %s, "
           f"{q('next_attempt_at')} = NULL, {q('last_error')} = '', {q('locked_until')} = NULL, {q('claim')} = '', "
           f"{q('response_code')} = %s, {q('response_ms')} = %s WHERE {q('id')} = %s")
    executemany(sql, [[WebhookDelivery.Status.DELIVERED.value, at, *row] for row in rows])


def _disable_if_failing(endpoint_id: int, now: dt.datetime) -> None:
    limit = int(settings.WEBHOOK_DISABLE_AFTER_FAILURES)
    reason = f"{limit} consecutive failed deliveries"
    disabled = WebhookEndpoint.objects.filter(pk=endpoint_id, enabled=True, failure_count__gte=limit).update(
        enabled=False, disabled_at=now, disabled_reason=reason, updated_at=now
    )
    if disabled:
        endpoint = WebhookEndpoint.objects.get(pk=endpoint_id)
        log.warning("webhook endpoint %s disabled after %s", endpoint_id, reason)
        events.forget_endpoints()
        transaction.on_commit(lambda: _alert_disabled(endpoint))


def _alert_disabled(endpoint: WebhookEndpoint) -> None:
    pending = WebhookDelivery.objects.filter(endpoint=endpoint, status=WebhookDelivery.Status.PENDING).count()
    mail_admins(
        f"Webhook endpoint disabled: {endpoint}",
        f"The webhook endpoint {endpoint.url} (#{endpoint.pk}) was disabled after "
        f"{endpoint.disabled_reason}.\n\n{pending} deliveries are waiting for it. Fix the receiver, then "
        "enable the endpoint again in the admin (API and webhooks > Webhook endpoints > "
        "'Enable and resume'); deliveries younger than their retry window resume.\n",
        fail_silently=True,
    )


def sweep_due_deliveries(*, limit: int = SWEEP_LIMIT) -> int:
    """Queue every pending delivery that is due, not leased, and for an enabled endpoint.

    Catches what a lost task, a broker restart or a killed worker left behind. Deliveries
    that just became due are left a few seconds to the task already queued for them.
    """
    now = timezone.now()
    grace = dt.timedelta(seconds=min(float(settings.WEBHOOK_SWEEP_SECONDS), 10.0))
    ids = list(
        WebhookDelivery.objects.filter(
            Q(locked_until__isnull=True) | Q(locked_until__lt=now),
            status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now - grace, endpoint__enabled=True,
        ).order_by("next_attempt_at").values_list("pk", flat=True)[:limit]
    )
    if ids:
        events.queue_deliveries(ids)
    return len(ids)


def redeliver(*, delivery_ids: list[int]) -> int:
    """Send these deliveries again (an operator's request), with a fresh retry window."""
    now = timezone.now()
    count = WebhookDelivery.objects.filter(pk__in=delivery_ids).update(
        status=WebhookDelivery.Status.PENDING, next_attempt_at=now, retry_until=now + events.retry_window(),
        locked_until=None, claim="",
    )
    ids = list(delivery_ids)
    transaction.on_commit(lambda: events.queue_deliveries(ids))
    return count
