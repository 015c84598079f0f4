"""Fixtures of the API tests: users with chosen permissions, API keys, clients per role."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from api import events, services
from api.auth import forget_keys, forget_permissions
from api.models import ApiKey, WebhookEndpoint
from tests.api.receiver import Behaviour, Receiver

# What the "operator" role may do: everything the API offers.
OPERATOR_PERMS = [
    "contacts.view_contact", "contacts.view_suppression", "contacts.add_suppression",
    "contacts.delete_suppression", "contacts.release_suppression", "bounces.view_bounce", "bounces.view_mailbox",
    "bounces.change_mailbox", "bounces.process_mailbox",
    "bounces.view_processingrun", "bounces.view_bouncerule", "bounces.add_bouncerule",
    "campaigns.view_campaign",
]


@pytest.fixture(autouse=True)
def _fresh_subscriptions(settings):
    """No cached endpoint subscriptions leak between tests; loopback receivers are allowed."""
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    settings.WEBHOOK_TIMEOUT = 3.0
    events.forget_endpoints()
    forget_permissions()
    forget_keys()
    yield
    events.forget_endpoints()
    forget_permissions()
    forget_keys()


def make_user(username: str, perms: list[str], *, staff: bool = True):
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user(username=username, password="pw-for-tests-only", is_staff=staff)
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return user


@pytest.fixture
def operator(db):
    return make_user("operator", OPERATOR_PERMS)


def key_client(user, scope: str, *, keyword: str = "Bearer") -> APIClient:
    _, token = services.create_api_key(name=f"{scope} key", owner=user, scope=scope)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"{keyword} {token}")
    client.token = token  # type: ignore[attr-defined]
    return client


@pytest.fixture
def read_client(operator) -> APIClient:
    return key_client(operator, ApiKey.Scope.READ)


@pytest.fixture
def write_client(operator) -> APIClient:
    return key_client(operator, ApiKey.Scope.WRITE)


@pytest.fixture
def revoked_client(operator) -> APIClient:
    client = key_client(operator, ApiKey.Scope.WRITE)
    services.revoke_api_keys(key_ids=list(ApiKey.objects.filter(owner=operator).values_list("pk", flat=True)))
    return client


@pytest.fixture
def staff_client(operator) -> APIClient:
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(operator)
    return client


@pytest.fixture
def anon_client() -> APIClient:
    return APIClient()


@pytest.fixture
def receiver():
    with Receiver() as server:
        yield server


def make_endpoint(url: str, types: list[str] | None = None, **kw) -> WebhookEndpoint:
    endpoint = WebhookEndpoint.objects.create(url=url, event_types=types or ["bounce.recorded"], **kw)
    services.endpoints_changed()
    return endpoint


__all__ = ["Behaviour", "Receiver", "make_endpoint", "make_user", "key_client"]
