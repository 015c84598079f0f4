"""Rate guardrails: a campaign whose bounce or complaint rate runs too high is warned about,
then paused, while it sends (issue 14, part 3; docs/incidents.md "Guardrails").

Scopes: the campaign, each receiving domain within the campaign, and the campaign's sending
domain (its From domain, across all campaigns over the last `sending_window_hours`). Rates:
bounces (hard + blocked) and complaints per message sent. Nothing is acted on before a scope
has `min_sent` messages (since the operator last resumed the campaign).

Counts are kept cheaply where the work already happens: one UPDATE per message sent (in the
transaction that records its outcome, `count_sent`) and one UPDATE per touched scope per
pipeline batch (`note_recorded_bounces`, in the batch's transaction). Bounces held by an
open incident are not counted. Checks read a few rows (`check_campaign`): after each pipeline
batch for the campaigns it touched, and in the sending loop after each batch and after a
refusal. A pause is the campaign's ordinary "paused" state (unsent messages stay queued)
plus the reason here; the operator resumes it (`queue_campaign`, which calls `note_resumed`:
the rates then count from the resume).

Imports campaigns' models, bounces' models and the incidents' alerts; never campaigns' views.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from email.utils import parseaddr

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, Sum
from django.urls import reverse
from django.utils import timezone

from .models import Campaign, CampaignGuardrail, GuardrailCount, GuardrailSettings

logger = logging.getLogger(__name__)

ACTIVE = (Campaign.Status.QUEUED, Campaign.Status.SENDING)
BOUNCE_KINDS = frozenset({"hard", "blocked"})  # Bounce.Kind values counted as bounced
COMPLAINT_KIND = "complaint"
HELD_STATE = "held"  # Bounce.State of a bounce an open incident holds (bounces/incidents)

# Initial site-wide values (settings GUARDRAIL_*; the admin edits them afterwards)
DEFAULTS = {
    "min_sent": ("GUARDRAIL_MIN_SENT", 100),
    "bounce_warn_percent": ("GUARDRAIL_BOUNCE_WARN_PERCENT", "5"),
    "bounce_pause_percent": ("GUARDRAIL_BOUNCE_PAUSE_PERCENT", "10"),
    "complaint_warn_percent": ("GUARDRAIL_COMPLAINT_WARN_PERCENT", "0.1"),
    "complaint_pause_percent": ("GUARDRAIL_COMPLAINT_PAUSE_PERCENT", "0.5"),
    "sending_window_hours": ("GUARDRAIL_SENDING_WINDOW_HOURS", 24),
}
KEYS_PER_STATEMENT = 200
THRESHOLD_FIELDS = ("min_sent", "bounce_warn_percent", "bounce_pause_percent",
                    "complaint_warn_percent", "complaint_pause_percent")

@dataclass(frozen=True)
class Thresholds:
    min_sent: int
    bounce_warn: Decimal
    bounce_pause: Decimal
    complaint_warn: Decimal
    complaint_pause: Decimal
    window_hours: int


@dataclass(frozen=True)
class Figure:
    """One scope's counts since the last resume."""

    scope: str
    key: str
    sent: int
    bounced: int
    complained: int

    def percent(self, measure: str) -> Decimal:
        n = self.bounced if measure == "bounce" else self.complained
        return (Decimal(n) * 100 / self.sent).quantize(Decimal("0.01")) if self.sent else Decimal(0)

    def label(self) -> str:
        if self.scope == GuardrailCount.Scope.CAMPAIGN:
            return "the campaign"
        if self.scope == GuardrailCount.Scope.RECEIVING:
            return f"the receiving domain {self.key}"
        return f"the sending domain {self.key}"


# ---------------------------------------------------------------------------------------
# Thresholds


def initial_values() -> dict:
    """The site-wide thresholds the GUARDRAIL_* settings give (the first row's values)."""
    return {name: (Decimal(str(getattr(settings, setting, default))) if name.endswith("_percent")
                   else int(getattr(settings, setting, default)))
            for name, (setting, default) in DEFAULTS.items()}


def site_settings() -> GuardrailSettings:
    """The site-wide thresholds: the admin's row (made by migration 0008 from the settings),
    else, unsaved, the settings' values. Never writes: pages read it for any viewer."""
    return GuardrailSettings.objects.order_by("pk").first() or GuardrailSettings(**initial_values())


