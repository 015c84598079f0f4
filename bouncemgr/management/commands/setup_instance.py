"""Make a fresh instance usable: an admin login and the starter data.

Idempotent; `make run` calls it after `migrate` every time. The admin password is printed
only when the login is created, and kept in var/admin-password.txt (mode 0600).
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
            # Printed once, when it was made (issue 12): start logs are kept and shared.
            where = f" The first password is in {password_file} until you delete it." if (
                password_file.is_file()) else ""
            self.stdout.write(
                f"An admin login exists.{where} Forgot it? python manage.py changepassword {username}"
            )
            return
        # Never a fixed default: a random password, shown here and kept (mode 600) in var/.
        password = os.environ.get("BOUNCEMGR_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        user_model.objects.create_superuser(username=username, email=email, password=password)
        password_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(f"user {username} / password {password}\n")
        password_file.chmod(0o600)
        self.stdout.write(
            self.style.SUCCESS(f"Created admin login: user {username} / password {password}")
        )
        self.stdout.write(f"(also saved in {password_file}; change it with: python manage.py changepassword {username})")
