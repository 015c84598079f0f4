"""The rule pages with the Django test client as a staff user: editor + test, coverage,
re-apply, paste, import/export, and the admin list."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from bounces.rules.models import BounceRule, RuleReapply

pytestmark = pytest.mark.django_db

DRAFT = {
    "name": "", "pattern": "mailbox disabled", "match_type": "contains", "section": "diagnostic",
    "bounce_type": "hard", "reason": "", "actions_mode": "kind", "in_statistics": "on", "position": "",
    "enabled": "on", "notes": "", "sample": "5000",
}


@pytest.fixture
def staff_client(client, django_user_model):
    user = django_user_model.objects.create_user("operator", password="x", is_staff=True)
    from django.contrib.auth.models import Permission

    user.user_permissions.set(Permission.objects.filter(content_type__app_label="bounces"))
    client.force_login(user)
    return client


def test_pages_need_a_staff_login(client) -> None:
    response = client.get(reverse("bounces:rule_new"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_editor_is_prefilled_from_the_query_string(staff_client) -> None:
    response = staff_client.get(reverse("bounces:rule_new") + "?pattern=quota+exceeded&section=body")
    assert response.status_code == 200
    form = response.context["form"]
    assert form.initial["pattern"] == "quota exceeded" and form.initial["section"] == "body"


def test_testing_a_draft_shows_matches_highlighted_and_contact_changes_without_saving(
    staff_client, make_bounce, make_contact, mailing_list
) -> None:
    for n in range(2):
        contact = make_contact(f"c{n}@example.org", mailing_list=mailing_list)
        make_bounce(diagnostic=f"550 <c{n}@example.org> mailbox disabled <script>alert(1)</script>",
                    kind="soft", contact=contact)
    make_bounce(diagnostic="452 try later", kind="soft")

    response = staff_client.post(reverse("bounces:rule_new"), {**DRAFT, "_test": "1"})
    assert response.status_code == 200
    report = response.context["report"]
    assert (report.matched, report.verdict_changes) == (2, 2)
    html = response.content.decode()
    # a hard rule gets the hard policy, and the page says so in words
    assert "2 contacts would be unsubscribed from all lists" in html
    assert "2 contacts would be marked hard-bounced" in html
    assert "2 contacts would be added to the suppression list" in html
    assert "mark the contact hard-bounced, suppress the address" in html
    assert "<mark>mailbox disabled</mark>" in html
    assert "<script>alert(1)</script>" not in html  # message text is escaped, never rendered
    assert "&lt;script&gt;" in html
    assert "most recent 5000" in html
    assert not BounceRule.objects.exists()


def test_testing_an_invalid_pattern_shows_the_reason(staff_client) -> None:
    response = staff_client.post(
        reverse("bounces:rule_new"), {**DRAFT, "pattern": "(a)\\1", "match_type": "regex", "_test": "1"}
    )
    assert response.status_code == 200
    assert response.context["report"] is None
    assert "Back-references are not supported" in response.content.decode()


def test_saving_a_rule_places_it_by_type_and_names_it(staff_client) -> None:
    BounceRule.objects.create(name="soft one", pattern="full", bounce_type="soft", position=10)
    response = staff_client.post(reverse("bounces:rule_new"), {**DRAFT, "_save": "1"})
    assert response.status_code == 302
    rule = BounceRule.objects.get(pattern="mailbox disabled")
    assert rule.name == "mailbox disabled"
    assert rule.position < BounceRule.objects.get(name="soft one").position  # hard before soft


def test_editing_an_existing_rule(staff_client, make_rule) -> None:
    rule = make_rule("old text", bounce_type="soft", position=10)
    data = {**DRAFT, "name": "renamed", "pattern": "new text", "position": "10", "_save_continue": "1"}
    response = staff_client.post(reverse("bounces:rule_edit", args=[rule.pk]), data)
    assert response.status_code == 302 and response["Location"] == reverse("bounces:rule_edit", args=[rule.pk])
    rule.refresh_from_db()
    assert (rule.name, rule.pattern, rule.position) == ("renamed", "new text", 10)


def test_user_without_change_permission_cannot_edit(client, django_user_model, make_rule) -> None:
    user = django_user_model.objects.create_user("viewer", password="x", is_staff=True)
    client.force_login(user)
    rule = make_rule("x")
    assert client.get(reverse("bounces:rule_edit", args=[rule.pk])).status_code == 403


def test_coverage_page_lists_rules_and_unexplained_groups_with_a_make_rule_link(
    staff_client, make_bounce, make_rule
) -> None:
    make_rule("user unknown", name="User unknown rule")
    make_bounce(diagnostic="550 user unknown", kind="hard")
    make_bounce(diagnostic="550 <a@example.org> strange refusal 1234", kind="unknown")
    make_bounce(diagnostic="550 <b@example.org> strange refusal 99", kind="unknown")
    response = staff_client.get(reverse("bounces:rule_coverage"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "User unknown rule" in html
    group = response.context["groups"][0]
    assert group.count == 2
    assert f"{reverse('bounces:rule_new')}?pattern=strange%20refusal&amp;section=diagnostic" in html


def test_reapply_page_previews_applies_and_undoes(staff_client, make_bounce, make_rule) -> None:
    bounce = make_bounce(diagnostic="quota exceeded", kind="unknown")
    make_rule("quota exceeded", bounce_type="soft")
    preview = staff_client.get(reverse("bounces:rule_reapply"), {"sample": "5000", "preview": "1"})
    assert preview.status_code == 200
    assert "<strong>1</strong> would change" in preview.content.decode()
    bounce.refresh_from_db()
    assert bounce.kind == "unknown"

    applied = staff_client.post(reverse("bounces:rule_reapply"), {"sample": "5000"})
    batch = RuleReapply.objects.get()
    assert applied["Location"] == reverse("bounces:rule_reapply_detail", args=[batch.pk])
    bounce.refresh_from_db()
    assert bounce.kind == "soft"
    detail = staff_client.get(applied["Location"])
    assert "Undo this re-apply" in detail.content.decode()

    staff_client.post(reverse("bounces:rule_reapply_undo", args=[batch.pk]))
    bounce.refresh_from_db()
    assert bounce.kind == "unknown"


def test_paste_page_creates_rules_and_reports_bad_lines(staff_client) -> None:
    response = staff_client.post(
        reverse("bounces:rule_paste"),
        {"lines": "550 5.7.1 Unfortunately, messages from==>Hard\nnot a rule\n", "section": "body",
         "hard_action": "mark_hard", "soft_action": "count_only", "enabled": "on"},
    )
    assert response.status_code == 200  # stays on the page to show the bad line
    assert "line 2" in response.content.decode()
    assert BounceRule.objects.get().bounce_type == "hard"


def test_export_download_and_import_upload(staff_client, make_rule) -> None:
    make_rule("user unknown", bounce_type="hard")
    exported = staff_client.get(reverse("bounces:rule_export"))
    assert exported["Content-Type"] == "application/json"
    payload = exported.content
    assert json.loads(payload)["rules"][0]["pattern"] == "user unknown"
    BounceRule.objects.all().delete()
    response = staff_client.post(
        reverse("bounces:rule_import"), {"file": SimpleUploadedFile("rules.json", payload, "application/json")}
    )
    assert response.status_code == 302
    assert BounceRule.objects.get().pattern == "user unknown"


def test_import_of_a_bad_file_shows_the_error(staff_client) -> None:
    response = staff_client.post(
        reverse("bounces:rule_import"), {"file": SimpleUploadedFile("rules.json", b"{nope", "application/json")}
    )
    assert "Not a JSON file" in response.content.decode()


def test_admin_list_shows_rules_with_links(admin_client, make_rule) -> None:
    make_rule("user unknown", name="UU", bounce_type="hard")
    response = admin_client.get(reverse("admin:bounces_bouncerule_changelist"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "UU" in html and reverse("bounces:rule_coverage") in html and reverse("bounces:rule_paste") in html


ADMIN_FORM = {
    "name": "", "enabled": "on", "position": "", "pattern": "mailbox disabled", "match_type": "contains",
    "section": "diagnostic", "bounce_type": "hard", "reason": "", "actions_mode": "kind", "in_statistics": "on",
    "notes": "",
}


def test_admin_add_form_tests_the_draft_without_saving(admin_client, make_bounce) -> None:
    make_bounce(diagnostic="550 mailbox disabled", kind="soft")
    page = admin_client.get(reverse("admin:bounces_bouncerule_add"))
    assert page.status_code == 200 and "Test against stored bounces" in page.content.decode()
    response = admin_client.post(reverse("admin:bounces_bouncerule_add"), {**ADMIN_FORM, "_test_rule": "1"})
    assert response.status_code == 200
    assert response.context["report"].matched == 1
    assert "<mark>mailbox disabled</mark>" in response.content.decode()
    assert not BounceRule.objects.exists()


def test_admin_add_with_empty_position_places_the_rule_by_type(admin_client) -> None:
    BounceRule.objects.create(name="soft", pattern="full", bounce_type="soft", position=10)
    response = admin_client.post(reverse("admin:bounces_bouncerule_add"), {**ADMIN_FORM, "name": "hard", "_save": "1"})
    assert response.status_code == 302
    assert list(BounceRule.objects.order_by("position").values_list("name", flat=True)) == ["hard", "soft"]


def test_admin_export_selected_action(admin_client, make_rule) -> None:
    keep = make_rule("user unknown", name="keep")
    make_rule("other", name="other")
    response = admin_client.post(
        reverse("admin:bounces_bouncerule_changelist"),
        {"action": "export_selected", "_selected_action": [keep.pk]},
    )
    assert [r["name"] for r in json.loads(response.content)["rules"]] == ["keep"]


def test_admin_change_form_rejects_an_invalid_pattern(admin_client, make_rule) -> None:
    rule = make_rule("fine")
    data = {
        "name": "x", "enabled": "on", "position": "1", "pattern": "(?<=x)y", "match_type": "regex",
        "section": "diagnostic", "bounce_type": "hard", "reason": "", "actions_mode": "kind", "in_statistics": "on",
    "notes": "",
    }
    response = admin_client.post(reverse("admin:bounces_bouncerule_change", args=[rule.pk]), data)
    assert response.status_code == 200
    assert "look-behind are not supported" in response.content.decode()


def test_a_rule_saved_in_the_editor_is_used_by_the_next_processing_run(staff_client) -> None:
    from bounces.intake.stored import process_stored_messages
    from bounces.models import Bounce, RawMessage
    from tests.rules.conftest import dsn

    response = staff_client.post(
        reverse("bounces:rule_new"),
        {**DRAFT, "pattern": "frobnicated by the gateway", "bounce_type": "soft", "reason": "mailboxfull",
         "_save": "1"},
    )
    assert response.status_code == 302
    rule = BounceRule.objects.get(pattern="frobnicated by the gateway")
    raw = dsn(recipient="kim@example.org", diagnostic="550 5.1.1 kim frobnicated by the gateway", status="5.1.1")
    RawMessage.objects.create(dedupe_key="e2e", sha256="e" * 64, raw=raw, size=len(raw))

    process_stored_messages()

    bounce = Bounce.objects.get(recipient="kim@example.org")
    assert (bounce.matched_rule_id, bounce.kind, bounce.reason) == (rule.pk, "soft", "mailboxfull")
    rule.refresh_from_db()
    assert rule.hit_count == 1 and rule.last_hit_at is not None


@pytest.mark.parametrize("payload", [
    b"[" * 100_000 + b"]" * 100_000,  # RecursionError in json before issue 12
    b'{"format": "bouncemgr-rules", "rules": [{"pattern": ' + b"[" * 5000 + b"]" * 5000 + b"}]}",
])
def test_import_of_deeply_nested_json_says_so_instead_of_crashing(staff_client, payload) -> None:
    response = staff_client.post(
        reverse("bounces:rule_import"), {"file": SimpleUploadedFile("rules.json", payload, "application/json")}
    )
    assert response.status_code == 200
    assert "more than 8 levels deep" in response.content.decode()
    assert not BounceRule.objects.exists()