def thresholds(*, guardrail: CampaignGuardrail | None, site: GuardrailSettings | None = None) -> Thresholds:
    """The campaign's thresholds: its own overrides, else the site-wide values."""
    site = site or site_settings()

    def pick(name: str):
        own = getattr(guardrail, name, None) if guardrail is not None else None
        return own if own is not None else getattr(site, name)

    return Thresholds(
        min_sent=max(int(pick("min_sent")), 1), bounce_warn=Decimal(pick("bounce_warn_percent")),
        bounce_pause=Decimal(pick("bounce_pause_percent")), complaint_warn=Decimal(pick("complaint_warn_percent")),
        complaint_pause=Decimal(pick("complaint_pause_percent")), window_hours=max(int(site.sending_window_hours), 1),
    )


# ---------------------------------------------------------------------------------------
# Counting


def domain_of(address: str) -> str:
    """The lower-cased domain of an address ("" without one)."""
    return address.rpartition("@")[2].strip().strip(">").lower()[:255] if "@" in (address or "") else ""


def sending_domain(campaign: Campaign) -> str:
    """The campaign's sending domain: the domain of its From address."""
    return domain_of(parseaddr(campaign.from_email or "")[1])


def _hour(at: dt.datetime) -> dt.datetime:
    return at.replace(minute=0, second=0, microsecond=0)


def _key_q(key: tuple) -> Q:
    campaign_id, scope, name, period = key
    if campaign_id is None:
        return Q(scope=scope, key=name, period=period)
    return Q(campaign_id=campaign_id, scope=scope, key=name)


def _increment(keys: Iterable[tuple], **deltas: int) -> None:
    """Add `deltas` (sent=1, bounced=3...) to the count rows of `keys` ((campaign id, scope,
    key, None), or (None, "sending", domain, hour)), creating the missing ones.

    Usually one UPDATE over the unique keys; a row missing is inserted with zeros (a
    concurrent insert is ignored) and then updated. The one inexact case: another process
    creates the same row between this UPDATE and the check that follows it (the first message
    to a new domain, or of a new hour, sent at the same instant): that delta is lost.
    """
    keys = sorted(set(keys), key=lambda k: (k[0] or 0, k[1], k[2], k[3] or dt.datetime.min.replace(tzinfo=dt.UTC)))
    if not keys:
        return
    changes = {name: F(name) + value for name, value in deltas.items()}

    def where(some: list[tuple]) -> Q:
        q = Q(pk__in=[])
        for key in some:
            q |= _key_q(key)
        return q

    # chunks of OR-ed keys: SQLite limits the depth of an expression
    chunks = [keys[i:i + KEYS_PER_STATEMENT] for i in range(0, len(keys), KEYS_PER_STATEMENT)]
    for chunk in chunks:
        if GuardrailCount.objects.filter(where(chunk)).update(**changes) == len(chunk):
            continue
        present = {(c, s, k, None if c is not None else p) for c, s, k, p in GuardrailCount.objects.filter(
            where(chunk)).values_list("campaign_id", "scope", "key", "period")}
        # the update above found these (and added to them): the others are made, then added to
        missing = [k for k in chunk if k not in present]
        GuardrailCount.objects.bulk_create(
            [GuardrailCount(campaign_id=c, scope=s, key=k, period=p) for c, s, k, p in missing],
            ignore_conflicts=True)
        GuardrailCount.objects.filter(where(missing)).update(**changes)


def _scope_keys(*, campaign_id: int, sending: str, recipient: str, at: dt.datetime) -> list[tuple]:
    keys = [(campaign_id, GuardrailCount.Scope.CAMPAIGN, "", None)]
    if domain := domain_of(recipient):
        keys.append((campaign_id, GuardrailCount.Scope.RECEIVING, domain, None))
    if sending:
        keys.append((None, GuardrailCount.Scope.SENDING, sending, _hour(at)))
    return keys


def count_sent(*, campaign: Campaign, email: str) -> None:
    """One message of `campaign` to `email` left (accepted, refused or deferred at its first
    attempt): +1 sent for the campaign, its receiving domain and its sending domain (one
    UPDATE; call it in the transaction that records the outcome)."""
    _increment(_scope_keys(campaign_id=campaign.pk, sending=sending_domain(campaign), recipient=email,
                           at=timezone.now()), sent=1)


