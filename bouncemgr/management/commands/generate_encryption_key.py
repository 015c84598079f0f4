from django.core.management.base import BaseCommand

from bouncemgr.crypto import generate_key


class Command(BaseCommand):
    help = "Print a new random key for FIELD_ENCRYPTION_KEY (secrets encrypted at rest)."
    requires_system_checks: list[str] = []

    def handle(self, *args, **options):
        self.stdout.write(generate_key())
