"""Writes of the console: rebuilding the dashboard's stored counts (console/models.py).

The counts cover the last 30 days of bounces up to a bounce id; the dashboard adds the
bounces above that id live (a primary-key range: the few since the last rebuild). A rebuild
every 15 minutes (beat: "console: rebuild dashboard counts") also takes in what changed on
older bounces (re-applied rules, a kind assigned from the unexplained queue).
"""

from __future__ import annotations

import datetime as dt
import time

from django.db import transaction
from django.db.models import Count, Max
from django.utils import timezone

from bounces.models import Bounce

from .models import DashboardCount, DashboardCountState

WINDOW_DAYS = 30
CHART_KINDS = ("hard", "soft", "blocked", "complaint")


def window_start(now: dt.datetime) -> tuple[dt.date, dt.datetime]:
    """Today (local) and the first instant of the 30-day window."""
    today = timezone.localdate(now)
    first_day = today - dt.timedelta(days=WINDOW_DAYS - 1)
    return today, timezone.make_aware(dt.datetime.combine(first_day, dt.time.min))


def count_bounces(queryset) -> dict[str, dict[tuple[dt.date, str], int]]:
    """(day, key) -> count per dimension over `queryset` (bounces): three grouped queries."""
    from django.db.models import F, Value
    from django.db.models.functions import Lower, StrIndex, Substr, TruncDate

    day = TruncDate("bounced_at", tzinfo=timezone.get_current_timezone())
    out: dict[str, dict[tuple[dt.date, str], int]] = {d: {} for d in DashboardCount.Dimension.values}

    def add(dimension: str, rows, key: str) -> None:
        for row in rows:
            d = row["day"].date() if isinstance(row["day"], dt.datetime) else row["day"]
            out[dimension][(d, row[key] or "")] = out[dimension].get((d, row[key] or ""), 0) + row["n"]

    add("kind", queryset.annotate(day=day).values("day", "kind").annotate(n=Count("id")).order_by(), "kind")
    add("reason", queryset.exclude(reason="").annotate(day=day).values("day", "reason")
        .annotate(n=Count("id")).order_by(), "reason")
    domain = Lower(Substr(F("recipient"), StrIndex(F("recipient"), Value("@")) + 1))
    add("domain", queryset.filter(kind__in=CHART_KINDS).exclude(recipient="").annotate(day=day, domain=domain)
        .values("day", "domain").annotate(n=Count("id")).order_by(), "domain")
    return out


def rebuild_dashboard_counts(*, now: dt.datetime | None = None) -> DashboardCountState:
    """Count the last 30 days of bounces again, up to the highest bounce id at the start.

    Replaces every stored count in one transaction; the dashboard never sees half a rebuild.
    Bounces committed later with a lower id than the mark are taken in by the next rebuild.
    """
    started = time.perf_counter()
    now = now or timezone.now()
    today, start = window_start(now)
    last_id = Bounce.objects.aggregate(m=Max("id"))["m"] or 0
    # kind IN (all kinds) + range keeps the planner on bounce_kind_idx (kind, -bounced_at)
    counted = count_bounces(Bounce.objects.filter(kind__in=Bounce.Kind.values, bounced_at__gte=start,
                                                  id__lte=last_id))
    merged: dict[tuple[str, dt.date, str], int] = {}
    for dimension, counts in counted.items():
        for (d, key), n in counts.items():  # a hostile 300-character domain is cut, and merged
            merged[(dimension, d, key[:255])] = merged.get((dimension, d, key[:255]), 0) + n
    rows = [DashboardCount(day=d, dimension=dimension, key=key, n=n) for (dimension, d, key), n in merged.items()]
    with transaction.atomic():
        DashboardCount.objects.all().delete()
        DashboardCount.objects.bulk_create(rows, batch_size=2000)
        state, _ = DashboardCountState.objects.select_for_update().get_or_create(pk=1)
        state.last_bounce_id = last_id
        state.window_start = start.date() if isinstance(start, dt.datetime) else start
        state.rebuilt_at = timezone.now()
        state.took_ms = int((time.perf_counter() - started) * 1000)
        state.save()
    return state
