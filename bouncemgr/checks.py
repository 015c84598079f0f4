"""System checks of the instance's secrets (docs/security.md).

A lost or replaced FIELD_ENCRYPTION_KEY makes the stored mailbox passwords unreadable.
That used to surface as a traceback from any check that loaded a mailbox, so `migrate`
and the server refused to start. Here each row whose secrets do not decrypt is reported
by name as a warning (a warning, so `migrate` still runs), with what to do about it.
"""

from __future__ import annotations

from django.apps import apps
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError
from django.db.models import F, TextField
from django.db.models.functions import Cast

from . import crypto
from .fields import EncryptedTextField


def encrypted_fields(model) -> list[str]:
    """Names of the model's columns encrypted at rest."""
    return [f.name for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]


def undecryptable(model) -> list[tuple[object, str, list[str]]]:
    """(pk, str of the row, [field names]) for each row whose stored secrets do not decrypt.

    Reads the raw column (cast to plain text, so the field does not try to decrypt it) and
    the row's label without loading the secrets.
    """
    names = encrypted_fields(model)
    if not names:
        return []
    raw = {f"_raw_{name}": Cast(F(name), TextField()) for name in names}
    rows = model._default_manager.defer(*names).annotate(**raw)
    found = []
    for row in rows.iterator(chunk_size=500):
        bad = []
        for name in names:
            value = getattr(row, f"_raw_{name}")
            if not value:
                continue
            try:
                crypto.decrypt(value)
            except (crypto.DecryptionError, ImproperlyConfigured):
                bad.append(name)
        if bad:
            found.append((row.pk, str(row), bad))
    return found


@checks.register("bouncemgr")
def check_encrypted_secrets(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """bouncemgr.W001: stored secrets that FIELD_ENCRYPTION_KEY does not decrypt."""
    messages: list[checks.CheckMessage] = []
    keys = getattr(settings, "FIELD_ENCRYPTION_KEYS", [])
    for model in apps.get_models():
        if not encrypted_fields(model):
            continue
        try:
            rows = undecryptable(model)
        except DatabaseError:  # before `migrate`, or no database reachable: nothing to check
            continue
        for pk, label, names in rows:
            why = "FIELD_ENCRYPTION_KEY is not set" if not keys else (
                "FIELD_ENCRYPTION_KEY does not decrypt them (the key was lost or replaced)")
            messages.append(checks.Warning(
                f"{model._meta.verbose_name.capitalize()} {label!r} (id {pk}): its stored "
                f"{', '.join(names)} cannot be read: {why}.",
                hint=("Put the old key back in FIELD_ENCRYPTION_KEY (after a new one, comma-separated, "
                      "to rotate), or enter these secrets again in the admin. Until then this "
                      f"{model._meta.verbose_name} cannot connect."),
                obj=model, id="bouncemgr.W001",
            ))
    return messages
