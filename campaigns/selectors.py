"""Read-only queries of the campaigns app: recipients, suppression look-ups, results.

Results are aggregated in the database: send outcomes come from the counters that
campaigns.services maintains on Campaign, bounce figures from Bounce rows through the
(campaign, kind, bounced_at) index, so the results page stays fast with a million
SentMessages (bench/bench_campaign_page.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db.models import Count, Exists, IntegerField, Max, OuterRef, Q, QuerySet, Value
from django.db.models.functions import Lower, StrIndex, Substr, TruncDay, TruncHour
from django.utils import timezone

from contacts.models import Contact, Subscription, Suppression

from .models import Campaign, SentMessage

# Bounce kinds that mean the message was not delivered to the recipient. Complaints and
# auto-replies prove delivery; a delay is not a failure (yet); unknown is shown apart.
FAILED_KINDS = ("hard", "soft", "blocked")
KIND_ORDER = ("hard", "soft", "blocked", "complaint", "autoreply", "delay", "unknown")


def domain_of(address: str) -> str:
    """The lower-case domain of an address ('' when there is none)."""
    return address.rpartition("@")[2].strip().lower() if "@" in address else ""


def _domain_and_parents(domain: str) -> list[str]:
    """example.co.uk -> [example.co.uk, co.uk, uk]: a suppressed domain covers its subdomains."""
    parts = domain.split(".")
    return [".".join(parts[i:]) for i in range(len(parts)) if parts[i]]


def suppressed_among(addresses: Iterable[str]) -> dict[str, Suppression]:
    """Which of `addresses` are suppressed, as {lower-case address: the Suppression}.

    An address is suppressed by an address entry, or by a domain entry for its domain or
    a parent domain. One query for any number of addresses.
    """
    wanted = {a.strip().lower() for a in addresses if a and a.strip()}
    if not wanted:
        return {}
    domains: dict[str, list[str]] = {a: _domain_and_parents(domain_of(a)) for a in wanted}
    all_domains = {d for ds in domains.values() for d in ds}
    found = Suppression.objects.filter(
        Q(kind=Suppression.Kind.ADDRESS, value__in=wanted)
        | Q(kind=Suppression.Kind.DOMAIN, value__in=all_domains)
    )
    by_address = {s.value: s for s in found if s.kind == Suppression.Kind.ADDRESS}
    by_domain = {s.value: s for s in found if s.kind == Suppression.Kind.DOMAIN}
    result: dict[str, Suppression] = {}
    for address in wanted:
        hit = by_address.get(address)
        if hit is None:
            hit = next((by_domain[d] for d in domains[address] if d in by_domain), None)
        if hit is not None:
            result[address] = hit
    return result


def eligible_recipients(*, campaign: Campaign) -> QuerySet[Contact]:
    """The list's active subscribers with an address that this campaign has no row for yet.

    Served by subscr_list_status_idx and the (campaign, contact) unique index.
    Suppression is checked by the caller in Python (domain matching), see suppressed_among.
    """
    already = SentMessage.objects.filter(campaign_id=campaign.pk, contact_id=OuterRef("pk"))
    subscribed = Subscription.objects.filter(
        mailing_list_id=campaign.mailing_list_id,
        contact_id=OuterRef("pk"),
        status=Subscription.Status.SUBSCRIBED,
    )
    return (
        Contact.objects.deliverable()
        .filter(Exists(subscribed))
        .exclude(Exists(already))
        .order_by("pk")
    )


def still_subscribed_ids(*, campaign: Campaign, contact_ids: Iterable[int]) -> set[int]:
    """Of these contacts, those still active and subscribed to the campaign's list."""
    return set(
        Contact.objects.deliverable()
        .filter(
            pk__in=list(contact_ids),
            subscriptions__mailing_list_id=campaign.mailing_list_id,
            subscriptions__status=Subscription.Status.SUBSCRIBED,
        )
        .values_list("pk", flat=True)
    )


# ---------------------------------------------------------------------------------------
# Results


