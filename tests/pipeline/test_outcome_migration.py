"""Upgrading to action sets (issue 11): the migration converts rules and settings, and the
operator previews which contacts change before the recompute is applied."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("bounces", "0009_intake")]
AFTER = [("bounces", "0010_outcomes_action_sets")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def test_old_rules_and_settings_convert_and_the_recompute_is_previewed_before_it_is_applied():
    old = _migrate(BEFORE)
    Rule = old.get_model("bounces", "BounceRule")
    Settings = old.get_model("bounces", "BounceSettings")
    Rule.objects.create(name="starter hard", pattern="user unknown", bounce_type="hard", action="mark_hard")
    Rule.objects.create(name="strong", pattern="gone away", bounce_type="hard", action="blacklist_contact")
    Rule.objects.create(name="soft", pattern="full", bounce_type="soft", action="count_only")
    Settings.objects.create(pk=1, hard_action="unsubscribe_suppress", complaint_action="nothing")
    # what the old starter rule left behind: marked hard-bounced, still subscribed, not suppressed
    Contact = old.get_model("contacts", "Contact")
    MailingList = old.get_model("contacts", "MailingList")
    Subscription = old.get_model("contacts", "Subscription")
    Bounce = old.get_model("bounces", "Bounce")
    news = MailingList.objects.create(name="news")
    dead = Contact.objects.create(email="dead@example.org", has_bounced=True, hard_bounce_count=1)
    fine = Contact.objects.create(email="fine@example.org")
    for contact in (dead, fine):
        Subscription.objects.create(contact=contact, mailing_list=news)
    rule = Rule.objects.get(name="starter hard")
    from django.utils import timezone

    Bounce.objects.create(contact=dead, recipient="dead@example.org", kind="hard", state="applied", counted=True,
                          matched_rule=rule, bounced_at=timezone.now(), actions_taken=["mark_hard"])

    new = _migrate(AFTER)
    Rule = new.get_model("bounces", "BounceRule")
    assert {r.name: (r.actions_mode, r.actions) for r in Rule.objects.all()} == {
        "starter hard": ("kind", []), "strong": ("add", ["blacklist_contact"]), "soft": ("kind", [])}
    row = new.get_model("bounces", "BounceSettings").objects.get()
    assert (row.hard_actions, row.complaint_actions) == (["mark_hard", "unsubscribe_all", "suppress"], [])

    # The live models below need every later migration too (e.g. 0011's mailbox column).
    _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
    from contacts.models import Subscription as LiveSubscription
    from contacts.models import Suppression

    preview = io.StringIO()
    call_command("recompute_outcomes", stdout=preview)
    text = preview.getvalue()
    assert "1 would change" in text and "dead@example.org" in text and "fine@example.org" not in text
    assert "suppress the address" in text and "unsubscribe from all lists" in text
    assert not Suppression.objects.exists()  # the preview changed nothing

    done = io.StringIO()
    call_command("recompute_outcomes", "--apply", stdout=done)
    assert "1 contact(s) changed" in done.getvalue()
    entry = Suppression.objects.get(value="dead@example.org")
    assert entry.bounce_kind == "hard" and entry.rule_id == rule.pk
    assert LiveSubscription.objects.get(contact_id=dead.pk).status == "unsubscribed"
    assert LiveSubscription.objects.get(contact_id=fine.pk).status == "subscribed"
    again = io.StringIO()
    call_command("recompute_outcomes", stdout=again)
    assert "0 would change" in again.getvalue()
