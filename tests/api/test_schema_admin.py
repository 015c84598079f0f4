"""The OpenAPI schema validates; the docs page; API keys made and revoked in the admin."""

from __future__ import annotations

import re

import pytest
from django.core.management import call_command

from api.models import ApiKey

from .conftest import make_user

pytestmark = pytest.mark.django_db


def test_the_openapi_schema_validates_without_warnings(tmp_path):
    out = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    text = out.read_text()
    for path in ("/api/v1/check", "/api/v1/bounces/{id}/", "/api/v1/suppressions/bulk/", "/api/v1/rules/test/",
                 "/api/v1/mailboxes/{id}/process/", "/api/v1/campaigns/{id}/"):
        assert f"{path}:" in text


def test_the_schema_and_docs_pages_are_served(read_client, staff_client):
    response = read_client.get("/api/v1/schema/?format=json")
    assert response.status_code == 200 and response.json()["info"]["title"] == "bouncemgr API"
    page = staff_client.get("/api/v1/docs/")
    assert page.status_code == 200 and b"/api/v1/check" in page.content and b"<script" not in page.content
    assert read_client.get("/api/v1/docs/").status_code == 200


def test_a_key_made_in_the_admin_is_shown_once_and_works(admin_client, admin_user):
    response = admin_client.post("/admin/api/apikey/add/", {"name": "CRM", "owner": admin_user.pk, "scope": "write"})
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    token = re.search(rb"bmk_[a-z0-9]{12}_[A-Za-z0-9_-]+", response.content).group().decode()
    key = ApiKey.objects.get()
    assert key.scope == "write" and key.owner == admin_user and token not in key.hashed_key
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert client.get("/api/v1/me/").json()["user"] == admin_user.username
    change = admin_client.get(f"/admin/api/apikey/{key.pk}/change/")
    assert token.encode() not in change.content
    admin_client.post("/admin/api/apikey/", {"action": "revoke", "_selected_action": [key.pk]})
    assert client.get("/api/v1/me/").status_code == 401


def test_staff_cannot_make_a_key_that_acts_as_someone_else(client, admin_user):
    staff = make_user("staff", ["api.add_apikey", "api.view_apikey"])
    client.force_login(staff)
    client.post("/admin/api/apikey/add/", {"name": "mine", "owner": admin_user.pk, "scope": "write"})
    assert not ApiKey.objects.filter(owner=admin_user).exists()
    client.post("/admin/api/apikey/add/", {"name": "mine", "owner": staff.pk, "scope": "read"})
    assert ApiKey.objects.get().owner == staff


def test_a_viewer_sees_endpoints_but_not_their_secret(client):
    from api.models import WebhookEndpoint

    endpoint = WebhookEndpoint.objects.create(url="https://hooks.example.org/in", event_types=["run.failed"])
    viewer = make_user("viewer", ["api.view_webhookendpoint"])
    client.force_login(viewer)
    page = client.get(f"/admin/api/webhookendpoint/{endpoint.pk}/change/")
    assert page.status_code == 200 and endpoint.secret.encode() not in page.content
