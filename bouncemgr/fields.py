"""Model fields."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import models

from . import crypto

logger = logging.getLogger(__name__)


class UnreadableSecret(str):
    """A stored secret that the configured keys cannot decrypt (FIELD_ENCRYPTION_KEY lost,
    replaced or unset).

    It reads as "" (never the ciphertext, which must not go to a mail server as a password)
    and is written back unchanged, so a save does not destroy it and putting the old key back
    recovers it. `manage.py check` names the rows (bouncemgr.W001).
    """

    stored: str

    def __new__(cls, stored: str) -> UnreadableSecret:
        obj = super().__new__(cls, "")
        obj.stored = stored
        return obj


class EncryptedTextField(models.TextField):
    """A text column whose value is encrypted at rest (see bouncemgr.crypto).

    The Python value is the plain text; the database holds only the Fernet token.
    Empty strings are stored as-is (nothing to protect) so "no password" stays cheap.
    A value that cannot be decrypted loads as an empty UnreadableSecret instead of raising,
    so one lost key does not take every page and command that loads the row down with it.
    """

    description = "Text encrypted at rest"

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> str | None:
        if value is None or value == "":
            return value
        try:
            return crypto.decrypt(value)
        except (crypto.DecryptionError, ImproperlyConfigured) as exc:
            logger.warning("a stored secret cannot be read (%s); see manage.py check, bouncemgr.W001", exc)
            return UnreadableSecret(value)

    def get_prep_value(self, value: Any) -> Any:
        if isinstance(value, UnreadableSecret):
            return value.stored
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return crypto.encrypt(str(value))

    def to_python(self, value: Any) -> Any:
        return value
