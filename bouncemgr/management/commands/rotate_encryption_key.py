"""Re-encrypt every stored secret with the first key of FIELD_ENCRYPTION_KEY.

Rotation: put the new key first and keep the old one after it
(FIELD_ENCRYPTION_KEY=new,old), run this command, then drop the old key.
"""

from __future__ import annotations

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from bouncemgr.fields import EncryptedTextField, UnreadableSecret


class Command(BaseCommand):
    help = "Re-encrypt all secrets stored at rest with the current (first) encryption key."

    def handle(self, *args, **options):
        total = 0
        unreadable: list[str] = []
        for model in apps.get_models():
            fields = [f.name for f in model._meta.get_fields() if isinstance(f, EncryptedTextField)]
            if not fields:
                continue
            with transaction.atomic():
                # Reading decrypts with any configured key; saving encrypts with the first.
                for obj in model._default_manager.select_for_update().only("pk", *fields):
                    if any(isinstance(getattr(obj, name), UnreadableSecret) for name in fields):
                        unreadable.append(f"{model._meta.verbose_name} id {obj.pk}")
                        continue  # left as stored: no configured key reads it
                    obj.save(update_fields=fields)
                    total += 1
        self.stdout.write(self.style.SUCCESS(f"re-encrypted secrets of {total} rows"))
        if unreadable:
            raise CommandError(
                f"{len(unreadable)} rows were left as they are, no configured key decrypts them: "
                f"{', '.join(unreadable)}. Add the key they were written with after the new one "
                "and run this again, or enter those secrets again."
            )
