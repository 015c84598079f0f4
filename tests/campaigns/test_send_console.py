"""The campaign page as an operator uses it before and while sending: preview with a real
recipient, test send through the real SMTP server, the confirmation with counts and skips,
send, progress, errors shown and cleared, and what a view-only user may do."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from campaigns.models import Campaign, SentMessage
from campaigns.tasks import send_campaign_task
from contacts.models import Contact, Subscription, Suppression

from .conftest import make_campaign, make_list, subscribe

pytestmark = pytest.mark.django_db


def staff(django_user_model, username: str, *codenames: str) -> Client:
    user = django_user_model.objects.create_user(username=username, password="x", is_staff=True,
                                                 email=f"{username}@example.org")
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="campaigns",
                                                        codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def operator(django_user_model) -> Client:
    return staff(django_user_model, "operator", "view_campaign", "change_campaign", "send_campaign")


@pytest.fixture
def viewer(django_user_model) -> Client:
    return staff(django_user_model, "viewer", "view_campaign")


@pytest.fixture
def eager(monkeypatch):
    monkeypatch.setattr(send_campaign_task.app.conf, "task_always_eager", True)


def news(settings, **kw) -> Campaign:
    settings.CAMPAIGN_LIST_UNSUBSCRIBE = "https://bm.example.org/unsubscribe/{token}/"
    mailing_list = make_list("News")
    ann, bob = subscribe(mailing_list, "ann@example.com", "bob@example.com")
    ann.name = '<b>Ann</b> "A" & co'
    ann.save(update_fields=["name"])
    fields = {"status": Campaign.Status.DRAFT, "subject": "Hello {{ name }}",
              "body_text": "Dear {{ name|default:'reader' }}, leave: {{ unsubscribe_url }}",
              "body_html": "<p>Dear {{ name }}</p>"}
    fields.update(kw)
    return make_campaign(mailing_list, **fields)


def test_the_preview_shows_the_message_of_a_chosen_recipient_escaped(operator, settings, smtp_server):
    campaign = news(settings)
    ann = Contact.objects.get(email="ann@example.com")

    html = operator.get(reverse("campaigns:preview", args=[campaign.pk]), {"contact": ann.pk}).content.decode()

    assert "Hello &lt;b&gt;Ann&lt;/b&gt; &quot;A&quot; &amp; co" in html  # subject, escaped in the page
    assert "<b>Ann</b>" not in html
    assert "https://bm.example.org/unsubscribe/preview-" in html  # a token no recipient has
    assert "List-Unsubscribe-Post" in html and "ann@example.com" in html
    # the HTML body is rendered only inside a sandboxed frame (escaped in srcdoc) and as source
    assert 'sandbox=""' in html and "&lt;p&gt;Dear &amp;lt;b&amp;gt;Ann" in html
    assert not SentMessage.objects.exists()


def test_the_preview_offers_only_the_campaigns_recipients(operator, settings, smtp_server):
    campaign = news(settings)
    stranger = Contact.objects.create(email="stranger@example.com", name="Stranger")

    response = operator.get(reverse("campaigns:preview", args=[campaign.pk]), {"contact": stranger.pk})

    assert response.context["contact"].email == "ann@example.com"  # not on the list: the first recipient
    found = operator.get(reverse("campaigns:preview", args=[campaign.pk]), {"q": "bob"})
    assert [c.email for c in found.context["choices"]] == ["bob@example.com"]


def test_a_test_send_reaches_the_smtp_server_and_is_not_a_campaign_send(operator, settings, smtp_server):
    campaign = news(settings)
    ann = Contact.objects.get(email="ann@example.com")

    response = operator.post(reverse("campaigns:test_send", args=[campaign.pk]),
                             {"to": "me@example.org", "contact": ann.pk}, follow=True)

    assert "Test message sent to me@example.org" in response.content.decode()
    [got] = smtp_server.received
    assert got.rcpt_tos == ("me@example.org",)
    assert got.mail_from == "bounces@return.example.net"  # no VERP token of a recipient
    message = got.message
    assert message["Subject"] == '[Test] Hello <b>Ann</b> "A" & co'
    assert message["X-Bouncemgr-Token"] is None
    assert "/unsubscribe/preview-" in message["List-Unsubscribe"]
    campaign.refresh_from_db()
    assert not SentMessage.objects.exists()
    assert (campaign.status, campaign.sent_count) == (Campaign.Status.DRAFT, 0)


def test_a_refused_test_send_says_why(operator, settings, smtp_server):
    campaign = news(settings)
    smtp_server.refuse("me@example.org", "550 5.1.1 no such user")

    response = operator.post(reverse("campaigns:test_send", args=[campaign.pk]), {"to": "me@example.org"},
                             follow=True)

    assert "The test message was not sent. The SMTP server refused me@example.org: 550" in response.content.decode()


def test_the_confirmation_counts_recipients_and_lists_skips_with_reasons(operator, settings, smtp_server):
    campaign = news(settings)
    mailing_list = campaign.mailing_list
    subscribe(mailing_list, "sup@example.com", "dom@blocked.example")
    Suppression.objects.create(kind=Suppression.Kind.ADDRESS, value="sup@example.com")
    Suppression.objects.create(kind=Suppression.Kind.DOMAIN, value="blocked.example")
    [gone] = subscribe(mailing_list, "gone@example.com")
    Contact.objects.filter(pk=gone.pk).update(has_bounced=True)
    subscribe(mailing_list, "left@example.com", status=Subscription.Status.UNSUBSCRIBED)  # not considered
    [bounced_out] = subscribe(mailing_list, "full@example.com", status=Subscription.Status.UNSUBSCRIBED)
    Subscription.objects.filter(contact=bounced_out).update(unsubscribe_reason="soft_bounce")

    response = operator.get(reverse("campaigns:send", args=[campaign.pk]))

    summary = response.context["summary"]
    assert (summary.total, summary.skipped) == (2, 4)
    assert dict(summary.by_reason) == {"Address suppressed": 2, "Hard-bounced": 1,
                                       "Unsubscribed from this list by a bounce": 1}
    html = response.content.decode()
    assert "Send to 2 recipients" in html and "dom@blocked.example" in html
    assert smtp_server.received == [] and not SentMessage.objects.exists()


def test_confirming_sends_and_the_page_shows_the_progress(operator, settings, smtp_server, eager,
                                                           django_capture_on_commit_callbacks):
    campaign = news(settings)
    subscribe(campaign.mailing_list, "sup@example.com")
    Suppression.objects.create(kind=Suppression.Kind.ADDRESS, value="sup@example.com")

    with django_capture_on_commit_callbacks(execute=True):
        response = operator.post(reverse("campaigns:send", args=[campaign.pk]), follow=True)

    assert response.redirect_chain[-1][0] == reverse("campaigns:results", args=[campaign.pk])
    assert sorted(e.rcpt_tos[0] for e in smtp_server.received) == ["ann@example.com", "bob@example.com"]
    progress = json.loads(operator.get(reverse("campaigns:progress", args=[campaign.pk])).content)
    assert progress == {"status": "sent", "status_label": "Sent", "sent": 2, "failed": 0, "deferred": 0,
                        "skipped": 1, "pending": 0, "in_flight": 0, "last_error": "", "active": False}
    html = operator.get(reverse("campaigns:results", args=[campaign.pk])).content.decode()
    assert 'data-progress="sent">2<' in html and 'data-progress="skipped">1<' in html
    assert "campaigns/progress.js" in html and 'data-active="0"' in html


def test_progress_counts_pending_while_a_campaign_is_paused_half_way(operator, settings, smtp_server):
    campaign = news(settings, status=Campaign.Status.PAUSED, sent_count=1)
    ann = Contact.objects.get(email="ann@example.com")
    SentMessage.objects.create(campaign=campaign, contact=ann, email=ann.email, message_id="a@x",
                               status=SentMessage.Status.SENT)

    progress = json.loads(operator.get(reverse("campaigns:progress", args=[campaign.pk])).content)

    assert (progress["sent"], progress["pending"], progress["active"]) == (1, 1, False)
    html = operator.get(reverse("campaigns:results", args=[campaign.pk])).content.decode()
    assert "Resume sending…" in html


def test_a_sending_error_shows_on_the_list_and_the_page_and_a_later_success_clears_it(
    operator, settings, smtp_server, eager, django_capture_on_commit_callbacks
):
    from django.contrib.auth.models import User

    campaign = news(settings)
    smtp_server.refuse_sender("451 4.3.0 try again later")
    with django_capture_on_commit_callbacks(execute=True):
        operator.post(reverse("campaigns:send", args=[campaign.pk]))
    campaign.refresh_from_db()
    assert "refused the sender" in campaign.last_error
    superuser = Client()
    superuser.force_login(User.objects.create_superuser("root", "root@example.org", "x"))
    listing = superuser.get(reverse("admin:campaigns_campaign_changelist")).content.decode()
    assert "451 4.3.0 try again later" in listing
    page = operator.get(reverse("campaigns:results", args=[campaign.pk])).content.decode()
    assert "Last sending error" in page and "451 4.3.0 try again later" in page

    smtp_server.refuse_sender(None)  # the server takes mail again: the task's retry succeeds
    send_campaign_task.apply(args=[campaign.pk])

    campaign.refresh_from_db()
    assert (campaign.status, campaign.sent_count, campaign.last_error) == (Campaign.Status.SENT, 2, "")
    assert "try again later" not in superuser.get(reverse("admin:campaigns_campaign_changelist")).content.decode()
    assert "try again later" not in operator.get(reverse("campaigns:results", args=[campaign.pk])).content.decode()


def test_a_view_only_user_sees_no_send_buttons_and_cannot_post(viewer, settings, smtp_server, eager,
                                                                django_capture_on_commit_callbacks):
    campaign = news(settings, status=Campaign.Status.SENDING)

    page = viewer.get(reverse("campaigns:results", args=[campaign.pk])).content.decode()
    preview = viewer.get(reverse("campaigns:preview", args=[campaign.pk])).content.decode()

    assert "Preview" in page
    for button in ("Send a test", "Send…", "Resume sending", ">Pause<", 'action="/campaigns/'):
        assert button not in page
    assert "Send test" not in preview and "test-send" not in preview
    with django_capture_on_commit_callbacks(execute=True):
        assert viewer.post(reverse("campaigns:send", args=[campaign.pk])).status_code == 403
        assert viewer.get(reverse("campaigns:send", args=[campaign.pk])).status_code == 403
        assert viewer.post(reverse("campaigns:test_send", args=[campaign.pk]), {"to": "me@example.org"}
                           ).status_code == 403
        assert viewer.post(reverse("campaigns:pause", args=[campaign.pk])).status_code == 403
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENDING
    assert smtp_server.received == [] and not SentMessage.objects.exists()
    assert viewer.get(reverse("campaigns:progress", args=[campaign.pk])).status_code == 200


def test_pause_stops_a_sending_campaign(operator, settings, smtp_server):
    campaign = news(settings, status=Campaign.Status.SENDING)

    response = operator.post(reverse("campaigns:pause", args=[campaign.pk]), follow=True)

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED
    assert "paused" in response.content.decode()


def test_the_confirmation_counts_recipients_an_open_incident_holds(operator, settings, smtp_server):
    from django.utils import timezone

    from bounces.incidents.models import Incident

    campaign = news(settings)
    subscribe(campaign.mailing_list, "carl@held.example", "dora@held.example")
    now = timezone.now()
    Incident.objects.create(scope=Incident.Scope.DOMAIN, key="held.example", trigger=Incident.Trigger.BLOCKED,
                            opened_at=now, window_start=now)

    response = operator.get(reverse("campaigns:send", args=[campaign.pk]))

    summary = response.context["summary"]
    assert (summary.total, summary.held, summary.skipped) == (4, 2, 0)
    assert 'data-summary="held">2<' in response.content.decode()
