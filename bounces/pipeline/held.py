"""Resolving an incident (issue 14): its held bounces are released (the incident was ours: they
never count) or applied (it was real: the same decision path as processing, at each bounce's
own time), with a preview of what applying would do. Releasing also restores the contacts
that bounces of its window acted on before it opened, unless other evidence stands against
them (a preview says who and why). Sending paused by it resumes.
Imports models, the incidents' alerts, guard and selectors, policies, decisions, actions,
contacts' and campaigns' services."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from bounces.incidents.alerts import raise_alert
from bounces.incidents.guard import incident_event
from bounces.incidents.selectors import acted_before_bounces
from bounces.incidents.sending import resume_incident_sends
from bounces.models import Alert, Bounce, Incident
from campaigns.guardrails import note_recorded_bounces
from campaigns.models import SentMessage
from contacts.models import Contact, ContactEvent, Subscription, Suppression
from contacts.services import (
    BOUNCE_UNSUBSCRIBE_REASONS,
    Cause,
    ContactActionBatch,
    describe_actions,
    release_suppressions,
    suppression_address,
)

from . import policies
from .actions import (
    SoftCounter,
    count_soft,
    recompute_bounce_state,
    suppression_expiry,
    suppression_reason,
)
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


KEPT_SHOWN = 50  # kept contacts listed by name on the confirmation page
_ACTING = frozenset({Bounce.State.APPLIED, Bounce.State.RESOLVED})
_SUPPRESSION_WHY = {
    Suppression.Reason.COMPLAINT: "a complaint suppressed the address",
    Suppression.Reason.MANUAL: "an operator suppressed the address",
    Suppression.Reason.BLACKLIST: "the address is blacklisted",
    Suppression.Reason.IMPORT: "the address was imported as suppressed",
    Suppression.Reason.UNSUBSCRIBE: "the recipient asked to be suppressed",
}


@dataclass(frozen=True)
class Kept:
    """A contact an earlier bounce acted on that releasing leaves as it is, and why."""

    contact_id: int
    email: str
    reason: str


@dataclass
class RestorePreview:
    """What releasing an incident does to the contacts that bounces of its window acted on
    before it opened (nothing is written)."""

    acted: int = 0  # bounces of the window acted on before the incident opened
    bounce_ids: list[int] = field(default_factory=list)
    restore_ids: list[int] = field(default_factory=list)  # contacts restored
    suppression_ids: list[int] = field(default_factory=list)  # their suppressions lifted
    resubscribed: int = 0  # subscriptions a bounce ended, subscribed again
    flags: int = 0  # hard-bounced flags cleared
    addresses: int = 0  # moved-aside addresses put back
    statuses: int = 0  # unconfirmed / blacklisted by a bounce -> active
    kept: list[Kept] = field(default_factory=list)
    deleted: int = 0  # bounces whose contact is gone (deleted by the policy): nothing to restore
    contact_ids: list[int] = field(default_factory=list)  # every contact they acted on (counters recomputed)

    @property
    def restored(self) -> int:
        return len(self.restore_ids)

    @property
    def kept_shown(self) -> list[Kept]:
        return self.kept[:KEPT_SHOWN]


def _when(at) -> str:
    return at.strftime("%Y-%m-%d %H:%M") if at else "?"


def _other_evidence(contact_ids: list[int], own: set[int]) -> dict[int, str]:
    """Contacts with a bounce outside `own` that counts against them: a counted hard bounce, a
    complaint, or one whose actions went beyond soft counting (a soft threshold crossed, a
    rule). Bounces held by an incident or released with one never count."""
    found: dict[int, str] = {}
    for chunk in chunked(contact_ids, 1000):
        for pk, contact_id, kind, counted, taken, at in (
                Bounce.objects.filter(contact_id__in=chunk, state__in=_ACTING).order_by("-bounced_at", "-id")
                .values_list("id", "contact_id", "kind", "counted", "actions_taken", "bounced_at")):
            if pk in own or contact_id in found:
                continue
            if kind == Bounce.Kind.COMPLAINT:
                found[contact_id] = f"a complaint on {_when(at)} (bounce #{pk})"
            elif kind == Bounce.Kind.HARD and counted:
                found[contact_id] = f"a hard bounce on {_when(at)} outside this incident (bounce #{pk})"
            elif set(taken or ()) - {"count_soft"}:
                found[contact_id] = f"a {kind} bounce on {_when(at)} outside this incident acted on it (bounce #{pk})"
    return found


def _status_kept(contacts: list[Contact], own: set[int]) -> dict[int, str]:
    """Contacts unconfirmed or blacklisted by something else than the window's bounces (an
    operator, an import): releasing must not make them active."""
    flagged = {c.pk: c.status for c in contacts
               if c.status in (Contact.Status.UNCONFIRMED, Contact.Status.BLACKLISTED)}
    found: dict[int, str] = {}
    seen: set[int] = set()
    for contact_id, new_status, detail in (
            ContactEvent.objects.filter(contact_id__in=list(flagged)).exclude(old_status="")
            .order_by("-created_at", "-id").values_list("contact_id", "new_status", "detail")):
        if contact_id in seen or new_status != flagged[contact_id]:
            continue
        seen.add(contact_id)
        if (detail or {}).get("bounce_id") not in own:
            found[contact_id] = f"{flagged[contact_id]} by an operator or another cause"
    for contact_id, status in flagged.items():
        if contact_id not in seen:
            found[contact_id] = f"{status} before this incident"
    return found


def preview_release(*, incident: Incident, lock: bool = False) -> RestorePreview:
    """What releasing `incident` does to the contacts that bounces of its window acted on
    before it opened: who is restored (suppressions made by those bounces lifted, lists they
    unsubscribed subscribed again, the hard-bounced flag cleared, moved-aside addresses put
    back) and who is kept, with the reason: other evidence (a counted hard bounce or a
    complaint outside the incident, a blacklisting, an operator's, a complaint's or an import's
    suppression, a status an operator set). `lock` row-locks the contacts first (resolving)."""
    preview = RestorePreview()
    rows = acted_before_bounces(incident=incident)
    preview.acted = len(rows)
    preview.bounce_ids = [r["id"] for r in rows]
    own = set(preview.bounce_ids)
    ids = sorted({r["contact_id"] for r in rows if r["contact_id"]})
    preview.deleted = sum(1 for r in rows if not r["contact_id"])
    contacts: list[Contact] = []
    for chunk in chunked(ids, 1000):
        qs = Contact.objects.filter(id__in=chunk).order_by("id")
        contacts += list(qs.select_for_update() if lock else qs)
    preview.contact_ids = [c.pk for c in contacts]
    kept = _other_evidence(preview.contact_ids, own)
    for contact_id, why in _status_kept(contacts, own).items():
        kept.setdefault(contact_id, why)
    by_address = {suppression_address(c): c.pk for c in contacts if suppression_address(c)}
    lifts: dict[int, list[int]] = {}
    for value, pk, reason, bounce_id in Suppression.objects.filter(
            kind=Suppression.Kind.ADDRESS, value__in=list(by_address)).values_list("value", "id", "reason", "bounce_id"):
        contact_id = by_address[value]
        if bounce_id in own:
            lifts.setdefault(contact_id, []).append(pk)
        else:
            kept.setdefault(contact_id, _SUPPRESSION_WHY.get(reason) or (
                f"suppressed for bounce #{bounce_id}" if bounce_id else "suppressed by a soft-bounce threshold"))
    restore = [c for c in contacts if c.pk not in kept]
    preview.restore_ids = [c.pk for c in restore]
    preview.suppression_ids = sorted(pk for c in restore for pk in lifts.get(c.pk, ()))
    preview.flags = sum(c.has_bounced for c in restore)
    preview.addresses = sum(1 for c in restore if not c.email and c.bounced_address)
    preview.statuses = sum(1 for c in restore if c.status in (Contact.Status.UNCONFIRMED, Contact.Status.BLACKLISTED))
    for chunk in chunked(preview.restore_ids, 1000):
        preview.resubscribed += Subscription.objects.filter(
            contact_id__in=chunk, status=Subscription.Status.UNSUBSCRIBED,
            unsubscribe_reason__in=BOUNCE_UNSUBSCRIBE_REASONS).count()
    emails = {c.pk: c.email or c.bounced_address for c in contacts}
    preview.kept = [Kept(contact_id=pk, email=emails[pk], reason=why) for pk, why in sorted(kept.items())]
    return preview


def _restore(incident: Incident, *, actor: Any, label: str) -> tuple[RestorePreview, int | None]:
    """Release `incident`'s earlier acted-on bounces: they join it (recorded, not counted, as
    if held then released), the contacts without other evidence are restored in one
    suppression release (undoable as a whole), and soft counters are recomputed."""
    plan = preview_release(incident=incident, lock=True)
    if not plan.bounce_ids:
        return plan, None
    for chunk in chunked(plan.bounce_ids, 1000):
        Bounce.objects.filter(id__in=chunk, state=Bounce.State.APPLIED, incident__isnull=True).update(
            incident=incident, state=Bounce.State.RECORDED, counted=False)
    release_id = None
    if plan.restore_ids:
        release = release_suppressions(
            suppression_ids=plan.suppression_ids, actor=actor or label, reset_contacts=True,
            contact_ids=plan.restore_ids,
            note=f"incident #{incident.pk} released as our problem: {plan.restored} contacts acted on before it opened")
        release_id = release.pk
    recompute_bounce_state(contact_ids=plan.contact_ids, apply_thresholds=False,
                           actor_label=f"incident #{incident.pk} released")
    return plan, release_id


def resolve_incident(*, incident_id: int, real: bool, actor: Any = None, note: str = "",
                     restore: bool = True) -> Incident:
    """Resolve an open incident: `real` False releases its held bounces (state recorded, never
    counted) and, with `restore`, the bounces of its window acted on before it opened too,
    restoring their contacts unless other evidence stands against them (`preview_release`);
    True applies the held bounces as processing would have. Paused sends resume either way;
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
            if restore:
                plan, release_id = _restore(incident, actor=actor if getattr(actor, "pk", None) else None,
                                            label=label)
                if plan.acted:
                    what += (f"; {plan.acted} bounces acted on before it opened were released too: "
                             f"{plan.restored} contacts restored"
                             + (f" (suppression release #{release_id}, undoable)" if release_id else "")
                             + (f", {len(plan.kept)} kept for other evidence" if plan.kept else ""))
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
