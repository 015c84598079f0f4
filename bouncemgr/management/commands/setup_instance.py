"""Make a fresh instance usable: an admin login and the starter data.

Idempotent; `make run` calls it after `migrate` every time.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Ensure an admin login exists (printing how to log in) and load the starter data."

    def add_arguments(self, parser):
        parser.add_argument("--username", default=os.environ.get("BOUNCEMGR_ADMIN_USER", "admin"))
        parser.add_argument("--email", default=os.environ.get("BOUNCEMGR_ADMIN_EMAIL", "admin@localhost"))

    def handle(self, *args, username: str, email: str, **options):
        self.ensure_admin(username=username, email=email)
        # Starter data defined by later features (bounce rules, ...) registers a command
        # named load_starter_*; load each that exists.
        for name in sorted(get_commands()):
            if name.startswith("load_starter_"):
                call_command(name, stdout=self.stdout)
        # Mailboxes created outside the admin (commands, imports) get their beat schedule.
        call_command("process_bounces", sync_schedules=True, stdout=self.stdout)

    def ensure_admin(self, *, username: str, email: str) -> None:
        user_model = get_user_model()
        password_file = Path(settings.VAR_DIR) / "admin-password.txt"
        if user_model.objects.filter(is_superuser=True).exists():
            if password_file.is_file():
                self.stdout.write(
                    f"Admin login: {password_file.read_text().strip()}  (from {password_file}; "
                    "delete that file once you have changed the password)"
                )
            else:
                self.stdout.write(
                    "An admin login exists. Forgot the password? "
                    f"python manage.py changepassword {username}"
                )
            return
        # Never a fixed default: a random password, shown here and kept (mode 600) in var/.
        password = os.environ.get("BOUNCEMGR_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        user_model.objects.create_superuser(username=username, email=email, password=password)
        password_file.parent.mkdir(parents=True, exist_ok=True)
        password_file.touch(mode=0o600)
        password_file.write_text(f"user {username} / password {password}\n")
        self.stdout.write(
            self.style.SUCCESS(f"Created admin login: user {username} / password {password}")
        )
        self.stdout.write(f"(also saved in {password_file}; change it with: python manage.py changepassword {username})")
