"""The custom permissions (process mailbox, apply rules, release suppressions, send campaign),
per role: a view-only staff user, and a view-only user with exactly one of them. Each may do
exactly what its permission names, through every door (view, admin action, API), and sees
the button for it only then."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.db.models import Q

from bounces.models import ProcessingRun
from bounces.rules.models import BounceRule, RuleReapply
from campaigns.models import Campaign
from contacts.models import Suppression
from tests.console.test_url_permissions import all_urls
from tests.factories import BounceFactory, CampaignFactory, MailboxFactory

pytestmark = pytest.mark.django_db

CUSTOM = {
    "process": "bounces.process_mailbox",
    "apply": "bounces.apply_bouncerule",
    "release": "contacts.release_suppression",
    "send": "campaigns.send_campaign",
}


@pytest.fixture
def client(client):
    client.raise_request_exception = False
    return client


@pytest.fixture
def world(db):
    box = MailboxFactory()
    bounce = BounceFactory(raw_message__mailbox=box, mailbox=box)
    BounceRule.objects.create(name="Mailbox full", pattern="mailbox full", bounce_type="soft")
    suppression = Suppression.objects.create(value="gone@example.org")
    campaign = CampaignFactory(status=Campaign.Status.DRAFT)
    return {"mailbox": box, "bounce": bounce, "suppression": suppression, "campaign": campaign}


def _login(client, django_user_model, role: str):
    user = django_user_model.objects.create_user(f"u-{role}", password="x", is_staff=True)
    perms = Q(codename__startswith="view_")
    if role in CUSTOM:
        app_label, codename = CUSTOM[role].split(".")
        perms |= Q(content_type__app_label=app_label, codename=codename)
    user.user_permissions.set(Permission.objects.filter(perms))
    client.force_login(user)
    return user


ROLES = ["view-only", *CUSTOM]


@pytest.mark.parametrize("role", ROLES)
def test_each_custom_permission_is_declared_and_nothing_else_comes_with_it(django_user_model, client, world, role):
    user = _login(client, django_user_model, role)
    for name, perm in CUSTOM.items():
        assert user.has_perm(perm) is (name == role), perm


@pytest.mark.parametrize("role", ROLES)
def test_process_mailbox_needs_its_permission_on_every_door(django_user_model, client, world, role):
    _login(client, django_user_model, role)
    box = world["mailbox"]
    allowed = role == "process"
    dashboard = client.get("/").content.decode()
    assert ("Process bounces now</button>" in dashboard) is allowed
    page = client.get(f"/admin/bounces/mailbox/{box.pk}/change/").content.decode()
    assert ("Process bounces now</button>" in page) is allowed
    listing = client.get("/admin/bounces/mailbox/").content.decode()
    assert ("Process all mailboxes now</button>" in listing) is allowed

    client.post(f"/bounces/mailboxes/{box.pk}/process/")
    client.post("/bounces/mailboxes/process-all/")
    api = client.post(f"/api/v1/mailboxes/{box.pk}/process/")
    assert api.status_code in ((202,) if allowed else (403,))
    assert ProcessingRun.objects.filter(mailbox=box).exists() is allowed


@pytest.mark.parametrize("role", ROLES)
def test_re_applying_rules_needs_the_apply_permission(django_user_model, client, world, role):
    _login(client, django_user_model, role)
    allowed = role == "apply"
    assert client.get("/bounces/rules/reapply/").status_code == (200 if allowed else 403)
    rules = client.get("/admin/bounces/bouncerule/").content.decode()
    assert ("Re-apply to stored bounces" in rules) is allowed
    bounces = client.get("/admin/bounces/bounce/").content.decode()
    assert ('value="reapply_rules"' in bounces) is allowed

    client.post("/admin/bounces/bounce/", {"action": "reapply_rules",
                                          "_selected_action": [world["bounce"].pk]})
    client.post("/bounces/rules/reapply/", {"sample": "1000"})
    assert RuleReapply.objects.exists() is allowed


@pytest.mark.parametrize("role", ROLES)
def test_releasing_suppressions_needs_the_release_permission(django_user_model, client, world, role):
    _login(client, django_user_model, role)
    allowed = role == "release"
    row = world["suppression"]
    listing = client.get("/admin/contacts/suppression/").content.decode()
    assert ('value="release_selected"' in listing) is allowed
    client.post("/admin/contacts/suppression/", {"action": "release_selected", "_selected_action": [row.pk],
                                                 "confirm": "yes"})
    assert Suppression.objects.filter(pk=row.pk).exists() is not allowed
    if not allowed:
        assert client.delete(f"/api/v1/suppressions/{row.pk}/").status_code == 403
        assert Suppression.objects.filter(pk=row.pk).exists()


@pytest.mark.parametrize("role", ROLES)
def test_sending_a_campaign_needs_the_send_permission(django_user_model, client, world, role):
    _login(client, django_user_model, role)
    allowed = role == "send"
    listing = client.get("/admin/campaigns/campaign/").content.decode()
    assert ('value="send_campaigns"' in listing) is allowed
    assert ('value="pause_campaigns"' in listing) is allowed


@pytest.mark.parametrize("role", list(CUSTOM))
def test_a_user_with_one_custom_permission_opens_every_page_without_a_server_error(
        django_user_model, client, world, role):
    """The per-role URL walk (tests/console/test_url_permissions.py) for each custom permission."""
    _login(client, django_user_model, role)
    problems = []
    for url, name in all_urls():
        response = client.get(url)
        if response.status_code >= 500:
            problems.append(f"{url} ({name}): {response.status_code}")
        elif name.endswith(("_add", "_delete")) and name.startswith("admin:") and response.status_code != 403:
            problems.append(f"{url} ({name}): {response.status_code}, expected 403")
    assert not problems, "\n".join(problems)
