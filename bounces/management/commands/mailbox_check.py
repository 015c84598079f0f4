"""``manage.py mailbox_check NAME``: log in to a configured mailbox and report.
An interface: imports models, the intake's connection settings and the connectors.

Same check as the admin's "Test connection": server greeting, capabilities, folders
with message/unseen counts and the configured folder, or the precise error (DNS,
refused, timeout, TLS/certificate, authentication, OAuth2, folder missing). Exits
non-zero when the check fails, so it can be used in scripts and health checks.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from bounces.intake.connections import mailbox_connection_settings
from bounces.mailboxes import MailboxError, check_connection
from bounces.models import Mailbox


class Command(BaseCommand):
    help = "Test the connection to a mailbox (by name) and print what the server reports."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="The mailbox's name, as shown in the admin.")
        parser.add_argument(
            "--timeout", type=float, default=None,
            help="Seconds to wait for the server (default: the mailbox's setting, 30).",
        )
        parser.add_argument(
            "--no-folders", action="store_true",
            help="Skip listing folders (faster on servers with thousands of folders).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        name: str = options["name"]
        try:
            mailbox = Mailbox.objects.get(name=name)
        except Mailbox.DoesNotExist:
            known = ", ".join(Mailbox.objects.order_by("name").values_list("name", flat=True)[:20])
            raise CommandError(
                f"No mailbox named {name!r}." + (f" Known mailboxes: {known}." if known else "")
            ) from None
        try:
            settings = mailbox_connection_settings(mailbox)
        except MailboxError as exc:  # incomplete settings (no host, no path, ...)
            raise CommandError(f"mailbox {name!r}: {exc.category}: {exc.message}") from None
        if options["timeout"]:
            settings = dataclasses.replace(settings, timeout=options["timeout"])
        report = check_connection(settings, list_folders=not options["no_folders"])
        self.stdout.write(report.as_text())
        if not report.ok:
            raise CommandError(
                f"mailbox {name!r}: {report.error_category}: {report.error_message}", returncode=1
            )
