"""A fresh instance: admin login, admin pages for every model, secrets handling."""

from __future__ import annotations

import io

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_setup_instance_creates_one_admin_with_a_random_password(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    first, second = io.StringIO(), io.StringIO()
    call_command("setup_instance", stdout=first)
    call_command("setup_instance", stdout=second)
    users = get_user_model().objects.filter(is_superuser=True)
    assert users.count() == 1
    saved = (tmp_path / "admin-password.txt").read_text()
    password = saved.split("password ")[1].strip()
    assert len(password) >= 12 and password in first.getvalue()
    assert users.get().check_password(password)
    assert (tmp_path / "admin-password.txt").stat().st_mode & 0o077 == 0


def test_the_admin_password_is_printed_once_and_then_only_where_it_is_kept(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    first, second = io.StringIO(), io.StringIO()
    call_command("setup_instance", stdout=first)
    call_command("setup_instance", stdout=second)
    password = (tmp_path / "admin-password.txt").read_text().split("password ")[1].strip()
    assert password in first.getvalue()
    assert password not in second.getvalue()
    assert str(tmp_path / "admin-password.txt") in second.getvalue()


def test_two_instances_get_different_admin_passwords(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    call_command("setup_instance", stdout=io.StringIO())
    one = (tmp_path / "admin-password.txt").read_text()
    get_user_model().objects.all().delete()
    (tmp_path / "admin-password.txt").unlink()
    call_command("setup_instance", stdout=io.StringIO())
    assert (tmp_path / "admin-password.txt").read_text() != one


def test_every_model_has_a_working_admin_list_and_add_page(admin_client):
    for model, model_admin in admin.site._registry.items():
        info = (model._meta.app_label, model._meta.model_name)
        response = admin_client.get(reverse("admin:{}_{}_changelist".format(*info)), follow=True)
        assert response.status_code == 200, info
        if model_admin.has_add_permission(response.wsgi_request):
            assert admin_client.get(reverse("admin:{}_{}_add".format(*info))).status_code == 200, info


def test_the_admin_shows_every_project_model(admin_client):
    from django.apps import apps

    registered = set(admin.site._registry)
    for label in ("contacts", "campaigns", "bounces"):
        for model in apps.get_app_config(label).get_models():
            assert model in registered, model


def test_the_mailbox_form_never_renders_the_stored_password(admin_client):
    from bounces.models import Mailbox

    mailbox = Mailbox.objects.create(name="m", host="imap.example.com", username="u", password="hunter2-secret")
    page = admin_client.get(reverse("admin:bounces_mailbox_change", args=[mailbox.pk])).content.decode()
    assert "hunter2-secret" not in page
    assert "fernet:" not in page


def test_a_missing_encryption_key_is_a_clear_error(settings):
    from bouncemgr import crypto

    settings.FIELD_ENCRYPTION_KEYS = []
    with pytest.raises(ImproperlyConfigured, match="FIELD_ENCRYPTION_KEY"):
        crypto.encrypt("x")


def test_rotated_keys_still_decrypt_old_secrets(settings):
    from bouncemgr import crypto

    old = crypto.generate_key()
    settings.FIELD_ENCRYPTION_KEYS = [old]
    stored = crypto.encrypt("pw")
    settings.FIELD_ENCRYPTION_KEYS = [crypto.generate_key(), old]
    assert crypto.decrypt(stored) == "pw"
    settings.FIELD_ENCRYPTION_KEYS = [settings.FIELD_ENCRYPTION_KEYS[0]]
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(stored)


def test_health_check_answers(client):
    assert client.get("/healthz", secure=True).json() == {"status": "ok"}


def test_rotate_encryption_key_re_encrypts_stored_passwords_with_the_new_key(settings):
    from bouncemgr import crypto
    from bounces.models import Mailbox

    old, new = crypto.generate_key(), crypto.generate_key()
    settings.FIELD_ENCRYPTION_KEYS = [old]
    mailbox = Mailbox.objects.create(name="m", password="pw-1")
    settings.FIELD_ENCRYPTION_KEYS = [new, old]
    call_command("rotate_encryption_key", stdout=io.StringIO())
    settings.FIELD_ENCRYPTION_KEYS = [new]
    assert Mailbox.objects.get(pk=mailbox.pk).password == "pw-1"
