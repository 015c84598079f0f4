"""Issue 12: login throttling, two-factor login, CSP, private caching, fail-closed settings,
the health probe, and an instance whose encryption key was lost (docs/security.md)."""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.urls import reverse
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

ROOT = Path(__file__).resolve().parent.parent
LOGIN = reverse("admin:login")
INDEX = reverse("console:dashboard")  # the landing page (the admin index leads there)


def manage(*args: str, env: dict[str, str], var: Path) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG", "SECRET_KEY_FILE")}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**base, "BOUNCEMGR_VAR_DIR": str(var), **env},
    )


# --- SECRET_KEY (item 7) ---------------------------------------------------------------

def test_a_missing_secret_key_stops_the_app_when_debug_is_off(tmp_path):
    out = manage("check", env={"DEBUG": "false"}, var=tmp_path)
    assert out.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY is not set" in out.stderr


def test_a_missing_secret_key_is_allowed_only_with_debug(tmp_path):
    out = manage("check", env={"DEBUG": "true"}, var=tmp_path)
    assert out.returncode == 0, out.stderr


def test_the_secret_key_can_come_from_a_docker_secret_file(tmp_path):
    key_file = tmp_path / "secret_key"
    key_file.write_text("from-a-file-" + "s" * 50 + "\n")
    code = "from django.conf import settings; print(settings.SECRET_KEY)"
    out = manage("shell", "-c", code, env={"DEBUG": "false", "SECRET_KEY_FILE": str(key_file)}, var=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "from-a-file-" + "s" * 50
    missing = manage("check", env={"DEBUG": "false", "SECRET_KEY_FILE": str(tmp_path / "nope")}, var=tmp_path)
    assert missing.returncode != 0 and "SECRET_KEY_FILE" in missing.stderr


def test_x_forwarded_proto_is_believed_only_when_configured(tmp_path):
    code = "from django.conf import settings; print(settings.SECURE_PROXY_SSL_HEADER)"
    env = {"DEBUG": "false", "SECRET_KEY": "k" * 50}
    assert manage("shell", "-c", code, env=env, var=tmp_path).stdout.strip().splitlines()[-1] == "None"
    trusted = manage("shell", "-c", code, env={**env, "TRUST_X_FORWARDED_PROTO": "true"}, var=tmp_path)
    assert trusted.stdout.strip().splitlines()[-1] == "('HTTP_X_FORWARDED_PROTO', 'https')"


@pytest.mark.django_db
def test_a_client_claiming_https_is_still_redirected_when_the_proxy_is_not_trusted(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    response = client.get(LOGIN, HTTP_X_FORWARDED_PROTO="https")
    assert response.status_code == 301 and response["Location"].startswith("https://")


@pytest.mark.django_db
def test_the_health_probe_answers_on_plain_http_from_any_host_name(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.ALLOWED_HOSTS = ["bounces.example.com"]
    response = client.get("/healthz", HTTP_HOST="127.0.0.1:8000")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert client.get(LOGIN, HTTP_HOST="127.0.0.1:8000").status_code == 400  # the rest is checked


# --- login throttling (item 6) -----------------------------------------------------------

@pytest.fixture
def staff_user(db):
    return get_user_model().objects.create_superuser("ops", "ops@example.com", "right-horse-battery")


def login(client, password: str, username: str = "ops", **extra):
    return client.post(LOGIN, {"username": username, "password": password, "next": INDEX, **extra})


def test_the_admin_login_locks_out_after_the_configured_number_of_failures(client, staff_user, settings):
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(2):
        assert login(client, "wrong").status_code == 200  # the form again
    assert login(client, "wrong").status_code == 429
    # Locked: even the right password does not get in.
    response = login(client, "right-horse-battery")
    assert response.status_code == 429
    assert "Login locked after 3 wrong passwords" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert client.get(INDEX).status_code == 302


def test_thirty_wrong_passwords_never_get_through(client, staff_user):
    codes = [login(client, f"guess-{i}").status_code for i in range(30)]
    assert codes.count(200) == 4 and set(codes[4:]) == {429}  # default limit 5


def test_a_good_login_before_the_limit_resets_the_count(client, staff_user, settings):
    settings.AXES_FAILURE_LIMIT = 3
    login(client, "wrong")
    login(client, "wrong")
    assert login(client, "right-horse-battery").status_code == 302
    client.logout()
    login(client, "wrong")
    login(client, "wrong")
    assert login(client, "right-horse-battery").status_code == 302


def test_a_lockout_is_lifted_by_the_reset_command(client, staff_user, settings):
    settings.AXES_FAILURE_LIMIT = 2
    login(client, "wrong")
    login(client, "wrong")
    assert login(client, "right-horse-battery").status_code == 429
    call_command("axes_reset_username", "ops", stdout=io.StringIO())
    assert login(client, "right-horse-battery").status_code == 302


# --- two-factor login (item 6) -------------------------------------------------------------

def current_token(device: TOTPDevice) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():0{device.digits}d}"


def test_without_require_2fa_a_password_is_enough(client, staff_user):
    assert login(client, "right-horse-battery").status_code == 302
    assert client.get(INDEX).status_code == 200


def test_with_require_2fa_the_admin_asks_for_the_code_of_the_users_device(client, staff_user, settings):
    settings.REQUIRE_2FA = True
    out = io.StringIO()
    call_command("totp_device", "ops", stdout=out)
    assert "otpauth://totp/" in out.getvalue()
    device = TOTPDevice.objects.get(user=staff_user)

    page = client.get(LOGIN).content.decode()
    assert 'name="otp_token"' in page
    # Password alone: refused.
    first = login(client, "right-horse-battery")
    assert first.status_code == 200 and "_auth_user_id" not in client.session
    wrong = "000000" if current_token(device) != "000000" else "111111"
    assert login(client, "right-horse-battery", otp_token=wrong).status_code == 200
    assert "_auth_user_id" not in client.session
    device.refresh_from_db()
    assert device.throttling_failure_count == 1  # django-otp slows down guessing codes
    device.throttle_reset()

    # One device: username, password and code in one submit, no device to pick.
    response = login(client, "right-horse-battery", otp_token=current_token(device))
    assert response.status_code == 302
    assert client.get(INDEX).status_code == 200


def test_with_require_2fa_a_user_without_a_device_cannot_log_in(client, staff_user, settings):
    settings.REQUIRE_2FA = True
    login(client, "right-horse-battery", otp_token="123456")
    assert client.get(INDEX).status_code == 302


def test_with_require_2fa_a_password_only_session_reaches_no_staff_page(client, staff_user, settings):
    """A session made without the second factor (before REQUIRE_2FA was switched on)."""
    from campaigns.models import Campaign

    campaign = Campaign.objects.create(name="c", subject="s", from_email="a@example.com")
    client.force_login(staff_user)
    results = reverse("campaigns:results", args=[campaign.pk])
    assert client.get(results).status_code == 200
    settings.REQUIRE_2FA = True
    for url in (INDEX, results, reverse("campaigns:bounces_csv", args=[campaign.pk])):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(LOGIN), url


def test_totp_devices_are_listed_in_the_admin_without_their_secrets(admin_client, staff_user):
    from django.contrib.auth.models import Permission

    call_command("totp_device", "ops", stdout=io.StringIO())
    device = TOTPDevice.objects.get(user=staff_user)
    viewer = get_user_model().objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.set(Permission.objects.filter(codename__in=["view_totpdevice", "change_totpdevice"]))
    for client, who in ((admin_client, "superuser"), (None, "viewer")):
        if client is None:
            from django.test import Client

            client = Client()
            client.force_login(viewer)
        listing = client.get(reverse("admin:otp_totp_totpdevice_changelist"))
        assert listing.status_code == 200 and "authenticator app" in listing.content.decode(), who
        change = client.get(reverse("admin:otp_totp_totpdevice_change", args=[device.pk])).content.decode()
        assert device.key not in change and "otpauth://" not in change, who
        assert client.get(reverse("admin:otp_totp_totpdevice_config", args=[device.pk])).status_code == 403, who


# --- Content-Security-Policy and caching (low) --------------------------------------------

@pytest.mark.django_db
def test_pages_carry_a_content_security_policy_without_unsafe_inline_scripts(admin_client):
    from campaigns.models import Campaign

    campaign = Campaign.objects.create(name="c", subject="s", from_email="a@example.com")
    for url in (INDEX, reverse("campaigns:results", args=[campaign.pk]), LOGIN):
        policy = admin_client.get(url)["Content-Security-Policy"]
        directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
        assert directives["default-src"] == "'self'"
        assert "'unsafe-inline'" not in directives["script-src"]
        assert "'unsafe-eval'" not in directives["script-src"]
        assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'"


def test_templates_have_no_inline_script_or_event_handler():
    """Inline code would need 'unsafe-inline'; move it to static/ or give it the nonce."""
    offenders = []
    for path in (ROOT / "templates").rglob("*.html"):
        text = path.read_text()
        for tag in re.findall(r"<script\b[^>]*>", text):
            if "src=" not in tag and "nonce=" not in tag and "application/json" not in tag:
                offenders.append(f"{path.relative_to(ROOT)}: {tag}")
        for attr in re.findall(r"\son[a-z]+\s*=\s*[\"']", text):
            offenders.append(f"{path.relative_to(ROOT)}: {attr.strip()}")
        if re.search(r"<style\b(?![^>]*nonce=)", text):
            offenders.append(f"{path.relative_to(ROOT)}: <style> without nonce")
    assert offenders == []


@pytest.mark.django_db
def test_staff_pages_and_csv_exports_are_never_stored_by_caches(admin_client):
    from campaigns.models import Campaign

    campaign = Campaign.objects.create(name="c", subject="s", from_email="a@example.com")
    for url in (reverse("campaigns:results", args=[campaign.pk]),
                reverse("campaigns:bounces_csv", args=[campaign.pk]), INDEX):
        cache_control = admin_client.get(url)["Cache-Control"]
        assert "no-store" in cache_control and "private" in cache_control, url


# --- a lost FIELD_ENCRYPTION_KEY (low) -----------------------------------------------------

@pytest.mark.django_db
def test_a_lost_encryption_key_is_reported_per_mailbox_and_migrate_still_runs(settings):
    from bouncemgr import crypto
    from bounces.models import Mailbox

    Mailbox.objects.create(name="Returns", host="imap.example.com", username="u", password="pw-1")
    Mailbox.objects.create(name="No secret", host="imap.example.com", username="u")
    settings.FIELD_ENCRYPTION_KEYS = [crypto.generate_key()]  # the old key is gone

    out, err = io.StringIO(), io.StringIO()
    call_command("check", stdout=out, stderr=err)
    report = out.getvalue() + err.getvalue()
    assert "bouncemgr.W001" in report and "'Returns'" in report and "password" in report
    assert "'No secret'" not in report
    call_command("migrate", verbosity=0, stdout=io.StringIO())  # no traceback

    settings.FIELD_ENCRYPTION_KEYS = []
    out = io.StringIO()
    call_command("check", stdout=out, stderr=out)
    assert "FIELD_ENCRYPTION_KEY is not set" in out.getvalue()


def test_staff_turn_on_two_factor_themselves_and_then_need_the_code(client, staff_user):
    """Optional two-factor: nothing required, yet a user who set it up needs the code."""
    assert login(client, "right-horse-battery").status_code == 302
    page_url = reverse("two_factor")
    assert "Set up two-factor login" in client.get(page_url).content.decode()
    page = client.post(page_url, {"action": "start"}).content.decode()
    secret = re.search(r'<code id="totp-secret">([A-Z2-7]+)</code>', page).group(1)
    device = TOTPDevice.objects.get(user=staff_user, confirmed=False)
    assert secret in device.config_url
    assert "not right" in client.post(page_url, {"action": "confirm", "token": "12"}).content.decode()
    device.throttle_reset()
    client.post(page_url, {"action": "confirm", "token": current_token(device)})
    device.refresh_from_db()
    assert device.confirmed
    page = client.get(page_url).content.decode()
    assert "On:" in page and secret not in page  # the secret is shown once
    client.logout()

    assert login(client, "right-horse-battery").status_code == 200  # the password alone: no
    assert "_auth_user_id" not in client.session
    assert "Authenticator code" in client.get(LOGIN).content.decode()
    device.throttle_reset()
    device.refresh_from_db()
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=device.step), tick=False):
        assert login(client, "right-horse-battery", otp_token=current_token(device)).status_code == 302
        assert client.get(INDEX).status_code == 200

        # Off again, with a current code; then the password is enough.
        device.refresh_from_db()
        client.post(page_url, {"action": "remove", "token": "000000"})
        assert TOTPDevice.objects.filter(user=staff_user).exists()
    device.throttle_reset()
    with time_machine.travel(dt.datetime.now(dt.UTC) + 2 * dt.timedelta(seconds=device.step), tick=False):
        device.refresh_from_db()
        client.post(page_url, {"action": "remove", "token": current_token(device)})
    assert not TOTPDevice.objects.filter(user=staff_user).exists()
    client.logout()
    assert login(client, "right-horse-battery").status_code == 302


