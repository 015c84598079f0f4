"""Decisions, pure: what the pipeline does with one bounced recipient, from the engine's
category, the matching rule and the policy. No queries; imports models only for their choices.

One decision path (issue 11): with a rule or without, the kind's policy decides. A rule says
what a bounce *is* (its kind, its reason); it changes the actions only by saying so:

* ``kind`` (the default): the kind's policy, exactly as without a rule;
* ``add``: the kind's policy plus the rule's actions (stronger);
* ``replace``: only the rule's actions (may be weaker; the rule page says so).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bounces.models import Bounce
from bounces.parsing import Category, Kind, ParseResult
from contacts.services import NO_OP_ACTIONS, describe_actions, sort_actions

from .policies import ALWAYS_ACTIONS, Policy


@dataclass(frozen=True, slots=True)
class Decision:
    """What the pipeline does with one bounced recipient (pure; previews use it too).

    `kind` is the final category; `actions` the contact actions now (a soft bounce's
    threshold actions come from the policy when it is reached); `count_soft` says the soft
    policy counts it; `not_bounce` that it is ignored; `effect` whether a rule left the
    policy as it is ("policy"), made it stronger, weaker, or replaced it with other actions.
    """

    kind: str
    actions: tuple[str, ...] = ()
    count_soft: bool = False
    not_bounce: bool = False
    queue: bool = False  # goes to the unmatched / unexplained queue
    delete_message: bool = False
    message: str = ""  # the rule's disposition of the message ("" = the mailbox's; see RuleMatch.message)
    rule_id: int | None = None
    reason: str = ""
    in_statistics: bool = True
    effect: str = "policy"


@dataclass(frozen=True, slots=True)
class RuleView:
    """The parts of a rule a decision reads (a `RuleMatch`, or a stored rule via `rule_view`)."""

    rule_id: int
    bounce_type: str
    reason: str = ""
    actions_mode: str = "kind"
    actions: tuple[str, ...] = ()
    delete_message: bool = False
    in_statistics: bool = True
    message: str = ""


def rule_view(rule: Any) -> RuleView:
    """A stored `BounceRule` (or anything with its fields) as a `RuleView`."""
    return RuleView(rule_id=rule.pk or 0, bounce_type=rule.bounce_type, reason=rule.reason or "",
                    actions_mode=rule.actions_mode, actions=tuple(rule.actions or ()),
                    delete_message=bool(rule.delete_message), in_statistics=bool(rule.in_statistics),
                    message=str(getattr(rule, "message_request", None) or ("delete" if rule.delete_message else "")))


_RULE_KINDS = {"hard", "soft", "complaint", "autoreply"}


def rule_actions(kind: str, rule: Any, policy: Policy) -> tuple[tuple[str, ...], str]:
    """(the actions, the rule's effect) for a bounce of `kind` under `policy` and `rule`."""
    base = tuple(a for a in policy.actions_for(kind) if a not in NO_OP_ACTIONS)
    mode = getattr(rule, "actions_mode", "kind") if rule is not None else "kind"
    own = tuple(a for a in (getattr(rule, "actions", ()) or ()) if a not in NO_OP_ACTIONS)
    if mode == "add":
        actions = tuple(sort_actions((*base, *own)))
    elif mode == "replace":  # a rule may weaken a kind's policy, never below what it always does
        actions = tuple(sort_actions({*own, *ALWAYS_ACTIONS.get(kind, ())}))
    else:
        return tuple(sort_actions(base)), "policy"
    before, after = set(base), set(actions)
    if after == before:
        effect = "policy"
    elif after > before:
        effect = "stronger"
    elif after < before:
        effect = "weaker"
    else:
        effect = "replaced"
    return actions, effect


def decide(*, category: str, rule: Any = None, policy: Policy | None = None,
           mailbox_policy: Policy | None = None) -> Decision:
    """The decision for one recipient: engine `category`, then what the rule says it is.

    A rule's `bounce_type` replaces the category ("either" keeps it, "ignore" makes it
    not-a-bounce); the actions are the kind's policy unless the rule adds to it or
    replaces it explicitly (`actions_mode`); `delete_message` asks for the message to be
    deleted from the mailbox; `in_statistics` False leaves the bounce out of campaign
    figures. With the policy's defaults only hard bounces (and soft ones reaching the
    threshold) and complaints act; blocked, delays, auto-replies and unknown never do.
    """
    policy = policy or mailbox_policy or Policy()
    kind = str(category)
    # Success DSNs are no bounce. Ordinary mail (a person answering) and what the engine
    # could not understand go to the operator's queue: nothing disappears unseen.
    not_bounce = kind == Category.DELIVERED
    queue = kind in (Category.UNKNOWN, Category.NOT_BOUNCE)
    if rule is not None:
        if rule.bounce_type == "ignore":
            return Decision(kind=Bounce.Kind.UNKNOWN, not_bounce=True, delete_message=rule.delete_message,
                            message=_message_of(rule),
                            rule_id=rule.rule_id, reason=rule.reason or "not_bounce",
                            in_statistics=getattr(rule, "in_statistics", True))
        if rule.bounce_type in _RULE_KINDS:
            kind, not_bounce, queue = rule.bounce_type, False, False
    if not_bounce or kind == Category.NOT_BOUNCE:
        kind = Bounce.Kind.UNKNOWN
    actions, effect = rule_actions(kind, rule, policy) if not not_bounce else ((), "policy")
    return Decision(
        kind=kind, actions=actions, count_soft=kind == Bounce.Kind.SOFT, not_bounce=not_bounce, queue=queue,
        delete_message=bool(rule and rule.delete_message), message=_message_of(rule) if rule else "",
        rule_id=rule.rule_id if rule else None,
        reason=(rule.reason if rule and rule.reason else ""),
        in_statistics=bool(getattr(rule, "in_statistics", True)) if rule is not None else True, effect=effect,
    )


def describe_rule(rule: Any, policy: Policy) -> str:
    """A rule's effective actions in words, for the rule page and the admin list."""
    if rule.bounce_type == "ignore":
        return "Not a bounce: no contact action."
    kinds = [rule.bounce_type] if rule.bounce_type in _RULE_KINDS else ["hard", "soft", "complaint", "blocked"]
    parts = []
    for kind in kinds:
        actions, effect = rule_actions(kind, rule, policy)
        words = describe_actions(actions)
        if kind == "soft" and rule.actions_mode == "kind":
            words = f"counted; at the threshold: {describe_actions(policy.soft_threshold_actions)}"
        note = {"policy": "the kind's policy", "stronger": "STRONGER than the kind's policy",
                "weaker": "WEAKER than the kind's policy", "replaced": "REPLACES the kind's policy"}[effect]
        parts.append(f"{kind}: {words} ({note})")
    text = "; ".join(parts)
    if rule.bounce_type == "either":
        text = "Keeps the engine's kind — " + text
    if not getattr(rule, "in_statistics", True):
        text += "; left out of campaign statistics"
    return text + "; " + describe_message(_message_of(rule)) + "."


def _message_of(rule: Any) -> str:
    """A rule's disposition of the message ("" = the mailbox's; "delete", "mark_read", "leave", "move:<folder>")."""
    message = getattr(rule, "message", None)
    if message is None:
        message = getattr(rule, "message_request", "")
    return str(message or ("delete" if getattr(rule, "delete_message", False) else ""))


def describe_message(message: str) -> str:
    """What happens to the message in the mailbox, in words."""
    if message == "delete":
        return "the message is deleted from the mailbox"
    if message == "mark_read":
        return "the message is marked read and left in the mailbox"
    if message == "leave":
        return "the message is left untouched (unread) in the mailbox"
    if message.startswith("move:"):
        return f"the message is moved to the folder {message[5:]!r}"
    return "the mailbox's setting decides what happens to the message"


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