def note_recorded_bounces(*, bounces: list, resolved_real: bool = False) -> None:
    """The pipeline's hook, in its batch transaction: count the batch's bounces (hard and
    blocked as bounced, complaints as complained; held ones not at all) per scope, then
    check the campaigns they belong to.

    Bounces of an incident count only when it is resolved as real (`resolved_real`: the
    resolution applies them, and they count then, once); released ones never do."""
    deltas: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    touched: dict[int, set[str]] = defaultdict(set)
    counted = [b for b in bounces if b.campaign_id and b.state != HELD_STATE
               and (resolved_real or not getattr(b, "incident_id", None))
               and (b.kind in BOUNCE_KINDS or b.kind == COMPLAINT_KIND)]
    if not counted:
        return
    campaigns = {c.pk: c for c in Campaign.objects.filter(pk__in={b.campaign_id for b in counted})
                 .only("pk", "from_email", "status")}
    now = timezone.now()
    for bounce in counted:
        campaign = campaigns.get(bounce.campaign_id)
        if campaign is None:
            continue
        index = 0 if bounce.kind in BOUNCE_KINDS else 1
        for key in _scope_keys(campaign_id=campaign.pk, sending=sending_domain(campaign),
                               recipient=bounce.recipient, at=now):
            deltas[key][index] += 1
        touched[campaign.pk].add(domain_of(bounce.recipient))
    by_change: dict[tuple[int, int], list[tuple]] = defaultdict(list)
    for key, (bounced, complained) in deltas.items():
        by_change[(bounced, complained)].append(key)
    for (bounced, complained), keys in sorted(by_change.items()):
        _increment(keys, bounced=bounced, complained=complained)
    for campaign_id, domains in sorted(touched.items()):
        if campaigns[campaign_id].status in ACTIVE:
            check_campaign(campaign=campaigns[campaign_id], domains=domains)


# ---------------------------------------------------------------------------------------
# Checking


def figures(*, campaign: Campaign, guardrail: CampaignGuardrail | None, limits: Thresholds,
            domains: Iterable[str] | None = None, min_sent: int | None = None) -> list[Figure]:
    """The campaign's scopes with at least `min_sent` messages since the last resume: the
    campaign, its receiving domains (only `domains` when given), its sending domain."""
    floor = limits.min_sent if min_sent is None else min_sent
    rows = GuardrailCount.objects.filter(campaign_id=campaign.pk, sent__gte=F("base_sent") + floor)
    if domains is not None:
        rows = rows.filter(Q(scope=GuardrailCount.Scope.CAMPAIGN) | Q(key__in=[d for d in domains if d]))
    found = [
        Figure(scope=s, key=k, sent=sent - bs, bounced=max(b - bb, 0), complained=max(c - bc, 0))
        for s, k, sent, b, c, bs, bb, bc in rows.order_by("scope", "key").values_list(
            "scope", "key", "sent", "bounced", "complained", "base_sent", "base_bounced", "base_complained")
    ]
    found.sort(key=lambda f: f.scope != GuardrailCount.Scope.CAMPAIGN)  # the campaign first
    if sending := sending_domain(campaign):
        since = timezone.now() - dt.timedelta(hours=limits.window_hours)
        if guardrail is not None and guardrail.resumed_at and guardrail.resumed_at > since:
            since = guardrail.resumed_at
        sums = GuardrailCount.objects.filter(
            scope=GuardrailCount.Scope.SENDING, key=sending, period__gte=_hour(since)
        ).aggregate(sent=Sum("sent"), bounced=Sum("bounced"), complained=Sum("complained"))
        if (sums["sent"] or 0) >= floor:
            found.append(Figure(scope=GuardrailCount.Scope.SENDING, key=sending, sent=sums["sent"],
                                bounced=sums["bounced"] or 0, complained=sums["complained"] or 0))
    return found


def _breach(figure: Figure, limits: Thresholds, level: str) -> list[tuple[str, Decimal]]:
    """(measure, threshold) pairs `figure` reaches at `level` ("pause" or "warn")."""
    found = []
    for measure in ("bounce", "complaint"):
        limit = getattr(limits, f"{measure}_{level}")
        n = figure.bounced if measure == "bounce" else figure.complained
        if limit >= 0 and n and Decimal(n) * 100 >= limit * figure.sent:
            found.append((measure, limit))
    return found


