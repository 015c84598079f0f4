"""Bulk actions of the bounce list: re-apply the rules, mark not a bounce, make a rule."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from bounces.models import Bounce
from bounces.rules.models import BounceRule
from bounces.rules.patterns import common_text
from tests.factories import BounceFactory

pytestmark = pytest.mark.django_db
CHANGELIST = "admin:bounces_bounce_changelist"


def _post(client, action: str, bounces):
    return client.post(reverse(CHANGELIST), {"action": action, "_selected_action": [b.pk for b in bounces]})


def test_common_text_keeps_what_the_diagnostics_share_and_drops_the_addresses():
    texts = [f"550 5.1.1 <user{i}@example.org>: Recipient address rejected: User unknown in virtual mailbox table"
             for i in range(3)]
    assert common_text(texts) == "Recipient address rejected: User unknown in virtual mailbox table"
    assert common_text(["mailbox full", "quota exceeded"]) == "mailbox full"
    assert common_text([]) == ""


def test_re_applying_the_rules_to_a_selection_changes_only_the_selection_and_can_be_undone(admin_client):
    rule = BounceRule.objects.create(name="Full", pattern="mailbox is full", bounce_type="soft", reason="mailboxfull")
    chosen = [BounceFactory(kind="unknown", reason="", diagnostic="452 mailbox is full") for _ in range(2)]
    other = BounceFactory(kind="unknown", reason="", diagnostic="452 mailbox is full")
    response = _post(admin_client, "reapply_rules", chosen)
    assert response.status_code == 302 and "/rules/reapply/" in response.url
    for bounce in chosen:
        bounce.refresh_from_db()
        assert (bounce.kind, bounce.matched_rule_id) == ("soft", rule.pk)
    other.refresh_from_db()
    assert other.kind == "unknown" and other.matched_rule_id is None


def test_making_a_rule_from_a_selection_opens_the_rule_editor_with_the_shared_text(admin_client):
    chosen = [BounceFactory(kind="hard", diagnostic=f"550 <u{i}@x.org>: no such user here") for i in range(3)]
    response = _post(admin_client, "make_rule", chosen)
    assert response.status_code == 302
    url = urlparse(response.url)
    assert url.path == reverse("bounces:rule_new")
    query = parse_qs(url.query)
    assert query["pattern"] == ["no such user here"] and query["bounce_type"] == ["hard"]
    page = admin_client.get(response.url).content.decode()
    assert "no such user here" in page


def test_marking_a_selection_as_not_a_bounce_leaves_the_unexplained_queue(admin_client):
    chosen = [BounceFactory(kind="unknown", state=Bounce.State.UNMATCHED) for _ in range(2)]
    _post(admin_client, "mark_not_a_bounce", chosen)
    assert set(Bounce.objects.values_list("state", flat=True)) == {Bounce.State.IGNORED}


def test_a_view_only_user_is_offered_no_bulk_action_and_cannot_post_one(client, django_user_model):
    user = django_user_model.objects.create_user("viewer", password="x", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__startswith="view_"))
    client.force_login(user)
    bounce = BounceFactory(kind="unknown", state=Bounce.State.UNMATCHED)
    page = client.get(reverse(CHANGELIST))
    assert page.status_code == 200
    assert 'name="action"' not in page.content.decode()
    for action in ("reapply_rules", "make_rule", "mark_not_a_bounce"):
        _post(client, action, [bounce])
    bounce.refresh_from_db()
    assert bounce.state == Bounce.State.UNMATCHED


def test_the_bounce_list_pages_filters_and_searches(admin_client):
    for i in range(60):
        BounceFactory(kind="hard" if i % 2 else "soft", recipient=f"r{i}@d{i % 3}.example",
                      diagnostic="quota exceeded" if i % 5 == 0 else "no such user")
    response = admin_client.get(reverse(CHANGELIST), {"kind__exact": "hard", "q": "quota"})
    rows = list(response.context["cl"].result_list)
    assert rows and all(b.kind == "hard" and "quota" in b.diagnostic for b in rows)
    response = admin_client.get(reverse(CHANGELIST))
    assert len(response.context["cl"].result_list) == 50
    assert admin_client.get(reverse(CHANGELIST), {"p": "2"}).status_code == 200
