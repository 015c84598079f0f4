"""Reads for the pipeline pages: run progress, the unexplained queue, deliverability.
Imports models only; never services."""

from __future__ import annotations

from datetime import datetime

from django.db.models import BinaryField, Count, F, Max, Q, QuerySet, Value
from django.db.models.functions import Lower, StrIndex, Substr, TruncDate

from .models import Bounce, ProcessingRun, RawMessage


def run_progress(*, run: ProcessingRun) -> dict:
    """What the run page polls: status, counts, and the one-line summary when done."""
    percent = 100 if run.finished else (int(100 * run.processed / run.total) if run.total else 0)
    return {
        "id": run.pk,
        "mailbox": run.mailbox.name if run.mailbox_id and run.mailbox else None,
        "status": run.status,
        "status_display": run.get_status_display(),
        "finished": run.finished,
        "dry_run": run.dry_run,
        "total": run.total,
        "processed": run.processed,
        "percent": percent,
        # a run over stored messages: its chunks, one Celery task each (bounces.intake.stored)
        "chunks_done": run.chunks_done,
        "chunks_total": run.chunks_total,
        "counts": {name: getattr(run, name) for name in (
            "fetched", "duplicates", "hard", "soft", "blocked", "complaint", "autoreply", "delay",
            "unknown", "unmatched", "errors")},
        "summary": run.summary(),
        "error_log": run.error_log[-4000:],
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }


# Bytes of the raw message the unexplained queue reads per row (the Subject is in the headers).
RAW_HEAD_BYTES = 16 * 1024


def unexplained_bounces() -> QuerySet[Bounce]:
    """The operator's queue: unknown or unmatched bounces, newest first (bounce_state_idx).

    The raw message is never loaded: one message may be 13 MB and shared by 4,000 rows
    (issue 12, item 3); `attach_raw_heads` reads the first bytes of the page's messages.
    """
    return (
        Bounce.objects.filter(state=Bounce.State.UNMATCHED)
        .select_related("mailbox", "raw_message")
        .defer("raw_message__raw")
        .order_by("-bounced_at", "-id")
    )


def attach_raw_heads(bounces: list[Bounce], *, size: int = RAW_HEAD_BYTES) -> list[Bounce]:
    """Set ``raw_head`` (the first ``size`` bytes of its raw message, b"" without one) on each
    bounce: one query for the distinct messages of the page, never the whole blobs."""
    ids = {b.raw_message_id for b in bounces if b.raw_message_id}
    heads = dict(
        RawMessage.objects.filter(pk__in=ids)
        .annotate(head=Substr("raw", 1, size, output_field=BinaryField()))
        .values_list("pk", "head")
    ) if ids else {}
    for bounce in bounces:
        bounce.raw_head = bytes(heads.get(bounce.raw_message_id) or b"")
    return bounces


def blocked_by_campaign(*, since: datetime | None = None) -> list[dict]:
    """Sender-side blocks per campaign (our deliverability problem), most first."""
    qs = Bounce.objects.filter(kind=Bounce.Kind.BLOCKED, campaign__isnull=False)
    if since is not None:
        qs = qs.filter(bounced_at__gte=since)
    return list(
        qs.values("campaign_id", "campaign__name").annotate(n=Count("id")).order_by("-n")[:200]
    )


def blocked_by_domain(*, since: datetime | None = None) -> list[dict]:
    """Sender-side blocks per remote (recipient) domain, most first, with a sample reason."""
    qs = Bounce.objects.filter(kind=Bounce.Kind.BLOCKED).exclude(recipient="")
    if since is not None:
        qs = qs.filter(bounced_at__gte=since)
    domain = Lower(Substr(F("recipient"), StrIndex(F("recipient"), Value("@")) + 1))
    return list(
        qs.annotate(domain=domain).values("domain").annotate(n=Count("id")).order_by("-n")[:200]
    )


# ---------------------------------------------------------------------------------------
# The per-domain deliverability view (bounces/views/deliverability.py)

# Kinds shown as columns, in this order; "bounced" (hard + blocked) is what the guardrails count.
DELIVERABILITY_KINDS = ("hard", "soft", "blocked", "complaint", "delay", "autoreply", "unknown")
DELIVERABILITY_SORTS = ("domain", "total", "bounced", *DELIVERABILITY_KINDS)


def recipient_domain():
    """SQL: the lower-cased domain of Bounce.recipient ("" without an @)."""
    return Lower(Substr(F("recipient"), StrIndex(F("recipient"), Value("@")) + 1))


def _in_range(*, since: datetime, until: datetime, campaign_id: int | None) -> QuerySet[Bounce]:
    qs = Bounce.objects.filter(bounced_at__gte=since, bounced_at__lt=until).exclude(recipient="")
    qs = qs.exclude(state=Bounce.State.IGNORED)  # not bounces at all
    return qs.filter(campaign_id=campaign_id) if campaign_id else qs


def domains_by_kind(*, since: datetime, until: datetime, campaign_id: int | None = None,
                    domain_contains: str = "", sort: str = "-total") -> QuerySet:
    """One row per receiving domain: bounces per kind, total and bounced (hard + blocked), in
    [since, until), optionally of one campaign; sorted by `sort` (a DELIVERABILITY_SORTS name,
    "-" for descending), the domain breaking ties. A values() query: page it or iterate it."""
    qs = _in_range(since=since, until=until, campaign_id=campaign_id).annotate(domain=recipient_domain())
    if domain_contains:
        qs = qs.filter(domain__contains=domain_contains.lower())
    counts = {kind: Count("id", filter=Q(kind=kind)) for kind in DELIVERABILITY_KINDS}
    rows = qs.values("domain").annotate(
        total=Count("id"), bounced=Count("id", filter=Q(kind__in=("hard", "blocked"))), **counts)
    field = sort.lstrip("-")
    if field not in DELIVERABILITY_SORTS:
        field, sort = "total", "-total"
    order = f"-{field}" if sort.startswith("-") else field
    return rows.order_by(order, "domain") if field != "domain" else rows.order_by(order)


def domain_timeline(*, domain: str, since: datetime, until: datetime, campaign_id: int | None = None) -> list[dict]:
    """One receiving domain's bounces per day and kind: [{"day": date, "hard": n, ...}], oldest first."""
    qs = _in_range(since=since, until=until, campaign_id=campaign_id).annotate(domain=recipient_domain()).filter(
        domain=domain.lower())
    counts = {kind: Count("id", filter=Q(kind=kind)) for kind in DELIVERABILITY_KINDS}
    return list(qs.annotate(day=TruncDate("bounced_at")).values("day").annotate(total=Count("id"), **counts)
                .order_by("day")[:400])


def top_diagnostics(*, since: datetime, until: datetime, campaign_id: int | None = None, domain: str = "",
                    limit: int = 10) -> list[dict]:
    """The most frequent (kind, reason, status code) with one sample of the server's text
    (the first 300 characters: hostile text, shown escaped)."""
    qs = _in_range(since=since, until=until, campaign_id=campaign_id)
    if domain:
        qs = qs.annotate(domain=recipient_domain()).filter(domain=domain.lower())
    rows = list(qs.values("kind", "reason", "status_code").annotate(n=Count("id"), sample=Max("id"))
                .order_by("-n", "kind", "reason")[:limit])
    texts = dict(Bounce.objects.filter(pk__in=[r["sample"] for r in rows])
                 .annotate(head=Substr("diagnostic", 1, 300)).values_list("pk", "head"))
    for row in rows:
        row["diagnostic"] = texts.get(row["sample"], "")
    return rows
