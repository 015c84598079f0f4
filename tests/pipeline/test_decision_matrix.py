"""One decision path (issue 11): kind × (no rule / a rule) × each policy setting.

`decide` is pure, so the whole matrix runs without a database. A rule that only says what a
bounce is (its kind, its reason) gets exactly what no rule gets; a rule changes the actions
only by saying so (adds to the policy, or replaces it), and the decision says which.
"""

from __future__ import annotations

from dataclasses import replace
from itertools import product

import pytest

from bounces.pipeline.decisions import decide
from bounces.pipeline.policies import DEFAULT_COMPLAINT_ACTIONS, DEFAULT_HARD_ACTIONS, Policy
from bounces.rules.ruleset import RuleMatch
from contacts.services import ACTION_WORDS, Action

KINDS = ("hard", "soft", "blocked", "complaint", "autoreply", "delay", "unknown", "delivered", "not_bounce")
GOOD = ("soft", "blocked", "autoreply", "delay", "unknown", "delivered", "not_bounce")
CHOOSABLE = tuple(ACTION_WORDS)


def rule(*, bounce_type: str = "either", mode: str = "kind", actions: tuple[str, ...] = (),
         in_statistics: bool = True) -> RuleMatch:
    return RuleMatch(rule_id=1, rule_name="r", bounce_type=bounce_type, reason="userunknown", actions_mode=mode,
                     actions=actions, delete_message=False, in_statistics=in_statistics, fallback_only=False,
                     matched_text="x")


POLICIES = [Policy()] + [replace(Policy(), hard_actions=(a,)) for a in CHOOSABLE] + [
    replace(Policy(), complaint_actions=(a,)) for a in CHOOSABLE] + [
    replace(Policy(), hard_actions=()), replace(Policy(), complaint_actions=())]


def test_the_shipped_hard_policy_marks_unsubscribes_from_all_lists_and_suppresses():
    assert set(DEFAULT_HARD_ACTIONS) == {Action.MARK_HARD, Action.UNSUBSCRIBE_ALL, Action.SUPPRESS}
    assert set(decide(category="hard").actions) == set(DEFAULT_HARD_ACTIONS)
    assert set(DEFAULT_COMPLAINT_ACTIONS) == {Action.UNSUBSCRIBE_ALL, Action.SUPPRESS}


@pytest.mark.parametrize(("kind", "policy"), list(product(KINDS, POLICIES)))
def test_a_rule_that_only_names_the_kind_gets_what_no_rule_gets(kind, policy):
    plain = decide(category=kind, policy=policy)
    if kind in ("hard", "soft", "complaint", "autoreply"):
        # a rule that says "this text means <kind>" on a message the engine could not read
        ruled = decide(category="unknown", rule=rule(bounce_type=kind), policy=policy)
        assert ruled.kind == plain.kind
    else:  # rules cannot name these kinds: one that keeps the engine's verdict
        ruled = decide(category=kind, rule=rule(bounce_type="either"), policy=policy)
    assert set(ruled.actions) == set(plain.actions)
    assert ruled.count_soft == plain.count_soft
    assert ruled.effect == "policy"


@pytest.mark.parametrize(("kind", "policy"), list(product(KINDS, POLICIES)))
def test_each_kind_does_what_its_policy_says(kind, policy):
    d = decide(category=kind, policy=policy)
    if kind == "hard":
        assert set(d.actions) == set(policy.hard_actions)
    elif kind == "complaint":  # a complaint always suppresses (issue 16), whatever the policy says
        assert set(d.actions) == set(policy.complaint_actions) | {Action.SUPPRESS}
    else:
        assert d.actions == ()  # never punished: soft counts towards its threshold only
    assert d.count_soft == (kind == "soft")
    assert d.queue == (kind in ("unknown", "not_bounce"))
    assert d.not_bounce == (kind == "delivered")


@pytest.mark.parametrize(("kind", "action"), list(product(KINDS[:6], CHOOSABLE)))
def test_a_rule_strengthens_only_by_adding_and_weakens_only_by_replacing(kind, action):
    base = set(decide(category=kind).actions)
    added = decide(category="unknown", rule=rule(bounce_type=kind if kind != "blocked" else "either",
                                                 mode="add", actions=(action,)),
                   policy=Policy()) if kind != "blocked" else decide(
        category="blocked", rule=rule(mode="add", actions=(action,)))
    assert set(added.actions) == base | {action}
    assert added.effect == ("policy" if action in base else "stronger")
    replaced = decide(category=kind, rule=rule(mode="replace", actions=(action,)))
    floor = {Action.SUPPRESS} if kind == "complaint" else set()
    assert set(replaced.actions) == {action} | floor
    action_set = {action} | floor
    expected = ("policy" if base == action_set else "weaker" if action_set < base else "stronger"
                if base < action_set else "replaced")
    assert replaced.effect == expected  # the rule page says which


def test_the_shipped_defaults_never_act_on_a_good_contact():
    for kind in GOOD:
        assert decide(category=kind).actions == (), kind
        assert decide(category=kind, rule=rule()).actions == (), kind


def test_an_ignore_rule_takes_no_action_and_a_rule_may_leave_the_bounce_out_of_statistics():
    d = decide(category="hard", rule=rule(bounce_type="ignore"))
    assert d.not_bounce and d.actions == ()
    assert decide(category="hard", rule=rule(in_statistics=False)).in_statistics is False
    assert decide(category="hard").in_statistics is True


def test_soft_and_blocked_suppressions_expire_hard_ones_do_not_by_default():
    policy = Policy()
    assert policy.suppression_days("hard") is None
    assert policy.suppression_days("complaint") is None
    assert policy.suppression_days("soft") and policy.suppression_days("blocked")


@pytest.mark.parametrize("policy", POLICIES)
def test_a_complaint_always_suppresses_whatever_the_policy_or_a_rule_says(policy):
    """Issue 16: complaints from any source always suppress, even with the complaint policy set
    to "nothing" or a rule that replaces the actions with "count only"."""
    assert Action.SUPPRESS in decide(category="complaint", policy=policy).actions
    weakened = decide(category="complaint", rule=rule(mode="replace", actions=(Action.COUNT_ONLY,)), policy=policy)
    assert Action.SUPPRESS in weakened.actions
    ruled = decide(category="unknown", rule=rule(bounce_type="complaint", mode="replace", actions=()), policy=policy)
    assert Action.SUPPRESS in ruled.actions
