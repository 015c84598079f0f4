"""Decisions, pure: what the pipeline does with one bounced recipient, from the engine's
category, the matching rule and the policy. No queries; imports models only for their choices."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bounces.models import Bounce
from bounces.parsing import Category, Kind, ParseResult
from contacts.services import Action

from .policies import Policy


@dataclass(frozen=True, slots=True)
class Decision:
    """What the pipeline does with one bounced recipient (pure; previews use it too).

    `kind` is the final category; `actions` the contact actions besides soft counting;
    `count_soft` says the soft policy counts it; `not_bounce` that it is ignored.
    """

    kind: str
    actions: tuple[str, ...] = ()
    count_soft: bool = False
    not_bounce: bool = False
    queue: bool = False  # goes to the unmatched / unexplained queue
    delete_message: bool = False
    rule_id: int | None = None
    reason: str = ""


_RULE_KINDS = {"hard", "soft", "complaint", "autoreply"}


def decide(*, category: str, rule: Any = None, mailbox_policy: Policy | None = None) -> Decision:
    """The decision for one recipient: engine `category`, then the rule's overrides.

    A rule's `bounce_type` replaces the category ("either" keeps it, "ignore" makes it
    not-a-bounce); its `action` replaces the policy's actions for hard bounces and
    complaints and adds to soft counting ("count_only" = no action beyond counting);
    its `delete_message` asks for the message to be deleted from the mailbox.
    Blocked (our side), delays and auto-replies are recorded and never counted.
    """
    policy = mailbox_policy or Policy()
    kind = str(category)
    # Success DSNs are no bounce. Ordinary mail (a person answering) and what the engine
    # could not understand go to the operator's queue: nothing disappears unseen.
    not_bounce = kind == Category.DELIVERED
    queue = kind in (Category.UNKNOWN, Category.NOT_BOUNCE)
    rule_action = None
    if rule is not None:
        if rule.bounce_type == "ignore":
            return Decision(kind=Bounce.Kind.UNKNOWN, not_bounce=True, delete_message=rule.delete_message,
                            rule_id=rule.rule_id, reason=rule.reason or "not_bounce")
        if rule.bounce_type in _RULE_KINDS:
            kind, not_bounce, queue = rule.bounce_type, False, False
        rule_action = rule.action or None
    if not_bounce:
        kind = Bounce.Kind.UNKNOWN
    if kind == Category.NOT_BOUNCE:
        kind = Bounce.Kind.UNKNOWN
    actions: tuple[str, ...] = ()
    count_soft = False
    if kind == Bounce.Kind.HARD:
        actions = (Action.MARK_HARD,) + (
            policy.hard_actions if rule_action is None else (rule_action,)
        )
    elif kind == Bounce.Kind.SOFT:
        count_soft = True
        actions = (rule_action,) if rule_action else ()
    elif kind == Bounce.Kind.COMPLAINT:
        actions = policy.complaint_actions if rule_action is None else (rule_action,)
    elif rule_action and not not_bounce:
        actions = (rule_action,)
    actions = tuple(a for a in actions if a not in (Action.COUNT_ONLY, Action.NOTHING))
    return Decision(
        kind=kind, actions=actions, count_soft=count_soft, not_bounce=not_bounce, queue=queue,
        delete_message=bool(rule and rule.delete_message), rule_id=rule.rule_id if rule else None,
        reason=(rule.reason if rule and rule.reason else ""),
    )


def category_without_recipient(result: ParseResult) -> str:
    if result.kind == Kind.COMPLAINT:
        return Category.COMPLAINT
    if result.kind == Kind.AUTOREPLY:
        return Category.AUTOREPLY
    if result.kind == Kind.DELIVERED:
        return Category.DELIVERED
    if result.kind == Kind.NOT_BOUNCE:
        return Category.NOT_BOUNCE
    return Category.UNKNOWN
