"""Alerts (issue 14 part 4): stored, mailed to staff through a real SMTP server after the
commit, emitted as an event, shown on the dashboard until acknowledged by someone who may."""

from __future__ import annotations

import pytest
from django.urls import reverse

from api.models import WebhookEndpoint, WebhookEvent
from bounces.incidents.alerts import raise_alert
from bounces.models import Alert

from .conftest import make_staff

pytestmark = pytest.mark.django_db


def test_an_alert_is_mailed_to_the_configured_addresses_after_the_commit(
    smtp_server, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        alert = raise_alert(kind=Alert.Kind.INCIDENT_OPENED, title="Blocked at gmail\nBcc: x@evil.example",
                            body="50 refusals in 10 minutes.", link="/bounces/incidents/1/")
    assert smtp_server.received == []  # nothing leaves before the commit
    for callback in callbacks:
        callback()
    [envelope] = smtp_server.received
    assert envelope.rcpt_tos == ("ops@example.org",)
    message = envelope.message
    assert message["Subject"].endswith("[Warning] Blocked at gmail Bcc: x@evil.example")  # one line
    assert "50 refusals in 10 minutes." in message.get_content()
    assert "/bounces/incidents/1/" in message.get_content()
    assert Alert.objects.get().pk == alert.pk


def test_without_a_configured_list_the_alert_goes_to_the_admins(smtp_server, settings,
                                                                 django_capture_on_commit_callbacks):
    settings.BOUNCEMGR_ALERT_EMAILS = []
    settings.ADMINS = [("Ops", "admin@example.org")]
    with django_capture_on_commit_callbacks(execute=True):
        raise_alert(kind=Alert.Kind.GUARDRAIL_WARNING, title="Campaign at 6 % bounces")
    assert [env.rcpt_tos for env in smtp_server.received] == [("admin@example.org",)]


def test_a_mail_server_that_is_down_keeps_the_alert(settings, django_capture_on_commit_callbacks):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2  # discard: refused
    settings.BOUNCEMGR_ALERT_EMAILS = ["ops@example.org"]
    with django_capture_on_commit_callbacks(execute=True):
        raise_alert(kind=Alert.Kind.CAMPAIGN_PAUSED, title="Campaign paused")
    assert Alert.objects.filter(title="Campaign paused").exists()


def test_an_alert_emits_its_event_for_subscribed_endpoints():
    WebhookEndpoint.objects.create(url="https://hooks.example.org/in", event_types=["incident.opened"])
    raise_alert(kind=Alert.Kind.INCIDENT_OPENED, title="Blocked at gmail", event_data={"incident_id": 7})
    raise_alert(kind=Alert.Kind.GUARDRAIL_WARNING, title="not subscribed")
    raise_alert(kind=Alert.Kind.INCIDENT_OPENED, title="emitted by its caller", emit=False)
    [event] = WebhookEvent.objects.all()
    assert event.type == "incident.opened"
    assert event.payload["incident_id"] == 7 and event.payload["title"] == "Blocked at gmail"


def test_the_banner_shows_until_acknowledged_and_a_view_only_user_cannot_acknowledge(client):
    alert = raise_alert(kind=Alert.Kind.INCIDENT_OPENED, title="Blocked <b>at</b> gmail",
                        link="/bounces/incidents/1/")
    viewer = make_staff("viewer", "bounces.view_alert")
    client.force_login(viewer)
    page = client.get(reverse("console:dashboard")).content.decode()
    assert "Blocked &lt;b&gt;at&lt;/b&gt; gmail" in page
    assert "Acknowledge" not in page
    client.post(reverse("bounces:alert_acknowledge", args=[alert.pk]))
    alert.refresh_from_db()
    assert alert.acknowledged_at is None

    operator = make_staff("operator", "bounces.view_alert", "bounces.change_alert")
    client.force_login(operator)
    assert "Acknowledge" in client.get(reverse("console:dashboard")).content.decode()
    response = client.post(reverse("bounces:alert_acknowledge", args=[alert.pk]), {"next": "https://evil.example/"})
    assert response.status_code == 302 and response["Location"] == reverse("console:dashboard")
    alert.refresh_from_db()
    assert alert.acknowledged_by == operator
    assert "gmail" not in client.get(reverse("console:dashboard")).content.decode()


def test_staff_without_the_view_permission_see_no_banner(client):
    raise_alert(kind=Alert.Kind.INCIDENT_OPENED, title="Blocked at gmail")
    client.force_login(make_staff("nobody"))
    assert "Blocked at gmail" not in client.get(reverse("console:dashboard")).content.decode()