def describe(figure: Figure, measure: str, limit: Decimal) -> str:
    """E.g. "bounce rate 12.00 % (12 of 100 sent) for the campaign, threshold 10 %"."""
    n = figure.bounced if measure == "bounce" else figure.complained
    what = "bounce rate (hard + blocked)" if measure == "bounce" else "complaint rate"
    return (f"{what} {figure.percent(measure)} % ({n} of {figure.sent} sent) for {figure.label()}, "
            f"threshold {limit.normalize():f} %")


def check_campaign(*, campaign: Campaign, domains: Iterable[str] | None = None) -> str:
    """Compare the campaign's rates with its thresholds: pause it ("paused"), alert about a new
    warning ("warned") or nothing (""). Only queued or sending campaigns are checked."""
    guardrail = CampaignGuardrail.objects.filter(campaign_id=campaign.pk).first()
    limits = thresholds(guardrail=guardrail)
    found = figures(campaign=campaign, guardrail=guardrail, limits=limits, domains=domains)
    for figure in found:
        for measure, limit in _breach(figure, limits, "pause"):
            return "paused" if _pause(campaign=campaign, figure=figure, measure=measure, limit=limit) else ""
    by_measure: dict[str, list[tuple[Figure, Decimal]]] = defaultdict(list)
    for figure in found:
        for measure, limit in _breach(figure, limits, "warn"):
            by_measure[measure].append((figure, limit))
    warned = [_warn(campaign=campaign, measure=m, breaches=b) for m, b in sorted(by_measure.items())]
    return "warned" if any(warned) else ""


def _pause(*, campaign: Campaign, figure: Figure, measure: str, limit: Decimal) -> bool:
    why = describe(figure, measure, limit)
    now = timezone.now()
    with transaction.atomic():
        paused = Campaign.objects.filter(pk=campaign.pk, status__in=ACTIVE).update(
            status=Campaign.Status.PAUSED, updated_at=now)
        if not paused:
            return False
        name = Campaign.objects.filter(pk=campaign.pk).values_list("name", flat=True).first() or ""
        detail = {"scope": figure.scope, "key": figure.key, "measure": measure, "sent": figure.sent,
                  "bounced": figure.bounced, "complained": figure.complained,
                  "percent": str(figure.percent(measure)), "threshold": str(limit)}
        CampaignGuardrail.objects.update_or_create(campaign_id=campaign.pk, defaults={
            "paused_at": now, "pause_reason": f"Paused by the guardrail: {why}."[:500], "pause_detail": detail})
        _alert(kind="campaign.paused", severity="critical", title=f"Campaign “{name}” paused: {why}",
               body=(f"The guardrail paused the campaign “{name}”: {why}. Unsent messages stay queued; "
                     f"resume it from its page once the cause is understood."),
               campaign_id=campaign.pk,
               data={"campaign_id": campaign.pk, "name": name, "cause": "guardrail", "error": why, **detail})
    logger.warning("campaign %s paused by the guardrail: %s", campaign.pk, why)
    return True


def _warn(*, campaign: Campaign, measure: str, breaches: list[tuple[Figure, Decimal]]) -> bool:
    """One alert for the scopes newly over the warning threshold of `measure` (each scope and
    measure is warned about once, until the campaign is resumed)."""
    with transaction.atomic():
        guardrail, _ = CampaignGuardrail.objects.select_for_update().get_or_create(campaign_id=campaign.pk)
        new = [(f, limit) for f, limit in breaches if f"{f.scope}:{f.key}:{measure}" not in guardrail.warnings]
        if not new:
            return False
        guardrail.warnings = [*guardrail.warnings, *(f"{f.scope}:{f.key}:{measure}" for f, _ in new)]
        guardrail.save(update_fields=["warnings", "updated_at"])
        whys = [describe(f, measure, limit) for f, limit in new]
        name = Campaign.objects.filter(pk=campaign.pk).values_list("name", flat=True).first() or ""
        first, limit = new[0]
        _alert(kind="guardrail.warning", severity="warning", title=f"Campaign “{name}”: {whys[0]}",
               body=(f"The campaign “{name}” goes on sending; it is paused if a rate reaches its pause "
                     "threshold.\n" + "\n".join(f"- {why}" for why in whys)),
               campaign_id=campaign.pk,
               data={"campaign_id": campaign.pk, "name": name, "measure": measure, "scope": first.scope,
                     "key": first.key, "sent": first.sent, "bounced": first.bounced,
                     "complained": first.complained, "percent": str(first.percent(measure)),
                     "threshold": str(limit), "scopes": [{"scope": f.scope, "key": f.key} for f, _ in new]})
    return True


