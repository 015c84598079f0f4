"""Reads for the dashboard. Every query is bounded (a window, a LIMIT) and served by an index.

Bounce figures come from the stored counts (console/models.py, rebuilt every 15 minutes by
console/services.py) plus the bounces above their id mark counted live: the page sums a few
thousand stored rows instead of grouping every bounce of 30 days (bench/bench_dashboard.py).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.utils import timezone

from bounces.incidents import selectors as incident_selectors
from bounces.intake import schedules
from bounces.models import Bounce, Mailbox, ProcessingRun
from campaigns.models import Campaign
from contacts.models import Suppression

from . import services
from .models import DashboardCount, DashboardCountState

CHART_KINDS = services.CHART_KINDS
WINDOW_DAYS = services.WINDOW_DAYS
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
    return services.window_start(now)


def dashboard_counts(*, now: dt.datetime) -> dict[str, dict[tuple[dt.date, str], int]]:
    """(day, key) -> count per dimension (kind, reason, domain) over the 30-day window: the
    stored counts (console/models.py) plus the bounces above their id mark, counted live.

    The first call on an installation without stored counts builds them (once)."""
    today, start = _window_start(now)
    state = DashboardCountState.objects.filter(pk=1).first()
    if state is None:
        state = services.rebuild_dashboard_counts(now=now)
    counts: dict[str, dict[tuple[dt.date, str], int]] = {d: {} for d in DashboardCount.Dimension.values}
    for dimension, day, key, n in DashboardCount.objects.filter(day__gte=start.date()).values_list(
            "dimension", "day", "key", "n"):
        counts[dimension][(day, key)] = n
    # the bounces since the mark: a primary-key range, whatever their bounce time
    live = services.count_bounces(Bounce.objects.filter(id__gt=state.last_bounce_id, bounced_at__gte=start))
    for dimension, rows in live.items():
        for (day, key), n in rows.items():
            counts[dimension][(day, key[:255])] = counts[dimension].get((day, key[:255]), 0) + n
    return counts


def bounce_windows(*, now: dt.datetime | None = None, counts=None) -> Windows:
    """Today / 7 days / 30 days by kind, and per day for the chart, from `dashboard_counts`."""
    now = now or timezone.now()
    today, _ = _window_start(now)
    counts = counts if counts is not None else dashboard_counts(now=now)
    per_day: dict[dt.date, dict[str, int]] = {}
    by_kind: dict[str, dict[str, int]] = {}
    week_start = today - dt.timedelta(days=6)
    for (day, kind), n in counts["kind"].items():
        if day > today:
            continue
        per_day.setdefault(day, {})[kind] = per_day.get(day, {}).get(kind, 0) + n
        kind_counts = by_kind.setdefault(kind, {"today": 0, "week": 0, "month": 0})
        kind_counts["month"] += n
        if day >= week_start:
            kind_counts["week"] += n
        if day == today:
            kind_counts["today"] += n
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


def _top(rows: dict[tuple[dt.date, str], int], field: str, limit: int) -> list[dict]:
    totals: dict[str, int] = {}
    for (_, key), n in rows.items():
        totals[key] = totals.get(key, 0) + n
    ranked = sorted(totals.items(), key=lambda item: (-item[1], item[0]))[:limit]
    return [{field: key, "n": n} for key, n in ranked]


def top_reasons(*, now: dt.datetime | None = None, limit: int = TOP, counts=None) -> list[dict]:
    """The most frequent reasons of the last 30 days."""
    counts = counts if counts is not None else dashboard_counts(now=now or timezone.now())
    return _top(counts["reason"], "reason", limit)


def top_domains(*, now: dt.datetime | None = None, limit: int = TOP, counts=None) -> list[dict]:
    """The recipient domains with the most hard/soft/blocked/complaint bounces in the last 30 days."""
    counts = counts if counts is not None else dashboard_counts(now=now or timezone.now())
    return _top(counts["domain"], "domain", limit)


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
    """Paused campaigns, with the guardrail's reason when it paused them (one query)."""
    return list(Campaign.objects.filter(status=Campaign.Status.PAUSED).select_related("guardrail")
                .order_by("-id")[:limit])


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
