"""Model fields."""

from __future__ import annotations

from typing import Any

from django.db import models

from . import crypto


class EncryptedTextField(models.TextField):
    """A text column whose value is encrypted at rest (see bouncemgr.crypto).

    The Python value is the plain text; the database holds only the Fernet token.
    Empty strings are stored as-is (nothing to protect) so "no password" stays cheap.
    """

    description = "Text encrypted at rest"

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> str | None:
        if value is None or value == "":
            return value
        return crypto.decrypt(value)

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return crypto.encrypt(str(value))

    def to_python(self, value: Any) -> Any:
        return value
