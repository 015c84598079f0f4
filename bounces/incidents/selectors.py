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


def _scopes_open() -> list[tuple[int, str, str, set[str]]]:
    return [(pk, scope, key, set(domains or ())) for pk, scope, key, domains in
            Incident.objects.filter(status=Incident.Status.OPEN).values_list("pk", "scope", "key", "domains")]


def incidents_for_addresses(*, emails: list[str], from_email: str = "") -> dict[str, int]:
    """Which of `emails` an open incident pauses (lower-cased address -> incident id): its
    receiving domain or provider group (by name, or a domain the incident held bounces of),
    or the sending domain of `from_email`. One query (none of the addresses' DNS is read)."""
    from email.utils import parseaddr

    from .providers import domain_of, group_of_domain

    open_ = _scopes_open()
    if not open_:
        return {}
    sending = domain_of(parseaddr(from_email or "")[1])
    for pk, scope, key, _ in open_:
        if scope == Incident.Scope.SENDING and key == sending:
            return {e.strip().lower(): pk for e in emails}
    out: dict[str, int] = {}
    for email in emails:
        domain = domain_of(email)
        if not domain:
            continue
        group = group_of_domain(domain)
        for pk, scope, key, domains in open_:
            if domain in domains or (scope == Incident.Scope.DOMAIN and key == domain) or (
                    scope == Incident.Scope.PROVIDER and group == key):
                out[email.strip().lower()] = pk
                break
    return out



TIMELINE_ROWS = 20_000
SAMPLES = 10
RAW_SAMPLES = 3
RAW_SHOWN = 8_000


def incident_summary(*, incident: Incident) -> dict:
    """Its bounces by kind and by state, and its SAMPLES most frequent diagnostics (500
    characters each)."""
    from django.db.models import Count

    from bounces.models import Bounce

    bounces = Bounce.objects.filter(incident=incident)
    samples = list(bounces.exclude(diagnostic="").values("diagnostic").annotate(n=Count("id"))
                   .order_by("-n", "diagnostic")[:SAMPLES])
    for row in samples:
        row["diagnostic"] = row["diagnostic"][:500]
    return {
        "by_state": dict(bounces.values("state").annotate(n=Count("id")).order_by().values_list("state", "n")),
        "by_kind": dict(bounces.values("kind").annotate(n=Count("id")).order_by().values_list("kind", "n")),
        "samples": samples,
    }


def incident_page(*, incident: Incident) -> dict:
    """What the incident page shows, bounded: its bounces by kind and state, a timeline (per
    minute, or per 10 minutes / hour when it spans longer), the most frequent diagnostics, the
    first raw notices (at most RAW_SHOWN bytes each), and earlier bounces of its window that
    were acted on before it opened."""
    from datetime import timedelta

    from django.db.models import BinaryField
    from django.db.models.functions import Substr

    from bounces.models import Bounce

    bounces = Bounce.objects.filter(incident=incident)
    summary = incident_summary(incident=incident)
    by_state, by_kind, samples = summary["by_state"], summary["by_kind"], summary["samples"]
    times = list(bounces.order_by("bounced_at").values_list("bounced_at", "kind")[:TIMELINE_ROWS])
    timeline: list = []
    unit = "minute"
    if times:
        span = times[-1][0] - times[0][0]
        step = (timedelta(minutes=1) if span <= timedelta(hours=1) else
                timedelta(minutes=10) if span <= timedelta(hours=10) else timedelta(hours=1))
        unit = {60: "minute", 600: "10 minutes", 3600: "hour"}[int(step.total_seconds())]
        start = times[0][0].replace(second=0, microsecond=0)
        buckets: dict[int, dict[str, int]] = {}
        for at, kind in times:
            slot = int((at - start) / step)
            counts = buckets.setdefault(slot, {})
            counts[kind] = counts.get(kind, 0) + 1
        last = max(buckets)
        timeline = [(start + step * i, buckets.get(i, {})) for i in range(min(last + 1, 200))]
    raws = []
    for bounce in (bounces.filter(raw_message__isnull=False).order_by("bounced_at", "id")
                   .annotate(raw_head=Substr("raw_message__raw", 1, RAW_SHOWN, output_field=BinaryField()))
                   .only("id", "recipient", "bounced_at")[:RAW_SAMPLES]):
        raws.append({"bounce": bounce, "text": bytes(bounce.raw_head or b"").decode("utf-8", "replace")})
    acted_before = len(acted_before_bounces(incident=incident))
    from contacts.models import SuppressionRelease

    # the release that restored the contacts earlier bounces acted on (pipeline.held names it so)
    release = (SuppressionRelease.objects.filter(note__startswith=f"incident #{incident.pk} released ")
               .order_by("-id").first() if incident.status == Incident.Status.RELEASED else None)
    first = bounces.order_by("bounced_at", "id").only("id", "recipient", "kind", "reason", "bounced_at", "state")
    return {"by_state": by_state, "by_kind": by_kind, "timeline": timeline, "unit": unit, "samples": samples,
            "raws": raws, "acted_before": acted_before, "release": release, "bounces": list(first[:50]),
            "total": sum(by_state.values())}


# Earlier bounces of an incident's window looked at, at most (as many as the guard holds back).
ACTED_BEFORE_LIMIT = 20_000
_ACTED_KINDS = ("blocked", "hard", "soft")  # the kinds an incident holds (guard.HELD_KINDS)


def acted_before_bounces(*, incident: Incident, limit: int = ACTED_BEFORE_LIMIT) -> list[dict]:
    """The bounces of `incident`'s window that were acted on before it opened (state applied,
    in no incident, dated from its window's start to its opening), in its scope as the guard
    judges it (the recipient's domain or provider group, or the campaign's From domain); at
    most `limit`, oldest first. Each: id, contact_id, kind, recipient, bounced_at,
    actions_taken. Served by bounce_state_idx."""
    from email.utils import parseaddr

    from django.db.models.functions import Substr

    from bounces.models import Bounce
    from campaigns.models import Campaign

    from .providers import domain_of, provider_group

    rows = list(
        Bounce.objects.filter(state=Bounce.State.APPLIED, kind__in=_ACTED_KINDS, incident__isnull=True,
                              bounced_at__gte=incident.window_start, bounced_at__lt=incident.opened_at)
        .order_by("bounced_at", "id").annotate(diagnostic_head=Substr("diagnostic", 1, 300))
        .values("id", "contact_id", "kind", "recipient", "bounced_at", "actions_taken", "remote_mta",
                "diagnostic_head", "campaign_id")[:limit]
    )
    sending: dict[int, str] = {}
    if incident.scope == Incident.Scope.SENDING:
        sending = {pk: domain_of(parseaddr(from_email or "")[1]) for pk, from_email in Campaign.objects.filter(
            pk__in={r["campaign_id"] for r in rows if r["campaign_id"]}).values_list("pk", "from_email")}
    out = []
    for row in rows:
        domain = domain_of(row["recipient"])
        if incident.scope == Incident.Scope.DOMAIN:
            hit = domain == incident.key
        elif incident.scope == Incident.Scope.PROVIDER:
            hit = bool(domain) and provider_group(domain, row["remote_mta"], row["diagnostic_head"]) == incident.key
        else:
            hit = sending.get(row["campaign_id"]) == incident.key
        if hit:
            out.append({k: row[k] for k in ("id", "contact_id", "kind", "recipient", "bounced_at", "actions_taken")})
    return out
