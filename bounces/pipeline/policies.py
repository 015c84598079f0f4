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

Reaching the threshold treats the contact as hard-bounced (the hard actions run once, on
the crossing); an optional second, higher threshold blacklists the address. Soft counting
uses each bounce's own time (from the notice), not the processing time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from bounces.models import BounceSettings, HardAction, Mailbox, SoftPolicy
from contacts.services import ALL_ACTIONS, NO_OP_ACTIONS, Action, sort_actions

# The shipped policies (issue 11). Hard: Octeth's three steps. Complaint: stop mailing.
DEFAULT_HARD_ACTIONS: tuple[str, ...] = (Action.MARK_HARD, Action.UNSUBSCRIBE_ALL, Action.SUPPRESS)
DEFAULT_COMPLAINT_ACTIONS: tuple[str, ...] = (Action.UNSUBSCRIBE_ALL, Action.SUPPRESS)
# What a kind does whatever the policy or a rule says (issue 16: complaints from any source,
# ARF reports, accounting `f` records and ESP complaint events, always suppress the address).
ALWAYS_ACTIONS: dict[str, tuple[str, ...]] = {"complaint": (Action.SUPPRESS,)}

# A mailbox's hard-policy override (Mailbox.hard_action) picks one of these presets.
HARD_ACTIONS: dict[str, tuple[str, ...]] = {
    HardAction.UNSUBSCRIBE_SUPPRESS: DEFAULT_HARD_ACTIONS,
    HardAction.UNCONFIRM: (Action.MARK_HARD, Action.UNCONFIRM),
    HardAction.BLACKLIST_CONTACT: (Action.MARK_HARD, Action.BLACKLIST_CONTACT),
    HardAction.BLACKLIST_ADDRESS: (Action.MARK_HARD, Action.BLACKLIST_ADDRESS),
    HardAction.DELETE_CONTACT: (Action.MARK_HARD, Action.DELETE_CONTACT),
    HardAction.REMOVE_ADDRESS: (Action.MARK_HARD, Action.SUPPRESS, Action.REMOVE_ADDRESS),
    HardAction.NOTHING: (Action.MARK_HARD,),
}
# Kinds that never act on a contact unless a rule says so explicitly.
NEVER_ACTING = ("soft", "blocked", "autoreply", "delay", "unknown")


def clean_actions(values: object) -> tuple[str, ...]:
    """A stored action list (JSON) as a sorted tuple of known actions (unknown ones dropped)."""
    if not isinstance(values, list | tuple):
        return ()
    known = [v for v in values if isinstance(v, str) and v in ALL_ACTIONS and v not in NO_OP_ACTIONS]
    return tuple(sort_actions(known))


@dataclass(frozen=True, slots=True)
class Policy:
    """What each kind does, after mailbox overrides (pure data; `decide` reads it).

    Hard bounces and complaints carry a set of contact actions; a soft bounce counts and,
    on reaching the threshold, gets the hard actions; the other kinds never act. The
    `*_suppression_days` say when a suppression made for that kind lapses (None: never).
    """

    hard_actions: tuple[str, ...] = DEFAULT_HARD_ACTIONS
    soft_policy: str = SoftPolicy.CONSECUTIVE
    soft_threshold: int = 5
    soft_window_days: int = 30
    score_stale_days: int = 7
    soft_blacklist_threshold: int | None = None
    complaint_actions: tuple[str, ...] = DEFAULT_COMPLAINT_ACTIONS
    hard_suppression_days: int | None = None
    soft_suppression_days: int | None = 90
    blocked_suppression_days: int | None = 30

    def actions_for(self, kind: str) -> tuple[str, ...]:
        """The kind's policy: its contact actions (a soft bounce's are on the threshold)."""
        if kind == "hard":
            return self.hard_actions
        if kind == "complaint":
            return tuple(sort_actions({*self.complaint_actions, *ALWAYS_ACTIONS["complaint"]}))
        return ()

    @property
    def soft_threshold_actions(self) -> tuple[str, ...]:
        """What a contact reaching the soft threshold gets: the hard policy."""
        return self.hard_actions

    def suppression_days(self, kind: str) -> int | None:
        """When a suppression made for a bounce of `kind` lapses (None: never)."""
        return {"hard": self.hard_suppression_days, "soft": self.soft_suppression_days,
                "blocked": self.blocked_suppression_days}.get(kind)


def global_policy(settings_row: BounceSettings | None = None) -> Policy:
    """The policy from the global settings row."""
    s = settings_row or BounceSettings.load()
    return Policy(
        hard_actions=clean_actions(s.hard_actions), soft_policy=s.soft_policy, soft_threshold=s.soft_threshold,
        soft_window_days=s.soft_window_days, score_stale_days=s.score_stale_days,
        soft_blacklist_threshold=s.soft_blacklist_threshold, complaint_actions=clean_actions(s.complaint_actions),
        hard_suppression_days=s.hard_suppression_days, soft_suppression_days=s.soft_suppression_days,
        blocked_suppression_days=s.blocked_suppression_days,
    )


def effective_policy(mailbox: Mailbox | None, settings_row: BounceSettings | None = None) -> Policy:
    """The global policy with `mailbox`'s overrides (blank / empty fields inherit)."""
    policy = global_policy(settings_row)
    if mailbox is None:
        return policy
    overrides: dict[str, object] = {}
    if mailbox.hard_action and mailbox.hard_action in HARD_ACTIONS:
        overrides["hard_actions"] = HARD_ACTIONS[mailbox.hard_action]
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
