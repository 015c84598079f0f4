"""Every endpoint for every role: anonymous, revoked key, read-only key, read-write key, staff
session (the operator's permissions in each case)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from api.models import ApiKey
from bounces.models import ProcessingRun
from bounces.rules.models import BounceRule
from contacts.models import Suppression
from tests.factories import BounceFactory, CampaignFactory, ContactFactory, MailboxFactory

from .conftest import key_client

pytestmark = pytest.mark.django_db

READS = [
    "/api/v1/me/", "/api/v1/check?email=a@example.org", "/api/v1/bounces/", "/api/v1/bounces/{bounce}/",
    "/api/v1/contacts/", "/api/v1/contacts/{contact}/", "/api/v1/suppressions/", "/api/v1/suppressions/{suppression}/",
    "/api/v1/campaigns/", "/api/v1/campaigns/{campaign}/", "/api/v1/mailboxes/", "/api/v1/mailboxes/{mailbox}/",
    "/api/v1/mailboxes/{mailbox}/runs/", "/api/v1/runs/", "/api/v1/runs/{run}/", "/api/v1/rules/",
    "/api/v1/rules/{rule}/", "/api/v1/schema/", "/api/v1/docs/",
]
WRITES = [  # (method, url, body, status for a read-write key)
    ("post", "/api/v1/suppressions/", {"value": "new@example.org"}, 201),
    ("post", "/api/v1/suppressions/bulk/", {"action": "add", "values": ["b@example.org"]}, 200),
    ("post", "/api/v1/suppressions/bulk/", {"action": "release", "values": ["old@example.org"]}, 200),
    ("delete", "/api/v1/suppressions/{suppression}/", None, 204),
    ("post", "/api/v1/mailboxes/{mailbox}/process/", None, 202),
    ("post", "/api/v1/rules/", {"name": "r", "pattern": "quota"}, 201),
]
ROLES = ["anonymous", "revoked", "read", "write", "staff"]


@pytest.fixture
def objects(db, monkeypatch):
    from bounces.intake import schedules

    monkeypatch.setattr(schedules, "send_task", lambda *a, **k: None)  # "process now" queues nothing here
    mailbox = MailboxFactory()
    return {
        "bounce": BounceFactory(mailbox=mailbox).pk, "contact": ContactFactory().pk,
        "suppression": Suppression.objects.create(value="old@example.org").pk,
        "campaign": CampaignFactory().pk, "mailbox": mailbox.pk,
        "run": ProcessingRun.objects.create(mailbox=mailbox).pk,
        "rule": BounceRule.objects.create(name="full", pattern="mailbox full").pk,
    }


def client_for(role: str, operator) -> APIClient:
    if role == "anonymous":
        return APIClient()
    if role == "staff":
        client = APIClient()  # CSRF is checked in test_auth; here the permissions are
        client.force_login(operator)
        return client
    client = key_client(operator, ApiKey.Scope.READ if role == "read" else ApiKey.Scope.WRITE)
    if role == "revoked":
        ApiKey.objects.filter(owner=operator).update(revoked=True)
    return client


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("url", READS)
def test_reads(role, url, operator, objects):
    response = client_for(role, operator).get(url.format(**objects))
    expected = 401 if role in ("anonymous", "revoked") else 200
    assert response.status_code == expected, (role, url, response.content[:300])


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("method", "url", "body", "ok"), WRITES)
def test_writes(role, method, url, body, ok, operator, objects):
    response = getattr(client_for(role, operator), method)(url.format(**objects), body, format="json")
    expected = {"anonymous": 401, "revoked": 401, "read": 403}.get(role, ok)
    assert response.status_code == expected, (role, url, response.content[:300])
    if expected >= 400:
        assert set(response.json()["error"]) >= {"code", "message"}


@pytest.mark.parametrize("role", ROLES)
def test_testing_a_draft_rule_needs_only_read_access(role, operator, objects):
    response = client_for(role, operator).post("/api/v1/rules/test/", {"pattern": "full"}, format="json")
    assert response.status_code == (401 if role in ("anonymous", "revoked") else 200)