def test_under_require_2fa_staff_cannot_remove_their_device(client, staff_user, settings):
    settings.REQUIRE_2FA = True
    call_command("totp_device", "ops", stdout=io.StringIO())
    device = TOTPDevice.objects.get(user=staff_user)
    assert login(client, "right-horse-battery", otp_token=current_token(device)).status_code == 302
    device.refresh_from_db()
    client.post(reverse("two_factor"), {"action": "remove", "token": current_token(device)})
    assert TOTPDevice.objects.filter(user=staff_user).exists()


@pytest.mark.django_db
def test_after_a_lost_key_the_instance_starts_the_admin_works_and_the_old_key_recovers_the_secret(
    settings, tmp_path, admin_client
):
    from bouncemgr import crypto
    from bouncemgr.fields import UnreadableSecret
    from bounces.models import Mailbox

    old = settings.FIELD_ENCRYPTION_KEYS[0]
    mailbox = Mailbox.objects.create(name="Returns", host="imap.example.com", username="u", password="pw-1")
    settings.FIELD_ENCRYPTION_KEYS = [crypto.generate_key()]  # the old key is gone
    settings.VAR_DIR = tmp_path

    call_command("setup_instance", stdout=io.StringIO())  # make run's start step: no traceback
    loaded = Mailbox.objects.get(pk=mailbox.pk)
    assert isinstance(loaded.password, UnreadableSecret) and loaded.password == ""  # never the ciphertext
    assert admin_client.get(reverse("admin:bounces_mailbox_changelist")).status_code == 200
    assert admin_client.get(reverse("admin:bounces_mailbox_change", args=[mailbox.pk])).status_code == 200
    loaded.save()  # a save keeps what is stored
    with pytest.raises(CommandError, match="no configured key decrypts them"):
        call_command("rotate_encryption_key", stdout=io.StringIO())

    settings.FIELD_ENCRYPTION_KEYS = [crypto.generate_key(), old]  # the old key found again
    assert Mailbox.objects.get(pk=mailbox.pk).password == "pw-1"
