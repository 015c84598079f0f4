"""Resolving an incident (issue 14): its held bounces are released (the incident was ours: they
never count) or applied (it was real: the same decision path as processing, at each bounce's
own time), with a preview of what applying would do. Sending paused by it resumes.
Imports models, the incidents' alerts and guard, policies, decisions, actions, contacts' and
campaigns' services."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from bounces.incidents.alerts import raise_alert
from bounces.incidents.guard import incident_event
from bounces.incidents.sending import resume_incident_sends
from bounces.models import Alert, Bounce, Incident
from campaigns.guardrails import note_recorded_bounces
from campaigns.models import SentMessage
from contacts.services import Cause, ContactActionBatch, describe_actions

from . import policies
from .actions import SoftCounter, count_soft, suppression_expiry, suppression_reason
from .decisions import Decision, decide, rule_view
from .matching import Match
from .runs import chunked

CHUNK = 200
_NEEDS_CONTACT = (Bounce.Kind.HARD, Bounce.Kind.SOFT, Bounce.Kind.COMPLAINT)
_SENT_STATUS = {Bounce.Kind.HARD: SentMessage.Status.BOUNCED, Bounce.Kind.SOFT: SentMessage.Status.SOFT_BOUNCED}


class IncidentClosed(Exception):
    """The incident was already resolved (another operator, a double submit)."""


@dataclass
class Preview:
    """What applying an incident's held bounces would do (nothing is written)."""

    held: int = 0
    by_kind: Counter = field(default_factory=Counter)
    contacts: int = 0  # distinct contacts that would be acted on or counted
    actions: Counter = field(default_factory=Counter)  # action words -> bounces
    soft_counted: int = 0
    unmatched: int = 0

    @property
    def action_rows(self) -> list[tuple[str, int]]:
        return sorted(self.actions.items(), key=lambda kv: (-kv[1], kv[0]))


def _held(incident_id: int):
    return (Bounce.objects.filter(incident_id=incident_id, state=Bounce.State.HELD)
            .select_related("mailbox", "matched_rule").order_by("bounced_at", "id"))


def _decision(bounce: Bounce, cache: dict) -> Decision:
    key = (bounce.mailbox_id, bounce.matched_rule_id, bounce.kind)
    if key not in cache:
        policy = policies.effective_policy(bounce.mailbox)
        rule = rule_view(bounce.matched_rule) if bounce.matched_rule_id and bounce.matched_rule else None
        cache[key] = (decide(category=bounce.kind, rule=rule if rule and rule.bounce_type != "ignore" else None,
                             policy=policy), policy)
    return cache[key][0]


def preview_apply(*, incident: Incident) -> Preview:
    """What resolving `incident` as real would do to contacts, from the decision path alone."""
    preview = Preview()
    cache: dict = {}
    contacts: set[int] = set()
    for bounce in _held(incident.pk).iterator(chunk_size=1000):
        preview.held += 1
        preview.by_kind[bounce.kind] += 1
        decision = _decision(bounce, cache)
        if bounce.contact_id is None:
            preview.unmatched += bounce.kind in _NEEDS_CONTACT
            continue
        if decision.count_soft:
            preview.soft_counted += 1
            contacts.add(bounce.contact_id)
        if decision.actions:
            preview.actions[describe_actions(decision.actions)] += 1
            contacts.add(bounce.contact_id)
        elif decision.kind == Bounce.Kind.HARD:
            contacts.add(bounce.contact_id)
    preview.contacts = len(contacts)
    return preview


def resolve_incident(*, incident_id: int, real: bool, actor: Any = None, note: str = "") -> Incident:
    """Resolve an open incident: `real` False releases its held bounces (state recorded, never
    counted), True applies them as processing would have. Paused sends resume either way;
    staff are alerted and incident.resolved is emitted. Raises IncidentClosed when it is no
    longer open (nothing changes twice)."""
    with transaction.atomic():
        incident = Incident.objects.select_for_update().get(pk=incident_id)
        if incident.status != Incident.Status.OPEN:
            raise IncidentClosed(f"incident {incident_id} is already resolved")
        label = f"user {getattr(actor, 'pk', '')}".strip() if getattr(actor, "pk", None) else "operator"
        if real:
            applied = _apply_held(incident.pk, actor=actor if getattr(actor, "pk", None) else None, label=label)
            incident.status = Incident.Status.APPLIED
            what = f"{applied} held bounces were applied under the policy"
        else:
            released = Bounce.objects.filter(incident_id=incident.pk, state=Bounce.State.HELD).update(
                state=Bounce.State.RECORDED, counted=False)
            incident.status = Incident.Status.RELEASED
            what = f"{released} held bounces were released (never counted)"
        incident.resolved_at = timezone.now()
        incident.resolved_by = actor if getattr(actor, "pk", None) else None
        incident.resolution_note = note[:2000]
        incident.save(update_fields=["status", "resolved_at", "resolved_by", "resolution_note"])
        resumed = resume_incident_sends(incident_id=incident.pk)
        raise_alert(
            kind=Alert.Kind.INCIDENT_RESOLVED, severity=Alert.Severity.INFO,
            title=f"Resolved ({'real' if real else 'our problem'}): {incident.label}",
            body=f"{what}; {resumed} paused messages are sent again.",
            link=reverse("bounces:incident_detail", args=[incident.pk]), event_data=incident_event(incident),
        )
    return incident


