"""Re-encrypt every stored secret with the first key of FIELD_ENCRYPTION_KEY.

Rotation: put the new key first and keep the old one after it
(FIELD_ENCRYPTION_KEY=new,old), run this command, then drop the old key.
"""

from __future__ import annotations

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import transaction

from bouncemgr.fields import EncryptedTextField


class Command(BaseCommand):
    help = "Re-encrypt all secrets stored at rest with the current (first) encryption key."

    def handle(self, *args, **options):
        total = 0
        for model in apps.get_models():
            fields = [f.name for f in model._meta.get_fields() if isinstance(f, EncryptedTextField)]
            if not fields:
                continue
            with transaction.atomic():
                # Reading decrypts with any configured key; saving encrypts with the first.
                for obj in model._default_manager.select_for_update().only("pk", *fields):
                    obj.save(update_fields=fields)
                    total += 1
        self.stdout.write(self.style.SUCCESS(f"re-encrypted secrets of {total} rows"))
