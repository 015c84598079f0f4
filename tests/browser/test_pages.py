"""Every main page of the console in a real browser: same frame and navigation, no
sideways scrolling at 1366 px on the main lists, usable at 390 px, no script error."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from bounces.models import Bounce, ProcessingRun
from tests.browser.conftest import PHONE, assert_no_horizontal_scroll, login
from tests.factories import (
    BounceFactory,
    CampaignFactory,
    ContactFactory,
    MailboxFactory,
    SentMessageFactory,
)

pytestmark = pytest.mark.django_db(transaction=True)

NAV = ["Dashboard", "Campaigns", "Contacts & lists", "Bounces", "Mailboxes", "Rules", "Runs", "Settings"]


def _data() -> dict:
    now = timezone.now()
    box = MailboxFactory(name="bounces@example.org")
    contact = ContactFactory(email="jane.doe.with.a.rather.long.address@subdomain.example-company.com")
    campaign = CampaignFactory(name="Autumn newsletter with a long descriptive name")
    sent = SentMessageFactory(campaign=campaign, contact=contact, email=contact.email)
    bounce = BounceFactory(
        raw_message__mailbox=box, mailbox=box, contact=contact, campaign=campaign, sent_message=sent,
        recipient=contact.email, kind="hard", reason="userunknown", status_code="5.1.1",
        diagnostic="smtp; 550 5.1.1 <" + contact.email + ">: Recipient address rejected: User unknown in "
                   "virtual mailbox table (this line is long on purpose)" * 2,
        remote_mta="mx1.subdomain.example-company.com", state=Bounce.State.APPLIED, bounced_at=now,
    )
    BounceFactory(raw_message__mailbox=box, mailbox=box, kind="unknown", state=Bounce.State.UNMATCHED)
    from bounces.rules.models import BounceRule

    BounceRule.objects.create(
        name="Mailbox over quota at a large provider (German wording)", reason="mailboxfull",
        pattern="Das Postfach des Empfängers ist voll und kann keine weiteren Nachrichten annehmen",
        bounce_type="soft",
    )
    run = ProcessingRun.objects.create(mailbox=box, status=ProcessingRun.Status.SUCCEEDED, started_at=now,
                                       finished_at=now - dt.timedelta(seconds=1), fetched=2, hard=1, unknown=1)
    from bounces.models import Incident

    incident = Incident.objects.create(scope="provider", key="google", trigger="blocked", cause="blocklist",
                                       opened_at=now, window_start=now, window_count=50, held_count=1,
                                       domains=["gmail.com", "subdomain.example-company.com"])
    BounceFactory(raw_message__mailbox=box, mailbox=box, kind="blocked", reason="blocked", state=Bounce.State.HELD,
                  recipient="held.recipient.with.a.long.address@gmail.com", incident=incident, bounced_at=now,
                  diagnostic="550 5.7.1 Service unavailable; Client host [192.0.2.10] blocked using zen.spamhaus.org")
    return {"box": box, "contact": contact, "campaign": campaign, "bounce": bounce, "run": run, "incident": incident}


def _pages(d: dict) -> list[tuple[str, str, bool]]:
    """(name, url, is a main list that must fit 1366 px)."""
    return [
        ("dashboard", reverse("console:dashboard"), True),
        ("campaigns", reverse("admin:campaigns_campaign_changelist"), True),
        ("campaign", reverse("admin:campaigns_campaign_change", args=[d["campaign"].pk]), False),
        ("campaign-results", reverse("campaigns:results", args=[d["campaign"].pk]), False),
        ("contact", reverse("contacts:detail", args=[d["contact"].pk]), False),
        ("contacts", reverse("admin:contacts_contact_changelist"), True),
        ("lists", reverse("admin:contacts_mailinglist_changelist"), True),
        ("suppressions", reverse("admin:contacts_suppression_changelist"), True),
        ("bounces", reverse("admin:bounces_bounce_changelist"), True),
        ("bounce-detail", reverse("bounces:detail", args=[d["bounce"].pk]), False),
        ("unexplained", reverse("bounces:pipeline_unexplained"), True),
        ("deliverability", reverse("bounces:pipeline_deliverability"), False),
        ("mailboxes", reverse("admin:bounces_mailbox_changelist"), True),
        ("mailbox", reverse("admin:bounces_mailbox_change", args=[d["box"].pk]), False),
        ("rules", reverse("admin:bounces_bouncerule_changelist"), True),
        ("rule-coverage", reverse("bounces:rule_coverage"), False),
        ("incidents", reverse("bounces:incident_list"), True),
        ("incident", reverse("bounces:incident_detail", args=[d["incident"].pk]), False),
        ("runs", reverse("bounces:pipeline_runs"), True),
        ("run", reverse("bounces:pipeline_run", args=[d["run"].pk]), False),
        ("settings", reverse("admin:bounces_bouncesettings_changelist"), False),
        ("advanced", reverse("console:advanced"), False),
    ]


def test_every_main_page_has_the_console_frame_and_fits_the_screen(page, make_user):
    make_user("operator", superuser=True)
    data = _data()
    login(page, "operator")
    too_wide = []
    for name, url, main_list in _pages(data):
        response = page.goto(url)
        assert response.status == 200, f"{name}: HTTP {response.status}"
        assert page.locator(".bm-sections a").all_inner_texts() == NAV, name
        assert page.locator("#logout-form button").is_visible(), name
        assert page.locator(".breadcrumbs").count() == 1, name
        page.shots(f"{name}-1366")
        if main_list:
            try:
                assert_no_horizontal_scroll(page)
            except AssertionError as exc:
                too_wide.append(str(exc))
    page.set_viewport_size(PHONE)
    for name, url, _ in _pages(data):
        page.goto(url)
        page.shots(f"{name}-390")
        # The frame itself (header, navigation) always fits; wide tables scroll in their box.
        width = page.evaluate("() => document.getElementById('header').getBoundingClientRect().width")
        assert width <= PHONE["width"], f"{name}: header {width}px wide at 390px"
        assert page.locator(".bm-sections a").first.is_visible(), name
    assert not page.js_errors
    assert not too_wide, "\n".join(too_wide)


def test_a_view_only_user_reads_every_page_and_is_offered_no_change(page, make_user):
    from django.contrib.auth.models import Permission

    viewer = make_user("viewer")
    viewer.user_permissions.add(*Permission.objects.filter(codename__startswith="view_"))
    data = _data()
    login(page, "viewer")
    assert page.locator("h1").inner_text() == "Dashboard"
    assert page.locator("text=Process bounces now").count() == 0
    assert page.locator(".bm-sections a").all_inner_texts() == NAV
    assert "Advanced" not in page.locator(".bm-nav").inner_text()
    page.shots("dashboard")
    for name, url, _ in _pages(data):
        if name in ("advanced", "mailbox"):
            continue
        response = page.goto(url)
        assert response.status == 200, f"{name}: HTTP {response.status}"
        assert page.locator("input[name=_save]").count() == 0, name
        assert page.locator("text=Process all mailboxes now").count() == 0, name
    page.set_viewport_size(PHONE)
    page.goto(reverse("admin:campaigns_campaign_change", args=[data["campaign"].pk]))
    assert_no_horizontal_scroll(page)
    page.shots("campaign-390")
