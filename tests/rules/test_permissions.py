"""Rule pages that rewrite or delete data ask for the permissions those changes need."""

from __future__ import annotations

import io
import json

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from bounces.rules.models import BounceRule

pytestmark = pytest.mark.django_db


def staff(django_user_model, client, *codenames):
    name = f"op{django_user_model.objects.count()}"
    user = django_user_model.objects.create_user(name, password="pw-op-123456", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client.force_login(user)
    return client


def rules_file() -> io.BytesIO:
    payload = {"version": 1, "rules": [{"name": "n", "pattern": "mailbox unavailable", "bounce_type": "hard"}]}
    f = io.BytesIO(json.dumps(payload).encode())
    f.name = "rules.json"
    return f


def test_replacing_all_rules_by_import_needs_the_delete_permission(client, django_user_model):
    BounceRule.objects.create(name="keep me", pattern="over quota")
    c = staff(django_user_model, client, "add_bouncerule", "view_bouncerule", "change_bouncerule")
    response = c.post(reverse("bounces:rule_import"), {"file": rules_file(), "replace": "on"})
    assert response.status_code == 200
    assert "permission to delete rules" in response.content.decode()
    assert BounceRule.objects.filter(name="keep me").exists()


def test_re_applying_rules_needs_the_apply_rules_permission(client, django_user_model):
    c = staff(django_user_model, client, "change_bouncerule", "view_bouncerule", "change_bounce")
    assert c.get(reverse("bounces:rule_reapply")).status_code == 403
    c = staff(django_user_model, client.__class__(), "view_bouncerule", "apply_bouncerule")
    assert c.get(reverse("bounces:rule_reapply")).status_code == 200