def _apply_held(incident_id: int, *, actor: Any, label: str) -> int:
    """The decision path for each held bounce, in time order, CHUNK contacts' bounces at a time."""
    ids = list(_held(incident_id).values_list("id", flat=True))
    cache: dict = {}
    done = 0
    for chunk in chunked(ids, CHUNK):
        bounces = list(Bounce.objects.filter(id__in=chunk).select_related("mailbox", "matched_rule", "campaign")
                       .order_by("bounced_at", "id"))
        batch = ContactActionBatch(actor=actor, actor_label=label)
        contacts = batch.lock({b.contact_id for b in bounces if b.contact_id})
        sent_at = dict(SentMessage.objects.filter(id__in={b.sent_message_id for b in bounces if b.sent_message_id})
                       .values_list("id", "sent_at"))
        matches = {b.pk: Match(method=b.match_method, sent_message_id=b.sent_message_id, contact_id=b.contact_id,
                               campaign_id=b.campaign_id, sent_at=sent_at.get(b.sent_message_id))
                   for b in bounces}
        soft_rows = [b for b in bounces if b.contact_id in contacts and _decision(b, cache).count_soft]
        softs: dict[Any, SoftCounter] = {}
        by_policy: dict[Any, list[Bounce]] = defaultdict(list)
        for b in soft_rows:
            by_policy[cache[(b.mailbox_id, b.matched_rule_id, b.kind)][1]].append(b)
        for policy, rows in by_policy.items():
            softs[policy] = SoftCounter(policy, [contacts[b.contact_id] for b in rows], [matches[b.pk] for b in rows],
                                        min(b.bounced_at for b in rows),
                                        bounced_sent_ids={b.sent_message_id for b in bounces if b.sent_message_id})
        sent_status: dict[int, str] = {}
        for bounce in bounces:
            decision = _decision(bounce, cache)
            policy = cache[(bounce.mailbox_id, bounce.matched_rule_id, bounce.kind)][1]
            contact = contacts.get(bounce.contact_id) if bounce.contact_id else None
            done += 1
            if contact is None:
                bounce.contact_id = None
                bounce.state = Bounce.State.UNMATCHED if decision.kind in _NEEDS_CONTACT else Bounce.State.RECORDED
                continue
            taken: list[str] = []
            detail = {"bounce_id": bounce.pk, "bounce_kind": decision.kind, "reason": bounce.reason,
                      "incident": incident_id}
            cause = Cause(bounce_kind=decision.kind, bounce_reason=bounce.reason, rule_id=decision.rule_id,
                          bounce_id=bounce.pk)
            list_id = bounce.campaign.mailing_list_id if bounce.campaign_id and bounce.campaign else None
            if decision.count_soft:
                taken += count_soft(batch, softs[policy], contact, matches[bounce.pk], list_id=list_id,
                                    detail=detail, at=bounce.bounced_at, cause=cause)
                bounce.counted = True
            if decision.kind == Bounce.Kind.HARD:
                bounce.counted = True
            if decision.actions:
                taken += batch.apply(contact, decision.actions, list_id=list_id,
                                     reason=suppression_reason(decision.kind), detail=detail, cause=cause,
                                     expires_at=suppression_expiry(policy, decision.kind, bounce.bounced_at),
                                     at=bounce.bounced_at)
            bounce.actions_taken = taken
            bounce.state = Bounce.State.APPLIED if (taken or bounce.counted) else Bounce.State.RECORDED
            status = _SENT_STATUS.get(decision.kind)
            if bounce.sent_message_id and status and sent_status.get(bounce.sent_message_id) != SentMessage.Status.BOUNCED:
                sent_status[bounce.sent_message_id] = status
        batch.flush()
        Bounce.objects.bulk_update(bounces, ["state", "counted", "actions_taken", "contact"])
        note_recorded_bounces(bounces=bounces, resolved_real=True)  # the campaigns' rates count them now
        by_status: dict[str, list[int]] = defaultdict(list)
        for sent_id, status in sent_status.items():
            by_status[status].append(sent_id)
        for status, sent_ids in by_status.items():
            lower = [SentMessage.Status.SENT, SentMessage.Status.QUEUED, SentMessage.Status.DEFERRED]
            if status == SentMessage.Status.BOUNCED:
                lower += [SentMessage.Status.SOFT_BOUNCED, SentMessage.Status.COMPLAINED, SentMessage.Status.REFUSED]
            SentMessage.objects.filter(id__in=sent_ids, status__in=lower).update(status=status)
    return done
