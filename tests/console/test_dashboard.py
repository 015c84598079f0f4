"""The dashboard: what an operator sees first after logging in (Django test client)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from bounces.models import ProcessingRun
from campaigns.models import Campaign
from console import selectors
from console.services import rebuild_dashboard_counts
from contacts.models import Suppression
from tests.factories import BounceFactory, CampaignFactory, MailboxFactory

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def _staff(django_user_model, *codenames: str):
    user = django_user_model.objects.create_user("viewer", password="x", is_staff=True)
    for code in codenames:
        app, codename = code.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app, codename=codename))
    return user


def test_logging_in_lands_on_the_dashboard(client, admin_user):
    response = client.post(reverse("admin:login"), {"username": "admin", "password": "password",
                                                    "next": reverse("admin:index")}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("console:dashboard")
    assert response.templates[0].name == "console/dashboard.html"


def test_an_anonymous_visitor_is_sent_to_the_login_page(client):
    response = client.get(reverse("console:dashboard"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("admin:login"))


def test_an_empty_instance_says_what_to_do_first(admin_client):
    body = admin_client.get(reverse("console:dashboard")).content.decode()
    assert "No mailbox yet: add the one your bounces land in" in body
    assert reverse("admin:bounces_mailbox_add") in body
    assert "No run yet" in body
    assert "No hard, soft, blocked bounce or complaint in the last 30 days." in body


def test_bounces_are_counted_today_this_week_and_this_month_by_kind(admin_client):
    now = timezone.now()
    BounceFactory(kind="hard", bounced_at=now)
    BounceFactory(kind="hard", bounced_at=now - dt.timedelta(days=3))
    BounceFactory(kind="soft", bounced_at=now - dt.timedelta(days=20))
    BounceFactory(kind="complaint", bounced_at=now - dt.timedelta(days=40))  # out of every window
    windows = admin_client.get(reverse("console:dashboard")).context["windows"]
    kinds = {row["kind"]: row for row in windows.kinds}
    assert (kinds["hard"]["today"], kinds["hard"]["week"], kinds["hard"]["month"]) == (1, 2, 2)
    assert (kinds["soft"]["today"], kinds["soft"]["week"], kinds["soft"]["month"]) == (0, 0, 1)
    assert kinds["complaint"]["month"] == 0
    assert windows.totals == {"today": 1, "week": 2, "month": 3}
    assert len(windows.days) == 30 and windows.days[-1][0] == timezone.localdate(now)
    assert windows.days[-1][1]["hard"] == 1


def test_top_reasons_and_domains_rank_the_last_30_days(admin_client):
    for _ in range(3):
        BounceFactory(recipient=f"a{_}@Big.example", reason="mailboxfull", kind="soft")
    BounceFactory(recipient="x@small.example", reason="userunknown")
    ctx = admin_client.get(reverse("console:dashboard")).context
    assert ctx["top_reasons"][0] == {"reason": "mailboxfull", "n": 3}
    assert ctx["top_domains"][0] == {"domain": "big.example", "n": 3}


def test_each_mailbox_shows_last_run_next_run_error_and_the_process_button(admin_client):
    now = timezone.now()
    box = MailboxFactory(name="bounces@example.org", interval_minutes=15,
                         last_run_at=now - dt.timedelta(minutes=5), last_error="login failed",
                         last_error_at=now - dt.timedelta(minutes=5))
    response = admin_client.get(reverse("console:dashboard"))
    row = response.context["mailboxes"][0]
    assert row["error"] == "login failed"
    assert row["next_run"] == box.last_run_at + dt.timedelta(minutes=15)
    body = response.content.decode()
    assert reverse("bounces:pipeline_process", args=[box.pk]) in body
    assert "Process bounces now" in body


def test_an_error_followed_by_a_successful_run_is_no_longer_shown(admin_client):
    now = timezone.now()
    MailboxFactory(last_error="login failed", last_error_at=now - dt.timedelta(hours=1),
                   last_success_at=now, last_run_at=now)
    assert admin_client.get(reverse("console:dashboard")).context["mailboxes"][0]["error"] == ""


def test_a_view_only_user_sees_the_mailboxes_without_the_process_button(client, django_user_model):
    MailboxFactory()
    client.force_login(_staff(django_user_model, "bounces.view_mailbox"))
    response = client.get(reverse("console:dashboard"))
    assert response.status_code == 200
    assert "Process bounces now" not in response.content.decode()
    assert "windows" not in response.context  # no view_bounce: no bounce figures


def test_paused_campaigns_suppressions_and_runs_appear_when_they_exist(admin_client):
    CampaignFactory(name="Spring sale", status=Campaign.Status.PAUSED)
    Suppression.objects.create(value="x@example.org")
    run = ProcessingRun.objects.create(mailbox=MailboxFactory(), status=ProcessingRun.Status.SUCCEEDED)
    body = admin_client.get(reverse("console:dashboard")).content.decode()
    assert "Spring sale" in body and "paused" in body
    assert reverse("bounces:pipeline_run", args=[run.pk]) in body
    assert admin_client.get(reverse("console:dashboard")).context["suppressions"] == 1


def test_the_dashboard_takes_a_fixed_number_of_queries_whatever_the_data(admin_client, django_assert_max_num_queries):
    for i in range(20):
        BounceFactory(recipient=f"r{i}@d{i}.example", reason=f"r{i % 5}")
        MailboxFactory()
    rebuild_dashboard_counts()  # as the beat does every 15 minutes
    with django_assert_max_num_queries(20):
        admin_client.get(reverse("console:dashboard"))


def test_the_advanced_page_is_for_superusers_only(admin_client, client, django_user_model):
    assert admin_client.get(reverse("console:advanced")).status_code == 200
    client.force_login(_staff(django_user_model, "bounces.view_bounce"))
    assert client.get(reverse("console:advanced")).status_code == 403


def test_only_open_incidents_are_listed_on_the_dashboard():
    from bounces.models import Incident

    now = timezone.now()
    shown = Incident.objects.create(scope="provider", key="gmail", trigger="blocked", opened_at=now, window_start=now)
    Incident.objects.create(scope="provider", key="microsoft", trigger="blocked", opened_at=now, window_start=now,
                            status=Incident.Status.RELEASED)
    assert selectors.open_incidents() == [shown]
