"""Rules in the database: validation, order, hits, Octeth paste, import/export, starter set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from bounces.rules.models import BounceRule, StarterRuleRecord
from bounces.rules.ruleset import MessageView
from bounces.rules.selectors import load_ruleset
from bounces.rules.services import (
    STARTER_RULES_PATH,
    create_rules_from_octeth,
    default_position,
    export_rules,
    import_rules,
    load_starter_rules,
    parse_import,
    place_rule,
    record_rule_hits,
    renumber_rules,
)

pytestmark = pytest.mark.django_db


# --- Validation at save time ---------------------------------------------------------------------


def test_invalid_regex_is_rejected_by_model_validation() -> None:
    rule = BounceRule(name="bad", pattern="(?<=user )unknown", match_type="regex")
    with pytest.raises(ValidationError) as info:
        rule.full_clean()
    assert "look-behind are not supported" in info.value.message_dict["pattern"][0]


def test_overlong_pattern_is_rejected_by_model_validation() -> None:
    rule = BounceRule(name="long", pattern="x" * 1001)
    with pytest.raises(ValidationError) as info:
        rule.full_clean()
    assert any("limit is 1000" in m for m in info.value.message_dict["pattern"])


def test_ignore_rule_cannot_take_a_contact_action() -> None:
    rule = BounceRule(name="ooo", pattern="out of office", bounce_type="ignore", actions_mode="add",
                      actions=["unsubscribe"])
    with pytest.raises(ValidationError) as info:
        rule.full_clean()
    assert "actions_mode" in info.value.message_dict


def test_a_rule_adds_actions_only_explicitly_and_only_known_ones() -> None:
    for values, field in (({"actions_mode": "add", "actions": []}, "actions"),
                          ({"actions_mode": "kind", "actions": ["suppress"]}, "actions"),
                          ({"actions_mode": "replace", "actions": ["launch_missiles"]}, "actions")):
        rule = BounceRule(name="r", pattern="x", bounce_type="hard", **values)
        with pytest.raises(ValidationError) as info:
            rule.full_clean()
        assert field in info.value.message_dict
    BounceRule(name="r", pattern="x", bounce_type="hard", actions_mode="replace", actions=[]).full_clean()


def test_defaults_are_contains_diagnostic_case_insensitive_either_and_the_kinds_policy() -> None:
    rule = BounceRule(name="x", pattern="x")
    assert (rule.match_type, rule.section, rule.case_sensitive, rule.bounce_type, rule.actions_mode,
            rule.actions, rule.in_statistics, rule.fallback_only) == (
        "contains", "diagnostic", False, "either", "kind", [], True, False,
    )


# --- Order -------------------------------------------------------------------------------------


def test_ruleset_follows_the_operators_order_and_skips_disabled_rules(make_rule) -> None:
    make_rule("user unknown", name="late hard", bounce_type="hard", position=30)
    make_rule("unknown", name="disabled", bounce_type="soft", position=5, enabled=False)
    make_rule("user", name="early either", bounce_type="either", position=10)
    ruleset = load_ruleset()
    assert [r.name for r in ruleset.rules] == ["early either", "late hard"]
    found = ruleset.first_match(message=MessageView.from_stored(diagnostic="550 user unknown"))
    assert found is not None and found.rule_name == "early either"


def test_same_position_is_broken_by_creation_order(make_rule) -> None:
    first = make_rule("unknown", name="first", position=10)
    make_rule("unknown", name="second", position=10)
    found = load_ruleset().first_match(message=MessageView.from_stored(diagnostic="unknown"))
    assert found is not None and found.rule_id == first.pk


def test_load_ruleset_is_one_query(make_rule, django_assert_num_queries) -> None:
    for n in range(5):
        make_rule(f"pattern {n}", position=n)
    with django_assert_num_queries(1):
        assert len(load_ruleset()) == 5


def test_new_rules_default_to_hard_before_soft_before_either() -> None:
    either = place_rule(rule=BounceRule(name="e", pattern="e", bounce_type="either"))
    soft = place_rule(rule=BounceRule(name="s", pattern="s", bounce_type="soft"))
    hard = place_rule(rule=BounceRule(name="h", pattern="h", bounce_type="hard"))
    hard2 = place_rule(rule=BounceRule(name="h2", pattern="h2", bounce_type="hard"))
    ignore = place_rule(rule=BounceRule(name="i", pattern="i", bounce_type="ignore"))
    order = list(BounceRule.objects.order_by("position", "id").values_list("name", flat=True))
    assert order == ["h", "h2", "s", "i", "e"]
    assert hard.position < hard2.position
    assert {either.pk, soft.pk, ignore.pk} <= set(BounceRule.objects.values_list("pk", flat=True))


def test_placing_a_rule_at_a_taken_position_moves_the_others_down() -> None:
    a = place_rule(rule=BounceRule(name="a", pattern="a"), position=10)
    b = place_rule(rule=BounceRule(name="b", pattern="b"), position=20)
    c = place_rule(rule=BounceRule(name="c", pattern="c"), position=10)
    a.refresh_from_db()
    b.refresh_from_db()
    assert (c.position, a.position, b.position) == (10, 20, 30)


def test_renumber_keeps_the_order() -> None:
    for name, pos in [("x", 7), ("y", 3), ("z", 500)]:
        BounceRule.objects.create(name=name, pattern=name, position=pos)
    assert renumber_rules() == 3
    assert list(BounceRule.objects.values_list("name", "position")) == [("y", 10), ("x", 20), ("z", 30)]


def test_default_position_is_after_the_last_rule_of_the_group() -> None:
    BounceRule.objects.create(name="h", pattern="h", bounce_type="hard", position=100)
    BounceRule.objects.create(name="s", pattern="s", bounce_type="soft", position=400)
    assert default_position(bounce_type="hard") == 110
    assert default_position(bounce_type="soft") == 410
    assert default_position(bounce_type="either") == 410


# --- Hits --------------------------------------------------------------------------------------


def test_rule_hits_are_recorded_in_one_query(make_rule, django_assert_num_queries) -> None:
    a = make_rule("a")
    b = make_rule("b")
    with django_assert_num_queries(1):
        record_rule_hits(hits={a.pk: 3, b.pk: 1, 999_999: 2})
    record_rule_hits(hits={a.pk: 2})
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.hit_count, b.hit_count) == (5, 1)
    assert a.last_hit_at is not None and b.last_hit_at is not None


def test_no_hits_writes_nothing(django_assert_num_queries) -> None:
    with django_assert_num_queries(0):
        record_rule_hits(hits={})


# --- Octeth paste --------------------------------------------------------------------------------


def test_octeth_paste_creates_contains_rules_of_the_given_types() -> None:
    report = create_rules_from_octeth(
        text="550 5.7.1 Unfortunately, messages from==>Hard\nmailbox is full==>Soft\nvacation==>Ignore\nbad line\n"
    )
    # each line says what a bounce is: the kind's policy decides (==>Hard marks, unsubscribes, suppresses)
    assert [(r.pattern, r.bounce_type, r.match_type, r.section, r.actions_mode) for r in report.created] == [
        ("550 5.7.1 Unfortunately, messages from", "hard", "contains", "body", "kind"),
        ("mailbox is full", "soft", "contains", "body", "kind"),
        ("vacation", "ignore", "contains", "body", "kind"),
    ]
    assert [e[0] for e in report.errors] == [4]
    view = MessageView.from_stored(
        raw=b"Subject: x\n\n550 5.7.1 Unfortunately, messages from\n 192.0.2.1 weren't sent.\n", diagnostic=""
    )
    found = load_ruleset().first_match(message=view)
    assert found is not None and found.bounce_type == "hard"


# --- Import / export -----------------------------------------------------------------------------


def test_export_then_import_round_trip_recreates_the_same_rules(make_rule) -> None:
    make_rule("user unknown", bounce_type="hard", actions_mode="add", actions=["unconfirm"], delete_message=True,
              in_statistics=False, position=10)
    make_rule(r"quota\s+exceeded", match_type="regex", section="body", case_sensitive=True,
              bounce_type="soft", reason="mailboxfull", position=20, enabled=False, notes="n")
    exported = json.loads(json.dumps(export_rules()))
    before = [{k: v for k, v in r.items()} for r in exported["rules"]]
    BounceRule.objects.all().delete()
    report = import_rules(rules=parse_import(json.dumps(exported)))
    assert report.created == 2
    assert export_rules()["rules"] == before


def test_a_version_1_file_converts_mark_hard_to_the_kinds_policy_and_adds_other_actions() -> None:
    doc = {"format": "bouncemgr-rules", "version": 1, "rules": [
        {"pattern": "user unknown", "bounce_type": "hard", "action": "mark_hard"},
        {"pattern": "gone away", "bounce_type": "hard", "action": "blacklist_contact"},
    ]}
    import_rules(rules=parse_import(json.dumps(doc)))
    assert list(BounceRule.objects.order_by("pattern").values_list("pattern", "actions_mode", "actions")) == [
        ("gone away", "add", ["blacklist_contact"]), ("user unknown", "kind", [])]


def test_importing_the_same_file_twice_adds_nothing(make_rule) -> None:
    make_rule("user unknown", bounce_type="hard")
    text = json.dumps(export_rules())
    report = import_rules(rules=parse_import(text))
    assert (report.created, report.skipped) == (0, 1)
    assert BounceRule.objects.count() == 1


def test_an_invalid_rule_in_an_import_imports_nothing() -> None:
    rules = [
        {"name": "ok", "pattern": "fine", "bounce_type": "hard"},
        {"name": "bad", "pattern": "(a)\\1", "match_type": "regex", "bounce_type": "soft"},
    ]
    from bounces.rules.services import RuleImportError

    with pytest.raises(RuleImportError, match="Back-references"):
        import_rules(rules=rules)
    assert BounceRule.objects.count() == 0


@pytest.mark.parametrize("position", ["tenth", -1, None])
def test_an_import_with_an_unusable_position_is_refused_and_imports_nothing(position) -> None:
    from bounces.rules.services import RuleImportError

    rules = [{"pattern": "fine", "bounce_type": "hard"},
             {"pattern": "other", "bounce_type": "soft", "position": position}]

    with pytest.raises(RuleImportError, match="position"):
        import_rules(rules=rules)
    assert BounceRule.objects.count() == 0


def test_import_with_replace_deletes_existing_rules(make_rule) -> None:
    make_rule("old")
    report = import_rules(rules=[{"pattern": "new", "bounce_type": "soft"}], replace=True)
    assert (report.created, report.deleted) == (1, 1)
    assert list(BounceRule.objects.values_list("pattern", flat=True)) == ["new"]


@pytest.mark.parametrize("text", ["not json", '{"format": "other", "rules": []}', '{"rules": 3}',
                                  '{"version": "two", "rules": []}', '{"version": null, "rules": []}'])
def test_unusable_import_files_are_refused(text: str) -> None:
    from bounces.rules.services import RuleImportError

    with pytest.raises(RuleImportError):
        parse_import(text)


def test_export_and_import_commands_round_trip(make_rule, tmp_path: Path) -> None:
    make_rule("user unknown", bounce_type="hard", position=10)
    make_rule("mailbox full", bounce_type="soft", position=20)
    path = tmp_path / "rules.json"
    call_command("export_rules", str(path))
    BounceRule.objects.all().delete()
    call_command("import_rules", str(path))
    assert list(BounceRule.objects.values_list("pattern", "bounce_type")) == [
        ("user unknown", "hard"), ("mailbox full", "soft"),
    ]


# --- Starter set -------------------------------------------------------------------------------


def test_starter_rules_all_validate_and_load() -> None:
    data = json.loads(STARTER_RULES_PATH.read_text())
    report = load_starter_rules()
    assert report.created == len(data["rules"]) >= 25
    assert BounceRule.objects.count() == len(data["rules"])
    assert len({r["key"] for r in data["rules"]}) == len(data["rules"])


def test_loading_the_starter_set_twice_does_not_duplicate() -> None:
    call_command("load_starter_rules")
    count = BounceRule.objects.count()
    call_command("load_starter_rules")
    assert BounceRule.objects.count() == count
    assert StarterRuleRecord.objects.count() == count


def test_a_deleted_starter_rule_stays_deleted_unless_restored() -> None:
    load_starter_rules()
    count = BounceRule.objects.count()
    BounceRule.objects.filter(name="User unknown").delete()
    assert load_starter_rules().created == 0
    assert BounceRule.objects.count() == count - 1
    assert load_starter_rules(restore=True).created == 1
    assert BounceRule.objects.count() == count


def test_starter_set_orders_hard_before_soft_before_either() -> None:
    load_starter_rules()
    rank = {"hard": 0, "complaint": 0, "soft": 1, "autoreply": 1, "ignore": 1, "either": 2}
    ranks = [rank[t] for t in BounceRule.objects.order_by("position", "id").values_list("bounce_type", flat=True)]
    assert ranks == sorted(ranks)


@pytest.mark.parametrize(
    ("diagnostic", "bounce_type"),
    [
        ("550 5.1.1 <kim@example.org>: Recipient address rejected: User unknown in virtual mailbox table", "hard"),
        ("550 Requested action not taken: mailbox unavailable (No such user here)", "hard"),
        ("552 5.2.2 <kim@example.org>... Mailbox Full", "soft"),
        ("452 4.2.2 The email account that you tried to reach is over quota", "soft"),
        ("451 4.7.1 Greylisted, please try again in 300 seconds", "soft"),
        ("554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org", "either"),
        ("550 5.7.26 This message does not pass authentication checks (SPF and DKIM both do not pass)", "either"),
    ],
)
def test_starter_set_classifies_common_texts(diagnostic: str, bounce_type: str) -> None:
    load_starter_rules()
    found = load_ruleset().first_match(message=MessageView.from_stored(diagnostic=diagnostic))
    assert found is not None, diagnostic
    assert found.bounce_type == bounce_type, (found.rule_name, diagnostic)


def test_starter_set_recognises_an_auto_reply_by_subject() -> None:
    load_starter_rules()
    view = MessageView.from_stored(raw=b"Subject: Automatic reply: Weekly news\n\nI am away.\n", diagnostic="")
    found = load_ruleset().first_match(message=view)
    assert found is not None and found.bounce_type == "autoreply"


def test_import_rules_command_refuses_deeply_nested_json_with_a_clear_error(tmp_path) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(CommandError, match="more than 8 levels deep"):
        call_command("import_rules", str(path))
