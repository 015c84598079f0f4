"""The incident pages as operators use them (issue 14): a view-only user reads but cannot
resolve; resolving as real shows a preview first; raw notices are escaped."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from bounces.models import Bounce, Incident, IncidentCount
from contacts.models import Suppression

from .conftest import make_staff
from .helpers import IP_LISTED, USER_UNKNOWN, Maildir, make_campaign, notice, sent_to, spread

pytestmark = pytest.mark.django_db


def _open_incident(tmp_path, *, diagnostic=IP_LISTED, status="5.7.1", n=30, domain="gmail.com"):
    campaign = make_campaign()
    maildir = Maildir(tmp_path)
    for i, at in enumerate(spread(n, minutes=5)):
        maildir.drop(notice(sent_to(campaign, f"x{i}<b>@{domain}"), diagnostic=diagnostic, status=status, at=at))
    maildir.run()
    return Incident.objects.get()


def test_a_view_only_user_reads_the_incident_but_cannot_resolve_it(tmp_path, client):
    incident = _open_incident(tmp_path, diagnostic=IP_LISTED + " <script>alert(1)</script>")
    client.force_login(make_staff("viewer", "bounces.view_incident", "bounces.view_bounce"))
    page = client.get(reverse("bounces:incident_detail", args=[incident.pk]))
    assert page.status_code == 200
    text = page.content.decode()
    assert "Blocked (blocklist)" in text and "provider group: google" in text.lower()
    assert "<script>alert(1)</script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "Our problem: release" not in text
    resolve = reverse("bounces:incident_resolve", args=[incident.pk])
    assert client.get(resolve + "?as=real").status_code == 403
    assert client.post(resolve, {"as": "ours"}).status_code == 403
    incident.refresh_from_db()
    assert incident.is_open
    assert client.get(reverse("bounces:incident_list")).status_code == 200

    client.force_login(make_staff("nobody"))
    assert client.get(reverse("bounces:incident_detail", args=[incident.pk])).status_code == 403


def test_resolving_as_real_shows_the_preview_then_applies(tmp_path, client, settings):
    settings.INCIDENT_BURST_MIN = 20
    # the guard has counted for a while (a burst is judged only after an hour of history)
    IncidentCount.objects.create(scope="domain:other.example", minute=timezone.now() - timedelta(hours=3),
                                 failed=1, total=1)
    incident = _open_incident(tmp_path, diagnostic=USER_UNKNOWN, status="5.1.1", n=25, domain="example.com")
    assert (incident.scope, incident.key, incident.trigger) == ("domain", "example.com", "burst")
    operator = make_staff("operator", "bounces.view_incident", "bounces.change_incident", "bounces.view_bounce")
    client.force_login(operator)
    resolve = reverse("bounces:incident_resolve", args=[incident.pk])
    preview = client.get(resolve + "?as=real").content.decode()
    assert "25 held bounces" in preview and "Apply the held bounces" in preview
    assert not Suppression.objects.exists()
    response = client.post(resolve, {"as": "real", "note": "a dead list"})
    assert response.status_code == 302
    incident.refresh_from_db()
    assert incident.status == Incident.Status.APPLIED and incident.resolved_by == operator
    assert Suppression.objects.count() == 25
    assert Bounce.objects.filter(incident=incident, state=Bounce.State.APPLIED).count() == 25
    # a second submit changes nothing
    client.post(resolve, {"as": "ours"})
    incident.refresh_from_db()
    assert incident.status == Incident.Status.APPLIED


def test_a_new_campaign_warns_of_open_incidents_before_sending(client):
    from campaigns.models import Campaign

    now = timezone.now()
    incident = Incident.objects.create(scope="provider", key="google", trigger="blocked", cause="blocklist",
                                       opened_at=now, window_start=now)
    campaign = make_campaign()
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.DRAFT)
    client.force_login(make_staff("sender", "campaigns.view_campaign", "campaigns.send_campaign"))
    page = client.get(reverse("campaigns:send", args=[campaign.pk])).content.decode()
    assert 'id="send-incidents"' in page and "Blocked (blocklist)" in page
    assert reverse("bounces:incident_detail", args=[incident.pk]) in page
    Incident.objects.filter(pk=incident.pk).update(status=Incident.Status.RELEASED)
    assert 'id="send-incidents"' not in client.get(reverse("campaigns:send", args=[campaign.pk])).content.decode()
