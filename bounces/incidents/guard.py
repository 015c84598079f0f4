"""The incident guard: called by the pipeline once per batch, inside the batch transaction and
before any contact action (issue 14 part 1).

Per batch it (1) holds the bounces that fall in an open incident's scope, (2) adds the other
failures to per-minute counts (one upsert per scope and minute, not per bounce), (3) reads
the window's totals of the scopes the batch touched (one grouped query) and opens an
incident where our-side refusals reach the threshold or failures jump far above the scope's
own baseline, holding that incident's bounces of this batch (and the earlier ones of its
window that nothing acted on). Imports models, selectors and the alerts; no pipeline module.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parseaddr

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Min, Q, Sum
from django.urls import reverse

from bounces.models import Bounce
from campaigns.models import Campaign

from .alerts import raise_alert
from .models import Alert, Incident, IncidentCount
from .providers import cause_of, domain_of, provider_group

log = logging.getLogger(__name__)

# Kinds an incident holds: the failures (a delay, an auto-reply, a complaint never are).
HELD_KINDS = frozenset({Bounce.Kind.HARD, Bounce.Kind.SOFT, Bounce.Kind.BLOCKED})
# Kinds the counts see (complaints and delays only in `total`).
COUNTED_KINDS = HELD_KINDS | {Bounce.Kind.COMPLAINT, Bounce.Kind.DELAY}
# System history needed before a burst is judged against a baseline (a fresh install has none).
LEARNING = timedelta(hours=1)
# Earlier bounces of a new incident's window held at most (the rest stay as they are).
RETRO_HOLD_LIMIT = 20_000


@dataclass(frozen=True)
class GuardSettings:
    """The thresholds (settings INCIDENT_*; defaults and their reasons in docs/incidents.md)."""

    window: timedelta
    blocked_threshold: int
    burst_min: int
    burst_factor: float
    baseline: timedelta


def guard_settings() -> GuardSettings:
    return GuardSettings(
        window=timedelta(minutes=int(getattr(settings, "INCIDENT_WINDOW_MINUTES", 10))),
        blocked_threshold=int(getattr(settings, "INCIDENT_BLOCKED_THRESHOLD", 25)),
        burst_min=int(getattr(settings, "INCIDENT_BURST_MIN", 50)),
        burst_factor=float(getattr(settings, "INCIDENT_BURST_FACTOR", 10.0)),
        baseline=timedelta(hours=int(getattr(settings, "INCIDENT_BASELINE_HOURS", 24))),
    )


@dataclass
class _Row:
    bounce: Bounce
    receiving: str  # "provider:<group>" or "domain:<domain>"
    scopes: tuple[str, ...]  # every scope it is counted in
    sending: str  # "sending:<domain>" or ""
    cause: str
    minute: datetime


def minute_of(when: datetime) -> datetime:
    return when.replace(second=0, microsecond=0)


def guard_batch(bounces: Iterable[Bounce], *, now: datetime) -> int:
    """Hold, count and judge one batch's bounces (see the module doc); returns how many it held.

    Held bounces get `incident_id` set; the pipeline then records them with state "held"
    and takes no action. Call inside the batch transaction, before the actions.
    """
    cfg = guard_settings()
    oldest = now - cfg.baseline
    rows = _rows([b for b in bounces if b.kind in COUNTED_KINDS and b.bounced_at and b.bounced_at >= oldest])
    if not rows:
        return 0
    open_scopes = {f"{scope}:{key}": (pk, start) for pk, scope, key, start in Incident.objects.filter(
        status=Incident.Status.OPEN).values_list("pk", "scope", "key", "window_start")}
    held: dict[int, list[_Row]] = defaultdict(list)
    live: list[_Row] = []
    for row in rows:
        incident = _open_incident_for(row, open_scopes)
        if incident is not None:
            held[incident].append(row)
        else:
            live.append(row)
    window_start = minute_of(now - cfg.window)
    opened = _judge(live, cfg=cfg, now=now, window_start=window_start, receiving=True)
    for incident in opened:
        open_scopes[f"{incident.scope}:{incident.key}"] = (incident.pk, incident.window_start)
    if opened:
        live = _take_held(live, open_scopes, held)
    # a sending domain refused everywhere: judged on what no receiving incident explains
    opened = _judge(live, cfg=cfg, now=now, window_start=window_start, receiving=False)
    for incident in opened:
        open_scopes[f"{incident.scope}:{incident.key}"] = (incident.pk, incident.window_start)
    if opened:
        live = _take_held(live, open_scopes, held)
    _upsert_counts(live)
    for incident_id, held_rows in held.items():
        for row in held_rows:
            row.bounce.incident_id = incident_id
        _note_held(incident_id, held_rows)
    return sum(len(r) for r in held.values())


def _open_incident_for(row: _Row, open_scopes: dict[str, tuple[int, datetime]]) -> int | None:
    if row.bounce.kind not in HELD_KINDS:
        return None
    for scope in (row.receiving, row.sending, *row.scopes):
        hit = open_scopes.get(scope) if scope else None
        if hit is not None and row.bounce.bounced_at >= hit[1]:
            return hit[0]
    return None


def _take_held(live: list[_Row], open_scopes: dict, held: dict[int, list[_Row]]) -> list[_Row]:
    rest = []
    for row in live:
        incident = _open_incident_for(row, open_scopes)
        if incident is None:
            rest.append(row)
        else:
            held[incident].append(row)
    return rest


def _rows(bounces: list[Bounce]) -> list[_Row]:
    sending = _sending_domains({b.campaign_id for b in bounces if b.campaign_id})
    rows = []
    for bounce in bounces:
        domain = domain_of(bounce.recipient)
        if not domain:
            continue
        group = provider_group(domain, bounce.remote_mta, bounce.diagnostic)
        receiving = f"provider:{group}" if group else f"domain:{domain}"
        cause = cause_of(bounce.reason, bounce.kind)
        sdomain = sending.get(bounce.campaign_id, "") if bounce.campaign_id else ""
        scopes = [f"domain:{domain}", f"cause:{cause}"]
        if group:
            scopes.append(receiving)
        if sdomain:
            scopes.append(f"sending:{sdomain}")
        rows.append(_Row(bounce=bounce, receiving=receiving, scopes=tuple(scopes),
                         sending=f"sending:{sdomain}" if sdomain else "", cause=cause,
                         minute=minute_of(bounce.bounced_at)))
    return rows


def _sending_domains(campaign_ids: set[int]) -> dict[int, str]:
    """The From domain of each campaign (one query per batch; a batch names few campaigns)."""
    if not campaign_ids:
        return {}
    return {pk: domain_of(parseaddr(from_email or "")[1])
            for pk, from_email in Campaign.objects.filter(pk__in=campaign_ids).values_list("pk", "from_email")}


def _judge(live: list[_Row], *, cfg: GuardSettings, now: datetime, window_start: datetime,
           receiving: bool) -> list[Incident]:
    """Open the incidents the window's totals call for: receiving scopes (blocked or burst),
    or sending domains (blocked), for the scopes this batch touches."""
    in_window: dict[str, Counter] = defaultdict(Counter)
    causes: dict[str, Counter] = defaultdict(Counter)
    for row in live:
        scope = row.receiving if receiving else row.sending
        if not scope or row.bounce.bounced_at < window_start or row.bounce.kind not in HELD_KINDS:
            continue
        column = "blocked" if row.bounce.kind == Bounce.Kind.BLOCKED else "failed"
        in_window[scope][column] += 1
        causes[scope][(column, row.cause)] += 1
    if not in_window:
        return []
    stored = {
        r["scope"]: r for r in IncidentCount.objects.filter(scope__in=list(in_window), minute__gte=window_start)
        .values("scope").annotate(blocked=Sum("blocked"), failed=Sum("failed")).order_by()
    }
    # (scope -> (trigger, count, column)): over the absolute threshold; the baseline decides
    candidates: dict[str, tuple[str, int, str]] = {}
    for scope, delta in sorted(in_window.items()):
        blocked = delta["blocked"] + (stored.get(scope, {}).get("blocked") or 0)
        failed = delta["failed"] + (stored.get(scope, {}).get("failed") or 0)
        if blocked >= cfg.blocked_threshold:
            candidates[scope] = (Incident.Trigger.BLOCKED, blocked, "blocked")
        elif receiving and failed >= cfg.burst_min:
            candidates[scope] = (Incident.Trigger.BURST, failed, "failed")
    opened: list[Incident] = []
    for scope, (trigger, count, column), expected in _above_baseline(candidates, cfg=cfg,
                                                                     window_start=window_start):
        opened += _open(scope, trigger, cause=_top_cause(causes[scope], column), count=count,
                        baseline=expected, now=now, window_start=window_start)
    return opened


def _top_cause(causes: Counter, column: str) -> str:
    mine = Counter({cause: n for (col, cause), n in causes.items() if col == column})
    return mine.most_common(1)[0][0] if mine else ""


def _above_baseline(candidates: dict[str, tuple[str, int, str]], *, cfg: GuardSettings, window_start: datetime
                    ) -> list[tuple[str, tuple[str, int, str], float | None]]:
    """The candidates whose window count is at least INCIDENT_BURST_FACTOR times the scope's
    own rate (of the same column) over the baseline period before the window, scaled to one
    window. Without an hour of history: our-side refusals open on the threshold alone (a
    listing needs no baseline), failure bursts wait (a fresh install has none)."""
    if not candidates:
        return []
    first = IncidentCount.objects.aggregate(first=Min("minute"))["first"]
    # History before the window (none when the counted notices are dated after it, e.g. a
    # sender's clock ahead of ours).
    covered = max(min(window_start - first, cfg.baseline), timedelta(0)) if first is not None else timedelta(0)
    if covered < LEARNING:
        waiting = sorted(s for s, c in candidates.items() if c[0] == Incident.Trigger.BURST)
        if waiting:
            log.info("incident guard: %s of history, no baseline yet for %s", covered, waiting)
        return [(s, c, None) for s, c in sorted(candidates.items()) if c[0] == Incident.Trigger.BLOCKED]
    before = {
        r["scope"]: r for r in IncidentCount.objects.filter(
            scope__in=list(candidates), minute__gte=window_start - covered, minute__lt=window_start)
        .values("scope").annotate(blocked=Sum("blocked"), failed=Sum("failed")).order_by()
    }
    out = []
    for scope, candidate in sorted(candidates.items()):
        _, count, column = candidate
        expected = (before.get(scope, {}).get(column) or 0) * (cfg.window / covered)
        if count >= cfg.burst_factor * expected:
            out.append((scope, candidate, round(expected, 2)))
    return out


def _open(scope: str, trigger: str, *, cause: str, count: int, baseline: float | None, now: datetime,
          window_start: datetime) -> list[Incident]:
    """Open one incident for `scope` (none when another batch just opened it) and alert staff."""
    kind, _, key = scope.partition(":")
    try:
        with transaction.atomic():
            incident = Incident.objects.create(
                scope=kind, key=key[:255], trigger=trigger, cause=cause, opened_at=now, window_start=window_start,
                window_count=count, baseline=baseline,
            )
    except IntegrityError:  # another batch opened it first (incident_one_open_per_scope): hold into that one
        return list(Incident.objects.filter(scope=kind, key=key[:255], status=Incident.Status.OPEN)[:1])
    what = (f"{count} our-side refusals ({cause or 'blocked'})" if trigger == Incident.Trigger.BLOCKED else
            f"{count} failures ({cause or 'hard / soft'})") + f" in {_minutes(now - window_start)} minutes"
    if baseline is not None:
        what += f", about {baseline:g} expected from its baseline"
    raise_alert(
        kind=Alert.Kind.INCIDENT_OPENED, severity=Alert.Severity.CRITICAL,
        title=f"Incident: {incident.label}",
        body=(f"{what}. Its bounces are held (no contact action) and sending to "
              f"{incident.get_scope_display().lower()} {incident.key} is paused until an operator resolves it."),
        link=reverse("bounces:incident_detail", args=[incident.pk]),
        event_data=incident_event(incident),
    )
    _hold_earlier(incident)
    return [incident]


def _minutes(delta: timedelta) -> int:
    return max(1, round(delta.total_seconds() / 60))


def incident_event(incident: Incident) -> dict:
    """The incident.opened / incident.resolved event payload."""
    return {"incident_id": incident.pk, "scope": incident.scope, "key": incident.key,
            "trigger": incident.trigger, "cause": incident.cause, "status": incident.status,
            "opened_at": incident.opened_at.isoformat(), "window_count": incident.window_count,
            "held_count": incident.held_count,
            "resolved_at": incident.resolved_at.isoformat() if incident.resolved_at else None}


def scope_matches(incident_scope: str, incident_key: str, *, domain: str, group: str, sending: str = "") -> bool:
    if incident_scope == Incident.Scope.PROVIDER:
        return group == incident_key
    if incident_scope == Incident.Scope.DOMAIN:
        return domain == incident_key
    return sending == incident_key


def _hold_earlier(incident: Incident) -> None:
    """Hold the earlier bounces of the new incident's window that were recorded without any
    action (blocked ones, by default): they are its bounces too. Ones already acted on stay
    (the incident page counts them)."""
    candidates = list(
        Bounce.objects.filter(kind__in=sorted(HELD_KINDS), bounced_at__gte=incident.window_start,
                              state=Bounce.State.RECORDED, incident__isnull=True, counted=False)
        .values_list("id", "recipient", "remote_mta", "diagnostic", "campaign_id")[:RETRO_HOLD_LIMIT]
    )
    sending = _sending_domains({c for *_, c in candidates if c}) if incident.scope == Incident.Scope.SENDING else {}
    ids, domains = [], set()
    for pk, recipient, remote_mta, diagnostic, campaign_id in candidates:
        domain = domain_of(recipient)
        group = provider_group(domain, remote_mta, diagnostic) if incident.scope == Incident.Scope.PROVIDER else ""
        if scope_matches(incident.scope, incident.key, domain=domain, group=group,
                         sending=sending.get(campaign_id, "") if campaign_id else ""):
            ids.append(pk)
            domains.add(domain)
    if ids:
        n = Bounce.objects.filter(id__in=ids, state=Bounce.State.RECORDED).update(
            state=Bounce.State.HELD, incident=incident)
        Incident.objects.filter(pk=incident.pk).update(held_count=F("held_count") + n)
        _add_domains(incident.pk, domains)


def _note_held(incident_id: int, rows: list[_Row]) -> None:
    last = max(r.bounce.bounced_at for r in rows)
    Incident.objects.filter(pk=incident_id).update(held_count=F("held_count") + len(rows))
    Incident.objects.filter(Q(last_bounce_at__isnull=True) | Q(last_bounce_at__lt=last), pk=incident_id).update(
        last_bounce_at=last)
    _add_domains(incident_id, {domain_of(r.bounce.recipient) for r in rows})


def _add_domains(incident_id: int, domains: set[str]) -> None:
    """Remember the recipient domains an incident held (a hosted domain recognised by its MX:
    sending to it pauses too). At most Incident.MAX_DOMAINS."""
    incident = Incident.objects.select_for_update().only("domains").get(pk=incident_id)
    known = set(incident.domains or ())
    new = {d for d in domains if d} - known
    if new and len(known) < Incident.MAX_DOMAINS:
        incident.domains = sorted(known | new)[: Incident.MAX_DOMAINS]
        incident.save(update_fields=["domains"])


def _upsert_counts(rows: list[_Row]) -> None:
    """Add the batch's counts: INSERT ... ON CONFLICT (scope, minute) DO UPDATE, keys sorted
    (two batches never lock the same rows in opposite orders)."""
    if not rows:
        return
    deltas: dict[tuple[str, datetime], list[int]] = defaultdict(lambda: [0, 0, 0])
    for row in rows:
        kind = row.bounce.kind
        for scope in row.scopes:
            d = deltas[(scope[:270], row.minute)]
            d[2] += 1
            if kind == Bounce.Kind.BLOCKED:
                d[0] += 1
            elif kind in HELD_KINDS:
                d[1] += 1
    table = connection.ops.quote_name(IncidentCount._meta.db_table)
    field = IncidentCount._meta.get_field("minute")
    sql = (f"INSERT INTO {table} (scope, minute, blocked, failed, total) VALUES (%s, %s, %s, %s, %s) "
           f"ON CONFLICT (scope, minute) DO UPDATE SET blocked = {table}.blocked + EXCLUDED.blocked, "
           f"failed = {table}.failed + EXCLUDED.failed, total = {table}.total + EXCLUDED.total")
    params = [(scope, field.get_db_prep_save(minute, connection), *d)
              for (scope, minute), d in sorted(deltas.items())]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)


def sweep_counts(*, now: datetime) -> int:
    """Delete counts older than the baseline period (hourly)."""
    cutoff = now - guard_settings().baseline - timedelta(hours=1)
    return IncidentCount.objects.filter(minute__lt=cutoff).delete()[0]
