"""Reads for the dashboard. Every query is bounded (a window, a LIMIT) and served by an index.

The windows read at most the last 30 days of bounces through bounce_kind_idx
(kind, -bounced_at): the `kind IN (...)` keeps the planner on that index, so the cost
follows the bounces of the window, never the whole table (bench/bench_dashboard.py).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count, F, Value
from django.db.models.functions import Lower, StrIndex, Substr, TruncDate
from django.utils import timezone

from bounces.incidents import selectors as incident_selectors
from bounces.intake import schedules
from bounces.models import Bounce, Mailbox, ProcessingRun
from campaigns.models import Campaign
from contacts.models import Suppression

CHART_KINDS = ("hard", "soft", "blocked", "complaint")
WINDOW_DAYS = 30
TOP = 8
ROWS = 10
MAILBOXES_SHOWN = 50


@dataclass(frozen=True)
class Windows:
    """Bounces by kind over today / 7 days / 30 days, and per day for the chart."""

    kinds: list[dict]  # {kind, label, today, week, month}
    totals: dict[str, int]  # today, week, month
    days: list[tuple[dt.date, dict[str, int]]]  # oldest first, WINDOW_DAYS entries


def _window_start(now: dt.datetime) -> tuple[dt.date, dt.datetime]:
    today = timezone.localdate(now)
    first_day = today - dt.timedelta(days=WINDOW_DAYS - 1)
    start = timezone.make_aware(dt.datetime.combine(first_day, dt.time.min))
    return today, start


def _recent_bounces(since: dt.datetime):
    # kind IN (all kinds) + range: one index range scan per kind on bounce_kind_idx.
    return Bounce.objects.filter(kind__in=Bounce.Kind.values, bounced_at__gte=since)


def bounce_windows(*, now: dt.datetime | None = None) -> Windows:
    """One grouped query over the last 30 days: (day, kind) -> count."""
    now = now or timezone.now()
    today, start = _window_start(now)
    rows = (
        _recent_bounces(start)
        .annotate(day=TruncDate("bounced_at", tzinfo=timezone.get_current_timezone()))
        .values("day", "kind")
        .annotate(n=Count("id"))
        .order_by()
    )
    per_day: dict[dt.date, dict[str, int]] = {}
    by_kind: dict[str, dict[str, int]] = {}
    week_start = today - dt.timedelta(days=6)
    for row in rows:
        day, kind, n = row["day"], row["kind"], row["n"]
        if isinstance(day, dt.datetime):  # some backends hand back a datetime
            day = day.date()
        per_day.setdefault(day, {})[kind] = per_day.get(day, {}).get(kind, 0) + n
        counts = by_kind.setdefault(kind, {"today": 0, "week": 0, "month": 0})
        counts["month"] += n
        if day >= week_start:
            counts["week"] += n
        if day == today:
            counts["today"] += n
    labels = dict(Bounce.Kind.choices)
    kinds = [
        {"kind": kind, "label": labels[kind], **by_kind.get(kind, {"today": 0, "week": 0, "month": 0})}
        for kind in Bounce.Kind.values
    ]
    totals = {w: sum(k[w] for k in kinds) for w in ("today", "week", "month")}
    days = [
        (today - dt.timedelta(days=offset), {k: per_day.get(today - dt.timedelta(days=offset), {}).get(k, 0)
                                             for k in CHART_KINDS})
        for offset in range(WINDOW_DAYS - 1, -1, -1)
    ]
    return Windows(kinds=kinds, totals=totals, days=days)


def top_reasons(*, now: dt.datetime | None = None, limit: int = TOP) -> list[dict]:
    """The most frequent reasons of the last 30 days, with their kind mix."""
    _, start = _window_start(now or timezone.now())
    return list(
        _recent_bounces(start).exclude(reason="")
        .values("reason").annotate(n=Count("id")).order_by("-n", "reason")[:limit]
    )


def top_domains(*, now: dt.datetime | None = None, limit: int = TOP) -> list[dict]:
    """The recipient domains with the most hard/soft/blocked bounces in the last 30 days."""
    _, start = _window_start(now or timezone.now())
    domain = Lower(Substr(F("recipient"), StrIndex(F("recipient"), Value("@")) + 1))
    return list(
        Bounce.objects.filter(kind__in=CHART_KINDS, bounced_at__gte=start)
        .exclude(recipient="")
        .annotate(domain=domain).values("domain").annotate(n=Count("id")).order_by("-n", "domain")[:limit]
    )


def mailboxes(*, now: dt.datetime | None = None) -> list[dict]:
    """Each mailbox with its last run, next scheduled run and last error (first 50 by name)."""
    now = now or timezone.now()
    rows = []
    boxes = Mailbox.objects.order_by("name").only(
        "id", "name", "protocol", "host", "path", "folder", "enabled", "schedule", "interval_minutes", "run_at",
        "last_run_at", "last_success_at", "last_error", "last_error_at",
    )
    for mailbox in schedules.with_last_scheduled_run(boxes)[:MAILBOXES_SHOWN]:
        next_run = schedules.next_run(mailbox, now=now)
        error_is_current = bool(mailbox.last_error) and (
            not mailbox.last_success_at or (mailbox.last_error_at and mailbox.last_error_at >= mailbox.last_success_at)
        )
        rows.append({
            "mailbox": mailbox,
            "next_run": next_run,
            "due": next_run is not None and next_run <= now,
            "error": mailbox.last_error[:300] if error_is_current else "",
        })
    return rows


def mailbox_count() -> int:
    return Mailbox.objects.count()


def recent_runs(*, limit: int = ROWS) -> list[ProcessingRun]:
    """The latest runs (primary key order: no sort over the whole table)."""
    return list(ProcessingRun.objects.select_related("mailbox").order_by("-id")[:limit])


def paused_campaigns(*, limit: int = ROWS) -> list[Campaign]:
    return list(Campaign.objects.filter(status=Campaign.Status.PAUSED).order_by("-id")[:limit])


def failing_campaigns(*, limit: int = ROWS) -> list[Campaign]:
    """Campaigns whose last sending attempt left an error."""
    return list(Campaign.objects.exclude(last_error="").order_by("-id")[:limit])


def suppression_count() -> int:
    return Suppression.objects.count()


def open_incidents(*, limit: int = ROWS) -> list:
    """Open incidents, newest first (bounces/incidents)."""
    return incident_selectors.open_incidents(limit=limit)


def unacknowledged_alerts() -> tuple[list, int]:
    """The alerts banner: the newest unacknowledged alerts and their number."""
    return incident_selectors.unacknowledged_alerts()