@dataclass
class CampaignResults:
    """Every figure of the campaign results page."""

    campaign: Campaign
    attempted: int
    sent: int
    refused: int
    deferred: int
    skipped: int
    in_flight: int
    delivered: int
    bounced_recipients: int
    bounce_rate: float | None
    by_kind: dict[str, int]
    by_kind_recipients: dict[str, int]
    by_reason: list[dict] = field(default_factory=list)
    by_domain: list[dict] = field(default_factory=list)
    timeline: list[tuple[dt.datetime, dict[str, int]]] = field(default_factory=list)
    timeline_unit: str = "hour"

    @property
    def bounce_rate_percent(self) -> str:
        """The bounce rate for people: "2.4%" ("–" before anything was sent)."""
        return "–" if self.bounce_rate is None else f"{self.bounce_rate * 100:.1f}%"

    @property
    def hard(self) -> int:
        return self.by_kind_recipients.get("hard", 0)

    @property
    def soft(self) -> int:
        return self.by_kind_recipients.get("soft", 0)

    @property
    def blocked(self) -> int:
        return self.by_kind_recipients.get("blocked", 0)

    @property
    def complaints(self) -> int:
        return self.by_kind_recipients.get("complaint", 0)

    @property
    def autoreplies(self) -> int:
        return self.by_kind_recipients.get("autoreply", 0)

    @property
    def delays(self) -> int:
        return self.by_kind_recipients.get("delay", 0)

    @property
    def unknown(self) -> int:
        return self.by_kind_recipients.get("unknown", 0)


def campaign_bounces(*, campaign_id: int) -> QuerySet:
    """The bounces that count for a campaign's results: all but those judged not a bounce."""
    from bounces.models import Bounce

    return Bounce.objects.filter(campaign_id=campaign_id).exclude(state=Bounce.State.IGNORED)


def campaign_results(*, campaign: Campaign, top: int = 15) -> CampaignResults:
    """Aggregate a campaign's results in the database (a handful of grouped queries).

    Definitions (docs/campaigns.md): attempted = accepted + refused + deferred at send time;
    a recipient counts once per kind (distinct SentMessage); bounced recipients are those
    with a hard, soft or blocked bounce (send-time refusals included, they are Bounces
    too); delivered = attempted - bounced recipients; bounce rate = bounced / attempted.
    """
    bounces = campaign_bounces(campaign_id=campaign.pk)
    by_kind: dict[str, int] = {}
    by_kind_recipients: dict[str, int] = {}
    for row in bounces.values("kind").annotate(
        n=Count("id"), recipients=Count("sent_message_id", distinct=True)
    ):
        by_kind[row["kind"]] = row["n"]
        # Bounces not tied to a SentMessage (address matches) still count one recipient each.
        by_kind_recipients[row["kind"]] = max(row["recipients"], 1 if row["n"] else 0)
    failed = bounces.filter(kind__in=FAILED_KINDS).aggregate(
        matched=Count("sent_message_id", distinct=True),
        unmatched=Count("id", filter=Q(sent_message_id__isnull=True)),
    )
    bounced = failed["matched"] + failed["unmatched"]
    attempted = campaign.sent_count + campaign.refused_count + campaign.deferred_count
    in_flight = SentMessage.objects.filter(
        campaign_id=campaign.pk, status=SentMessage.Status.SENDING
    ).count()
    results = CampaignResults(
        campaign=campaign,
        attempted=attempted,
        sent=campaign.sent_count,
        refused=campaign.refused_count,
        deferred=campaign.deferred_count,
        skipped=campaign.skipped_count,
        in_flight=in_flight,
        delivered=max(attempted - bounced, 0),
        bounced_recipients=bounced,
        bounce_rate=(bounced / attempted) if attempted else None,
        by_kind={k: by_kind.get(k, 0) for k in KIND_ORDER},
        by_kind_recipients={k: by_kind_recipients.get(k, 0) for k in KIND_ORDER},
    )
    results.by_reason = list(
        bounces.values("kind", "reason").annotate(n=Count("id")).order_by("-n", "kind", "reason")[:top]
    )
    results.by_domain = bounces_by_domain(campaign_id=campaign.pk, top=top)
    results.timeline, results.timeline_unit = bounce_timeline(campaign=campaign)
    return results


