"""Issue 12, item 5: RE2 alone does not bound a rule's cost. A program too big is refused at
save time; a rule over its time budget on a message is stopped, skipped from then on and
reported, and the message's other rules still run."""

from __future__ import annotations

import pytest

from bounces.rules.patterns import MAX_PROGRAM_SIZE, PatternError, compile_pattern
from bounces.rules.ruleset import Budget, MessageView, RuleSet, compile_rule


class _Rule:
    def __init__(self, pk, pattern, *, section="body", match_type="regex", bounce_type="hard"):
        self.pk, self.name, self.pattern, self.section = pk, f"rule {pk}", pattern, section
        self.match_type, self.case_sensitive, self.bounce_type = match_type, False, bounce_type
        self.reason, self.action, self.delete_message = "", "default", False


def _message(body: bytes) -> bytes:
    return (b"From: MAILER-DAEMON@mx.example.net\nSubject: Undelivered\nMIME-Version: 1.0\n"
            b"Content-Type: text/plain\n\n" + body + b"\n")


def test_the_catastrophic_pattern_of_the_review_is_refused_at_save_time():
    with pytest.raises(PatternError, match="too complex"):
        compile_pattern("(?s)(.*a){999}", match_type="regex", case_sensitive=False)
    # the longest "contains" pattern still fits
    assert compile_pattern("word " * 199 + "abcd", match_type="contains",
                           case_sensitive=False).programsize <= MAX_PROGRAM_SIZE


def test_a_rule_over_its_budget_is_stopped_flagged_and_skipped_and_the_next_rule_runs():
    slow = compile_rule(_Rule(1, "(?s)(.*a){100}z"))  # accepted (program ~1,000), slow on "aaaa..."
    plain = compile_rule(_Rule(2, "no such user", match_type="contains", bounce_type="soft"))
    rules = RuleSet([slow, plain])
    view = MessageView.from_raw(_message(b"a" * 200_000 + b"\nno such user"), None)
    ticks = iter(range(0, 10**6))  # a clock that advances 0.1 s at every look: no wall time involved
    budget = Budget(clock=lambda: next(ticks) * 0.1)

    found = rules.first_match(message=view, budget=budget)

    assert found is not None and found.rule_id == 2
    assert rules.slow == {1: "rule 1"}
    assert "Rule #1" in rules.budget_report() and "skipped" in rules.budget_report()
    # skipped from then on: the next message goes straight to rule 2
    again = rules.first_match(message=MessageView.from_raw(_message(b"no such user"), None))
    assert again is not None and again.rule_id == 2


def test_a_message_over_its_budget_keeps_the_engine_verdict():
    rules = RuleSet([compile_rule(_Rule(i, f"needle{i}", match_type="contains")) for i in range(1, 6)])
    view = MessageView.from_raw(_message(b"x" * 300_000), None)
    ticks = iter(range(0, 10**6))
    budget = Budget(message_seconds=0.5, rule_seconds=100, clock=lambda: next(ticks) * 0.1)

    assert rules.first_match(message=view, budget=budget) is None
    assert budget.exhausted and rules.messages_over_budget == 1 and not rules.slow


def test_a_costly_match_is_computed_within_one_window():
    """RE2's slow path (submatches on a long match) costs program size x text: the review's
    14 s. The text is searched in windows sized by the program, so the cost is bounded."""
    slow = compile_rule(_Rule(1, "(?s)(.*a){150}"))
    assert slow.window * slow.regex.programsize <= 8 * 1024 * 1024
    found = slow.search(MessageView.from_raw(_message(b"a" * 200_000), None))
    assert found is not None
    data, start, end = found
    assert end - start <= slow.window


def test_windows_still_find_a_match_anywhere_in_the_section():
    rule = compile_rule(_Rule(1, "(?s)(.*a){40}x"))
    text = b"b" * 100_000 + b"a" * 40 + b"x" + b"b" * 50_000
    found = rule.search(MessageView.from_raw(_message(text), None))
    assert found is not None
    data, start, end = found
    assert data[end - 1:end] == b"x"
