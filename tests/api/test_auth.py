"""Who may call the API: anonymous, read-only key, read-write key, staff session, revoked key."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.utils import timezone

from api.models import ApiKey
from contacts.models import Suppression

from .conftest import key_client, make_user

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]  # raw SQL on both backends


def test_anonymous_gets_401_with_the_error_body(anon_client):
    response = anon_client.get("/api/v1/bounces/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("keyword", ["Bearer", "Token", "bearer"])
def test_a_key_works_with_bearer_or_token(operator, keyword):
    client = key_client(operator, ApiKey.Scope.READ, keyword=keyword)
    assert client.get("/api/v1/me/").json()["key"]["scope"] == "read"


def test_a_wrong_secret_with_a_real_prefix_is_refused(operator):
    client = key_client(operator, ApiKey.Scope.READ)
    forged = client.token[:-4] + ("aaaa" if not client.token.endswith("aaaa") else "bbbb")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {forged}")
    response = client.get("/api/v1/me/")
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Invalid API key."


def test_a_revoked_key_is_refused_at_once(revoked_client):
    response = revoked_client.get("/api/v1/bounces/")
    assert response.status_code == 401
    assert "revoked" in response.json()["error"]["message"]


def test_the_key_of_an_inactive_owner_is_refused(operator, read_client):
    operator.is_active = False
    operator.save(update_fields=["is_active"])
    assert read_client.get("/api/v1/me/").status_code == 401


def test_only_the_hash_of_the_token_is_stored(operator):
    client = key_client(operator, ApiKey.Scope.READ)
    key = ApiKey.objects.get(owner=operator)
    assert client.token not in (key.hashed_key, key.prefix)
    assert client.token.startswith(f"bmk_{key.prefix}_")


def test_last_used_is_written_at_most_once_a_minute(operator, django_assert_num_queries):
    from api import auth

    client = key_client(operator, ApiKey.Scope.READ)
    client.get("/api/v1/me/")
    first = ApiKey.objects.get(owner=operator).last_used_at
    assert first is not None
    with django_assert_num_queries(0):  # the verified key and its permissions are cached; no UPDATE
        client.get("/api/v1/me/")
    auth.forget_keys()  # as if API_KEY_CACHE_SECONDS had passed
    with django_assert_num_queries(1):  # the key and its owner; no UPDATE
        client.get("/api/v1/me/")
    assert ApiKey.objects.get(owner=operator).last_used_at == first
    ApiKey.objects.filter(owner=operator).update(last_used_at=timezone.now() - timezone.timedelta(minutes=5))
    auth.forget_keys()
    client.get("/api/v1/me/")
    assert ApiKey.objects.get(owner=operator).last_used_at > first


def test_a_key_revoked_in_the_admin_is_refused_at_once_though_it_was_just_used(operator, admin_client):
    client = key_client(operator, ApiKey.Scope.READ)
    assert client.get("/api/v1/me/").status_code == 200  # verified, so remembered for a few seconds
    key = ApiKey.objects.get(owner=operator)
    admin_client.post("/admin/api/apikey/", {"action": "revoke", "_selected_action": [key.pk]})
    assert ApiKey.objects.get(pk=key.pk).revoked
    response = client.get("/api/v1/me/")
    assert response.status_code == 401 and "revoked" in response.json()["error"]["message"]


def test_a_remembered_key_lapses_after_its_seconds(operator, settings):
    from api import auth

    settings.API_KEY_CACHE_SECONDS = 600  # long enough for a slow machine; the lapse is simulated below
    client = key_client(operator, ApiKey.Scope.READ)
    assert client.get("/api/v1/me/").status_code == 200
    ApiKey.objects.filter(owner=operator).update(revoked=True)  # another server process revoked it
    assert client.get("/api/v1/me/").status_code == 200  # within the seconds, as documented
    expires, values, owner = auth._keys[next(iter(auth._keys))]
    auth._keys[next(iter(auth._keys))] = (0.0, values, owner)  # as if the seconds had passed
    assert client.get("/api/v1/me/").status_code == 401


def test_with_no_key_cache_every_request_checks_the_database(operator, settings):
    settings.API_KEY_CACHE_SECONDS = 0
    client = key_client(operator, ApiKey.Scope.READ)
    assert client.get("/api/v1/me/").status_code == 200
    ApiKey.objects.filter(owner=operator).update(revoked=True)
    assert client.get("/api/v1/me/").status_code == 401


def test_a_wrong_secret_is_refused_even_when_the_real_key_is_remembered(operator):
    client = key_client(operator, ApiKey.Scope.READ)
    assert client.get("/api/v1/me/").status_code == 200
    forged = client.token[:-4] + ("aaaa" if not client.token.endswith("aaaa") else "bbbb")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {forged}")
    assert client.get("/api/v1/me/").status_code == 401


def test_a_read_only_key_cannot_write(read_client):
    response = read_client.post("/api/v1/suppressions/", {"value": "a@example.org"}, format="json")
    assert response.status_code == 403
    assert response.json()["error"] == {"code": "permission_denied", "message": "This API key is read-only."}
    assert not Suppression.objects.exists()


def test_a_read_write_key_is_still_bound_by_its_owners_permissions(db):
    viewer = make_user("viewer", ["contacts.view_suppression"])
    client = key_client(viewer, ApiKey.Scope.WRITE)
    assert client.get("/api/v1/suppressions/").status_code == 200
    response = client.post("/api/v1/suppressions/", {"value": "a@example.org"}, format="json")
    assert response.status_code == 403
    assert "contacts.add_suppression" in response.json()["error"]["message"]
    assert client.get("/api/v1/bounces/").status_code == 403


def test_a_staff_session_works_and_needs_csrf_for_writes(staff_client):
    assert staff_client.get("/api/v1/suppressions/").status_code == 200
    response = staff_client.post("/api/v1/suppressions/", {"value": "a@example.org"}, format="json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["error"]["message"]


def test_a_non_staff_session_is_anonymous(db):
    from rest_framework.test import APIClient

    user = make_user("customer", ["contacts.view_suppression"], staff=False)
    client = APIClient()
    client.force_login(user)
    assert client.get("/api/v1/suppressions/").status_code == 401


def test_throttling_answers_429_with_retry_after(monkeypatch, operator):
    from django.core.cache import cache

    from api.throttling import ApiRateThrottle

    cache.clear()
    monkeypatch.setattr(ApiRateThrottle, "THROTTLE_RATES", {"api": "3/min"})
    try:
        client = key_client(operator, ApiKey.Scope.READ)
        # mid-window, so the four requests share one (the counter is a fixed one-minute window)
        traveller = time_machine.travel(dt.datetime(2026, 12, 6, 12, 0, 20, tzinfo=dt.UTC), tick=False)
        traveller.start()
        codes = [client.get("/api/v1/me/").status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        response = client.get("/api/v1/me/")
        body = response.json()["error"]
        assert body["code"] == "throttled" and body["details"]["retry_after_seconds"] > 0
        assert int(response["Retry-After"]) == 40
        traveller.stop()
    finally:
        cache.clear()


def test_a_permission_taken_away_applies_to_keys_within_seconds(operator, read_client):
    from django.contrib.auth.models import Permission

    from api import auth

    assert read_client.get("/api/v1/suppressions/").status_code == 200
    operator.user_permissions.remove(Permission.objects.get(codename="view_suppression"))
    auth._perms[operator.pk] = (0.0, auth._perms[operator.pk][1])  # as if PERMISSIONS_TTL had passed
    assert read_client.get("/api/v1/suppressions/").status_code == 403
