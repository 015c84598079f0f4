"""Who may press the campaign admin's buttons (issue 12, item 1).

Each role logs in and posts the action through the real admin changelist; the SMTP server
on loopback shows whether anyone was mailed.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from campaigns.models import Campaign, SentMessage
from campaigns.tasks import send_campaign_task

from .conftest import make_campaign, make_list, subscribe

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:campaigns_campaign_changelist")
ROLES = {
    "view-only": ["view_campaign"],
    "change-only": ["view_campaign", "change_campaign"],
    "sender": ["view_campaign", "send_campaign"],
}
SEND_ACTIONS = ("send_campaigns", "pause_campaigns", "retry_deferred_now")


def staff_client(role: str) -> Client:
    user_model = get_user_model()
    user = user_model.objects.filter(username=role).first()
    if user is not None:
        pass
    elif role == "superuser":
        user = user_model.objects.create_superuser(role, "root@example.com", "pw-not-used")
    else:
        user = user_model.objects.create_user(role, f"{role}@example.com", "pw-not-used", is_staff=True)
        user.user_permissions.set(
            Permission.objects.filter(content_type__app_label="campaigns", codename__in=ROLES[role])
        )
    client = Client()
    client.force_login(user)
    return client


def offered_actions(client: Client) -> set[str]:
    response = client.get(CHANGELIST)
    assert response.status_code == 200
    form = response.context["action_form"]
    return {value for value, _ in form.fields["action"].choices if value} if form else set()


@pytest.fixture
def eager(monkeypatch):
    monkeypatch.setattr(send_campaign_task.app.conf, "task_always_eager", True)


def press(client: Client, action: str, campaign: Campaign, capture) -> None:
    with capture(execute=True):
        client.post(CHANGELIST, {"action": action, "_selected_action": [campaign.pk]})


@pytest.mark.parametrize("role", ["view-only", "change-only"])
def test_staff_without_the_send_permission_cannot_mail_the_list(
    role, smtp_server, eager, django_capture_on_commit_callbacks
):
    mailing_list = make_list()
    subscribe(mailing_list, "ann@example.com", "bob@example.com")
    campaign = make_campaign(mailing_list, status=Campaign.Status.DRAFT)
    client = staff_client(role)

    assert not offered_actions(client) & set(SEND_ACTIONS)
    press(client, "send_campaigns", campaign, django_capture_on_commit_callbacks)

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT
    assert smtp_server.received == []
    assert not SentMessage.objects.exists()


def test_staff_without_the_send_permission_cannot_pause_a_running_campaign(
    smtp_server, django_capture_on_commit_callbacks
):
    campaign = make_campaign(make_list(), status=Campaign.Status.SENDING)
    for role in ("view-only", "change-only"):
        press(staff_client(role), "pause_campaigns", campaign, django_capture_on_commit_callbacks)
        campaign.refresh_from_db()
        assert campaign.status == Campaign.Status.SENDING, role


def test_view_only_staff_cannot_recount_but_change_staff_can(django_capture_on_commit_callbacks):
    campaign = make_campaign(make_list(), status=Campaign.Status.SENT)
    Campaign.objects.filter(pk=campaign.pk).update(sent_count=99)  # wrong counters to repair

    assert "recount_campaigns" not in offered_actions(staff_client("view-only"))
    press(staff_client("view-only"), "recount_campaigns", campaign, django_capture_on_commit_callbacks)
    campaign.refresh_from_db()
    assert campaign.sent_count == 99

    assert "recount_campaigns" in offered_actions(staff_client("change-only"))
    press(staff_client("change-only"), "recount_campaigns", campaign, django_capture_on_commit_callbacks)
    campaign.refresh_from_db()
    assert campaign.sent_count == 0


@pytest.mark.parametrize("role", ["sender", "superuser"])
def test_a_sender_and_a_superuser_send_the_campaign_from_the_admin(
    role, smtp_server, eager, django_capture_on_commit_callbacks
):
    mailing_list = make_list()
    subscribe(mailing_list, "ann@example.com", "bob@example.com")
    campaign = make_campaign(mailing_list, status=Campaign.Status.DRAFT)
    client = staff_client(role)

    assert set(SEND_ACTIONS) <= offered_actions(client)
    press(client, "send_campaigns", campaign, django_capture_on_commit_callbacks)

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENT
    assert sorted(env.rcpt_tos[0] for env in smtp_server.received) == ["ann@example.com", "bob@example.com"]


def test_a_sender_pauses_a_running_campaign(django_capture_on_commit_callbacks):
    campaign = make_campaign(make_list(), status=Campaign.Status.SENDING)
    press(staff_client("sender"), "pause_campaigns", campaign, django_capture_on_commit_callbacks)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED
