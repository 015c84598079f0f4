"""Guardrail thresholds: site-wide defaults from settings, edited in the admin; a campaign's own
override; who may edit them; what is counted (held bounces are not)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from bounces.models import Bounce
from campaigns import guardrails, services
from campaigns.models import Campaign, CampaignGuardrail, GuardrailCount, GuardrailSettings

from .conftest import campaign_to, staff
from .test_pause_scenarios import _eager_and_alerts, alerts, news, refuse  # noqa: F401 - fixture

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def test_the_site_wide_defaults_come_from_settings_until_the_admin_row_exists(settings):
    GuardrailSettings.objects.all().delete()
    settings.GUARDRAIL_BOUNCE_PAUSE_PERCENT = "8"
    settings.GUARDRAIL_MIN_SENT = 250
    row = guardrails.site_settings()
    assert (row.min_sent, row.bounce_pause_percent, row.complaint_pause_percent) == (250, Decimal("8"), Decimal("0.5"))
    assert row.pk is None  # reading never writes
    site_row()
    settings.GUARDRAIL_MIN_SENT = 5  # later changes belong to the admin's row
    assert guardrails.site_settings().min_sent == 250
    limits = guardrails.thresholds(guardrail=CampaignGuardrail(min_sent=120, bounce_warn_percent=Decimal("2")))
    assert (limits.min_sent, limits.bounce_warn, limits.bounce_pause) == (120, Decimal("2"), Decimal("8"))


def site_row() -> GuardrailSettings:
    """The admin's row (migration 0008 makes it; a transactional test may have flushed it)."""
    return GuardrailSettings.objects.first() or GuardrailSettings.objects.create(**guardrails.initial_values())


def test_a_view_only_user_cannot_edit_the_thresholds(client):
    row = site_row()
    viewer = staff("campaigns.view_guardrailsettings", "campaigns.view_campaign")
    client.force_login(viewer)
    url = reverse("admin:campaigns_guardrailsettings_change", args=[row.pk])
    page = client.get(url)
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    data = {"min_sent": 1, "bounce_warn_percent": 1, "bounce_pause_percent": 1, "complaint_warn_percent": 1,
            "complaint_pause_percent": 1, "sending_window_hours": 1}
    assert client.post(url, data).status_code == 403
    assert GuardrailSettings.objects.get().min_sent == 100

    campaign = campaign_to(["a@example.org"])
    change = reverse("admin:campaigns_campaign_change", args=[campaign.pk])
    assert client.post(change, {**_campaign_form(campaign), "guardrail-0-bounce_pause_percent": "50"}).status_code \
        == 403
    assert not CampaignGuardrail.objects.filter(campaign=campaign, bounce_pause_percent__isnull=False).exists()
    assert client.post(reverse("campaigns:resume", args=[campaign.pk])).status_code == 403


def _campaign_form(campaign: Campaign) -> dict:
    return {
        "name": campaign.name, "mailing_list": campaign.mailing_list_id, "from_email": campaign.from_email,
        "subject": campaign.subject, "body_text": campaign.body_text, "body_html": "",
        "guardrail-TOTAL_FORMS": "1", "guardrail-INITIAL_FORMS": "0", "guardrail-MIN_NUM_FORMS": "0",
        "guardrail-MAX_NUM_FORMS": "1", "guardrail-0-campaign": campaign.pk,
    }


def test_an_operator_raises_one_campaigns_pause_threshold_and_it_only_warns(
        smtp_server, client, django_capture_on_commit_callbacks):
    addresses = [f"own{i:03}@example.org" for i in range(150)]
    refuse(smtp_server, addresses[:12])
    campaign = campaign_to(addresses)
    editor = staff("campaigns.view_campaign", "campaigns.change_campaign")
    client.force_login(editor)
    response = client.post(reverse("admin:campaigns_campaign_change", args=[campaign.pk]),
                           {**_campaign_form(campaign), "guardrail-0-bounce_pause_percent": "20"})
    assert response.status_code == 302, response.content.decode()[:3000]
    assert CampaignGuardrail.objects.get(campaign=campaign).bounce_pause_percent == Decimal("20")

    with django_capture_on_commit_callbacks(execute=True):
        services.send_campaign(campaign_id=campaign.pk)

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENT
    assert not alerts("campaign.paused")
    [warning] = alerts("guardrail.warning")
    assert "12.00 % (12 of 100 sent)" in warning.title


def test_the_site_wide_threshold_edited_in_the_admin_applies(smtp_server, client, django_capture_on_commit_callbacks):
    row = site_row()
    admin_user = staff("campaigns.view_guardrailsettings", "campaigns.change_guardrailsettings")
    client.force_login(admin_user)
    response = client.post(reverse("admin:campaigns_guardrailsettings_change", args=[row.pk]), {
        "min_sent": 50, "bounce_warn_percent": "5", "bounce_pause_percent": "10", "complaint_warn_percent": "0.1",
        "complaint_pause_percent": "0.5", "sending_window_hours": 24})
    assert response.status_code == 302
    addresses = [f"site{i:03}@example.org" for i in range(100)]
    refuse(smtp_server, addresses[:6])
    campaign = campaign_to(addresses)

    with django_capture_on_commit_callbacks(execute=True):
        services.send_campaign(campaign_id=campaign.pk)

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED  # 6 of 50 = 12 %, acted on from 50 sent now
    assert "(6 of 50 sent)" in CampaignGuardrail.objects.get(campaign=campaign).pause_reason
    assert len(news(smtp_server)) == 44


def test_bounces_held_by_an_open_incident_are_not_counted():
    campaign = campaign_to([f"h{i}@example.org" for i in range(3)], status=Campaign.Status.SENDING)
    now = timezone.now()
    held = [Bounce(campaign_id=campaign.pk, recipient=f"h{i}@example.org", kind=Bounce.Kind.BLOCKED,
                   state=guardrails.HELD_STATE, bounced_at=now) for i in range(3)]
    guardrails.note_recorded_bounces(bounces=held)
    assert not GuardrailCount.objects.filter(bounced__gt=0).exists()
    counted = [Bounce(campaign_id=campaign.pk, recipient="h0@example.org", kind=Bounce.Kind.HARD,
                      state=Bounce.State.APPLIED, bounced_at=now),
               Bounce(campaign_id=campaign.pk, recipient="h1@example.org", kind=Bounce.Kind.COMPLAINT,
                      state=Bounce.State.APPLIED, bounced_at=now),
               Bounce(campaign_id=campaign.pk, recipient="h2@example.org", kind=Bounce.Kind.SOFT,
                      state=Bounce.State.APPLIED, bounced_at=now)]
    guardrails.note_recorded_bounces(bounces=counted)
    row = GuardrailCount.objects.get(campaign=campaign, scope=GuardrailCount.Scope.CAMPAIGN)
    assert (row.bounced, row.complained) == (1, 1)
    sending = GuardrailCount.objects.get(scope=GuardrailCount.Scope.SENDING, key="example.com")
    assert (sending.bounced, sending.complained) == (1, 1)
    assert GuardrailCount.objects.get(campaign=campaign, key="example.org").bounced == 1


def test_the_sending_domain_counts_all_its_campaigns(smtp_server, django_capture_on_commit_callbacks):
    # two campaigns from news@example.com: 7 of 60 refused each; 14 of 120 (11.7 %) for the
    # sending domain, while neither campaign reached 100 sent
    first = [f"one{i:02}@example.org" for i in range(60)]
    second = [f"two{i:02}@example.net" for i in range(60)]
    refuse(smtp_server, first[:7] + second[:7])
    a, b = campaign_to(first), campaign_to(second)
    with django_capture_on_commit_callbacks(execute=True):
        services.send_campaign(campaign_id=a.pk)
        services.send_campaign(campaign_id=b.pk)
    a.refresh_from_db()
    b.refresh_from_db()
    assert a.status == Campaign.Status.SENT
    assert b.status == Campaign.Status.PAUSED
    reason = CampaignGuardrail.objects.get(campaign=b).pause_reason
    assert "(14 of 110 sent) for the sending domain example.com" in reason  # checked after its first batch


def test_a_warning_then_a_pause_are_api_events_with_the_figures(smtp_server, django_capture_on_commit_callbacks):
    from api.events import forget_endpoints
    from api.models import WebhookEndpoint, WebhookEvent

    WebhookEndpoint.objects.create(url="https://127.0.0.1:9/hook", event_types=["campaign.paused",
                                                                               "guardrail.warning"])
    forget_endpoints()
    addresses = [f"ev{i:03}@example.org" for i in range(200)]
    refuse(smtp_server, addresses[:6] + addresses[100:110])  # 6 % at 100 sent; 10 % at the 5th refusal after
    campaign = campaign_to(addresses)

    with django_capture_on_commit_callbacks(execute=False):  # no delivery attempts: the events are the point
        services.send_campaign(campaign_id=campaign.pk)
    forget_endpoints()

    events = [(e.type, e.payload) for e in WebhookEvent.objects.order_by("id")]
    assert [t for t, _ in events] == ["guardrail.warning", "campaign.paused"]
    warning, paused = events[0][1], events[1][1]
    assert warning["campaign_id"] == campaign.pk and warning["measure"] == "bounce"
    assert (warning["sent"], warning["bounced"], warning["percent"]) == (100, 6, "6.00")
    assert paused["cause"] == "guardrail" and paused["scope"] == "campaign" and paused["measure"] == "bounce"
    assert (paused["sent"], paused["bounced"], paused["percent"]) == (105, 11, "10.48")  # checked at the refusal
