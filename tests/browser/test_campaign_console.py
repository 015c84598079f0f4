"""A campaign as an operator sends it, in a real browser: preview with a chosen recipient,
a test send the test SMTP server receives, the confirmation with its counts and skips,
send, the progress and results page; the progress refreshing itself while a campaign
sends; a view-only user's campaign pages. At 1366 and 390 px."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from campaigns.models import Campaign, SentMessage
from contacts.models import Contact, MailingList, Subscription, Suppression
from tests.browser.conftest import PHONE, assert_no_horizontal_scroll, login
from tests.servers.smtp import sending_to_test_smtp

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def smtp_server(settings):
    with sending_to_test_smtp(settings, CAMPAIGN_LIST_UNSUBSCRIBE="https://bm.example.org/unsubscribe/{token}/") as server:
        yield server


@pytest.fixture
def eager_send(monkeypatch):
    """Send runs the task in the request (no worker in this test)."""
    from campaigns.tasks import send_campaign_task

    monkeypatch.setattr(send_campaign_task.app.conf, "task_always_eager", True)


def _campaign(status: str = Campaign.Status.DRAFT, **kw) -> Campaign:
    news = MailingList.objects.create(name="Newsletter")
    for address, name in (("ann@example.com", "Ann <Admin>"), ("bob@example.com", "Bob"),
                          ("sue@blocked.example", "Sue")):
        contact = Contact.objects.create(email=address, name=name)
        Subscription.objects.create(contact=contact, mailing_list=news)
    Suppression.objects.create(kind=Suppression.Kind.DOMAIN, value="blocked.example")
    fields = {"name": "November news", "subject": "News for {{ name }}", "from_email": "News <news@example.com>",
              "body_text": "Hello {{ name|default:'reader' }},\nour news.\nLeave: {{ unsubscribe_url }}",
              "body_html": "<h1>Hello {{ name }}</h1><p>Our news.</p>", "mailing_list": news, "status": status}
    fields.update(kw)
    return Campaign.objects.create(**fields)


def test_preview_test_send_confirm_send_and_results(page, make_user, smtp_server, eager_send):
    make_user("operator", perms=("campaigns.view_campaign", "campaigns.change_campaign",
                                 "campaigns.send_campaign", "contacts.view_contact"))
    campaign = _campaign()
    login(page, "operator", next_url=f"/campaigns/{campaign.pk}/")

    page.click("#campaign-actions >> text=Preview")
    bob = Contact.objects.get(email="bob@example.com")
    page.select_option("#id_pick_contact", str(bob.pk))
    page.click("#pick-recipient button")
    expect(page.locator("#preview-subject")).to_have_text("News for Bob")
    expect(page.locator("#preview-text")).to_contain_text("Hello Bob,")
    expect(page.frame_locator("#preview-html-frame").locator("h1")).to_have_text("Hello Bob")
    page.shots("preview")

    page.fill("#id_to", "me@example.org")
    page.click("#test-send button")
    expect(page.locator(".messagelist .success")).to_contain_text("Test message sent to me@example.org")
    [test] = smtp_server.received
    assert test.rcpt_tos == ("me@example.org",) and test.message["Subject"] == "[Test] News for Bob"
    assert not SentMessage.objects.exists()
    page.shots("test-sent")

    page.click("text=Back to the campaign")
    page.click("#campaign-actions >> text=Send…")
    expect(page.locator("#send-summary [data-summary=total]")).to_have_text("2")
    expect(page.locator("#skip-examples")).to_contain_text("sue@blocked.example")
    expect(page.locator("#skip-reasons")).to_contain_text("Address suppressed")
    assert_no_horizontal_scroll(page)
    page.shots("confirm")

    page.click("#confirm-send")
    expect(page).to_have_url(re.compile(rf"/campaigns/{campaign.pk}/$"))
    expect(page.locator("#progress [data-progress=status_label]")).to_have_text("Sent")
    expect(page.locator("#progress [data-progress=sent]")).to_have_text("2")
    expect(page.locator("#progress [data-progress=skipped]")).to_have_text("1")
    expect(page.locator("#progress [data-progress=pending]")).to_have_text("0")
    assert sorted(e.rcpt_tos[0] for e in smtp_server.received[1:]) == ["ann@example.com", "bob@example.com"]
    expect(page.locator("#skipped-rows")).to_contain_text("sue@blocked.example")
    assert_no_horizontal_scroll(page)
    page.shots("results")

    page.set_viewport_size(PHONE)
    for url in (f"/campaigns/{campaign.pk}/", f"/campaigns/{campaign.pk}/preview/"):
        page.goto(url)
        if url.endswith("preview/"):
            expect(page.frame_locator("#preview-html-frame").locator("h1")).to_have_text("Hello Ann <Admin>")
        assert_no_horizontal_scroll(page)
        page.shots(f"phone-{url.strip('/').replace('/', '-')}")
    assert not page.js_errors


def test_the_progress_refreshes_itself_while_the_campaign_sends(page, make_user, smtp_server):
    make_user("operator", perms=("campaigns.view_campaign", "campaigns.send_campaign"))
    campaign = _campaign(status=Campaign.Status.SENDING, sent_count=1, last_error="SMTP connection lost: timed out")
    login(page, "operator", next_url=f"/campaigns/{campaign.pk}/")
    expect(page.locator("#progress [data-progress=sent]")).to_have_text("1")
    expect(page.locator("#sending-error")).to_be_visible()
    expect(page.locator("#campaign-actions button", has_text="Pause")).to_be_visible()
    page.shots("sending")

    Campaign.objects.filter(pk=campaign.pk).update(sent_count=2, last_error="")  # the sender goes on
    expect(page.locator("#progress [data-progress=sent]")).to_have_text("2")  # polled, no reload
    expect(page.locator("#sending-error")).to_be_hidden()
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SENT, skipped_count=1)
    expect(page.locator("#progress [data-progress=status_label]")).to_have_text("Sent")
    expect(page.locator("#campaign-actions button", has_text="Pause")).to_have_count(0)  # reloaded once done
    page.shots("sent")
    assert not page.js_errors


def test_a_view_only_user_sees_the_campaign_without_send_buttons(page, make_user, smtp_server):
    make_user("viewer", perms=("campaigns.view_campaign",))
    campaign = _campaign(status=Campaign.Status.PAUSED, last_error="The SMTP server refused the sender")
    login(page, "viewer", next_url=f"/campaigns/{campaign.pk}/")

    actions = page.locator("#campaign-actions")
    expect(actions.locator("a, button")).to_have_text(["Preview"])
    expect(page.locator("#sending-error")).to_contain_text("refused the sender")
    page.shots("campaign")
    actions.locator("text=Preview").click()
    expect(page.locator("#preview-subject")).to_have_text("News for Ann <Admin>")
    expect(page.locator("#test-send")).to_have_count(0)
    page.shots("preview")
    response = page.request.get(f"/campaigns/{campaign.pk}/send/")
    assert response.status == 403
    assert smtp_server.received == []

    page.goto("/admin/campaigns/campaign/")  # the campaign list names the error too
    expect(page.locator("#result_list")).to_contain_text("The SMTP server refused the sender")
    assert_no_horizontal_scroll(page)
    page.shots("campaign-list")
