"""Give a user a TOTP device for two-factor login (django-otp), or remove theirs.

With REQUIRE_2FA=true nobody reaches the admin without a device, including the first
superuser. The admin lists and deletes devices but never shows their secrets
(OTP_ADMIN_HIDE_SENSITIVE_DATA), so this command, run by someone with shell access, is how
a device is made and its secret handed over.
"""

from __future__ import annotations

import base64

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django_otp.plugins.otp_totp.models import TOTPDevice


class Command(BaseCommand):
    help = "Add (or with --remove, delete) the TOTP device of a user and print its otpauth:// URL."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="authenticator app", help="Device name shown at login.")
        parser.add_argument("--remove", action="store_true", help="Delete the user's TOTP devices.")

    def handle(self, *args, username: str, name: str, remove: bool, **options):
        user = get_user_model()._default_manager.filter(**{get_user_model().USERNAME_FIELD: username}).first()
        if user is None:
            raise CommandError(f"No user named {username!r}.")
        if remove:
            count, _ = TOTPDevice.objects.filter(user=user).delete()
            self.stdout.write(f"Removed {count} TOTP device(s) of {username}.")
            return
        device = TOTPDevice.objects.create(user=user, name=name, confirmed=True)
        secret = base64.b32encode(device.bin_key).decode("ascii").rstrip("=")
        self.stdout.write(f"TOTP device {device.pk} added for {username}.")
        self.stdout.write("Scan or paste into an authenticator app (shown once; keep it secret):")
        self.stdout.write(f"  {device.config_url}")
        self.stdout.write(f"  secret (base32): {secret}")