def bounces_by_domain(*, campaign_id: int, top: int = 15) -> list[dict]:
    """Bounces per recipient domain (lower-cased in the database), largest first."""
    domain = Lower(Substr("recipient", StrIndex("recipient", Value("@")) + 1))
    return list(
        campaign_bounces(campaign_id=campaign_id)
        .annotate(domain=domain)
        .values("domain")
        .annotate(
            n=Count("id"),
            hard=Count("id", filter=Q(kind="hard")),
            soft=Count("id", filter=Q(kind="soft")),
            blocked=Count("id", filter=Q(kind="blocked")),
            other=Count("id", filter=~Q(kind__in=FAILED_KINDS)),
        )
        .order_by("-n", "domain")[:top]
    )


def bounce_timeline(
    *, campaign: Campaign, now: dt.datetime | None = None
) -> tuple[list[tuple[dt.datetime, dict[str, int]]], str]:
    """Bounces per hour (first three days) or per day since sending, per kind.

    Returns ([(bucket start, {kind: n})...], "hour"|"day"), with empty buckets filled in
    so the chart's x axis is time.
    """
    start = campaign.sent_at
    if start is None:
        return [], "hour"
    now = now or timezone.now()
    last = campaign_bounces(campaign_id=campaign.pk).aggregate(last=Max("bounced_at"))["last"]
    end = max(now, last or start)
    span = end - start
    unit = "hour" if span <= dt.timedelta(days=3) else "day"
    trunc = TruncHour("bounced_at") if unit == "hour" else TruncDay("bounced_at")
    step = dt.timedelta(hours=1) if unit == "hour" else dt.timedelta(days=1)
    rows = (
        campaign_bounces(campaign_id=campaign.pk)
        .filter(bounced_at__gte=start)
        .annotate(bucket=trunc)
        .values("bucket", "kind")
        .annotate(n=Count("id"))
        .order_by("bucket")
    )
    counts: dict[dt.datetime, dict[str, int]] = {}
    for row in rows:
        counts.setdefault(row["bucket"], {})[row["kind"]] = row["n"]
    first = _truncate(start, unit)
    buckets: list[tuple[dt.datetime, dict[str, int]]] = []
    cursor = first
    limit = 24 * 7 if unit == "hour" else 400  # keep the chart readable
    while cursor <= end and len(buckets) < limit:
        buckets.append((cursor, counts.get(cursor, {})))
        cursor += step
    return buckets, unit


def _truncate(moment: dt.datetime, unit: str) -> dt.datetime:
    moment = timezone.localtime(moment) if timezone.is_aware(moment) else moment
    moment = moment.replace(minute=0, second=0, microsecond=0)
    if unit == "day":
        moment = moment.replace(hour=0)
    return moment


def bounced_recipients(*, campaign_id: int, kind: str | None = None) -> QuerySet:
    """The campaign's bounces, newest first, for the paginated list and the CSV export."""
    qs = campaign_bounces(campaign_id=campaign_id)
    if kind:
        qs = qs.filter(kind=kind)
    return qs.select_related("contact").order_by("-bounced_at", "-id")


def progress_counts(*, campaign_id: int) -> dict[str, int]:
    """SentMessage rows per status (campaign, status index); for recounting and tests."""
    rows = (
        SentMessage.objects.filter(campaign_id=campaign_id)
        .values("status")
        .annotate(n=Count("id", output_field=IntegerField()))
    )
    return {row["status"]: row["n"] for row in rows}


__all__ = [
    "CampaignResults",
    "bounce_timeline",
    "bounced_recipients",
    "bounces_by_domain",
    "campaign_bounces",
    "campaign_results",
    "domain_of",
    "eligible_recipients",
    "progress_counts",
    "still_subscribed_ids",
    "suppressed_among",
]
