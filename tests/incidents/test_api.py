"""The API's incident endpoints (issue 14): read-only, the owner's view permission, in the schema."""

from __future__ import annotations

import pytest
from django.utils import timezone

from api.models import ApiKey
from bounces.models import Bounce, Incident
from tests.api.conftest import key_client, make_user

pytestmark = pytest.mark.django_db


def _incident() -> Incident:
    now = timezone.now()
    incident = Incident.objects.create(scope="provider", key="google", trigger="blocked", cause="blocklist",
                                       opened_at=now, window_start=now, window_count=30, held_count=2)
    for i in range(2):
        Bounce.objects.create(recipient=f"a{i}@gmail.com", kind="blocked", reason="blocked", state="held",
                              diagnostic="550 5.7.1 blocked using zen.spamhaus.org", bounced_at=now, incident=incident)
    return incident


def test_incidents_are_listed_and_read_with_their_bounces_by_kind():
    incident = _incident()
    Incident.objects.create(scope="domain", key="example.com", trigger="burst", opened_at=timezone.now(),
                            window_start=timezone.now(), status=Incident.Status.RELEASED)
    client = key_client(make_user("reader", ["bounces.view_incident"]), ApiKey.Scope.READ)
    listed = client.get("/api/v1/incidents/?status=open").json()
    assert [row["id"] for row in listed["results"]] == [incident.pk]
    detail = client.get(f"/api/v1/incidents/{incident.pk}/").json()
    assert detail["key"] == "google" and detail["by_kind"] == {"blocked": 2} and detail["by_state"] == {"held": 2}
    assert detail["samples"][0]["n"] == 2


def test_incidents_need_the_view_permission_and_cannot_be_written():
    incident = _incident()
    client = key_client(make_user("nobody", []), ApiKey.Scope.WRITE)
    assert client.get("/api/v1/incidents/").status_code == 403
    writer = key_client(make_user("writer", ["bounces.view_incident", "bounces.change_incident"]), ApiKey.Scope.WRITE)
    assert writer.patch(f"/api/v1/incidents/{incident.pk}/", {"status": "released"}).status_code == 405
    incident.refresh_from_db()
    assert incident.is_open
