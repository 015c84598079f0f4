"""Reads of alerts and incidents (the banner, the dashboard, the incident pages, the API).
Imports models only."""

from __future__ import annotations

from django.db.models import QuerySet

from .models import Alert, Incident

BANNER_ALERTS = 5


def unacknowledged_alerts(*, limit: int = BANNER_ALERTS) -> tuple[list[Alert], int]:
    """The newest unacknowledged alerts (at most `limit`) and how many there are in all
    (served by alert_open_idx)."""
    qs = Alert.objects.filter(acknowledged_at__isnull=True).order_by("-created_at", "-id")
    rows = list(qs[:limit])
    return rows, (len(rows) if len(rows) < limit else qs.count())


def open_incidents(*, limit: int | None = None) -> list[Incident]:
    """Open incidents, newest first."""
    qs = Incident.objects.filter(status=Incident.Status.OPEN).order_by("-opened_at", "-id")
    return list(qs[:limit] if limit else qs)


def incidents() -> QuerySet[Incident]:
    """All incidents, newest first (the list page and the API page through it)."""
    return Incident.objects.select_related("resolved_by").order_by("-opened_at", "-id")
