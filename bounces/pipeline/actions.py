"""What bounces do to contacts beyond one batch: soft counting under the policy, an operator's
assignment from the unexplained queue, and replaying history after a policy change.
Imports models, policies, decisions, matching and contacts' services; never tasks or views."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from bounces.models import Bounce, Mailbox
from bounces.parsing import ParseResult
from campaigns.models import SentMessage
from contacts.models import Contact, ContactEvent, Suppression
from contacts.services import (
    Action,
    Cause,
    ContactActionBatch,
    delivery_liftable,
    lift_after_accepted_send,
    suppression_address,
)

from . import policies
from .decisions import decide, rule_view
from .matching import Match
from .policies import Policy
from .runs import chunked

# How far ahead of us a notice's clock may be before its time is not believed.
CLOCK_SKEW = timedelta(days=1)

# A send the receiving server accepted, with no bounce for the address within this window,
# lifts the address's soft / blocked suppressions (issue 11 item 6).
ACCEPTED_SEND_QUIET = timedelta(days=3)
# Bounces that say the address did not take the send (a delay, an auto-reply do not).
_FAILED_KINDS = (Bounce.Kind.HARD, Bounce.Kind.SOFT, Bounce.Kind.BLOCKED, Bounce.Kind.COMPLAINT)


def lift_after_accepted_sends(*, now: datetime | None = None, quiet: timedelta = ACCEPTED_SEND_QUIET) -> int:
    """Lift soft / blocked address suppressions that an accepted send has since disproved.

    A suppression is lifted when a message to its address was accepted by the receiving
    server (`SentMessage` status *sent*, `sent_at` set) **after the bounce that caused it**
    (its `bounced_at`; the suppression's creation time when the bounce is gone), that send is
    at least `quiet` old, and no hard / soft / blocked / complaint bounce for the address is
    dated from that send to `quiet` after it. Sending skips suppressed addresses, so such a
    send is one made before the suppression was recorded (a bounce dated earlier but
    processed late, e.g. a slow DSN or a mailbox read late), while a suppression had lapsed,
    or outside campaigns. Hard bounces, complaints, blacklistings and operators'
    suppressions are never lifted this way. Run hourly (`bounces.lift_after_accepted_sends`).
    """
    now = now or timezone.now()
    cutoff = now - quiet
    rows = list(delivery_liftable().values_list("id", "value", "created_at", "bounce_id"))
    if not rows:
        return 0
    bounce_times = {}
    for chunk in chunked(sorted({r[3] for r in rows if r[3]}), 900):
        bounce_times.update(Bounce.objects.filter(id__in=chunk).values_list("id", "bounced_at"))
    evidence: dict[int, dict] = {}
    for chunk in chunked(rows, 900):
        by_address = {value: (pk, bounce_times.get(bounce_id) or created) for pk, value, created, bounce_id in chunk}
        sends = defaultdict(list)
        for sid, email, sent_at in SentMessage.objects.filter(
            email__in=list(by_address), status=SentMessage.Status.SENT, sent_at__isnull=False, sent_at__lte=cutoff,
        ).values_list("id", "email", "sent_at"):
            key = email.strip().lower()
            if key in by_address and sent_at > by_address[key][1]:
                sends[key].append((sent_at, sid))
        if not sends:
            continue
        failures = defaultdict(list)
        for recipient, when in Bounce.objects.filter(
            recipient__in=list(sends), kind__in=_FAILED_KINDS, bounced_at__gte=min(min(s) for s in sends.values())[0],
        ).values_list("recipient", "bounced_at"):
            failures[recipient.strip().lower()].append(when)
        for address, accepted in sends.items():
            for sent_at, sid in sorted(accepted, reverse=True):
                if not any(sent_at <= when <= sent_at + quiet for when in failures.get(address, ())):
                    evidence[by_address[address][0]] = {"sent_message_id": sid, "sent_at": sent_at.isoformat()}
                    break
    return lift_after_accepted_send(evidence=evidence)


def notice_at(result: ParseResult, now: datetime) -> datetime:
    """When the bounce happened: the notice's own time (DSN Last-Attempt-Date / Arrival-Date,
    its Date, its newest Received: `ParseResult.notice_time`), else the processing time.

    A time in the future (beyond a day of clock skew) is not believed."""
    when = getattr(result, "notice_time", None)
    if when is None or when.tzinfo is None or when > now + CLOCK_SKEW:
        return now
    return min(when, now)


def suppression_reason(kind: str) -> str:
    """The suppression reason recorded for actions taken on a bounce of `kind`."""
    return {Bounce.Kind.COMPLAINT: Suppression.Reason.COMPLAINT, Bounce.Kind.SOFT: Suppression.Reason.SOFT_BOUNCE,
            }.get(kind, Suppression.Reason.HARD_BOUNCE)


def suppression_expiry(policy: Policy, kind: str, at: datetime) -> datetime | None:
    """When a suppression made for a bounce of `kind` at `at` lapses (None: never)."""
    days = policy.suppression_days(kind)
    return at + timedelta(days=days) if days else None


def count_soft(batch: ContactActionBatch, soft: SoftCounter, contact: Contact, match: Match, *,
               list_id: int | None, detail: dict, at: datetime | None = None, cause: Cause | None = None
               ) -> list[str]:
    """Count one soft bounce of `contact` (at its own time `at`) under the policy; at a
    threshold, act. Returns what was done."""
    at = at or batch.now
    contact.soft_bounce_count += 1
    if contact.last_bounce_at is None or contact.last_bounce_at < at:
        contact.last_bounce_at = at
    batch.touch(contact)
    res = soft.register(contact, match, at=at)
    batch.event(contact, ContactEvent.Kind.SOFT_BOUNCE,
                detail={**detail, "level": res.level, "policy": soft.policy.soft_policy}, cause=cause)
    taken = ["count_soft"]
    # The hard actions run once: a contact already hard-bounced (a window or score crossed
    # again, or an earlier hard bounce) is not marked again; an operator's reset re-arms it.
    to_hard = res.reached_threshold and not contact.has_bounced
    if to_hard:
        taken += batch.apply(contact, soft.policy.soft_threshold_actions, list_id=list_id,
                             reason=Suppression.Reason.SOFT_BOUNCE, detail={**detail, "threshold": True},
                             cause=cause, expires_at=suppression_expiry(soft.policy, Bounce.Kind.SOFT, at), at=at)
        taken.append("soft_threshold")
    if res.reached_blacklist:
        taken += batch.apply(contact, [Action.BLACKLIST_ADDRESS], list_id=list_id,
                             reason=Suppression.Reason.SOFT_BOUNCE, detail={**detail, "threshold": "blacklist"},
                             cause=cause, at=at)
    return taken


class SoftCounter:
    """Soft-policy arithmetic for one batch: one query for window counts, one for chains.

    `contacts` are the locked contacts with soft bounces in the batch; `bounced_sent_ids`
    the SentMessages this batch records a bounce for (their status is updated only at the
    end of the batch, but they did bounce, so they never break a chain).
    """

    def __init__(self, policy: Policy, contacts: list[Contact], matches: list[Match], since: datetime,
                 bounced_sent_ids: set[int]) -> None:
        self.policy = policy
        ids = sorted({c.id for c in contacts})
        # window policy: the counted soft bounces' own times, from the window before the
        # batch's oldest bounce on (each bounce counts those in the window ending at its time)
        self.window_times: dict[int, list[datetime]] = defaultdict(list)
        self.window = timedelta(days=policy.soft_window_days)
        self.clean: dict[int, list[datetime]] = defaultdict(list)
        if not ids:
            return
        if policy.soft_policy == "window":
            for contact_id, at in Bounce.objects.filter(
                contact_id__in=ids, kind=Bounce.Kind.SOFT, counted=True, bounced_at__gte=since - self.window,
            ).values_list("contact_id", "bounced_at"):
                self.window_times[contact_id].append(at)
        # Messages sent to these contacts that did not bounce, from the earliest point a
        # chain can start at in this batch (a contact's last counted send, or a send bounced here).
        starts = [c.last_bounce_sent_at for c in contacts if c.last_bounce_sent_at]
        starts += [m.sent_at for m in matches if m.sent_at]
        if starts:
            for contact_id, sent_id, sent_at in SentMessage.objects.filter(
                contact_id__in=ids, status=SentMessage.Status.SENT, sent_at__gt=min(starts),
            ).values_list("contact_id", "id", "sent_at"):
                if sent_id not in bounced_sent_ids:
                    self.clean[contact_id].append(sent_at)

    def register(self, contact: Contact, match: Match, *, at: datetime) -> policies.SoftOutcome:
        state = policies.SoftState(
            consecutive_bounces=contact.consecutive_bounces, bounce_score=contact.bounce_score,
            bounce_scored_on=contact.bounce_scored_on, last_bounce_sent_at=contact.last_bounce_sent_at,
        )
        times = self.window_times[contact.id]
        result = policies.register_soft(
            self.policy, state, at=at, sent_at=match.sent_at,
            chain_broken=policies.chain_broken(contact.last_bounce_sent_at, match.sent_at,
                                               self.clean[contact.id]),
            window_before=sum(1 for t in times if at - self.window <= t <= at),
        )
        times.append(at)
        s = result.state
        contact.consecutive_bounces = s.consecutive_bounces
        contact.bounce_score = s.bounce_score
        contact.bounce_scored_on = s.bounce_scored_on
        contact.last_bounce_sent_at = s.last_bounce_sent_at
        return result


def assign_bounce(*, bounce: Bounce, contact: Contact, kind: str | None = None, actor: Any = None) -> Bounce:
    """An operator assigns an unmatched bounce to a contact; the kind's actions then apply.

    Only a bounce still in the queue (state unmatched) is assigned; any other is returned
    unchanged, so a repeated request (double submit, two operators) counts nothing twice.
    """
    with transaction.atomic():
        bounce = Bounce.objects.select_for_update().get(pk=bounce.pk)
        if bounce.state != Bounce.State.UNMATCHED:
            return bounce
        if kind:
            bounce.kind = kind
        bounce.contact = contact
        bounce.match_method = Bounce.MatchMethod.MANUAL
        policy = policies.effective_policy(bounce.mailbox)
        # the same decision path as processing (issue 11): the stored rule, if any, as it says
        rule = rule_view(bounce.matched_rule) if bounce.matched_rule_id and bounce.matched_rule else None
        decision = decide(category=bounce.kind, rule=rule if rule and rule.bounce_type != "ignore" else None,
                          policy=policy)
        label = f"user {getattr(actor, 'pk', '')}".strip()
        batch = ContactActionBatch(actor=actor if getattr(actor, "pk", None) else None, actor_label=label)
        locked = batch.lock([contact.pk]).get(contact.pk)
        taken: list[str] = []
        # the same audit detail as processing writes (reset_bounce_state reads bounce_kind)
        detail = {"bounce_id": bounce.pk, "bounce_kind": decision.kind, "reason": bounce.reason}
        cause = Cause(bounce_kind=decision.kind, bounce_reason=bounce.reason, rule_id=bounce.matched_rule_id,
                      bounce_id=bounce.pk)
        if locked is not None:
            if decision.count_soft:
                sent_at = (SentMessage.objects.filter(pk=bounce.sent_message_id).values_list("sent_at", flat=True)
                           .first() if bounce.sent_message_id else None)
                match = Match(method=Bounce.MatchMethod.MANUAL, sent_message_id=bounce.sent_message_id,
                              contact_id=locked.pk, sent_at=sent_at)
                soft = SoftCounter(policy, [locked], [match], bounce.bounced_at,
                                   bounced_sent_ids={bounce.sent_message_id} - {None})
                taken += count_soft(batch, soft, locked, match, list_id=None, detail=detail, at=bounce.bounced_at,
                                    cause=cause)
                bounce.counted = True
            if decision.kind == Bounce.Kind.HARD:
                bounce.counted = True
            list_id = bounce.campaign.mailing_list_id if bounce.campaign_id and bounce.campaign else None
            taken += batch.apply(locked, decision.actions, list_id=list_id, reason=suppression_reason(decision.kind),
                                 detail=detail, cause=cause, at=bounce.bounced_at,
                                 expires_at=suppression_expiry(policy, decision.kind, bounce.bounced_at))
            batch.flush()
        bounce.actions_taken = [*bounce.actions_taken, *taken]
        bounce.state = Bounce.State.RESOLVED
        bounce.save(update_fields=["kind", "contact", "match_method", "actions_taken", "state", "counted"])
    return bounce


def mark_not_a_bounce(*, bounce: Bounce, actor: Any = None) -> Bounce:
    """An operator says an unexplained message is not a bounce: it leaves the queue.

    Only a queued (unmatched) bounce changes: one whose actions were applied keeps its state.
    """
    Bounce.objects.filter(pk=bounce.pk, state=Bounce.State.UNMATCHED).update(state=Bounce.State.IGNORED)
    bounce.refresh_from_db()
    return bounce


def recompute_bounce_state(*, contact_ids: Iterable[int] | None = None, apply_thresholds: bool = True,
                           actor_label: str = "policy change") -> int:
    """Replay stored soft bounces under the current policy; return contacts changed.

    Counters (consecutive, score) are recomputed from history. A contact that now reaches
    a threshold it had not reached gets the hard action (never undone automatically:
    lifting actions is an operator's "un-bounce"). Named `contact_ids` are recomputed even
    with no counted soft bounce left (their counters go back to zero: e.g. the bounces of
    an incident released as ours stopped counting).
    """
    qs = Bounce.objects.filter(kind=Bounce.Kind.SOFT, counted=True, contact__isnull=False)
    if contact_ids is not None:
        contact_ids = list(contact_ids)
        qs = qs.filter(contact_id__in=contact_ids)
    ids = sorted(set(qs.values_list("contact_id", flat=True)) | set(contact_ids or ()))
    changed = 0
    for chunk in chunked(ids, 200):
        with transaction.atomic():
            batch = ContactActionBatch(actor_label=actor_label)
            contacts = batch.lock(chunk)
            history: dict[int, list] = defaultdict(list)
            for contact_id, at, sent_at, mailbox_id in (
                Bounce.objects.filter(kind=Bounce.Kind.SOFT, counted=True, contact_id__in=chunk)
                .order_by("bounced_at", "id")
                .values_list("contact_id", "bounced_at", "sent_message__sent_at", "mailbox_id")
            ):
                history[contact_id].append((policies.SoftEvent(at=at, sent_at=sent_at), mailbox_id))
            clean: dict[int, list[datetime]] = defaultdict(list)
            for contact_id, sent_at in SentMessage.objects.filter(
                contact_id__in=chunk, status=SentMessage.Status.SENT, sent_at__isnull=False
            ).values_list("contact_id", "sent_at"):
                clean[contact_id].append(sent_at)
            mailboxes = {m.pk: m for m in Mailbox.objects.filter(
                pk__in={mb for evs in history.values() for _, mb in evs if mb})}
            blacklisted = set(Suppression.objects.active().filter(
                kind=Suppression.Kind.ADDRESS, reason=Suppression.Reason.BLACKLIST,
                value__in=[suppression_address(c) for c in contacts.values() if suppression_address(c)],
            ).values_list("value", flat=True))
            for contact_id in chunk:
                contact = contacts.get(contact_id)
                events = history.get(contact_id, [])
                if contact is None:
                    continue
                last_mailbox = mailboxes.get(events[-1][1]) if events and events[-1][1] else None
                policy = policies.effective_policy(last_mailbox)
                state, outcomes = policies.recompute_soft_state(policy, [e for e, _ in events], clean[contact_id])
                before = (contact.consecutive_bounces, contact.bounce_score, contact.bounce_scored_on)
                contact.consecutive_bounces = state.consecutive_bounces
                contact.bounce_score = state.bounce_score
                contact.bounce_scored_on = state.bounce_scored_on
                contact.last_bounce_sent_at = state.last_bounce_sent_at
                after = (contact.consecutive_bounces, contact.bounce_score, contact.bounce_scored_on)
                # Only what is new acts (and is logged): a contact already hard-bounced or an
                # address already blacklisted is left alone, so an unchanged history changes nothing.
                to_hard = apply_thresholds and not contact.has_bounced and any(
                    o.reached_threshold for o in outcomes)
                to_blacklist = apply_thresholds and suppression_address(contact) not in blacklisted and any(
                    o.reached_blacklist for o in outcomes)
                if before != after or to_hard:
                    batch.touch(contact)
                    batch.event(contact, ContactEvent.Kind.RECOMPUTE, detail={
                        "policy": policy.soft_policy, "before": [str(v) for v in before],
                        "after": [str(v) for v in after]})
                    changed += 1
                if to_hard:
                    last = events[-1][0].at
                    batch.apply(contact, policy.soft_threshold_actions, reason=Suppression.Reason.SOFT_BOUNCE,
                                detail={"threshold": True, "recomputed": True}, at=last,
                                cause=Cause(bounce_kind=Bounce.Kind.SOFT),
                                expires_at=suppression_expiry(policy, Bounce.Kind.SOFT, last))
                if to_blacklist:
                    batch.apply(contact, [Action.BLACKLIST_ADDRESS], reason=Suppression.Reason.SOFT_BOUNCE,
                                detail={"threshold": "blacklist", "recomputed": True})
            batch.flush()
    return changed
