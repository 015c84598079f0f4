"""Alerts: the one way the deliverability guard tells staff (issue 14 part 4).

`raise_alert` stores the alert, emits its event (api.events) in the caller's transaction and
mails staff after the commit; `acknowledge_alert` hides its banner. Imports only models.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.mail import mail_admins, send_mail
from django.db import transaction
from django.utils import timezone

from .models import Alert

log = logging.getLogger(__name__)

# Alert kinds that are also webhook event types (api.models.EventType).
_EVENT_KINDS = {Alert.Kind.INCIDENT_OPENED, Alert.Kind.INCIDENT_RESOLVED, Alert.Kind.GUARDRAIL_WARNING,
                Alert.Kind.CAMPAIGN_PAUSED}


def raise_alert(*, kind: str, title: str, body: str = "", link: str = "",
                severity: str = Alert.Severity.WARNING, event_data: dict[str, Any] | None = None,
                emit: bool = True) -> Alert:
    """Store an alert, emit its event and mail staff once the transaction commits.

    `kind` is an `Alert.Kind` (its value is the event type for the four event kinds);
    `event_data` the event's JSON payload (ids, not objects; the alert's id and title are
    added); `emit=False` when the caller emits the event itself (campaigns' own
    campaign.paused). The mail goes to BOUNCEMGR_ALERT_EMAILS, else to ADMINS; a mail server that
    fails is logged and never undoes the alert (the banner still shows it). Call it inside
    the transaction that makes the change it announces.
    """
    from api.events import emit_event  # the API app's models; imported late (api imports bounces)

    title = " ".join(title.split())[:200]  # one line: it becomes a mail subject
    with transaction.atomic():
        alert = Alert.objects.create(kind=kind, severity=severity, title=title, body=body, link=link[:500])
        if emit and kind in _EVENT_KINDS:
            emit_event(str(kind), {**(event_data or {}), "alert_id": alert.pk, "title": title})
        transaction.on_commit(lambda: _mail(alert))
    return alert


def _mail(alert: Alert) -> None:
    """Send the alert by mail (after commit: no network I/O inside a transaction)."""
    text = alert.body
    if alert.link:
        base = getattr(settings, "BOUNCEMGR_BASE_URL", "").rstrip("/")
        text = f"{text}\n\n{base}{alert.link}".strip()
    subject = f"[{alert.get_severity_display()}] {alert.title}"
    try:
        recipients = list(getattr(settings, "BOUNCEMGR_ALERT_EMAILS", None) or [])
        if recipients:
            send_mail(f"{settings.EMAIL_SUBJECT_PREFIX}{subject}", text, settings.SERVER_EMAIL, recipients)
        else:
            mail_admins(subject, text)
    except Exception:  # noqa: BLE001 - the alert is stored and shown; mail is best effort
        log.warning("could not mail alert %s", alert.pk, exc_info=True)


def acknowledge_alert(*, alert_id: int, user: Any) -> bool:
    """Hide an alert's banner for everyone; False when it was already acknowledged."""
    return bool(Alert.objects.filter(pk=alert_id, acknowledged_at__isnull=True).update(
        acknowledged_at=timezone.now(), acknowledged_by=user if getattr(user, "pk", None) else None))