def _alert(*, kind: str, severity: str, title: str, body: str, campaign_id: int, data: dict) -> None:
    """Through the incidents' one alerts function (mail, banner, api event)."""
    from bounces.incidents.alerts import raise_alert

    raise_alert(kind=kind, severity=severity, title=title, body=body,
                link=reverse("campaigns:results", args=[campaign_id]), event_data=data)


# ---------------------------------------------------------------------------------------
# Resuming and reading


def note_resumed(*, campaign: Campaign, actor=None) -> None:
    """The operator resumes a paused campaign (called by queue_campaign, in its transaction):
    its rates count from now (the counts so far become the baseline), its warnings may be sent
    again, and the pause reason is cleared."""
    now = timezone.now()
    GuardrailCount.objects.filter(campaign_id=campaign.pk).update(
        base_sent=F("sent"), base_bounced=F("bounced"), base_complained=F("complained"))
    CampaignGuardrail.objects.update_or_create(campaign_id=campaign.pk, defaults={
        "paused_at": None, "pause_reason": "", "pause_detail": {}, "warnings": [], "resumed_at": now,
        "resumed_by": (getattr(actor, "get_username", lambda: "")() or "system")[:150]})


def is_guardrail_paused(campaign: Campaign) -> bool:
    """Whether the campaign is paused by the guardrail (one query)."""
    return CampaignGuardrail.objects.filter(
        campaign_id=campaign.pk, paused_at__isnull=False, campaign__status=Campaign.Status.PAUSED).exists()


def campaign_state(*, campaign: Campaign) -> dict:
    """What the campaign page shows: thresholds, the pause reason, warnings, current rates."""
    guardrail = CampaignGuardrail.objects.filter(campaign_id=campaign.pk).first()
    limits = thresholds(guardrail=guardrail)
    current = figures(campaign=campaign, guardrail=guardrail, limits=limits, domains=(), min_sent=0)
    paused = bool(guardrail and guardrail.paused_at and campaign.status == Campaign.Status.PAUSED)
    return {
        "limits": limits, "guardrail": guardrail, "paused": paused,
        "reason": guardrail.pause_reason if paused else "",
        "warnings": list(guardrail.warnings) if guardrail else [],
        "figures": [{"label": f.label(), "sent": f.sent, "bounced": f.bounced, "complained": f.complained,
                     "bounce_percent": f.percent("bounce"), "complaint_percent": f.percent("complaint")}
                    for f in current],
    }


def paused_campaigns(*, limit: int = 50) -> list[dict]:
    """Campaigns the guardrail paused and nobody resumed yet, newest pause first."""
    rows = (CampaignGuardrail.objects.filter(paused_at__isnull=False, campaign__status=Campaign.Status.PAUSED)
            .select_related("campaign").order_by("-paused_at")[:limit])
    return [{"id": g.campaign_id, "name": g.campaign.name, "reason": g.pause_reason, "paused_at": g.paused_at,
             "scope": (g.pause_detail or {}).get("scope", ""), "key": (g.pause_detail or {}).get("key", "")}
            for g in rows]


def domain_state(*, domains: list[str], campaign_id: int | None, since: dt.datetime,
                 until: dt.datetime) -> dict[str, dict]:
    """For the deliverability page: per receiving domain, the messages sent to it (by one
    campaign, or by the campaigns sending in [since, until)) and the campaigns the guardrail
    paused because of it."""
    if not domains:
        return {}
    rows = GuardrailCount.objects.filter(scope=GuardrailCount.Scope.RECEIVING, key__in=domains)
    if campaign_id:
        rows = rows.filter(campaign_id=campaign_id)
    else:
        rows = rows.filter(Q(campaign__finished_at__isnull=True) | Q(campaign__finished_at__gte=since),
                           campaign__sent_at__lt=until)
    out: dict[str, dict] = {d: {"sent": 0, "paused": []} for d in domains}
    for key, sent in rows.values("key").annotate(n=Sum("sent")).values_list("key", "n"):
        out[key]["sent"] = sent or 0
    for row in paused_campaigns(limit=200):
        if row["scope"] == GuardrailCount.Scope.RECEIVING and row["key"] in out:
            out[row["key"]]["paused"].append(row)
    return out
