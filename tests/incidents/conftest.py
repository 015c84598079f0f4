"""Fixtures of the incidents tests: the real SMTP server on loopback, users with chosen permissions."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

from api import events
from api.auth import forget_permissions
from tests.servers.smtp import sending_to_test_smtp


@pytest.fixture
def smtp_server(settings):
    """A recording aiosmtpd on loopback; Django's SMTP backend (alerts and campaigns) points at it."""
    with sending_to_test_smtp(settings, BOUNCE_TRACKING_HEADER="X-Bouncemgr-Token",
                              BOUNCEMGR_ALERT_EMAILS=["ops@example.org"]) as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh_subscriptions(settings):
    """No cached webhook subscriptions or API permissions leak between tests; loopback receivers are allowed."""
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    events.forget_endpoints()
    forget_permissions()
    yield
    events.forget_endpoints()
    forget_permissions()


def make_staff(username: str, *perms: str):
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user(username=username, password="pw-for-tests-only", is_staff=True)
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return user


@pytest.fixture
def eager(monkeypatch):
    """Tasks sent by name (bouncemgr.queue) run at once, on the project's and Celery's current app."""
    from celery import current_app

    from bouncemgr.celery import app

    for conf in (app.conf, current_app.conf):
        monkeypatch.setattr(conf, "task_always_eager", True)
