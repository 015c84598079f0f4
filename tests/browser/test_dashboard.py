"""The dashboard in a real browser, at 1366 px and at 390 px."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from bounces.models import ProcessingRun
from campaigns.models import Campaign
from tests.browser.conftest import PHONE, assert_no_horizontal_scroll, login
from tests.factories import BounceFactory, CampaignFactory, MailboxFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _some_activity() -> None:
    now = timezone.now()
    box = MailboxFactory(name="bounces@example.org", interval_minutes=10,
                         last_run_at=now - dt.timedelta(minutes=3))
    MailboxFactory(name="old-imap", last_error="LOGIN failed: authentication failed",
                   last_error_at=now - dt.timedelta(hours=2))
    kinds = ["hard", "soft", "soft", "blocked", "complaint", "hard"]
    for i in range(60):
        BounceFactory(raw_message__mailbox=box, mailbox=box, kind=kinds[i % len(kinds)], reason=["userunknown", "mailboxfull", "spam"][i % 3],
                      recipient=f"user{i}@{['gmail.com', 'example.net', 'web.de'][i % 3]}",
                      bounced_at=now - dt.timedelta(days=i % 25, hours=i % 7))
    ProcessingRun.objects.create(mailbox=box, status=ProcessingRun.Status.SUCCEEDED, started_at=now,
                                 finished_at=now, fetched=12, hard=3, soft=4)
    CampaignFactory(name="Spring newsletter", status=Campaign.Status.PAUSED)


def test_the_dashboard_shows_bounces_chart_mailboxes_and_runs(page, make_user, shot):
    make_user("operator", superuser=True)
    _some_activity()
    login(page, "operator")
    assert page.locator("h1").inner_text() == "Dashboard"
    assert page.locator("svg.bm-chart rect").count() > 30
    assert page.locator("text=Process bounces now").count() == 2
    assert page.locator("text=LOGIN failed").is_visible()
    assert page.locator("text=Spring newsletter").is_visible()
    assert_no_horizontal_scroll(page)
    shot("desktop")
    page.set_viewport_size(PHONE)
    page.reload()
    assert_no_horizontal_scroll(page)
    shot("phone")
    assert not page.js_errors


def test_a_new_instance_dashboard_says_to_add_a_mailbox(page, make_user):
    make_user("operator", superuser=True)
    login(page, "operator")
    page.click("text=Add a mailbox")
    expect(page).to_have_url(re.compile(r"/admin/bounces/mailbox/add/$"))


def test_process_bounces_now_from_the_dashboard_opens_the_run(page, make_user, monkeypatch, tmp_path):
    from bounces.tasks import process_mailbox_task

    monkeypatch.setattr(process_mailbox_task.app.conf, "task_always_eager", True)  # no worker here
    make_user("operator", superuser=True)
    maildir = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    MailboxFactory(name="local maildir", protocol="maildir", host="", path=str(maildir))
    login(page, "operator")
    page.click("text=Process bounces now")
    expect(page).to_have_url(re.compile(r"/bounces/runs/\d+/$"))
    expect(page.locator("#run-status")).to_have_text("Succeeded")
    page.shots("run")
