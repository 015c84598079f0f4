"""Bounce policies: what each kind does to a contact, and how soft bounces add up.
Imports models (the settings rows) and the contact action names only.

The effective policy is the global `BounceSettings` with a mailbox's overrides on top.
The soft-bounce arithmetic here is pure (no database): the pipeline feeds it a contact's
state and one bounce, and `recompute_soft_state` replays a stored history through the
same function, so changing the policy gives exactly what processing would have given.

Soft policies:

* consecutive (phpList): count soft bounces in a row; the chain is broken (count starts
  again at 1) when a message sent to the contact after the last counted one did not
  bounce. Threshold default 5.
* window: N soft bounces within D days.
* score (Mailman 3): +1 at most once per day; a score whose last increase is older than
  `score_stale_days` starts again at 1.

Reaching the threshold treats the contact as hard-bounced (the hard action runs once, on
the crossing); an optional second, higher threshold blacklists the address.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from bounces.models import BounceSettings, ComplaintAction, HardAction, Mailbox, SoftPolicy
from contacts.services import Action

HARD_ACTIONS: dict[str, tuple[str, ...]] = {
    HardAction.UNSUBSCRIBE_SUPPRESS: (Action.UNSUBSCRIBE, Action.SUPPRESS),
    HardAction.UNCONFIRM: (Action.UNCONFIRM,),
    HardAction.BLACKLIST_CONTACT: (Action.BLACKLIST_CONTACT,),
    HardAction.BLACKLIST_ADDRESS: (Action.BLACKLIST_ADDRESS,),
    HardAction.DELETE_CONTACT: (Action.DELETE_CONTACT,),
    HardAction.REMOVE_ADDRESS: (Action.SUPPRESS, Action.REMOVE_ADDRESS),
    HardAction.NOTHING: (),
}
COMPLAINT_ACTIONS: dict[str, tuple[str, ...]] = {
    ComplaintAction.UNSUBSCRIBE_SUPPRESS: (Action.SUPPRESS, Action.UNSUBSCRIBE),
    ComplaintAction.BLACKLIST_CONTACT: (Action.SUPPRESS, Action.UNSUBSCRIBE, Action.BLACKLIST_CONTACT),
    ComplaintAction.NOTHING: (),
}


@dataclass(frozen=True, slots=True)
class Policy:
    """The settings that decide actions, after mailbox overrides."""

    hard_action: str = HardAction.UNSUBSCRIBE_SUPPRESS
    soft_policy: str = SoftPolicy.CONSECUTIVE
    soft_threshold: int = 5
    soft_window_days: int = 30
    score_stale_days: int = 7
    soft_blacklist_threshold: int | None = None
    complaint_action: str = ComplaintAction.UNSUBSCRIBE_SUPPRESS

    @property
    def hard_actions(self) -> tuple[str, ...]:
        return HARD_ACTIONS[self.hard_action]

    @property
    def complaint_actions(self) -> tuple[str, ...]:
        return COMPLAINT_ACTIONS[self.complaint_action]


def global_policy(settings_row: BounceSettings | None = None) -> Policy:
    """The policy from the global settings row."""
    s = settings_row or BounceSettings.load()
    return Policy(
        hard_action=s.hard_action, soft_policy=s.soft_policy, soft_threshold=s.soft_threshold,
        soft_window_days=s.soft_window_days, score_stale_days=s.score_stale_days,
        soft_blacklist_threshold=s.soft_blacklist_threshold, complaint_action=s.complaint_action,
    )


def effective_policy(mailbox: Mailbox | None, settings_row: BounceSettings | None = None) -> Policy:
    """The global policy with `mailbox`'s overrides (blank / empty fields inherit)."""
    policy = global_policy(settings_row)
    if mailbox is None:
        return policy
    overrides: dict[str, object] = {}
    if mailbox.hard_action:
        overrides["hard_action"] = mailbox.hard_action
    if mailbox.soft_policy:
        overrides["soft_policy"] = mailbox.soft_policy
    for name in ("soft_threshold", "soft_window_days", "soft_blacklist_threshold"):
        value = getattr(mailbox, name)
        if value is not None:
            overrides[name] = value
    return replace(policy, **overrides) if overrides else policy


@dataclass(frozen=True, slots=True)
class SoftState:
    """A contact's soft-bounce state (mirrors the Contact fields of the same names)."""

    consecutive_bounces: int = 0
    bounce_score: float = 0.0
    bounce_scored_on: date | None = None
    last_bounce_sent_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class SoftOutcome:
    state: SoftState
    level: float  # the policy's measure after this bounce
    reached_threshold: bool  # crossed the threshold with this bounce
    reached_blacklist: bool  # crossed the second threshold with this bounce


def register_soft(
    policy: Policy,
    state: SoftState,
    *,
    at: datetime,
    sent_at: datetime | None,
    chain_broken: bool,
    window_before: int,
) -> SoftOutcome:
    """Add one soft bounce arriving `at` (for a message sent at `sent_at`).

    `chain_broken`: a message sent to the contact after the last counted one did not
    bounce (consecutive policy). `window_before`: soft bounces already counted within
    the window ending at `at` (window policy).
    """
    # The consecutive counter is kept under every policy (it is shown on the contact).
    consecutive = 1 if chain_broken else state.consecutive_bounces + 1
    new = replace(state, consecutive_bounces=consecutive, last_bounce_sent_at=sent_at or at)
    if policy.soft_policy == SoftPolicy.WINDOW:
        before = float(window_before)
        level = before + 1
    elif policy.soft_policy == SoftPolicy.SCORE:
        before = state.bounce_score
        day = at.date()
        if state.bounce_scored_on == day:
            level = before  # scored already today
        else:
            stale = state.bounce_scored_on is None or (
                day - state.bounce_scored_on > timedelta(days=policy.score_stale_days)
            )
            if stale:
                before = 0.0
            level = before + 1
            new = replace(new, bounce_score=level, bounce_scored_on=day)
    else:
        before = float(consecutive - 1)
        level = float(consecutive)
    threshold = policy.soft_threshold
    second = policy.soft_blacklist_threshold
    return SoftOutcome(
        state=new,
        level=level,
        reached_threshold=before < threshold <= level,
        reached_blacklist=second is not None and before < second <= level,
    )


@dataclass(frozen=True, slots=True)
class SoftEvent:
    """One stored soft bounce, for replay."""

    at: datetime
    sent_at: datetime | None


def chain_broken(
    previous_sent_at: datetime | None, sent_at: datetime | None, clean_sends: Iterable[datetime]
) -> bool:
    """True when a message sent strictly between the two bounced sends did not bounce."""
    if previous_sent_at is None or sent_at is None:
        return False
    return any(previous_sent_at < t < sent_at for t in clean_sends)


def recompute_soft_state(
    policy: Policy, events: list[SoftEvent], clean_sends: list[datetime]
) -> tuple[SoftState, list[SoftOutcome]]:
    """Replay a contact's soft bounces (oldest first) under `policy`."""
    state = SoftState()
    outcomes: list[SoftOutcome] = []
    window = timedelta(days=policy.soft_window_days)
    for i, event in enumerate(events):
        window_before = sum(1 for e in events[:i] if event.at - window <= e.at <= event.at)
        outcome = register_soft(
            policy, state, at=event.at, sent_at=event.sent_at,
            chain_broken=chain_broken(state.last_bounce_sent_at, event.sent_at, clean_sends),
            window_before=window_before,
        )
        outcomes.append(outcome)
        state = outcome.state
    return state, outcomes
