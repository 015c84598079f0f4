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

from django.db.models import Count, Exists, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Lower, StrIndex, Substr, TruncHour
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
    # Lapsed soft / blocked suppressions (expires_at passed) no longer block sending.
    found = Suppression.objects.active().filter(
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


# A list unsubscription made by a bounce (Subscription.unsubscribe_reason): such
# contacts are listed as skipped on the next campaign, with the reason, rather than vanish.
BOUNCE_UNSUBSCRIBE_REASONS = ("hard_bounce", "soft_bounce", "complaint", "blacklist")


def recipients_to_consider(*, campaign: Campaign) -> QuerySet[Contact]:
    """Every contact of the campaign's list that the campaign must either send to or list as
    skipped: subscribed ones (whatever their state), and those a bounce unsubscribed.
    Contacts that have a row for this campaign already are left out. Each contact carries
    `list_status` (its subscription's status). Served by subscr_list_status_idx.
    """
    already = SentMessage.objects.filter(campaign_id=campaign.pk, contact_id=OuterRef("pk"))
    subscription = Subscription.objects.filter(mailing_list_id=campaign.mailing_list_id, contact_id=OuterRef("pk"))
    relevant = subscription.filter(
        Q(status=Subscription.Status.SUBSCRIBED)
        | Q(status=Subscription.Status.UNSUBSCRIBED, unsubscribe_reason__in=BOUNCE_UNSUBSCRIBE_REASONS)
    )
    return (
        Contact.objects.filter(Exists(relevant))
        .exclude(Exists(already))
        .annotate(list_status=Subquery(subscription.values("status")[:1]))
        .order_by("pk")
    )


def skip_reason(contact: Contact, *, list_status: str | None, suppressed: bool) -> str:
    """Why `contact` must not get this campaign ('' when it may): issue 11's sending filter.

    A contact is never mailed when its address is suppressed, it is blacklisted,
    hard-bounced, unsubscribed (from everything or, by a bounce, from this list),
    unconfirmed, or its address was moved aside.
    """
    reasons = SentMessage.SkipReason
    if not contact.email:
        return reasons.MOVED_ASIDE if contact.bounced_address else reasons.UNSUBSCRIBED
    if contact.status == Contact.Status.BLACKLISTED:
        return reasons.BLACKLISTED
    if suppressed:
        return reasons.SUPPRESSED
    if contact.has_bounced:
        return reasons.HARD_BOUNCED
    if list_status == Subscription.Status.UNSUBSCRIBED:
        return reasons.UNSUBSCRIBED_BY_BOUNCE
    if contact.status == Contact.Status.UNSUBSCRIBED or list_status not in (None, Subscription.Status.SUBSCRIBED):
        return reasons.UNSUBSCRIBED
    if contact.status == Contact.Status.UNCONFIRMED:
        return reasons.UNCONFIRMED
    return ""


def skipped_recipients(*, campaign_id: int, limit: int = 200) -> tuple[list[dict], list[SentMessage]]:
    """The campaign's skipped messages: counts per reason, and the first `limit` rows."""
    qs = SentMessage.objects.filter(campaign_id=campaign_id, status=SentMessage.Status.SKIPPED)
    labels = dict(SentMessage.SkipReason.choices)
    counts = [
        {"reason": row["skip_reason"], "label": labels.get(row["skip_reason"], "Suppressed or unsubscribed"),
         "n": row["n"]}
        for row in qs.values("skip_reason").annotate(n=Count("id")).order_by("-n")
    ]
    return counts, list(qs.order_by("email").only("email", "skip_reason", "contact_id")[:limit])


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
#
# The bounce figures are computed by compute_bounce_aggregates (grouped queries over the
# campaign's Bounce rows) and stored in CampaignStats; results_from turns a stored
# snapshot, the campaign's send counters and the clock into what the page shows.


@dataclass
class CampaignResults:
    """Every figure of the campaign results page."""

    campaign: Campaign
    attempted: int
    sent: int
    refused: int
    deferred: int
    awaiting_retry: int
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
    computed_at: dt.datetime | None = None
    stale: bool = False

    @property
    def total_bounces(self) -> int:
        return sum(self.by_kind.values())

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


def bounce_fingerprint(*, campaign_id: int) -> list[str | None]:
    """The latest bounced_at of each kind of the campaign's bounces (ISO strings), in one
    query of one index probe per kind (bounce_campaign_kind_idx): tells whether stored
    aggregates are still current. A bounce dated before the newest of its kind, a deleted
    one or a changed kind are caught by the age limit instead (CAMPAIGN_STATS_MAX_AGE)."""
    from bounces.models import Bounce

    latest = {
        kind: Subquery(
            Bounce.objects.filter(campaign_id=OuterRef("pk"), kind=kind)
            .order_by("-bounced_at").values("bounced_at")[:1]
        )
        for kind in Bounce.Kind.values
    }
    row = Campaign.objects.filter(pk=campaign_id).values(**latest).first() or {}
    return [row[k].isoformat() if row.get(k) else None for k in Bounce.Kind.values]


def compute_bounce_aggregates(*, campaign_id: int, top: int = 15) -> dict:
    """Every bounce figure of a campaign, JSON-ready (a handful of grouped queries).

    Kinds count bounces and recipients: distinct addresses (case-insensitive), so an
    address that bounced several times, matched by token or only by address, counts once.
    Bounced recipients = distinct addresses with a hard, soft or blocked bounce. The
    timeline is stored per hour (ISO start -> {kind: n}).
    """
    bounces = campaign_bounces(campaign_id=campaign_id)
    by_kind: dict[str, int] = {}
    by_kind_recipients: dict[str, int] = {}
    address = Lower("recipient")
    for row in bounces.values("kind").annotate(n=Count("id"), recipients=Count(address, distinct=True)):
        by_kind[row["kind"]] = row["n"]
        by_kind_recipients[row["kind"]] = row["recipients"]
    failed = bounces.filter(kind__in=FAILED_KINDS).aggregate(recipients=Count(address, distinct=True))
    by_reason = list(
        bounces.values("kind", "reason").annotate(n=Count("id")).order_by("-n", "kind", "reason")[:top]
    )
    domain = Lower(Substr("recipient", StrIndex("recipient", Value("@")) + 1))
    by_domain = list(
        bounces.annotate(domain=domain)
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
    hourly: dict[str, dict[str, int]] = {}
    for row in bounces.annotate(bucket=TruncHour("bounced_at")).values("bucket", "kind").annotate(n=Count("id")):
        hourly.setdefault(row["bucket"].isoformat(), {})[row["kind"]] = row["n"]
    return {
        "by_kind": by_kind,
        "by_kind_recipients": by_kind_recipients,
        "bounced_recipients": failed["recipients"],
        "by_reason": by_reason,
        "by_domain": by_domain,
        "hourly": hourly,
    }


def results_from(
    *, campaign: Campaign, data: dict, computed_at: dt.datetime | None = None, stale: bool = False,
    now: dt.datetime | None = None,
) -> CampaignResults:
    """The page's figures from stored aggregates and the campaign's send counters.

    Sent (attempted) = accepted + refused + deferred at send time; delivered = attempted -
    bounced recipients - messages still awaiting a retry (deferred with a next attempt:
    neither delivered nor bounced yet); bounce rate = bounced recipients / attempted.
    """
    attempted = campaign.sent_count + campaign.refused_count + campaign.deferred_count
    bounced = int(data.get("bounced_recipients", 0))
    in_flight = SentMessage.objects.filter(campaign_id=campaign.pk, status=SentMessage.Status.SENDING).count()
    # served by sentmsg_retry_due_idx (partial: deferred rows with a next attempt)
    awaiting_retry = SentMessage.objects.filter(
        campaign_id=campaign.pk, status=SentMessage.Status.DEFERRED, next_attempt_at__isnull=False
    ).count()
    timeline, unit = timeline_from(
        hourly=data.get("hourly", {}), start=campaign.sent_at, now=now or timezone.now()
    )
    return CampaignResults(
        campaign=campaign,
        attempted=attempted,
        sent=campaign.sent_count,
        refused=campaign.refused_count,
        deferred=campaign.deferred_count,
        skipped=campaign.skipped_count,
        in_flight=in_flight,
        awaiting_retry=awaiting_retry,
        delivered=max(attempted - bounced - awaiting_retry, 0),
        bounced_recipients=bounced,
        bounce_rate=(bounced / attempted) if attempted else None,
        by_kind={k: int(data.get("by_kind", {}).get(k, 0)) for k in KIND_ORDER},
        by_kind_recipients={k: int(data.get("by_kind_recipients", {}).get(k, 0)) for k in KIND_ORDER},
        by_reason=data.get("by_reason", []),
        by_domain=data.get("by_domain", []),
        timeline=timeline,
        timeline_unit=unit,
        computed_at=computed_at,
        stale=stale,
    )


def timeline_from(
    *, hourly: dict[str, dict[str, int]], start: dt.datetime | None, now: dt.datetime
) -> tuple[list[tuple[dt.datetime, dict[str, int]]], str]:
    """Bounces per hour (first three days) or per day, from sending until now, gaps filled.

    Returns ([(bucket start, {kind: n})...], "hour"|"day"); bounces stamped before the
    sending started (clock skew) land in the first bucket.
    """
    if start is None:
        return [], "hour"
    points = {dt.datetime.fromisoformat(k): v for k, v in hourly.items()}
    end = max([now, *points])
    unit = "hour" if end - start <= dt.timedelta(days=3) else "day"
    step = dt.timedelta(hours=1) if unit == "hour" else dt.timedelta(days=1)
    first = _truncate(start, unit)
    counts: dict[dt.datetime, dict[str, int]] = {}
    for moment, kinds in points.items():
        bucket = max(_truncate(moment, unit), first)
        slot = counts.setdefault(bucket, {})
        for kind, n in kinds.items():
            slot[kind] = slot.get(kind, 0) + n
    limit = 24 * 3 + 1 if unit == "hour" else 400  # keep the chart readable
    buckets: list[tuple[dt.datetime, dict[str, int]]] = []
    cursor = first
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
    """The campaign's bounces, newest first, for the CSV export."""
    qs = campaign_bounces(campaign_id=campaign_id)
    if kind:
        qs = qs.filter(kind=kind)
    return qs.select_related("contact").order_by("-bounced_at", "-id")


# Above this offset the per-kind merge below reads more rows than one sort does.
MERGE_MAX_OFFSET = 500


def bounced_page(*, campaign_id: int, kind: str | None, offset: int, limit: int) -> list:
    """One page of the campaign's bounces, newest first (ties by id), with their contacts.

    Served by bounce_campaign_kind_idx: for each kind, the newest offset+limit rows are read
    in index order and merged here, instead of sorting all the campaign's bounces (the index
    starts with kind, so one ORDER BY bounced_at over all kinds would sort them all).
    """
    from bounces.models import Bounce

    kinds = [kind] if kind else list(Bounce.Kind.values)
    keys: list[tuple[dt.datetime, int]] = []
    if offset > MERGE_MAX_OFFSET:
        # Deep pages: sort the (time, id) pairs only, then fetch the page's rows.
        kinds = []
        keys = list(
            bounced_recipients(campaign_id=campaign_id, kind=kind).select_related(None)
            .values_list("bounced_at", "id")[offset:offset + limit]
        )
        offset = 0
    for one in kinds:
        keys += list(
            campaign_bounces(campaign_id=campaign_id).filter(kind=one)
            .order_by("-bounced_at", "-id").values_list("bounced_at", "id")[: offset + limit]
        )
    keys.sort(reverse=True)
    ids = [pk for _, pk in keys[offset:offset + limit]]
    rows = {b.pk: b for b in Bounce.objects.filter(pk__in=ids).select_related("contact")}
    return [rows[pk] for pk in ids if pk in rows]


def progress_counts(*, campaign_id: int) -> dict[str, int]:
    """SentMessage rows per status (campaign, status index); for recounting and tests."""
    rows = (
        SentMessage.objects.filter(campaign_id=campaign_id)
        .values("status")
        .annotate(n=Count("id", output_field=IntegerField()))
    )
    return {row["status"]: row["n"] for row in rows}
