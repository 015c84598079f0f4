"""Outcomes recomputed under the current policies and rules (issue 11), preview first.

After the upgrade to action sets (migration bounces 0010), contacts whose hard bounce only
got "mark" under the old starter rules are still subscribed and not suppressed. The operator
previews which contacts would change (`plan_outcome_recompute`), then applies it
(`apply_outcome_recompute`). Only what the current decision adds is carried out: nothing is
ever lifted here (that is an operator's release or un-bounce), a contact is not marked again.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from django.db import transaction

from bounces.models import Bounce
from contacts.models import Contact, Subscription, Suppression
from contacts.services import ACTION_WORDS, Action, Cause, ContactActionBatch, suppression_address

from . import policies
from .decisions import decide, rule_view
from .runs import chunked


@dataclass(frozen=True)
class ContactChange:
    """What recomputing changes on one contact."""

    contact_id: int
    email: str
    bounce_id: int | None
    kind: str
    actions: tuple[str, ...]
    list_id: int | None = None
    rule_id: int | None = None
    reason: str = ""

    @property
    def words(self) -> str:
        return ", ".join(ACTION_WORDS.get(a, a) for a in self.actions)


@dataclass
class RecomputePlan:
    changes: list[ContactChange] = field(default_factory=list)
    examined: int = 0


def _latest_acting_bounces(contact_ids: list[int]) -> dict[int, Bounce]:
    """Per contact, its latest counted hard bounce, else its latest complaint."""
    best: dict[int, Bounce] = {}
    qs = (Bounce.objects.filter(contact_id__in=contact_ids, kind__in=[Bounce.Kind.HARD, Bounce.Kind.COMPLAINT],
                                state__in=[Bounce.State.APPLIED, Bounce.State.RESOLVED])
          .select_related("matched_rule", "mailbox", "campaign").order_by("bounced_at", "id"))
    for bounce in qs:
        current = best.get(bounce.contact_id)
        if current is None or current.kind != Bounce.Kind.HARD or bounce.kind == Bounce.Kind.HARD:
            best[bounce.contact_id] = bounce
    return best


def _would_change(action: str, contact: Contact, *, list_id: int | None, subs: dict[int, dict[int, str]],
                  suppressed: dict[str, str]) -> bool:
    address = suppression_address(contact)
    mine = subs.get(contact.pk, {})
    if action == Action.SUPPRESS:
        return bool(address) and address not in suppressed
    if action == Action.BLACKLIST_ADDRESS:
        return bool(address) and suppressed.get(address) != Suppression.Reason.BLACKLIST
    if action == Action.UNSUBSCRIBE_ALL or (action == Action.UNSUBSCRIBE and list_id is None):
        return any(s == Subscription.Status.SUBSCRIBED for s in mine.values())
    if action == Action.UNSUBSCRIBE:
        return mine.get(list_id) == Subscription.Status.SUBSCRIBED
    if action == Action.UNCONFIRM:
        return contact.status == Contact.Status.ACTIVE
    if action == Action.BLACKLIST_CONTACT:
        return contact.status != Contact.Status.BLACKLISTED
    if action == Action.REMOVE_ADDRESS:
        return bool(contact.email)
    return action == Action.DELETE_CONTACT


def plan_outcome_recompute(*, limit: int | None = None) -> RecomputePlan:
    """Which contacts the current decision would change, and how (nothing is written).

    Examined: hard-bounced contacts (a hard bounce, or soft bounces that reached the
    threshold) and contacts with a complaint.
    """
    plan = RecomputePlan()
    settings_row = policies.BounceSettings.load()
    mailbox_policies: dict[int | None, policies.Policy] = {None: policies.global_policy(settings_row)}
    ids = list(Contact.objects.filter(has_bounced=True).values_list("id", flat=True))
    ids += list(Bounce.objects.filter(kind=Bounce.Kind.COMPLAINT, contact__isnull=False)
                .values_list("contact_id", flat=True).distinct())
    ids = sorted(set(ids))[:limit] if limit else sorted(set(ids))
    for chunk in chunked(ids, 500):
        contacts = Contact.objects.in_bulk(chunk)
        bounces = _latest_acting_bounces(chunk)
        subs: dict[int, dict[int, str]] = defaultdict(dict)
        for contact_id, list_id, status in Subscription.objects.filter(contact_id__in=chunk).values_list(
                "contact_id", "mailing_list_id", "status"):
            subs[contact_id][list_id] = status
        addresses = [suppression_address(c) for c in contacts.values()]
        suppressed = dict(Suppression.objects.active().filter(
            kind=Suppression.Kind.ADDRESS, value__in=[a for a in addresses if a]).values_list("value", "reason"))
        for contact_id in chunk:
            contact = contacts.get(contact_id)
            if contact is None:
                continue
            plan.examined += 1
            bounce = bounces.get(contact_id)
            mailbox_id = bounce.mailbox_id if bounce else None
            if mailbox_id not in mailbox_policies:
                mailbox_policies[mailbox_id] = policies.effective_policy(bounce.mailbox, settings_row)
            policy = mailbox_policies[mailbox_id]
            if bounce is not None:
                rule = rule_view(bounce.matched_rule) if bounce.matched_rule_id else None
                kind = bounce.kind
                decision = decide(category=kind, rule=rule if rule and rule.bounce_type != "ignore" else None,
                                  policy=policy)
                actions = decision.actions
            else:  # soft bounces reached the threshold: the hard policy
                kind, actions = Bounce.Kind.SOFT, policy.hard_actions
            if kind != Bounce.Kind.COMPLAINT and not contact.has_bounced:
                continue
            list_id = bounce.campaign.mailing_list_id if bounce is not None and bounce.campaign else None
            changing = tuple(a for a in actions if a != Action.MARK_HARD and _would_change(
                a, contact, list_id=list_id, subs=subs, suppressed=suppressed))
            if changing:
                plan.changes.append(ContactChange(
                    contact_id=contact_id, email=contact.email or contact.bounced_address,
                    bounce_id=bounce.pk if bounce else None, kind=kind, actions=changing, list_id=list_id,
                    rule_id=bounce.matched_rule_id if bounce else None, reason=bounce.reason if bounce else ""))
    return plan


def apply_outcome_recompute(*, plan: RecomputePlan, actor: object = None, actor_label: str = "outcome recompute"
                            ) -> int:
    """Carry out a previewed plan (each change once; a contact changed meanwhile is re-checked
    by the idempotent actions). Returns the contacts changed."""
    changed = 0
    by_id = {c.contact_id: c for c in plan.changes}
    for chunk in chunked(sorted(by_id), 200):
        with transaction.atomic():
            batch = ContactActionBatch(actor=actor if getattr(actor, "pk", None) else None, actor_label=actor_label)
            locked = batch.lock(chunk)
            for contact_id in chunk:
                contact = locked.get(contact_id)
                change = by_id[contact_id]
                if contact is None:
                    continue
                reason = {Bounce.Kind.COMPLAINT: Suppression.Reason.COMPLAINT,
                          Bounce.Kind.SOFT: Suppression.Reason.SOFT_BOUNCE}.get(change.kind,
                                                                             Suppression.Reason.HARD_BOUNCE)
                done = batch.apply(contact, change.actions, list_id=change.list_id, reason=reason,
                                   detail={"recomputed": True},
                                   cause=Cause(bounce_kind=change.kind, bounce_reason=change.reason,
                                               rule_id=change.rule_id, bounce_id=change.bounce_id))
                changed += bool(done)
            batch.flush()
    return changed



