"""Reads for the pipeline pages: run progress, the unexplained queue, deliverability.
Imports models only; never services."""

from __future__ import annotations

from datetime import datetime

from django.db.models import BinaryField, Count, F, QuerySet, Value
from django.db.models.functions import Lower, StrIndex, Substr

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
