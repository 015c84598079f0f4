"""Re-applying rules to stored bounces: plan, apply with audit, undo; the draft preview."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from bounces.models import Bounce
from bounces.rules.models import BounceRule, BounceRuleChange, RuleReapply
from bounces.rules.selectors import (
    normalise_diagnostic,
    preview_draft_rule,
    rule_coverage,
    suggest_pattern,
    unexplained_groups,
)
from bounces.rules.services import apply_reapply, plan_reapply, undo_reapply

pytestmark = pytest.mark.django_db


def test_reapply_plan_writes_nothing_and_apply_records_each_change(make_bounce, make_rule) -> None:
    bounce = make_bounce(diagnostic="550 sorry, no mailbox here by that name", kind="unknown")
    untouched = make_bounce(diagnostic="something else entirely", kind="unknown")
    rule = make_rule("no mailbox here", bounce_type="hard", reason="userunknown")

    plan = plan_reapply(limit=100)
    assert [c.bounce_id for c in plan.changes] == [bounce.pk]
    bounce.refresh_from_db()
    assert bounce.kind == "unknown" and bounce.matched_rule_id is None

    batch = apply_reapply(plan=plan, actor_label="test")
    bounce.refresh_from_db()
    assert (bounce.kind, bounce.reason, bounce.matched_rule_id) == ("hard", "userunknown", rule.pk)
    changes = {c.field: (c.old_value, c.new_value) for c in batch.changes.all()}
    assert changes == {
        "kind": ("unknown", "hard"), "reason": ("", "userunknown"), "matched_rule": ("", str(rule.pk)),
    }
    assert batch.changed == 1 and batch.examined == 2
    untouched.refresh_from_db()
    assert untouched.matched_rule_id is None


def test_undo_sets_every_field_back(make_bounce, make_rule) -> None:
    bounce = make_bounce(diagnostic="mailbox quota exceeded", kind="hard", reason="userunknown")
    make_rule("quota exceeded", bounce_type="soft", reason="mailboxfull")
    batch = apply_reapply(plan=plan_reapply(limit=100))
    bounce.refresh_from_db()
    assert bounce.kind == "soft"

    report = undo_reapply(reapply=batch)
    bounce.refresh_from_db()
    assert (bounce.kind, bounce.reason, bounce.matched_rule_id) == ("hard", "userunknown", None)
    assert report.restored == 3 and report.conflicts == 0
    batch.refresh_from_db()
    assert batch.undone_at is not None
    assert not BounceRuleChange.objects.filter(reapply=batch, undone_at__isnull=True).exists()
    assert undo_reapply(reapply=batch).restored == 0  # undoing twice does nothing


def test_undo_leaves_fields_that_changed_again_since(make_bounce, make_rule) -> None:
    bounce = make_bounce(diagnostic="mailbox quota exceeded", kind="unknown")
    make_rule("quota exceeded", bounce_type="soft")
    batch = apply_reapply(plan=plan_reapply(limit=100))
    Bounce.objects.filter(pk=bounce.pk).update(kind="complaint")  # an operator changed it meanwhile
    report = undo_reapply(reapply=batch)
    bounce.refresh_from_db()
    assert bounce.kind == "complaint"
    assert report.conflicts == 1 and report.restored == 1  # matched_rule set back, kind left


def test_ignore_rule_marks_stored_bounce_not_a_bounce_and_undo_restores_state(make_bounce, make_rule) -> None:
    bounce = make_bounce(diagnostic="I am on holiday until Monday", kind="unknown", state="unmatched")
    make_rule("on holiday", bounce_type="ignore")
    batch = apply_reapply(plan=plan_reapply(limit=100))
    bounce.refresh_from_db()
    assert (bounce.state, bounce.kind) == ("ignored", "unknown")
    undo_reapply(reapply=batch)
    bounce.refresh_from_db()
    assert bounce.state == "unmatched"


def test_a_bounce_whose_rule_was_disabled_returns_to_the_engines_verdict(make_bounce, make_rule) -> None:
    rule = make_rule("user unknown", bounce_type="soft")
    # Stored with the rule's verdict; the raw message is a 5.1.1 user-unknown DSN (engine: hard).
    bounce = make_bounce(diagnostic="550 5.1.1 User unknown", kind="soft", matched_rule=rule)
    BounceRule.objects.filter(pk=rule.pk).update(enabled=False)
    apply_reapply(plan=plan_reapply(limit=100))
    bounce.refresh_from_db()
    assert (bounce.kind, bounce.matched_rule_id) == ("hard", None)


def test_reapply_only_examines_the_most_recent_bounces(make_bounce, make_rule) -> None:
    make_bounce(diagnostic="quota exceeded", age_minutes=10)
    recent = make_bounce(diagnostic="quota exceeded", age_minutes=1)
    make_rule("quota exceeded", bounce_type="soft")
    plan = plan_reapply(limit=1)
    assert plan.examined == 1 and [c.bounce_id for c in plan.changes] == [recent.pk]


def test_apply_rules_command_previews_applies_and_undoes(make_bounce, make_rule, capsys) -> None:
    bounce = make_bounce(diagnostic="quota exceeded", kind="unknown")
    make_rule("quota exceeded", bounce_type="soft")
    call_command("apply_rules")
    bounce.refresh_from_db()
    assert bounce.kind == "unknown"
    assert "1 would change" in capsys.readouterr().out
    call_command("apply_rules", "--apply")
    bounce.refresh_from_db()
    assert bounce.kind == "soft"
    batch = RuleReapply.objects.get()
    call_command("apply_rules", "--undo", str(batch.pk))
    bounce.refresh_from_db()
    assert bounce.kind == "unknown"


# --- Draft preview -------------------------------------------------------------------------------


def test_draft_preview_counts_matches_verdict_changes_and_contact_changes(
    make_bounce, make_contact, mailing_list
) -> None:
    from campaigns.models import Campaign

    campaign = Campaign.objects.create(name="c", subject="s", from_email="n@example.com", mailing_list=mailing_list)
    for n in range(3):
        contact = make_contact(f"c{n}@example.org", mailing_list=mailing_list)
        make_bounce(diagnostic=f"550 mailbox c{n} disabled by owner", kind="soft", contact=contact, campaign=campaign)
    already = make_contact("gone@example.org", mailing_list=None)  # no subscription: nothing to unsubscribe
    make_bounce(diagnostic="550 mailbox gone disabled by owner", kind="hard", contact=already, campaign=campaign)
    make_bounce(diagnostic="unrelated", kind="soft")

    draft = BounceRule(name="draft", pattern=r"mailbox \S+ disabled", match_type="regex",
                       bounce_type="hard", position=10)
    report = preview_draft_rule(rule=draft, limit=100)
    assert (report.examined, report.matched, report.shadowed) == (5, 4, 0)
    assert report.verdict_changes == 3
    # a hard rule gets the hard policy: mark, unsubscribe from all lists, suppress
    assert report.contact_change_lines == [
        "4 contacts would be marked hard-bounced", "4 contacts would be added to the suppression list",
        "3 contacts would be unsubscribed from all lists",
    ]
    assert "<mark>mailbox c0 disabled</mark>" in "".join(str(r.snippet) for r in report.rows)
    assert not BounceRule.objects.exists()  # nothing saved


def test_draft_preview_counts_bounces_an_earlier_rule_catches_first(make_bounce, make_rule) -> None:
    make_rule("disabled", name="earlier", bounce_type="soft", position=5)
    make_bounce(diagnostic="550 mailbox disabled", kind="soft")
    report = preview_draft_rule(
        rule=BounceRule(name="draft", pattern="mailbox disabled", bounce_type="hard", position=50), limit=100
    )
    assert (report.matched, report.shadowed, report.verdict_changes) == (1, 1, 0)
    assert report.rows[0].shadowed_by == "earlier"


@pytest.mark.parametrize(
    ("action", "status", "effect"),
    [
        ("delete_contact", "active", "deleted"),
        ("unconfirm", "active", "unconfirmed"),
        ("unconfirm", "unsubscribed", None),
        ("blacklist_contact", "active", "blacklisted"),
        ("blacklist_contact", "blacklisted", None),
        ("blacklist_address", "active", "blacklisted (address)"),
        ("unsubscribe", "active", "unsubscribed"),
        ("suppress", "active", "added to the suppression list"),
        ("mark_hard", "active", "marked hard-bounced"),
        ("unsubscribe_all", "active", "unsubscribed from all lists"),
        ("remove_address", "active", "address moved aside"),
    ],
)
def test_each_action_says_how_the_contact_would_change(
    make_bounce, make_contact, mailing_list, action: str, status: str, effect: str | None
) -> None:
    contact = make_contact("who@example.org", status=status, mailing_list=mailing_list)
    make_bounce(diagnostic="550 special refusal", contact=contact)
    # soft: the policy takes no action below the threshold, so the action the rule adds shows alone
    report = preview_draft_rule(
        rule=BounceRule(name="d", pattern="special refusal", bounce_type="soft", actions_mode="add",
                        actions=[action], position=1),
        limit=10,
    )
    assert report.rows[0].contact_effects == ([effect] if effect else [])
    assert report.contact_change_lines == ([f"1 contact would be {effect}"] if effect else [])


def test_a_hard_rule_that_only_names_the_kind_gets_the_hard_policy(make_bounce, make_contact) -> None:
    make_bounce(diagnostic="550 special refusal", contact=make_contact("who@example.org"), kind="soft")
    report = preview_draft_rule(
        rule=BounceRule(name="d", pattern="special refusal", bounce_type="hard", position=1), limit=10,
    )
    assert report.contact_change_lines == ["1 contact would be marked hard-bounced",
                                           "1 contact would be added to the suppression list"]


def test_a_rule_that_replaces_the_hard_policy_with_less_says_so(make_bounce, make_contact) -> None:
    make_bounce(diagnostic="550 special refusal", contact=make_contact("who@example.org"), kind="soft")
    rule = BounceRule(name="d", pattern="special refusal", bounce_type="hard", actions_mode="replace",
                      actions=["mark_hard"], position=1)
    report = preview_draft_rule(rule=rule, limit=10)
    assert report.contact_change_lines == ["1 contact would be marked hard-bounced"]
    from bounces.pipeline.decisions import describe_rule
    from bounces.pipeline.policies import Policy

    assert "WEAKER than the kind's policy" in describe_rule(rule, Policy())


def test_ignore_rule_changes_no_contact_and_marks_bounces_ignored(make_bounce, make_contact) -> None:
    make_bounce(diagnostic="out of office until monday", contact=make_contact("who@example.org"), kind="soft")
    report = preview_draft_rule(
        rule=BounceRule(name="d", pattern="out of office", bounce_type="ignore", position=1), limit=10,
    )
    assert report.contact_change_lines == [] and report.rows[0].new_kind == "ignored"


def test_suppress_preview_skips_addresses_already_suppressed(make_bounce, make_contact) -> None:
    from contacts.models import Suppression

    contact = make_contact("who@example.org")
    Suppression.objects.create(value="who@example.org")
    make_bounce(diagnostic="550 special refusal", contact=contact)
    report = preview_draft_rule(
        rule=BounceRule(name="d", pattern="special refusal", bounce_type="soft", actions_mode="add",
                        actions=["suppress"], position=1),
        limit=10,
    )
    assert report.contact_change_lines == []


def test_body_rule_preview_reads_the_raw_messages(make_bounce) -> None:
    make_bounce(diagnostic="", human="Your message to the list was held: the mailbox has moved.")
    report = preview_draft_rule(
        rule=BounceRule(name="d", pattern="mailbox has moved", section="body", bounce_type="hard", position=1),
        limit=10,
    )
    assert report.matched == 1


# --- Coverage ------------------------------------------------------------------------------------


def test_coverage_counts_catches_and_first_matches(make_bounce, make_rule) -> None:
    broad = make_rule("unknown", name="broad", position=20)
    narrow = make_rule("user unknown", name="narrow", position=10)
    make_bounce(diagnostic="550 user unknown")
    make_bounce(diagnostic="550 unknown domain")
    make_bounce(diagnostic="452 try later")
    report = rule_coverage(limit=100)
    rows = {row.rule.pk: row for row in report.rows}
    assert (rows[narrow.pk].catches, rows[narrow.pk].wins) == (1, 1)
    assert (rows[broad.pk].catches, rows[broad.pk].wins) == (2, 1)
    assert report.uncaught == 1 and report.examined == 3


def test_unexplained_bounces_are_grouped_by_normalised_diagnostic(make_bounce, make_rule) -> None:
    make_bounce(diagnostic="550 <ann@example.org> refused: account 8812 frozen by policy x7f3a9c21", kind="unknown")
    make_bounce(diagnostic="550 <bob@example.net> refused: account 9 frozen by policy 0aa81c77f2", kind="unknown")
    make_bounce(diagnostic="something else", kind="unknown")
    make_bounce(diagnostic="550 <c@example.org> refused: account 1 frozen by policy", kind="hard")  # explained
    count, groups = unexplained_groups(limit=100)
    assert count == 3
    assert groups[0].count == 2
    assert groups[0].key == "550 <address> refused: account <n> frozen by policy <id>"
    assert groups[0].suggestion == "refused: account"


def test_normalise_and_suggest() -> None:
    text = normalise_diagnostic("451 4.7.1 <a.b@x.example>: Recipient address rejected: try again (id 1a2b3c4d5e) [192.0.2.7]")
    assert text == "451 4.7.1 <address>: recipient address rejected: try again (id <id>) [<ip>]"
    assert suggest_pattern(text) == "recipient address rejected: try again"
    assert suggest_pattern("<n> <address>") == ""


def _draft_preview_queries(make_bounce, n: int) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for i in range(n):
        make_bounce(diagnostic=f"550 mailbox {n}-{i} disabled", kind="soft")
    with CaptureQueriesContext(connection) as queries:
        preview_draft_rule(
            rule=BounceRule(name="draft", pattern="disabled", bounce_type="hard", position=50), limit=100
        )
    from bounces.models import Bounce

    Bounce.objects.all().delete()
    return len(queries)


def test_draft_preview_reads_raw_messages_in_batches_for_earlier_body_rules(make_bounce, make_rule) -> None:
    # the draft searches the diagnostic, an earlier rule the body: the raw messages of the
    # matched bounces are needed, and read a batch at a time, not one query per bounce
    make_rule("never in any body", name="earlier", section="body", bounce_type="soft", position=5)

    _draft_preview_queries(make_bounce, 1)  # creates the settings row on first use
    assert _draft_preview_queries(make_bounce, 2) == _draft_preview_queries(make_bounce, 8)


def _reapply_plan_queries(make_bounce, rule, n: int) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from bounces.models import Bounce
    from bounces.rules.services import plan_reapply

    for i in range(n):
        make_bounce(diagnostic=f"550 quota {n}-{i} exceeded", kind="soft", matched_rule=rule)
    with CaptureQueriesContext(connection) as queries:
        plan_reapply(limit=100)
    Bounce.objects.all().delete()
    return len(queries)


def test_planning_a_reapply_reads_the_raw_messages_of_ruled_bounces_in_batches(make_bounce, make_rule) -> None:
    # the engine verdict of a bounce a rule decided is re-read from its raw message
    rule = make_rule("quota", bounce_type="soft", enabled=False)
    _reapply_plan_queries(make_bounce, rule, 1)  # creates the settings row on first use

    assert _reapply_plan_queries(make_bounce, rule, 2) == _reapply_plan_queries(make_bounce, rule, 8)
